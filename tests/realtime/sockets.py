"""Helpers for the realtime socket tests: a communicator on any socket path, draining, waiting for
frames and running, frame kinds and event seqs, appending events with or without their broadcast,
a failed turn."""

from __future__ import annotations

import asyncio
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


# How long a test waits for a frame it expects: a ceiling, never a pace. A socket's reply and a
# group broadcast travel separate paths (the hub writes broadcasts straight to the socket), and a
# loaded CI machine can hold either back for seconds; a test that passes returns the moment its
# frames are in.
WAIT_S = 20.0


def parse(raw: str) -> dict:
    return json.loads(raw) if raw.startswith("{") else {"type": "html", "html": raw}


async def drain(comm, secs):
    """Every frame until none comes for `secs`. Only to discard what came so far: a test that
    asserts on frames waits for them with `frames_until`, since under load a frame can come
    later than any quiet window."""
    frames = []
    while not await comm.receive_nothing(timeout=secs):
        frames.append(parse(await comm.receive_from()))
    return frames


async def frames_until(comm, done, wait=WAIT_S) -> list[dict]:
    """Every frame until `done(frames)` holds for those received so far (in any order they
    came); fails after `wait` seconds without that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    frames: list[dict] = []
    while not done(frames):
        left = deadline - loop.time()
        assert left > 0, f"gave up after {wait} s waiting; got {frames}"
        frames.append(parse(await comm.receive_from(timeout=left)))
    return frames


async def joined(comm, wait=WAIT_S) -> list[dict]:
    """Wait until the socket is in its groups, and return the frames that came meanwhile.
    `connect()` returns once the socket is accepted, which is before it joins: a group message
    sent then is lost to it. A ping is answered only after connect() has finished (one handler
    at a time), so its pong says the socket has joined."""
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    return await frames_until(comm, has("pong"), wait)


async def until(condition, wait=WAIT_S, every=0.02) -> None:
    """Poll `condition()` (a socket's state, say) until it holds; fails after `wait` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not condition():
        assert loop.time() < deadline, f"gave up after {wait} s waiting for {condition}"
        await asyncio.sleep(every)


async def until_closed(comm, wait=WAIT_S) -> tuple[dict, list[dict]]:
    """The close message, and the JSON frames that came before it (a turn's events, a presence
    announcement may still be arriving)."""
    frames = []
    while True:
        output = await comm.receive_output(timeout=wait)
        if output["type"] == "websocket.close":
            return output, frames
        frames.append(json.loads(output["text"]))


def has(kind, **fields):
    """A condition for frames_until: some frame of type `kind` (an event frame: of event type
    `kind`) has these fields (for an event: payload fields, or `seq`)."""

    def match(frame):
        if frame.get("type") == "event" and frame["event"]["type"] == kind:
            payload = {**frame["event"].get("payload", {}), "seq": frame["seq"]}
            return all(payload.get(k) == v for k, v in fields.items())
        return frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items())

    return lambda frames: any(match(f) for f in frames)


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
