"""Presence: who is online, per socket, kept alive by heartbeats in Redis.

The first tests drive realtime.presence directly with an explicit clock (`now=`), so expiry is
exact and instant; the rest run real consumers through channels-redis with a short TTL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings

from realtime import presence
from realtime.routing import websocket_urlpatterns

app = URLRouter(websocket_urlpatterns)
TTL = settings.GTW_PRESENCE_TTL_S
_ids = itertools.count(1)


def run(coro_fn):
    async_to_sync(coro_fn)()


async def wipe(session_id: int) -> None:
    client, _ = presence._client()
    await client.delete(*presence.keys(session_id))


@pytest.fixture(autouse=True)
def own_keys(settings):
    """Other test runs may share this Redis (their own databases, the same session ids)."""
    settings.GTW_PRESENCE_KEY_PREFIX = f"gtw:presence:test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sid():
    """A session id no database row has, so parallel runs and old keys never collide."""
    session_id = 10**12 + int(time.time() * 1000) % 10**9 * 100 + next(_ids)
    yield session_id
    async_to_sync(wipe)(session_id)


# ---- the data model, with an explicit clock ----------------------------------------------


def test_online_is_sorted_and_lists_each_user_once_across_tabs(sid):
    async def go():
        t = 1_000.0
        await presence.join(sid, "zed", "chan-z", now=t)
        await presence.join(sid, "amy", "chan-a1", now=t)
        assert await presence.join(sid, "amy", "chan-a2", now=t) == ["amy", "zed"]
        # Closing one of two tabs keeps the user online; closing the last one does not.
        assert await presence.leave(sid, "chan-a1", now=t) == ["amy", "zed"]
        assert await presence.leave(sid, "chan-a2", now=t) == ["zed"]
        assert await presence.leave(sid, "never-joined", now=t) == ["zed"]

    run(go)


def test_entries_without_a_heartbeat_expire_and_beating_ones_stay(sid):
    async def go():
        t = 5_000.0
        await presence.join(sid, "amy", "chan-a", now=t)
        await presence.join(sid, "bob", "chan-b", now=t)
        # Bob's socket beats; Amy's process died (no leave, no beats).
        for dt in (10, 20, 30):
            assert await presence.heartbeat(sid, "bob", "chan-b", now=t + dt) is False
        assert await presence.online(sid, now=t + TTL - 0.1) == ["amy", "bob"]
        assert await presence.online(sid, now=t + TTL + 0.1) == ["bob"]
        snapshot = await presence.presence_snapshot(sid, now=t + TTL + 0.1)
        assert snapshot == [{"user": "bob", "team": None, "channels": ["chan-b"]}]

    run(go)


def test_a_heartbeat_reregisters_a_pruned_socket_and_reports_roster_changes(sid):
    """A socket whose process stalled past the TTL was pruned as a ghost; its next beat puts it
    back, and says so, so the consumer announces the roster again."""

    async def go():
        t = 9_000.0
        await presence.join(sid, "amy", "chan-a", now=t)
        await presence.join(sid, "bob", "chan-b", now=t)
        assert await presence.online(sid, now=t + TTL + 1) == []  # both pruned
        assert await presence.heartbeat(sid, "amy", "chan-a", now=t + TTL + 2) is True
        assert await presence.online(sid, now=t + TTL + 2) == ["amy"]
        assert await presence.heartbeat(sid, "amy", "chan-a", now=t + TTL + 3) is False
        # A beat that prunes someone else's ghost also reports a change.
        await presence.join(sid, "bob", "chan-b", now=t + TTL + 3)
        assert await presence.heartbeat(sid, "amy", "chan-a", now=t + 2 * TTL + 3.5) is True
        assert await presence.online(sid, now=t + 2 * TTL + 3.5) == ["amy"]

    run(go)


def test_presence_survives_a_server_restart_rebuilt_from_live_connections(sid):
    """Daphne A dies with two sockets on it (no disconnect runs); B keeps one. A's clients
    reconnect to B and register again. The roster never loses anyone who is connected, and A's
    entries are gone within the TTL: the roster is exactly the live sockets."""

    async def go():
        t = 20_000.0
        await presence.join(sid, "amy", "A!amy", now=t)
        await presence.join(sid, "bob", "A!bob", now=t)
        await presence.join(sid, "cat", "B!cat", now=t)
        await presence.set_team(sid, "amy", "red")
        # t+3: A is killed. t+4: its clients are back, on B.
        await presence.join(sid, "amy", "B!amy", now=t + 4)
        await presence.join(sid, "bob", "B!bob", now=t + 4)
        live = {"amy": "B!amy", "bob": "B!bob", "cat": "B!cat"}
        for dt in range(10, 61, 10):  # only live sockets beat
            for user, channel in live.items():
                await presence.heartbeat(sid, user, channel, now=t + dt)
            assert await presence.online(sid, now=t + dt) == ["amy", "bob", "cat"]
        snapshot = await presence.presence_snapshot(sid, now=t + 60)
        assert snapshot == [
            {"user": "amy", "team": "red", "channels": ["B!amy"]},
            {"user": "bob", "team": None, "channels": ["B!bob"]},
            {"user": "cat", "team": None, "channels": ["B!cat"]},
        ]
        # Before the TTL ran out, the ghosts were there beside the new sockets (deduplicated).
        await presence.join(sid, "dan", "A2!dan", now=t + 60)
        assert (await presence.presence_snapshot(sid, now=t + 60 + TTL - 1))[3]["channels"] == ["A2!dan"]

    run(go)


def test_teams_are_per_user_set_before_connecting_kept_across_reconnects_and_cleared(sid):
    async def go():
        t = 30_000.0
        await presence.set_team(sid, "amy", "blue")  # a moderator assigns before Amy connects
        await presence.join(sid, "amy", "c1", now=t)
        await presence.join(sid, "bob", "c2", now=t, team="red")
        snap = {row["user"]: row for row in await presence.presence_snapshot(sid, now=t)}
        assert (snap["amy"]["team"], snap["bob"]["team"]) == ("blue", "red")
        await presence.leave(sid, "c1", now=t)
        await presence.join(sid, "amy", "c3", now=t + 1)  # reconnect
        await presence.set_team(sid, "bob", None)
        snapshot = await presence.presence_snapshot(sid, now=t + 1)
        assert snapshot == [
            {"user": "amy", "team": "blue", "channels": ["c3"]},
            {"user": "bob", "team": None, "channels": ["c2"]},
        ]

    run(go)


def test_many_ghosts_are_pruned_in_one_read(sid):
    """More stale entries than one Lua unpack() takes (a crashed process with a full stage)."""

    async def go():
        client, _ = presence._client()
        beats, conns, _ = presence.keys(sid)
        n = presence.PRUNE_CHUNK * 2 + 7
        await client.zadd(beats, {f"ghost-{i}": 1.0 for i in range(n)})
        await client.hset(conns, mapping={f"ghost-{i}": f"user{i % 40}" for i in range(n)})
        assert await presence.join(sid, "amy", "live", now=100.0) == ["amy"]
        assert await client.zcard(beats) == 1 and await client.hlen(conns) == 1

    run(go)


# ---- real consumers -------------------------------------------------------------------------


@pytest.fixture
def fresh_channel_layer(settings):
    from channels.layers import channel_layers

    # Our own key prefix: group `session.1` of another test run on this Redis is not ours.
    layer = settings.CHANNEL_LAYERS["default"]
    config = {**layer["CONFIG"], "prefix": f"asgi-test-{uuid.uuid4().hex[:8]}"}
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": config}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def short_presence(settings, session, fresh_channel_layer):
    settings.GTW_PRESENCE_TTL_S = 0.8
    settings.GTW_PRESENCE_HEARTBEAT_S = 0.1
    async_to_sync(wipe)(session.pk)
    yield
    async_to_sync(wipe)(session.pk)


def communicator(session, user):
    comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/?format=json")
    comm.scope["user"] = user
    return comm


async def presence_frame(comm, predicate=lambda online: True, wait=20.0):
    """The next presence frame whose online list satisfies `predicate` (others are skipped)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        left = deadline - asyncio.get_running_loop().time()
        frame = json.loads(await comm.receive_from(timeout=max(0.01, left)))
        if frame["type"] == "presence" and predicate(frame["online"]):
            return frame["online"]


