"""Backpressure: a stalled client never slows the others, and what it missed heals by seq.

Two ways a socket falls behind. Its client stops reading (a browser tab frozen in the
background, a phone in a tunnel): Daphne has no flow control, so its frames pile up in the
server's memory; past GTW_WS_BUFFER_MAX_BYTES the hub (realtime/hub.py) stops writing to it, and
once it drains the next event (or heal tick) fetches what it skipped from the event store. Or its
consumer is stuck in a handler (a slow send, a long catch-up): the hub queues the group messages
for it, in order, up to HELD_MAX, and it heals the rest from the store. Either way the others in
the same process and group get every event at once, and the stalled one ends up with every event,
in order, without duplicates.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime import broadcast, hub, presence
from realtime.consumers import SessionConsumer
from realtime.routing import websocket_urlpatterns
from tests.realtime.sockets import drain
from tests.realtime.sockets import event_seqs as event_seqs_in

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)
CAPACITY = 10
BURST = 3 * CAPACITY


def run(coro_fn):
    async_to_sync(coro_fn)()


@pytest.fixture(params=["core", "pubsub"])
def layer(request, settings):
    """A small channel capacity, so a short burst overflows a stalled socket's channel."""
    from channels.layers import channel_layers

    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    # Our own key prefix: group `session.1` of another test run on this Redis is not ours.
    prefix = f"asgi-test-{uuid.uuid4().hex[:8]}"
    if request.param == "core":
        backend = "channels_redis.core.RedisChannelLayer"
        config.update(capacity=CAPACITY, prefix=prefix)
    else:
        backend = "channels_redis.pubsub.RedisPubSubChannelLayer"
        config = {"hosts": config["hosts"], "prefix": prefix}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": config}}
    settings.GTW_PRESENCE_HEARTBEAT_S = 3600  # no heal ticks: only seq gaps heal in these tests
    channel_layers.backends.clear()
    yield request.param
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def own_presence_keys(settings):
    """Other test runs may share this Redis (their own databases, the same session ids)."""
    settings.GTW_PRESENCE_KEY_PREFIX = f"gtw:presence:test-{uuid.uuid4().hex[:8]}"


class Stall:
    """Blocks `send()` of one user's consumers while closed; records their store heals."""

    def __init__(self, monkeypatch, user_id: int):
        self.user_id = user_id
        self.gate = asyncio.Event()
        self.gate.set()
        self.blocked = asyncio.Event()
        self.heals: list[tuple[int, int | None]] = []
        stall = self
        send, send_range = SessionConsumer.send, SessionConsumer._send_range

        async def stalling_send(consumer, *args, **kwargs):
            if consumer.user.pk == stall.user_id and not stall.gate.is_set():
                stall.blocked.set()
                await stall.gate.wait()
            return await send(consumer, *args, **kwargs)

        async def recording_send_range(consumer, after, upto):
            if consumer.user.pk == stall.user_id and consumer.last_seq is not None:
                stall.heals.append((after, upto))
            return await send_range(consumer, after, upto)

        monkeypatch.setattr(SessionConsumer, "send", stalling_send)
        monkeypatch.setattr(SessionConsumer, "_send_range", recording_send_range)


def socket_of(session, user) -> SessionConsumer:
    """The user's consumer, as this process's hub knows it."""
    members = hub.hubs()[broadcast.session_group(session.pk)].members.values()
    (found,) = [c for c in members if c.user.pk == user.pk]
    return found


def communicator(session, user):
    comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/?format=json")
    comm.scope["user"] = user
    return comm


async def ready(comm) -> None:
    """A pong proves the consumer is past connect(): in the group, its last seq known."""
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    while json.loads(await comm.receive_from(timeout=10))["type"] != "pong":
        pass


async def event_seqs(comm, count: int, wait: float = 10) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        frame = json.loads(await comm.receive_from(timeout=wait))
        if frame["type"] == "event":
            seqs.append(frame["seq"])
    return seqs


