"""Backpressure: a stalled client never slows the others, and what it lost heals by seq.

A stalled client is one whose socket cannot take more frames (a browser tab frozen in the
background, a phone in a tunnel, on a server whose send applies flow control): its consumer
sits in `send()` and stops taking messages off its channel. Others in the same process and
group must still get every event at once; when the stalled one resumes, everything that
overflowed its channel (channels-redis keeps the newest `capacity` messages) comes back from
the event store, in order, without duplicates.
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

from realtime import presence
from realtime.consumers import SessionConsumer
from realtime.routing import websocket_urlpatterns

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


def test_a_stalled_client_does_not_delay_the_others_and_heals_its_overflow_by_seq(
    layer, session, player, gm, monkeypatch
):
    stall = Stall(monkeypatch, player.pk)

    async def go():
        fast, slow = communicator(session, gm), communicator(session, player)
        await fast.connect()
        await slow.connect()
        await ready(fast)
        await ready(slow)
        stall.gate.clear()
        stall.heals.clear()  # the catch-up at connect is not a heal
        sent = await database_sync_to_async(announce, thread_sensitive=False)(session.pk, BURST)
        # The fast client gets all of them while the slow one is still stuck in its first send.
        assert await event_seqs(fast, BURST) == sent
        assert stall.blocked.is_set() and not stall.gate.is_set()
        stall.gate.set()
        got = await event_seqs(slow, BURST)
        assert got == sent, "in order, nothing lost, no duplicates"
        await ready(slow)  # and nothing more behind them
        if layer == "core":
            # Its channel kept only the newest CAPACITY messages; the rest came from the store.
            # The heal starts after the last event the socket had: the one it was stuck sending,
            # or (when even that one was pushed out under load) the one before the burst.
            assert stall.heals and stall.heals[0][0] in (sent[0] - 1, sent[0])
            healed = sum(upto - after for after, upto in stall.heals if upto is not None)
            assert healed >= BURST - CAPACITY - 1
        else:
            # The pub/sub layer buffers without limit (in Daphne's memory): nothing to heal.
            assert stall.heals == []
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