@pytest.mark.django_db(transaction=True)
def test_a_live_socket_outlives_the_ttl_and_leaves_at_once_on_close(session, player, short_presence):
    async def go():
        comm = communicator(session, player)
        await comm.connect()
        assert await presence_frame(comm) == [player.username]
        await asyncio.sleep(presence.ttl() * 3)  # only its heartbeat task keeps it there
        snapshot = await presence.presence_snapshot(session.pk)
        assert [row["user"] for row in snapshot] == [player.username]
        assert len(snapshot[0]["channels"]) == 1
        await comm.disconnect()
        assert await presence.online(session.pk) == []

    run(go)


@pytest.mark.django_db(transaction=True)
def test_ghosts_of_a_dead_process_are_pruned_and_announced(session, player, gm, short_presence):
    """A dead Daphne's sockets never say goodbye; a live socket's heartbeat prunes them once
    they are past the TTL and tells the party."""

    async def go():
        await presence.join(session.pk, "ghost", "specific.dead!1")
        comm = communicator(session, player)
        await comm.connect()
        first = await presence_frame(comm)
        assert player.username in first
        # The ghost never beats again; the player's heartbeat prunes it and announces.
        assert await presence_frame(comm, lambda online: "ghost" not in online) == [player.username]
        await comm.disconnect()

    run(go)


