"""The per-process hub (issue 20, realtime/hub.py): one channel per group per process, each
broadcast written to the local sockets in one loop, and nothing left behind when they go."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime import broadcast, hub
from realtime.consumers import SessionConsumer
from realtime.layer import FRAMES
from realtime.routing import websocket_urlpatterns
from tests.realtime.test_fanout_layer import event_message

app = URLRouter(websocket_urlpatterns)


@pytest.fixture
def pubsub(settings):
    """The product's layer, on a key prefix of our own (other runs may share this Redis)."""
    from channels.layers import channel_layers

    settings.GTW_PRESENCE_KEY_PREFIX = f"gtw:presence:test-{uuid.uuid4().hex[:8]}"
    config = {"hosts": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]}
    config["prefix"] = f"asgi-hub-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "realtime.layer.FanoutPubSubChannelLayer", "CONFIG": config}
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def communicator(session, user, fmt="json"):
    comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/?format={fmt}")
    comm.scope["user"] = user
    return comm


async def ready(comm) -> None:
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    while json.loads(await comm.receive_from(timeout=10))["type"] != "pong":
        pass


def announce(session_id: int) -> int:
    from campaigns import events

    new = events.NewEvent(type="NpcSpoke", payload={"name": "PA", "line": "Docking in five."})
    return events.append(session_id, [new]).events[0].seq


def loop_layer():
    from channels.layers import get_channel_layer

    return get_channel_layer()._get_layer()  # channels-redis's per-loop pub/sub layer


async def settled_tasks(baseline: int) -> int:
    """The loop's task count once what the sockets left behind (presence announcements, the
    hub's leaving) has run: polled, with a ceiling, never timed."""
    await hub.settle()
    for _ in range(200):
        count = len(asyncio.all_tasks())
        if count <= baseline:
            return count
        await asyncio.sleep(0.05)
    return len(asyncio.all_tasks())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("use_hub", [True, False], ids=["hub", "no-hub"])
def test_a_process_joins_a_session_group_once_and_leaves_nothing_behind(
    pubsub, session, gm, player, settings, use_hub
):
    """Regression (issue 20, the knee that sank on a long-lived server): rounds of sockets that
    connect and leave must leave the process as they found it — no group members, channels,
    subscriptions or tasks that outlive their socket."""
    settings.GTW_FANOUT_HUB = use_hub
    group = broadcast.session_group(session.pk)

    async def one_round(n: int) -> None:
        comms = [communicator(session, gm if k % 2 else player) for k in range(n)]
        for comm in comms:
            assert (await comm.connect())[0]
        for comm in comms:
            await ready(comm)
        members = loop_layer().groups[f"{loop_layer().prefix}__group__{group}"]
        if use_hub:  # one member of the group in this process (the hub's channel), however many sockets
            assert len(hub.hubs()[group].members) == n
            assert members == {hub.hubs()[group].channel}
        else:
            assert len(members) == n
        seq = await database_sync_to_async(announce)(session.pk)
        for comm in comms:
            frame = json.loads(await comm.receive_from(timeout=10))
            while frame["type"] != "event":
                frame = json.loads(await comm.receive_from(timeout=10))
            assert frame["seq"] == seq
        for comm in comms:
            await comm.disconnect()

    async def go():
        await one_round(4)  # the layer's own reader task and connections start here, once
        baseline_tasks = await settled_tasks(0)
        channels = set(loop_layer().channels)
        for n in (6, 3):
            await one_round(n)
            assert await settled_tasks(baseline_tasks) <= baseline_tasks
            assert group not in hub.hubs()
            assert set(loop_layer().channels) == channels  # every socket's channel is gone
            assert not loop_layer().groups
            shard = loop_layer()._shards[0]
            assert shard._subscribed_to == set()  # no Redis subscription left either

    async_to_sync(go)()


@pytest.mark.django_db(transaction=True)
def test_with_the_hub_off_every_socket_joins_the_group_itself(pubsub, session, gm, player, settings):
    settings.GTW_FANOUT_HUB = False
    group = broadcast.session_group(session.pk)

    async def go():
        comms = [communicator(session, gm), communicator(session, player)]
        for comm in comms:
            assert (await comm.connect())[0]
            await ready(comm)
        assert group not in hub.hubs()
        assert len(loop_layer().groups[f"{loop_layer().prefix}__group__{group}"]) == 2
        seq = await database_sync_to_async(announce)(session.pk)
        for comm in comms:
            frame = json.loads(await comm.receive_from(timeout=10))
            while frame["type"] != "event":
                frame = json.loads(await comm.receive_from(timeout=10))
            assert frame["seq"] == seq
            await comm.disconnect()

    async_to_sync(go)()


