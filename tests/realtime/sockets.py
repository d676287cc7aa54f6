"""Helpers for the realtime socket tests: a communicator on any socket path, draining and running,
frame kinds and event seqs, appending events with or without their broadcast, a failed turn."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime.routing import websocket_urlpatterns

app = URLRouter(websocket_urlpatterns)


def communicator(session_id, user, query="format=json", path="sessions"):
    comm = WebsocketCommunicator(app, f"/ws/{path}/{session_id}/?{query}")
    comm.scope["user"] = user
    return comm


async def drain(comm, secs):
    """Every frame until none comes for `secs`."""
    frames = []
    while not await comm.receive_nothing(timeout=secs):
        raw = await comm.receive_from()
        frames.append(json.loads(raw) if raw.startswith("{") else {"type": "html", "html": raw})
    return frames


def run(coro_fn):
    async_to_sync(coro_fn)()


def kinds(frames):
    return [f["event"]["type"] if f["type"] == "event" else f["type"] for f in frames]


def event_seqs(frames):
    return [f["seq"] for f in frames if f["type"] == "event"]


def version(session_id) -> int:
    from campaigns.models import PlaySession

    return PlaySession.objects.values_list("version", flat=True).get(pk=session_id)


def append_silently(session_id, n):
    """n committed events whose group messages never reach anyone (a dropped channel)."""
    from unittest import mock

    from campaigns import events
    from realtime import broadcast

    new = [events.NewEvent(type="WorldUpdated", payload={"flag": f"f{i}", "value": i}) for i in range(n)]
    with mock.patch.object(broadcast, "events_committed", lambda session_id, events: None):
        return events.append(session_id, new).events


def append_and_broadcast(session_id) -> int:
    """One committed event; the event store's listener broadcasts it after the commit."""
    from campaigns import events

    created = events.append(
        session_id, [events.NewEvent(type="WorldUpdated", payload={"flag": "last", "value": 1})]
    ).events
    return created[0].seq


def fail_the_provider(monkeypatch):
    from gtw_site.providers import ProviderError
    from narrative.llm.offline import OfflineNarrator

    real = OfflineNarrator.stream

    def broken(self, request):
        raise ProviderError("down", retryable=False)
        yield

    monkeypatch.setattr(OfflineNarrator, "stream", broken)
    return lambda: monkeypatch.setattr(OfflineNarrator, "stream", real)


def failed_turn(session, player, monkeypatch) -> int:
    """An action whose GM turn failed (so it waits for a retry); returns its seq."""
    from narrative import turns

    restore = fail_the_provider(monkeypatch)
    result = turns.submit_action(
        session_id=session.pk, user=player, text="I look around", idempotency_key="k1"
    )
    restore()
    return result.events[0].seq
