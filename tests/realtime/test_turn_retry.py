"""A retried turn over sockets and on the play page: its deltas follow its TurnRetried, a delta
that overtakes the TurnRetried fetches it first, retry_turn broadcasts before it schedules, and
the page shows one preview while the retried turn is pending and none once it is answered."""

from __future__ import annotations

import json
import re

import pytest
from channels.db import database_sync_to_async

from tests.realtime.sockets import communicator, fail_the_provider, failed_turn, frames_until, has, kinds, run

pytestmark = pytest.mark.django_db(transaction=True)


# ---- a retried turn ---------------------------------------------------------------------


def test_a_retried_turns_deltas_follow_its_turn_retried(session, player, monkeypatch):
    restore = fail_the_provider(monkeypatch)

    async def go():
        comm = communicator(session.pk, player)
        await comm.connect()
        action = {"type": "action", "text": "I look around", "idempotency_key": "k1"}
        await comm.send_to(text_data=json.dumps(action))
        frames = await frames_until(comm, has("TurnFailed"))
        failed = [f for f in frames if f["type"] == "event" and f["event"]["type"] == "TurnFailed"]
        action_seq = failed[0]["event"]["payload"]["action_seq"]
        restore()
        await comm.send_to(text_data=json.dumps({"type": "retry", "action_seq": action_seq}))
        # Until the retried turn's Narration: its deltas all come before it (one group, in order).
        order = kinds(await frames_until(comm, has("Narration")))
        assert "delta" in order and order.index("TurnRetried") < order.index("delta"), order
        await comm.disconnect()

    run(go)


def test_a_delta_that_overtakes_a_turn_retried_fetches_it_first(session, player, gm, monkeypatch):
    """A worker's first delta may beat (or outlive) the TurnRetried broadcast: the socket sends
    the committed TurnRetried first, then the delta, and the late broadcast is no duplicate."""

    action_seq = failed_turn(session, player, monkeypatch)

    async def go():
        from channels.layers import get_channel_layer

        from campaigns import events
        from realtime import broadcast

        comm = communicator(session.pk, gm)
        await comm.connect()
        # Its presence frame first, so that what follows is only the turn's (presence is
        # announced a moment after connect, and may come late on a loaded machine).
        await frames_until(comm, has("presence"))

        def commit_without_broadcast():
            from unittest import mock

            new = events.NewEvent(type="TurnRetried", payload={"action_seq": action_seq}, actor_id=player.pk)
            from narrative import turns

            # Neither its broadcast nor its runner: the worker's delta below stands for the turn.
            with (
                mock.patch.object(broadcast, "events_committed", lambda session_id, events: None),
                mock.patch.object(turns, "schedule_turns", lambda session_id, query=None: None),
            ):
                return events.append(session.pk, [new]).events[0].seq

        retried = await database_sync_to_async(commit_without_broadcast)()
        layer = get_channel_layer()
        delta = {"type": "session.delta", "action_seq": action_seq, "i": 0, "text": "The lights"}
        await layer.group_send(broadcast.session_group(session.pk), delta)
        first = json.loads(await comm.receive_from(timeout=5))
        second = json.loads(await comm.receive_from(timeout=5))
        assert (first["type"], first["seq"], first["event"]["type"]) == ("event", retried, "TurnRetried")
        assert (second["type"], second["text"]) == ("delta", "The lights")
        late = {"type": "session.event", "seq": retried, "event": first["event"], "html": ""}
        await layer.group_send(broadcast.session_group(session.pk), late)
        await layer.group_send(broadcast.session_group(session.pk), {**delta, "i": 1})
        # One group, in order: a duplicate TurnRetried would come before the second delta.
        assert kinds(await frames_until(comm, has("delta", i=1))) == ["delta"]
        await comm.disconnect()

    run(go)


def test_retry_turn_broadcasts_before_it_schedules(session, player, monkeypatch):
    from narrative import turns
    from realtime import broadcast

    action_seq = failed_turn(session, player, monkeypatch)
    calls = []
    monkeypatch.setattr(broadcast, "events_committed", lambda sid, created: calls.append("broadcast"))
    monkeypatch.setattr(turns, "schedule_turns", lambda sid, query=None: calls.append("schedule"))
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)
    assert calls == ["broadcast", "schedule"]


# ---- the play page after a retry --------------------------------------------------------


def previews(client, session_id) -> list[str]:
    html = client.get(f"/sessions/{session_id}/play/").content.decode()
    return re.findall(r'<div class="entry narration streaming" id="(stream-\d+)"', html)


def test_the_page_shows_no_preview_once_a_retried_turn_is_answered(
    session, player, player_client, monkeypatch
):
    from narrative import turns

    restore = fail_the_provider(monkeypatch)
    res = turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="k1")
    restore()
    turns.retry_turn(session_id=session.pk, user=player, action_seq=res.events[0].seq)
    assert previews(player_client, session.pk) == []


def test_the_page_shows_one_preview_while_a_retried_turn_is_pending(
    session, player, player_client, monkeypatch
):
    from narrative import turns

    restore = fail_the_provider(monkeypatch)
    action_seq = (
        turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="k1")
        .events[0]
        .seq
    )
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)  # fails again
    restore()
    monkeypatch.setattr(turns, "schedule_turns", lambda sid, query=None: None)  # no worker yet
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)
    assert previews(player_client, session.pk) == [f"stream-{action_seq}"]


def test_a_live_turn_retried_opens_a_preview_only_while_pending():
    from types import SimpleNamespace

    from realtime import broadcast

    event = SimpleNamespace(
        seq=5, type="TurnRetried", payload={"action_seq": 3}, actor=SimpleNamespace(username="kira")
    )
    assert 'id="stream-3"' in broadcast.render_event(event, pending=[3])
    assert 'id="stream-3"' not in broadcast.render_event(event, pending=[])