def announce(session_id: int, n: int) -> list[int]:
    """Commit n events one by one; the event store's listener broadcasts each after its commit."""
    from campaigns import events

    seqs = []
    for i in range(n):
        result = events.append(
            session_id, [events.NewEvent(type="NpcSpoke", payload={"name": "PA", "line": f"{i}"})]
        )
        seqs.append(result.events[0].seq)
    return seqs


def test_a_client_that_stops_reading_is_skipped_and_heals_from_the_store_once_it_drains(
    layer, session, player, gm, monkeypatch
):
    stall = Stall(monkeypatch, player.pk)

    async def go():
        fast, slow = communicator(session, gm), communicator(session, player)
        await fast.connect()
        await slow.connect()
        await ready(fast)
        await ready(slow)
        writer = socket_of(session, player).writer
        writer.stalled = True  # its send buffer is over GTW_WS_BUFFER_MAX_BYTES
        stall.heals.clear()  # the catch-up at connect is not a heal
        sent = await database_sync_to_async(announce, thread_sensitive=False)(session.pk, BURST)
        assert await event_seqs(fast, BURST) == sent
        assert event_seqs_in(await drain(slow, 0.5)) == [], "no more events for a stalled socket"
        writer.stalled = False  # it read what it had
        sent += await database_sync_to_async(announce, thread_sensitive=False)(session.pk, 1)
        assert await event_seqs(slow, BURST + 1) == sent, "in order, nothing lost, no duplicates"
        assert stall.heals == [(sent[0] - 1, sent[-2])], "what it skipped came from the store, once"
        await ready(slow)  # and nothing more behind them
        assert await event_seqs(fast, 1) == sent[-1:]
        await fast.disconnect()
        await slow.disconnect()

    run(go)


def test_a_socket_busy_in_a_handler_gets_what_came_meanwhile_in_order(
    layer, session, player, gm, monkeypatch
):
    """Its consumer sits in a send (a ping's pong): the hub queues the burst for it, in order,
    while the others get it at once; nothing has to come from the store."""
    stall = Stall(monkeypatch, player.pk)

    async def go():
        fast, slow = communicator(session, gm), communicator(session, player)
        await fast.connect()
        await slow.connect()
        await ready(fast)
        await ready(slow)
        stall.gate.clear()
        stall.heals.clear()
        await slow.send_to(text_data=json.dumps({"type": "ping"}))
        await stall.blocked.wait()  # stuck sending the pong
        sent = await database_sync_to_async(announce, thread_sensitive=False)(session.pk, BURST)
        assert await event_seqs(fast, BURST) == sent
        assert socket_of(session, player).held >= BURST  # and any presence announcement
        stall.gate.set()
        assert await event_seqs(slow, BURST) == sent, "in order, nothing lost, no duplicates"
        assert stall.heals == []
        await ready(slow)
        await fast.disconnect()
        await slow.disconnect()

    run(go)


def test_a_socket_busy_for_long_holds_at_most_held_max_and_heals_the_rest(session, player, gm, monkeypatch):
    from realtime import consumers

    monkeypatch.setattr(consumers, "HELD_MAX", 5)
    stall = Stall(monkeypatch, player.pk)

    async def go():
        fast, slow = communicator(session, gm), communicator(session, player)
        await fast.connect()
        await slow.connect()
        await ready(fast)
        await ready(slow)
        stall.gate.clear()
        stall.heals.clear()
        await slow.send_to(text_data=json.dumps({"type": "ping"}))
        await stall.blocked.wait()
        sent = await database_sync_to_async(announce, thread_sensitive=False)(session.pk, BURST)
        assert await event_seqs(fast, BURST) == sent
        assert socket_of(session, player).held <= 5 + 1  # five messages, and at most one heal tick
        stall.gate.set()
        sent += await database_sync_to_async(announce, thread_sensitive=False)(session.pk, 1)
        assert await event_seqs(slow, BURST + 1) == sent, "in order, nothing lost, no duplicates"
        # What it held (five messages, one of them perhaps a presence announcement), then the rest
        # from the store, once.
        assert len(stall.heals) == 1 and stall.heals[0][1] == sent[-2]
        assert stall.heals[0][0] in (sent[3], sent[4])
        await fast.disconnect()
        await slow.disconnect()

    run(go)