def test_a_hub_message_is_written_at_once_without_the_database(gm, player, session, monkeypatch):
    """The fast path: the next seq, an idle socket, nothing queued — written in the hub's loop,
    no query, the frame framed once for every socket; a whisper to someone else keeps the seq;
    a gap goes to the consumer's handlers (which heal it from the store)."""
    from django.db.backends import utils

    from campaigns.models import Membership

    membership = Membership.objects.get(campaign=session.campaign, user=player)
    queries = []
    real = utils.CursorWrapper._execute

    def counting(self, sql, *args, **kwargs):
        queries.append(sql)
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute", counting)

    def consumer() -> tuple[SessionConsumer, asyncio.Queue]:
        c = SessionConsumer()
        c.session_id, c.user, c.membership = session.pk, player, membership
        c.json_mode, c.last_seq, c.streams, c.held_upto = True, 10, {11}, 0
        out: asyncio.Queue = asyncio.Queue()
        c.writer, c.inbox, c.held, c.busy = hub.QueueWriter(out), asyncio.Queue(), 0, False
        return c, out

    async def go():
        (a, out_a), (b, _) = consumer(), consumer()
        for message in (event_message(11), event_message(12, audience=[gm.pk])):
            message[FRAMES] = {}  # as the hub's reader does
            a.hub_message(message)
            b.hub_message(message)
            if message["seq"] == 11:
                assert message[FRAMES]["event.json.frame"].payloadHybi.endswith(b"}")  # framed once
        delta = {"type": "session.delta", "action_seq": 11, "i": 0, "text": "Hi", FRAMES: {}}
        a.hub_message(delta)
        roster = {"type": "session.presence", "online": ["gm", "player"], "html": "<ul></ul>", FRAMES: {}}
        a.hub_message(roster)
        b.hub_message(roster)
        assert a.last_seq == 12 and a.held == 0
        sent = [json.loads((await out_a.get())["text"]) for _ in range(out_a.qsize())]
        assert [f["type"] for f in sent] == ["event", "delta", "presence"] and sent[0]["seq"] == 11
        assert sent[2]["online"] == ["gm", "player"]
        assert set(roster[FRAMES]) == {"presence.json", "presence.json.frame"}  # once for both sockets
        a.hub_message({**event_message(15), FRAMES: {}})  # a gap: the consumer heals it
        assert a.held == 1 and a.last_seq == 12 and out_a.empty()
        b.busy = True  # inside a handler: queued behind it, in order
        b.hub_message({**event_message(13), FRAMES: {}})
        b.busy = False
        b.hub_message({**event_message(14), FRAMES: {}})  # behind 13, so queued too
        assert b.held == 2 and b.inbox.qsize() == 2 and b.last_seq == 12

    async_to_sync(go)()
    assert queries == []


def test_the_daphne_writer_is_found_through_the_session_middleware_and_writes_one_frame(settings):
    from autobahn.twisted.websocket import WebSocketServerFactory
    from channels.sessions import InstanceSessionWrapper
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet.testing import StringTransport

    server = Server(application=None, endpoints=["tcp:port=0"])
    protocol = WebSocketProtocol()
    protocol.factory = WebSocketServerFactory()
    protocol.makeConnection(StringTransport())
    protocol.state = protocol.STATE_OPEN  # as after the handshake (no compression negotiated)
    protocol.transport.clear()
    server.connections = {protocol: {}}  # set by run(), which a test does not call
    send = functools.partial(server.handle_reply, protocol)
    wrapped = InstanceSessionWrapper({"type": "websocket", "cookies": {}}, send).send
    writer = hub.writer_for(wrapped)
    assert isinstance(writer, hub.DaphneWriter) and writer.protocol is protocol
    text = json.dumps({"type": "event", "seq": 1, "text": "é" * 200})
    writer.write(text, hub.prepared(text))
    payload = text.encode()
    frame = b"\x81\x7e" + len(payload).to_bytes(2, "big") + payload  # FIN + text, 16-bit length
    assert protocol.transport.value() == frame
    writer.write(text)  # a socket's own text: framed by autobahn, the same bytes
    assert protocol.transport.value() == frame * 2
    server.connections[protocol]["disconnected"] = 1.0  # closing: nothing more is written
    writer.write(text, hub.prepared(text))
    assert protocol.transport.value() == frame * 2
    assert hub.writer_for(lambda message: None) is None  # an ASGI server we don't know


def test_a_socket_is_full_once_its_unsent_bytes_pass_the_limit(settings):
    settings.GTW_WS_BUFFER_MAX_BYTES = 1000
    transport = SimpleNamespace(dataBuffer=b"x" * 900, offset=100, _tempDataLen=150)
    writer = hub.DaphneWriter(SimpleNamespace(connections={}), SimpleNamespace(transport=transport))
    assert writer.buffered() == 950 and not writer.full()
    transport._tempDataLen = 201
    assert writer.full()


def test_a_frame_goes_to_the_kernel_at_once_and_what_it_cannot_take_queues_in_order():
    import socket

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    queued: list[bytes] = []

    def write(data: bytes) -> None:  # Twisted's buffer: what it holds, it holds in order
        queued.append(data)
        transport._tempDataLen += len(data)

    transport = SimpleNamespace(
        socket=ours, dataBuffer=b"", offset=0, _tempDataLen=0, connected=1, disconnecting=0, write=write
    )
    hub.send_now(transport, b"first")
    assert theirs.recv(100) == b"first" and not queued  # straight to the kernel
    big = bytes(range(256)) * 2000  # more than the kernel takes while nobody reads
    hub.send_now(transport, big)
    assert queued and big.endswith(queued[0])  # the rest waits in Twisted's buffer
    hub.send_now(transport, b"last")  # Twisted holds bytes: this one queues behind them
    assert queued[-1] == b"last"
    ours.close()
    theirs.close()
