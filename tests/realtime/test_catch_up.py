"""Catching up on a session socket: a bad or too-large last_seq in the query, a gap wider than a
page heals completely, and an htmx socket keeps nothing before its hello and gets what was
broadcast meanwhile exactly once after it."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async

from tests.realtime.sockets import (
    append_and_broadcast,
    append_silently,
    communicator,
    event_seqs,
    frames_until,
    joined,
    kinds,
    run,
    until,
    version,
)
from tests.realtime.test_consumer import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("last_seq", ["²", "-3", "abc", "9" * 5000])
def test_a_bad_last_seq_in_the_query_is_ignored(session, player, last_seq):
    """Not a seq: the socket connects as if there were none (live from now) and leaves cleanly."""
    from realtime import presence

    async def go():
        comm = communicator(session.pk, player, query="format=json&last_seq=" + quote(last_seq))
        connected, _ = await comm.connect()
        assert connected
        await receive_until(comm, lambda f: f["type"] == "presence")
        seq = await database_sync_to_async(append_and_broadcast)(session.pk)
        frames = await receive_until(comm, lambda f: f["type"] == "event")
        assert event_seqs(frames) == [seq]
        await comm.disconnect()
        assert player.username not in await presence.online(session.pk)

    run(go)


def test_a_last_seq_beyond_the_log_counts_from_its_end(session, player):
    """A client of a reset database must not be muted until the log catches up with it."""

    async def go():
        comm = communicator(session.pk, player, query="format=json&last_seq=1000000")
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        first = await database_sync_to_async(append_and_broadcast)(session.pk)
        assert event_seqs(await receive_until(comm, lambda f: f["type"] == "event")) == [first]
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": 10**30}))
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert "error" not in kinds(await receive_until(comm, lambda f: f["type"] == "pong"))
        second = await database_sync_to_async(append_and_broadcast)(session.pk)
        assert event_seqs(await receive_until(comm, lambda f: f["type"] == "event")) == [second]
        await comm.disconnect()

    run(go)


# ---- catch-up in pages ------------------------------------------------------------------


def test_a_gap_wider_than_a_page_heals_completely(session, gm, monkeypatch):
    from realtime import consumers

    monkeypatch.setattr(consumers, "CATCH_UP_PAGE", 5)

    async def go():
        comm = communicator(session.pk, gm)
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        start = await database_sync_to_async(version)(session.pk)
        await database_sync_to_async(append_silently)(session.pk, 12)
        last = await database_sync_to_async(append_and_broadcast)(session.pk)
        frames = await receive_until(comm, lambda f: f.get("type") == "event" and f["seq"] == last)
        assert event_seqs(frames) == list(range(start + 1, last + 1))
        await comm.disconnect()

    run(go)


def test_a_catch_up_longer_than_a_page_sends_everything(session, gm, monkeypatch):
    from realtime import consumers

    monkeypatch.setattr(consumers, "CATCH_UP_PAGE", 5)
    append_silently(session.pk, 12)
    last = version(session.pk)

    async def go():
        comm = communicator(session.pk, gm, query="format=json&last_seq=0")
        await comm.connect()
        frames = await receive_until(comm, lambda f: f.get("type") == "event" and f["seq"] == last)
        assert event_seqs(frames) == list(range(1, last + 1))
        await comm.disconnect()

    run(go)


# ---- an htmx socket before its hello ----------------------------------------------------


def test_an_html_socket_that_never_says_hello_keeps_no_messages(session, player, monkeypatch):
    from realtime.consumers import SessionConsumer

    instances = []
    original = SessionConsumer.connect

    async def connect(self):
        instances.append(self)
        await original(self)

    monkeypatch.setattr(SessionConsumer, "connect", connect)

    async def go():
        from channels.layers import get_channel_layer

        from realtime import broadcast

        comm = communicator(session.pk, player, query="")
        await comm.connect()
        await joined(comm)  # or the group messages below could go out before it is in the group
        layer = get_channel_layer()
        for i in range(50):
            message = {"type": "session.event", "seq": 10_000 + i, "event": {"audience": None}, "html": "x"}
            await layer.group_send(broadcast.session_group(session.pk), message)
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        # Until the socket has seen the last of them (it keeps only the highest seq), not for a
        # fixed time: on a loaded machine they may not have arrived yet, and the test would pass
        # without testing anything.
        await until(lambda: instances[0].held_upto == 10_049)
        kept = {k: len(v) for k, v in vars(instances[0]).items() if isinstance(v, list | dict | set)}
        assert all(n < 10 for n in kept.values()), kept
        await comm.disconnect()

    run(go)


def test_events_broadcast_before_the_hello_arrive_once_after_it(session, player, monkeypatch):
    from realtime.consumers import SessionConsumer

    instances = []
    original = SessionConsumer.connect

    async def connect(self):
        instances.append(self)
        await original(self)

    monkeypatch.setattr(SessionConsumer, "connect", connect)

    def ids(frames) -> list[int]:
        return [int(m) for f in frames for m in re.findall(r'<article[^>]*\sid="ev-(\d+)"', f["html"])]

    async def go():
        before = await database_sync_to_async(version)(session.pk)
        comm = communicator(session.pk, player, query="")
        await comm.connect()
        await joined(comm)
        seqs = [await database_sync_to_async(append_and_broadcast)(session.pk) for _ in range(3)]
        # The group messages reach the socket before its hello (waited for, not slept on).
        await until(lambda: instances[0].held_upto == seqs[-1])
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": before}))
        # One more event after the catch-up, through the same group: a second copy of any of
        # the three would come before it.
        frames = await frames_until(comm, lambda frames: seqs[-1] in ids(frames))
        last = await database_sync_to_async(append_and_broadcast)(session.pk)
        frames += await frames_until(comm, lambda frames: last in ids(frames))
        assert ids(frames) == [*seqs, last]
        await comm.disconnect()

    run(go)