def test_a_lost_last_event_is_healed_by_the_heartbeat(layer, session, player, settings):
    """A seq gap heals when the next event arrives; a lost *last* event has no next one, so
    the socket's heartbeat compares its seq with the store."""
    from campaigns import events

    settings.GTW_PRESENCE_HEARTBEAT_S = 0.1

    async def go():
        comm = communicator(session, player)
        await comm.connect()
        await ready(comm)

        def commit_without_broadcast():  # as if the channel layer had dropped the message
            new = events.NewEvent(type="NpcSpoke", payload={"name": "PA", "line": "lost"})
            return events.append(session.pk, [new]).events[0].seq

        seq = await database_sync_to_async(commit_without_broadcast)()
        assert await event_seqs(comm, 1) == [seq]
        await comm.disconnect()

    run(go)
    async_to_sync(presence_wipe)(session.pk)


async def presence_wipe(session_id: int) -> None:
    client, _ = presence._client()
    await client.delete(*presence.keys(session_id))


def test_past_held_max_a_busy_socket_skips_events_and_deltas_but_keeps_other_messages():
    """Events heal from the store and deltas are previews of the Narration event, so neither
    queues past HELD_MAX; a presence announcement (who is online, whole) keeps only its newest,
    held once the inbox drains; a heal tick waits at most once; anything else (a notice) still
    waits its turn."""
    from realtime import consumers

    socket = SessionConsumer()
    socket.inbox = asyncio.Queue()
    socket.writer = None
    socket.busy = True
    socket.heal_held = False
    socket.snapshots_skipped = {}
    socket.held = consumers.HELD_MAX
    socket.hub_message({"type": "session.event", "seq": 7, "event": {}})
    socket.hub_message({"type": "session.delta", "action_seq": 3, "i": 1, "text": "…"})
    assert socket.inbox.qsize() == 0 and socket.held == consumers.HELD_MAX
    for online in (["ann"], ["ann", "bo"], ["bo"]):
        socket.hub_message({"type": "session.presence", "online": online})
    assert socket.inbox.qsize() == 0 and socket.snapshots_skipped["session.presence"]["online"] == ["bo"]
    socket.hub_message({"type": "team.notice", "text": "regroup"})
    socket._hold({"type": "session.heal"})
    socket._hold({"type": "session.heal"})
    assert [m["type"] for m in socket.inbox._queue] == ["team.notice", "session.heal"]
    assert socket.held == consumers.HELD_MAX + 2

    handled = []

    async def record(message):
        handled.append(message)

    socket.team_notice = socket.session_heal = socket.session_presence = record
    socket.held = 2  # as if the rest had been handled: the last two drain, then the newest presence

    async def drain():
        while socket.inbox.qsize():
            await socket.hub_held(await socket._next_held())

    asyncio.run(drain())
    assert [m["type"] for m in handled] == ["team.notice", "session.heal", "session.presence"]
    assert handled[-1]["online"] == ["bo"] and socket.held == 0 and not socket.snapshots_skipped
    socket._hold({"type": "session.heal"})  # the held one was handled: the next tick waits again
    assert socket.inbox.qsize() == 1

    socket.held = consumers.HELD_MAX - 1
    socket.inbox = asyncio.Queue()
    socket.hub_message({"type": "session.delta", "action_seq": 3, "i": 2, "text": "…"})
    socket.hub_message({"type": "session.delta", "action_seq": 3, "i": 3, "text": "…"})
    assert socket.inbox.qsize() == 1  # below the limit a busy socket keeps its deltas, in order
