"""The X-card (issue 18, part 4): a player taps it, anonymously to the table (the GM sees who);
the last narration is withdrawn for everyone — on a fresh page, in the API, in a socket's
catch-up, in memory and in the narrator's context — by an event, never a deleted row; the
narrator is told to steer away for a few turns; spectators and outsiders are refused."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns import events, selectors, services
from campaigns import state as reducer
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from campaigns.models import Event, Membership, PlaySession
from narrative import turns, xcard


@pytest.fixture
def spectator(campaign):
    from tests.conftest import _user

    user = _user("spectator")
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.SPECTATOR)
    return user


@pytest.fixture
def narrated(session, player, django_capture_on_commit_callbacks):
    """The session after one answered action: (action seq, narration seq, narration text)."""
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I pry open the cargo crate", idempotency_key="a1"
        )
    narration = Event.objects.get(session=session, type="Narration")
    return narration.payload["action_seq"], narration.seq, narration.payload["text"]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _tap(session, user, key="x1", capture=None):
    if capture is None:
        return xcard.xcard_tap(session_id=session.pk, user=user, idempotency_key=key)
    with capture(execute=True):
        return xcard.xcard_tap(session_id=session.pk, user=user, idempotency_key=key)


def test_a_tap_withdraws_the_last_narration_by_an_event_not_a_deletion(session, player, narrated):
    _, narration_seq, text = narrated
    result = _tap(session, player)
    tap, by = result.events
    assert (tap.type, by.type) == ("XCardTapped", "XCardTappedBy")
    assert tap.actor_id is None and tap.audience is None  # anonymous to the table
    assert tap.payload == {"narration_seq": narration_seq, "steer_turns": 3}
    assert by.audience == [] and by.actor_id == player.pk  # who: the GMs only
    assert by.payload["username"] == player.username and by.payload["character"] == "Kira Vance"
    # The row is still there, untouched.
    assert Event.objects.get(session=session, seq=narration_seq).payload["text"] == text
    session.refresh_from_db()
    assert session.state["withdrawn"] == [narration_seq]
    assert session.state["xcard"] == {"seq": tap.seq, "turns": 3}


def test_replay_of_the_log_reproduces_the_state_and_its_hash(session, player, gm, narrated, settings):
    settings.GTW_SNAPSHOT_EVERY = 3  # snapshots on the way, so resume = snapshot + tail is checked too
    _tap(session, player)
    turns.submit_action(session_id=session.pk, user=gm, text="I check the corridor", idempotency_key="a2")
    turns.run_pending_turns(session.pk)
    session.refresh_from_db()
    replayed = events.replay_from_scratch(session.pk)
    assert replayed == session.state
    assert reducer.state_hash(replayed) == session.state_hash
    assert events.load_state(session.pk) == session.state
    assert session.state["xcard"]["turns"] == 2  # one narration since the tap


def test_the_same_key_is_the_same_tap(session, player, narrated):
    first = _tap(session, player, key="same")
    again = _tap(session, player, key="same")
    assert again.replayed and again.events[0].seq == first.events[0].seq
    assert Event.objects.filter(session=session, type="XCardTapped").count() == 1


def test_a_second_tap_does_not_withdraw_an_older_narration(session, player, gm, narrated):
    _, narration_seq, _ = narrated
    _tap(session, player, key="k1")
    second = _tap(session, gm, key="k2")
    assert second.events[0].payload["narration_seq"] is None  # nothing new to withdraw: it steers
    session.refresh_from_db()
    assert session.state["withdrawn"] == [narration_seq]


def test_spectator_and_outsider_are_refused(session, spectator, outsider, narrated):
    with pytest.raises(Forbidden):
        _tap(session, spectator)
    with pytest.raises(NotFound):
        _tap(session, outsider)
    for user, status in ((spectator, 403), (outsider, 404)):
        client = _client(user)
        api = client.post(
            f"/api/sessions/{session.pk}/xcard", {"idempotency_key": "k"}, content_type="application/json"
        )
        assert api.status_code == status
        page = client.post(f"/sessions/{session.pk}/xcard", {"idempotency_key": "k"})
        assert page.status_code == status
    assert not Event.objects.filter(session=session, type__startswith="XCard").exists()


def test_the_gm_can_tap_too_and_a_bad_key_or_ended_session_is_a_clear_4xx(session, gm, player, narrated):
    with pytest.raises(Invalid):
        _tap(session, player, key="not a key!")
    response = _client(player).post(f"/api/sessions/{session.pk}/xcard", {}, content_type="application/json")
    assert response.status_code == 422
    assert _tap(session, gm, key="gm").events[0].payload["narration_seq"] == narrated[1]
    services.session_end(
        session=PlaySession.objects.get(pk=session.pk),
        membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id),
    )
    with pytest.raises(Conflict):
        _tap(session, player, key="late")


def test_taps_are_rate_limited(session, player, narrated, settings):
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "xcard": (2, 60, "X-card taps")}
    _tap(session, player, key="r1")
    _tap(session, player, key="r2")
    with pytest.raises(RateLimited):
        _tap(session, player, key="r3")
    assert _tap(session, player, key="r1").replayed  # a retry of an accepted tap is never refused


def test_players_see_someone_tapped_the_gm_sees_who(session, gm, player, narrated):
    _, narration_seq, text = narrated
    _client(player).post(f"/sessions/{session.pk}/xcard", {"idempotency_key": "page-key"})
    player_page = _client(player).get(f"/sessions/{session.pk}/play/").content.decode()
    gm_page = _client(gm).get(f"/sessions/{session.pk}/play/").content.decode()
    for html in (player_page, gm_page):
        assert "Someone tapped the X-card" in html
        assert text not in html  # withdrawn for everyone, the GM included
        assert f'id="ev-{narration_seq}"' in html and "withdrawn with the X-card" in html
    assert "The X-card was tapped by" in gm_page and "The X-card was tapped by" not in player_page
    # The API: no text for the withdrawn narration, no XCardTappedBy for players.
    events_json = _client(player).get(f"/api/sessions/{session.pk}/events").json()["events"]
    withdrawn = next(e for e in events_json if e["seq"] == narration_seq)
    assert withdrawn["payload"] == {"action_seq": narrated[0], "withdrawn": True}
    assert "XCardTappedBy" not in [e["type"] for e in events_json]
    assert text not in str(events_json)
    gm_json = _client(gm).get(f"/api/sessions/{session.pk}/events").json()["events"]
    assert "XCardTappedBy" in [e["type"] for e in gm_json] and text not in str(gm_json)


def test_the_live_broadcast_replaces_the_narration_for_everyone(session, player, narrated, monkeypatch):
    from realtime import broadcast

    _, narration_seq, text = narrated
    sent = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: sent.append(message))
    result = _tap(session, player)
    broadcast.events_committed(session.pk, result.events)
    tap_message = next(m for m in sent if m["event"]["type"] == "XCardTapped")
    assert f'id="ev-{narration_seq}"' in tap_message["html"] and 'hx-swap-oob="true"' in tap_message["html"]
    assert "Someone tapped the X-card" in tap_message["html"]
    assert player.username not in tap_message["html"] and tap_message["event"]["actor_id"] is None
    assert all(text not in m["html"] for m in sent)


def test_memory_forgets_the_withdrawn_narration(session, player, narrated):
    from memory.models import Memory
    from memory.services import record_from_events

    _, narration_seq, text = narrated
    # Remembered before anyone tapped (the turn's memory job ran on commit).
    assert Memory.objects.filter(source_session=session, source_seq=narration_seq).exists()
    narration = Event.objects.get(session=session, seq=narration_seq)
    tap = _tap(session, player)
    record_from_events(session.pk, tap.events)  # the tap's own memory job
    assert not Memory.objects.filter(source_session=session, source_seq=narration_seq).exists()
    record_from_events(session.pk, [narration])  # a late job for the narration records nothing
    assert not Memory.objects.filter(source_session=session, source_seq=narration_seq).exists()
    assert not Memory.objects.filter(text__contains=text[:40]).exists()


def test_the_narrator_leaves_it_out_and_is_told_to_steer_away(
    session, player, gm, narrated, django_capture_on_commit_callbacks
):
    from narrative.turns.context import build_context
    from narrative.turns.prompts import build_messages

    _, _, text = narrated
    _tap(session, player, capture=django_capture_on_commit_callbacks)  # its memory job forgets
    turns.submit_action(session_id=session.pk, user=gm, text="I look around", idempotency_key="a3")
    session.refresh_from_db()
    action = Event.objects.get(session=session, seq=session.state["pending"][0])
    context = build_context(session, action)
    assert text not in [r["text"] for r in context["recent"]]
    system = build_messages(context)[0].content
    assert "X-card" in system and "withdrawn" in system
    assert text not in "\n".join(m.content for m in build_messages(context))
    # After GTW_XCARD_STEER_TURNS narrations the note is gone; the scene went on all along.
    for i in range(3):
        turns.run_pending_turns(session.pk)
        turns.submit_action(session_id=session.pk, user=gm, text=f"I wait {i}", idempotency_key=f"w{i}")
    session.refresh_from_db()
    assert session.state["xcard"]["turns"] == 0
    action = Event.objects.get(session=session, seq=session.state["pending"][0])
    assert "X-card" not in build_messages(build_context(session, action))[0].content


def test_reducer_folds_taps_purely():
    state = reducer.initial_state()
    state = reducer.apply(state, reducer.EventRecord(seq=1, type="SessionOpened", payload={}))
    state = reducer.apply(state, reducer.EventRecord(seq=2, type="Narration", payload={"text": "t"}))
    assert "withdrawn" not in state  # untouched sessions keep the state they always had
    tap = {"narration_seq": 2, "steer_turns": 2}
    state = reducer.apply(state, reducer.EventRecord(seq=3, type="XCardTapped", payload=tap))
    state = reducer.apply(state, reducer.EventRecord(seq=4, type="XCardTapped", payload=tap))
    assert state["withdrawn"] == [2] and state["xcard"] == {"seq": 4, "turns": 2}
    assert reducer.withdrawn_payload({"text": "t", "action_seq": 1, "batch": 2}) == {
        "action_seq": 1,
        "batch": 2,
        "withdrawn": True,
    }
    # Junk payloads fold without error and withdraw nothing.
    state = reducer.apply(
        state, reducer.EventRecord(seq=5, type="XCardTapped", payload={"narration_seq": "2"})
    )
    assert state["withdrawn"] == [2] and state["xcard"]["turns"] == 0


def test_the_sender_keeps_what_the_reducer_keeps():
    from realtime import broadcast

    assert broadcast.WITHDRAWN_KEEPS == reducer.WITHDRAWN_KEEPS
