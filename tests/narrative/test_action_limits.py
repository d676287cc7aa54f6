"""Per-player limits on actions in party sessions (issue 11 hole 3): a rate limit, and a cap on
how many of one player's actions may wait for the GM at once. Both refuse with a clear 429 on
every way in (API, the play page's socket in HTML and JSON), never a replay of an accepted action,
and never anyone else."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync

from campaigns.errors import RateLimited
from campaigns.models import Event
from narrative import turns


def post_action(client, session, key: str, text: str = "I look around"):
    return client.post(
        f"/api/sessions/{session.pk}/actions",
        {"text": text, "idempotency_key": key},
        content_type="application/json",
    )


def test_a_player_can_have_only_a_few_actions_waiting_for_the_gm(
    session, player_client, gm_client, outsider_client, settings
):
    """issue 11 hole 3: 150 actions in 3 s stalled the table for 40 s+; nothing bounded how many
    of one player's actions waited for the GM. Past GTW_PENDING_ACTIONS_MAX the API answers 429
    with a sentence that says to wait for the GM; the GM still acts, the outsider still gets 404,
    and a replay of an accepted action returns it."""
    cap = settings.GTW_PENDING_ACTIONS_MAX
    # No worker runs here (the test's transaction never commits), so every action stays pending.
    accepted = [post_action(player_client, session, f"p{i}") for i in range(cap)]
    assert [r.status_code for r in accepted] == [202] * cap
    refused = post_action(player_client, session, "p-over")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.json()["detail"] == (
        f"You already have {cap} actions waiting for the GM; wait for the GM to answer them before "
        "you act again."
    )
    assert not Event.objects.filter(session=session, idempotency_key__endswith=":p-over").exists()
    replay = post_action(player_client, session, "p0")
    assert replay.status_code == 202
    assert replay.json() == {"seq": accepted[0].json()["seq"], "replayed": True}
    assert post_action(gm_client, session, "g0").status_code == 202  # the cap is per player
    assert post_action(outsider_client, session, "o0").status_code == 404

    turns.run_pending_turns(session.pk)  # the GM answers: the player may act again
    assert post_action(player_client, session, "p-after").status_code == 202


def test_a_player_flooding_actions_is_rate_limited_and_replays_are_free(session, player, gm, settings):
    """issue 11 hole 3: party sessions had no action rate limit (stage sessions did). Even when
    every action is answered at once, the player's action past the limit is refused with 429;
    retrying an accepted action (same idempotency key) is never refused and returns the original;
    other players keep their own allowance."""
    limit, per, _ = settings.GTW_RATE_LIMITS["action"]
    assert limit > 0
    seqs = []
    for i in range(limit):
        seqs.append(
            turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key=f"r{i}")
            .events[0]
            .seq
        )
        turns.run_pending_turns(session.pk)
    with pytest.raises(
        RateLimited, match=rf"^Slow down: at most {limit} actions per {per} seconds\.$"
    ) as exc:
        turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="r-over")
    assert exc.value.status == 429
    again = turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="r0")
    assert again.replayed and again.events[0].seq == seqs[0]
    assert turns.submit_action(session_id=session.pk, user=gm, text="I wait", idempotency_key="g").events


def test_the_limits_apply_to_every_party_session_a_player_is_in(session, player, gm, settings):
    """The rate limit counts the player, not the session: a second session doesn't reset it."""
    from campaigns import selectors, services

    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "action": (2, 30, "actions")}
    turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="a")
    turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="b")
    other = services.session_open(
        membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    with pytest.raises(RateLimited):
        turns.submit_action(session_id=other.pk, user=player, text="I wait", idempotency_key="c")


# ---- the play page's socket -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["json", "html"])
def test_the_socket_tells_the_player_to_wait_for_the_gm(session, player, settings, monkeypatch, mode):
    """issue 11 hole 3: the play page (HTML frames) and JSON clients get the refusal as a clear
    message, not a dropped frame; the socket stays up and a replay is still acknowledged."""
    from channels.layers import channel_layers
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from realtime.routing import websocket_urlpatterns

    monkeypatch.setattr(turns, "schedule_turns", lambda session_id, query=None: None)  # no worker
    cap = settings.GTW_PENDING_ACTIONS_MAX
    message = (
        f"You already have {cap} actions waiting for the GM; wait for the GM to answer them "
        "before you act again."
    )
    channel_layers.backends.clear()
    query = "format=json" if mode == "json" else ""

    async def receive_until(comm, wanted):
        while True:
            frame = await comm.receive_from(timeout=10)
            if wanted(frame):
                return frame

    async def go():
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/sessions/{session.pk}/?{query}")
        comm.scope["user"] = player
        await comm.connect()
        if mode == "html":
            await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": 0}))
        for i in range(cap + 1):
            await comm.send_to(
                text_data=json.dumps({"type": "action", "text": "I wait", "idempotency_key": f"w{i}"})
            )
        if mode == "json":
            error = json.loads(await receive_until(comm, lambda f: json.loads(f)["type"] == "error"))
            assert error == {"type": "error", "code": "rate_limited", "message": message}
            await comm.send_to(
                text_data=json.dumps({"type": "action", "text": "I wait", "idempotency_key": "w0"})
            )
            ack = json.loads(await receive_until(comm, lambda f: json.loads(f)["type"] == "ack"))
            assert ack["idempotency_key"] == "w0"
        else:
            notice = await receive_until(comm, lambda f: 'class="flash error"' in f)
            assert 'data-code="rate_limited"' in notice
            assert message.replace("'", "&#x27;") in notice
        await comm.disconnect()

    try:
        async_to_sync(go)()
    finally:
        channel_layers.backends.clear()
    assert Event.objects.filter(session=session, type="Action").count() == cap