@pytest.mark.django_db(transaction=True)
def test_two_tabs_one_name_and_closing_one_keeps_the_user_online(session, player, gm, short_presence):
    async def go():
        tab1, tab2, watcher = (
            communicator(session, player),
            communicator(session, player),
            communicator(session, gm),
        )
        for comm in (watcher, tab1, tab2):
            await comm.connect()
        both = sorted([gm.username, player.username])
        assert await presence_frame(watcher, lambda online: online == both) == both
        # The roster lists the player once tab1 is in; tab2 registers when its own connect gets
        # there (later on a loaded machine): wait for it, then for one name with two channels.
        for _ in range(200):  # a ceiling of 20 s
            snapshot = {row["user"]: row for row in await presence.presence_snapshot(session.pk)}
            if len(snapshot.get(player.username, {}).get("channels", [])) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(snapshot[player.username]["channels"]) == 2
        assert await presence.online(session.pk) == both
        await tab1.disconnect()
        await asyncio.sleep(presence.ANNOUNCE_COALESCE_S * 3)
        assert await presence.online(session.pk) == both
        await tab2.disconnect()
        assert await presence_frame(watcher, lambda online: online == [gm.username]) == [gm.username]
        await watcher.disconnect()

    run(go)


@pytest.mark.django_db(transaction=True)
def test_a_received_frame_is_a_heartbeat(session, player, settings, short_presence, monkeypatch):
    settings.GTW_PRESENCE_HEARTBEAT_S = 3600  # the periodic beat never comes in this test
    monkeypatch.setattr(presence, "FRAME_BEAT_MIN_S", 0.0)

    async def go():
        comm = communicator(session, player)
        await comm.connect()
        await presence_frame(comm)
        client, _ = presence._client()
        beats, _, _ = presence.keys(session.pk)
        ((channel, joined_at),) = await client.zrange(beats, 0, -1, withscores=True)
        for _ in range(3):
            await asyncio.sleep(presence.ttl() / 2)
            await comm.send_to(text_data=json.dumps({"type": "ping"}))
            while json.loads(await comm.receive_from(timeout=5))["type"] != "pong":
                pass
        assert await client.zscore(beats, channel) > joined_at
        assert await presence.online(session.pk) == [player.username]  # 1.5 TTLs after joining
        await comm.disconnect()

    run(go)


@pytest.mark.django_db(transaction=True)
def test_outsiders_are_refused_and_never_appear_online(session, outsider, short_presence):
    async def go():
        comm = communicator(session, outsider)
        await comm.connect()
        assert (await comm.receive_output(timeout=5))["code"] == 4403
        await comm.disconnect()
        assert await presence.online(session.pk) == []

    run(go)


@pytest.mark.django_db(transaction=True)
def test_a_consumer_that_dies_without_disconnect_stops_beating(session, player, short_presence, monkeypatch):
    """Regression: the heartbeat task outlived a consumer that crashed (no disconnect() ran) and
    kept its socket online for as long as the process lived."""
    from realtime.consumers import SessionConsumer

    async def broken(self, message):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(SessionConsumer, "session_presence", broken)
    # Through the handler, not the hub's fast path (which a failing socket cannot take down).
    fast = {k: v for k, v in SessionConsumer.fast_handlers.items() if k != "session.presence"}
    monkeypatch.setattr(SessionConsumer, "fast_handlers", fast)

    async def go():
        comm = communicator(session, player)
        await comm.connect()
        with pytest.raises(RuntimeError, match="a bug in a handler"):
            await comm.receive_output(timeout=5)  # the first announcement kills the consumer
        # A live heartbeat would keep the socket online forever; a dead one lets it expire one
        # TTL after its last beat. Poll rather than sleep once: on a loaded machine the last beat
        # can land late, and a fixed wait then fails a correct consumer.
        for _ in range(40):
            await asyncio.sleep(presence.ttl() / 2)
            if await presence.online(session.pk) == []:
                break
        assert await presence.online(session.pk) == []
        await asyncio.sleep(presence.ttl() * 2)  # and it stays gone: nothing beats any more
        assert await presence.online(session.pk) == []

    run(go)
