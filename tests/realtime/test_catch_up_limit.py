"""Security review of issue 11 hole 3 ("one player can stall turns for their table and for
unrelated campaigns"), through the socket: a `hello` frame of a few bytes asks the server to
replay the session's history from any seq — a query and a render per event, ~0.5 s per 2,000
events on the web process's single database thread, which every other socket of that process
(any campaign) waits on. Nothing limited how often; a GM can grow their own sandbox's log
without limit (overrides, beat changes). Replays longer than CATCH_UP_FREE now count against a
per-user limit ("catch_up", one per 2,000 events); past it the socket says so and carries on
live from now. Short catch-ups — a reconnect, a page load — are never counted."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from campaigns.models import Event, PlaySession
from realtime import broadcast
from realtime.consumers import CATCH_UP_FREE, CATCH_UP_PAGE
from realtime.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY = CATCH_UP_PAGE + 100  # two pages: one replay from the start costs 2


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def long_session(session):
    base = session.version
    Event.objects.bulk_create(
        Event(
            session=session, seq=base + i, type="Narration", payload={"text": f"Beat {i}.", "action_seq": 1}
        )
        for i in range(1, HISTORY + 1)
    )
    PlaySession.objects.filter(pk=session.pk).update(version=base + HISTORY)
    return PlaySession.objects.get(pk=session.pk)


async def receive_until(comm, predicate):
    """The frames up to the one `predicate` picks, leaving out presence announcements."""
    frames = []
    while True:
        frame = json.loads(await comm.receive_from(timeout=20))
        if frame["type"] == "presence":
            continue
        frames.append(frame)
        if predicate(frame):
            return frames


async def next_frame(comm):
    return (await receive_until(comm, lambda f: True))[0]


def test_long_replays_past_the_limit_are_refused_and_the_socket_goes_on_live(long_session, player, settings):
    """issue 11 hole 3: one full replay is fine; a second within the minute (limit: 2, one per
    2,000 events) gets a clear rate_limited error instead of 2,100 events, and the socket still
    delivers what happens next; a short catch-up is still answered."""
    _, per, what = settings.GTW_RATE_LIMITS["catch_up"]
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "catch_up": (2, per, what)}
    last = long_session.version

    async def go():
        comm = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/sessions/{long_session.pk}/?format=json"
        )
        comm.scope["user"] = player
        assert (await comm.connect())[0]
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": 0}))
        replayed = await receive_until(comm, lambda f: f.get("seq") == last)
        assert len([f for f in replayed if f["type"] == "event"]) == last

        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": 0}))
        refused = await next_frame(comm)
        assert refused == {
            "type": "error",
            "code": "rate_limited",
            "message": f"Slow down: at most 2 {what} per {per} seconds.",
        }
        # A short catch-up (a reconnect that missed a few events) is free.
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": last - 3}))
        short = await receive_until(comm, lambda f: f.get("seq") == last)
        assert [f["seq"] for f in short] == [last - 2, last - 1, last]
        await comm.disconnect()

    async_to_sync(go)()


def test_a_connect_far_behind_counts_too_and_never_breaks_the_socket(long_session, player, settings):
    """`?last_seq=0` on connect is the same replay: past the limit the socket opens, says why,
    and delivers the next event live."""
    _, per, what = settings.GTW_RATE_LIMITS["catch_up"]
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "catch_up": (1, per, what)}
    assert HISTORY > CATCH_UP_FREE

    async def go():
        comm = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/sessions/{long_session.pk}/?format=json&last_seq=0"
        )
        comm.scope["user"] = player
        assert (await comm.connect())[0]
        refused = await next_frame(comm)
        assert refused["type"] == "error" and refused["code"] == "rate_limited"
        new = await database_sync_to_async(add_event)(long_session)
        await database_sync_to_async(broadcast.events_committed)(long_session.pk, [new])
        frame = await next_frame(comm)
        assert frame["type"] == "event" and frame["seq"] == new.seq
        await comm.disconnect()

    async_to_sync(go)()


def add_event(session) -> Event:
    new = Event.objects.create(
        session=session, seq=session.version + 1, type="Narration", payload={"text": "Now."}
    )
    PlaySession.objects.filter(pk=session.pk).update(version=new.seq)
    return new
