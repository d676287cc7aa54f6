"""Realtime tier: the session socket through real channels-redis, with committed data."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from narrative.engine import ENGINE_EVENTS
from realtime.routing import websocket_urlpatterns
from tests.realtime.sockets import joined

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop; channels-redis keeps per-instance receive locks bound
    to the loop that created them, so give every test its own layer instance."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def communicator(session, user, query="format=json"):
    comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/?{query}")
    comm.scope["user"] = user
    return comm


async def receive_until(comm, predicate, wait=20):
    frames = []
    while True:
        frame = json.loads(await comm.receive_from(timeout=wait))
        frames.append(frame)
        if predicate(frame):
            return frames


def is_narration(frame):
    return frame.get("type") == "event" and frame["event"]["type"] == "Narration"


def run(coro_fn):
    async_to_sync(coro_fn)()


@pytest.mark.parametrize("who", ["outsider", "anonymous", "missing-session"])
def test_non_members_are_closed_with_4403(session, outsider, who):
    async def go():
        user = AnonymousUser() if who == "anonymous" else outsider
        comm = communicator(session, user)
        if who == "missing-session":
            comm = WebsocketCommunicator(app, "/ws/sessions/999999/")
            comm.scope["user"] = outsider
        connected, _ = await comm.connect()
        assert connected
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4403}
        # Always tear the app down: an abandoned consumer task can hang asyncio.run's shutdown.
        await comm.disconnect()

    run(go)


def test_bad_frames_get_error_frames_and_the_socket_stays_up(session, player):
    async def go():
        comm = communicator(session, player)
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        cases = [
            ("{not json", "malformed"),
            (json.dumps([1, 2]), "unknown_type"),
            (json.dumps({"type": "launch_missiles"}), "unknown_type"),
            (json.dumps({"type": "action", "text": "hi"}), "invalid"),
            (json.dumps({"type": "hello", "last_seq": -4}), "invalid"),
            (json.dumps({"type": "action", "text": "x" * 17_000, "idempotency_key": "k"}), "frame_too_large"),
            (json.dumps({"type": "action", "text": "   ", "idempotency_key": "k"}), "invalid"),
            (json.dumps({"type": "retry", "action_seq": 99}), "conflict"),
            (json.dumps({"type": "action", "text": "\ud800", "idempotency_key": "k"}), "invalid"),
        ]
        for raw, code in cases:
            await comm.send_to(text_data=raw)
            frame = await receive_until(comm, lambda f: f["type"] == "error")
            assert frame[-1]["code"] == code, (raw[:40], frame)
            assert frame[-1]["message"]
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await receive_until(comm, lambda f: f["type"] == "pong"))[-1] == {"type": "pong"}
        await comm.disconnect()

    run(go)


def test_an_action_streams_to_everyone_in_seq_order(session, player, gm):
    async def go():
        a, b = communicator(session, player), communicator(session, gm)
        await a.connect()
        await b.connect()
        await joined(b)  # in the group (and past its catch-up read) before the action commits
        await a.send_to(
            text_data=json.dumps(
                {"type": "action", "text": "I hack the airlock panel", "idempotency_key": "ws-1"}
            )
        )
        seen, acks = {}, []
        for name, comm in (("a", a), ("b", b)):
            frames = await receive_until(comm, is_narration)
            acks += [f for f in frames if f["type"] == "ack"]
            events = [f["event"] for f in frames if f["type"] == "event"]
            core = [e for e in events if e["type"] not in ENGINE_EVENTS]
            assert [e["type"] for e in core] == ["Action", "DiceRolled", "Narration"]
            seqs = [f["seq"] for f in frames if f["type"] == "event"]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            deltas = [f for f in frames if f["type"] == "delta"]
            assert deltas and all(d["action_seq"] == seqs[0] for d in deltas)
            assert [d["i"] for d in deltas] == list(range(len(deltas)))
            roll = core[1]["payload"]
            assert {"faces", "modifier", "dc", "outcome", "total"} <= set(roll) and core[1]["seed"]
            seen[name] = seqs
        assert seen["a"] == seen["b"]
        # Tests run the turn inline, so the sender's ack may come before or after the events.
        if not acks:
            acks = await receive_until(a, lambda f: f["type"] == "ack")
        assert acks[-1]["seq"] == seen["a"][0] and acks[-1]["idempotency_key"] == "ws-1"
        await a.disconnect()
        await b.disconnect()

    run(go)


def test_reconnect_with_last_seq_gets_exactly_what_was_missed(session, player, gm):
    from narrative import turns

    turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="r1")
    turns.run_pending_turns(session.pk)

    async def go():
        comm = communicator(session, gm, query="format=json&last_seq=1")
        await comm.connect()
        frames = await receive_until(comm, is_narration)
        seqs = [f["seq"] for f in frames if f["type"] == "event"]
        assert seqs == list(range(2, seqs[-1] + 1))
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        rest = await receive_until(comm, lambda f: f["type"] == "pong")
        assert not [f for f in rest if f["type"] == "event"], "no duplicates after catch-up"
        await comm.disconnect()

    run(go)


def test_html_mode_waits_for_hello_then_sends_partials(session, player):
    from narrative import turns

    turns.submit_action(session_id=session.pk, user=player, text="I wave at Ossian", idempotency_key="h1")
    turns.run_pending_turns(session.pk)

    async def go():
        comm = communicator(session, player, query="")
        await comm.connect()
        await comm.send_to(
            text_data=json.dumps({"type": "hello", "last_seq": 1, "HEADERS": {"HX-Request": "true"}})
        )
        html = []
        while not any("Narration" in h or 'class="entry narration"' in h for h in html):
            html.append(await comm.receive_from(timeout=5))
        joined = "".join(html)
        assert 'hx-swap-oob="beforeend:#log"' in joined
        assert 'id="ev-1"' not in joined and 'id="ev-2"' in joined
        await comm.disconnect()

    run(go)


def test_whispers_are_delivered_only_to_their_recipient(session, gm, player):
    from campaigns import selectors, services
    from tests.conftest import _user

    other = _user("ivy")
    invite = services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    services.invite_accept(code=invite.code, user=other)

    async def go():
        g, p, o = communicator(session, gm), communicator(session, player), communicator(session, other)
        for c in (g, p, o):
            await c.connect()
        await g.send_to(text_data=json.dumps({"type": "whisper", "to": player.pk, "text": "Trust no one."}))
        await o.send_to(text_data=json.dumps({"type": "whisper", "to": player.pk, "text": "me too"}))
        refused = await receive_until(o, lambda f: f["type"] == "error")
        assert refused[-1]["code"] == "forbidden"
        for c in (g, p):
            frames = await receive_until(
                c, lambda f: f["type"] == "event" and f["event"]["type"] == "Whisper"
            )
            assert frames[-1]["event"]["payload"]["text"] == "Trust no one."
        await o.send_to(text_data=json.dumps({"type": "ping"}))
        rest = await receive_until(o, lambda f: f["type"] == "pong")
        assert not [f for f in rest if f["type"] == "event"]
        for c in (g, p, o):
            await c.disconnect()

    run(go)


def test_a_delta_that_overtakes_its_action_fetches_the_action_first(session, player, gm):
    """The turn runner is scheduled before the Action's own broadcast goes out, so a first
    delta can reach a socket before the Action event does; the socket sends the (committed)
    Action first, then the delta, and the late broadcast is not a duplicate."""
    from campaigns import events
    from realtime import broadcast

    async def go():
        comm = communicator(session, gm)
        await comm.connect()
        # Its presence frame first (announced a moment after connect, later on a loaded
        # machine), so that the next two frames are the turn's.
        await receive_until(comm, lambda f: f["type"] == "presence")

        def commit_without_broadcast():
            from unittest import mock

            from narrative import turns

            # Neither its broadcast nor its runner: the delta below stands for the turn's.
            with (
                mock.patch.object(broadcast, "events_committed", lambda session_id, events: None),
                mock.patch.object(turns, "schedule_turns", lambda session_id, query=None: None),
            ):
                return events.append(
                    session.pk, [events.NewEvent(type="Action", payload={"text": "hi"}, actor_id=player.pk)]
                )

        from channels.db import database_sync_to_async

        result = await database_sync_to_async(commit_without_broadcast)()
        seq = result.events[0].seq
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        await layer.group_send(
            broadcast.session_group(session.pk),
            {"type": "session.delta", "action_seq": seq, "i": 0, "text": "The lights"},
        )
        first = json.loads(await comm.receive_from(timeout=5))
        second = json.loads(await comm.receive_from(timeout=5))
        assert (first["type"], first["seq"]) == ("event", seq)
        assert (second["type"], second["text"]) == ("delta", "The lights")
        await layer.group_send(
            broadcast.session_group(session.pk),
            {"type": "session.event", "seq": seq, "event": first["event"], "html": ""},
        )
        # A second delta through the same group: a duplicate Action would come before it (a ping's
        # pong travels apart from group messages, so it could overtake a late duplicate).
        await layer.group_send(
            broadcast.session_group(session.pk),
            {"type": "session.delta", "action_seq": seq, "i": 1, "text": " flicker"},
        )
        rest = await receive_until(comm, lambda f: f["type"] == "delta" and f["i"] == 1)
        assert [f for f in rest if f["type"] == "event"] == []
        await comm.disconnect()

    run(go)
