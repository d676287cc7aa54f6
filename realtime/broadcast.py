"""The one place that sends to the channel layer.

Events go out only after their transaction commits (callers use `transaction.on_commit`),
as ids + JSON + the rendered partial (the same `{% partialdef %}` the HTTP page renders).
Narration deltas are coalesced: the first goes out at once (first-token latency matters),
later ones at most every GTW_DELTA_COALESCE_MS, so a long narration costs a few dozen group
sends, not one per token.

Sync callers (services, the turn runner in a django-q2 worker) send through one long-lived
event loop thread per process, so channels-redis keeps its connection pool instead of
opening one per message.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string

from gtw_site import metrics
from gtw_site.trace import mark

logger = logging.getLogger(__name__)


def session_group(session_id: int) -> str:
    return f"session.{session_id}"


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _forget_loop_after_fork() -> None:
    """A forked worker (django-q's clusters fork) inherits `_loop` but not the thread that runs
    it: every send would wait out its 10 s timeout. The child starts its own loop."""
    global _loop, _loop_lock
    _loop = None
    _loop_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_loop_after_fork)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="gtw-broadcast", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _send(group: str, message: dict[str, Any]) -> None:
    # Round-trip through JSON so a payload that cannot cross the wire fails here, loudly.
    message = json.loads(json.dumps(message))
    layer = get_channel_layer()
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _background_loop())
    try:
        future.result(timeout=10)
    except Exception:
        logger.warning("broadcast to %s failed", group, exc_info=True)


def event_json(event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor.username if event.actor_id and event.actor else None,
        "actor_id": event.actor_id,
        "payload": event.payload,
        "seed": event.seed,
        "audience": event.audience,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }


def render_event(event, *, pending: Iterable[int] = (), panel: dict | None = None) -> str:
    """The log-entry partial for one event, wrapped for htmx out-of-band swaps; with `panel`,
    also the mission panel (objectives, clocks, beat, initiative) as it is now."""
    html = render_to_string("play/_event_oob.html", {"event": event, "pending": set(pending)})
    if panel is not None:
        html += render_to_string("play/_mission.html", {**panel, "oob": True})
    return html


# ---- hooks: the layers above say how to load and render, the sender imports none of them ----


@dataclass(frozen=True)
class EventSource:
    """How to read a session's committed events (registered by realtime's ready(), from the
    event store's selectors)."""

    load: Callable[[int, list[int]], list]  # (session id, seqs) -> events, actor joined, in seq order
    state: Callable[[int], dict]  # session id -> the session's state now


@dataclass(frozen=True)
class Panel:
    """The engine's mission panel (registered by narrative's ready()): after which event types
    it is re-rendered, and its template context from the session state."""

    event_types: frozenset[str]
    context: Callable[[dict], dict]


_source: EventSource | None = None
_panel = Panel(event_types=frozenset(), context=lambda state: {})


def register_source(*, load: Callable[[int, list[int]], list], state: Callable[[int], dict]) -> None:
    global _source
    _source = EventSource(load=load, state=state)


def register_panel(*, event_types: Iterable[str], context: Callable[[dict], dict]) -> None:
    global _panel
    _panel = Panel(event_types=frozenset(event_types), context=context)


def last_panel_seq(events: Iterable) -> int | None:
    """Which event of a batch that changes the mission panel carries the panel: its last
    panel-changing event that everyone sees, else its last event everyone sees (a GM-only
    difficulty change after a roll, or a whisper, would take the panel from the rest of the
    table), else its last panel-changing event."""
    events = list(events)
    changing = [e.seq for e in events if e.type in _panel.event_types]
    if not changing:
        return None
    public = [e.seq for e in events if e.audience is None]
    return max([s for s in changing if s in public] or public or changing)


def panel_for(event, state: dict, last_engine_seq: int | None) -> dict | None:
    if last_engine_seq is None or event.seq != last_engine_seq:
        return None
    return _panel.context(state)


def event_messages(events: list, state: dict) -> list[dict[str, Any]]:
    """The messages for a batch of events (actor joined, seq order): ids, JSON and the rendered
    partial, the mission panel riding on the batch's last engine event (one render per batch).
    The one renderer: live broadcasts and a socket's catch-up both send these."""
    pending = state.get("pending", [])
    withdrawn = set(state.get("withdrawn") or ())
    if withdrawn:  # the X-card (issue 18): a withdrawn narration goes out without its text
        events = [_withdrawn(e) if e.seq in withdrawn else e for e in events]
    last_engine = last_panel_seq(events)
    return [
        {
            "seq": event.seq,
            "event": event_json(event),
            "html": render_event(event, pending=pending, panel=panel_for(event, state, last_engine)),
        }
        for event in events
    ]


# What a withdrawn narration still carries (campaigns.state.WITHDRAWN_KEEPS: the sender may not
# import the tenant layer, so the rule is repeated here; tests hold the two equal).
WITHDRAWN_KEEPS = ("action_seq", "of_seq", "batch", "close_seq", "window")


def _withdrawn(event):
    shown = copy.copy(event)  # the caller's instance keeps its payload
    kept = {k: event.payload[k] for k in WITHDRAWN_KEEPS if k in event.payload}
    shown.payload = {**kept, "withdrawn": True}
    return shown


def events_committed(session_id: int, events: list) -> None:
    """Send committed events to everyone watching the session. Call from on_commit."""
    if not events:
        return
    if _source is None:
        raise RuntimeError("realtime.broadcast has no event source: is the realtime app installed?")
    # Reload with the actor joined so the partial can show names without N+1 queries.
    loaded = _source.load(session_id, [e.seq for e in events])
    state = _source.state(session_id) or {}
    for message in event_messages(loaded, state):
        _send(session_group(session_id), {"type": "session.event", **message})


async def presence_changed_async(session_id: int, html: str, online: list[str]) -> None:
    layer = get_channel_layer()
    await layer.group_send(
        session_group(session_id), {"type": "session.presence", "html": html, "online": online}
    )


# ---- narration listeners: hear a turn's text as it streams (media.speech speaks it) --------
# A listener factory is called with (session_id, action_seq) when a DeltaStream starts and
# returns an object with push(text) / flush() / reset() — or None to sit this turn out. They run
# on the turn's thread, so they must return at once (media.speech hands synthesis to a pool);
# their exceptions are logged, never the turn's problem.
_stream_listeners: list[Callable[[int, int], Any]] = []


def register_stream_listener(factory: Callable[[int, int], Any]) -> None:
    if factory not in _stream_listeners:
        _stream_listeners.append(factory)


def _tell(listeners: list, method: str, *args: Any) -> None:
    for listener in listeners:
        try:
            getattr(listener, method)(*args)
        except Exception:
            logger.warning("narration listener %r failed in %s", listener, method, exc_info=True)


def _start_listeners(session_id: int, action_seq: int) -> list:
    listeners = []
    for factory in _stream_listeners:
        try:
            listener = factory(session_id, action_seq)
        except Exception:
            logger.warning("narration listener %r failed to start", factory, exc_info=True)
            continue
        if listener is not None:
            listeners.append(listener)
    return listeners


def audio_ready(session_id: int, audio: dict[str, Any]) -> None:
    """A sentence of narration is spoken and stored (media.speech): where its audio is, to every
    socket of the session (stage sockets are in the same group). Call after the text went out."""
    _send(session_group(session_id), {"type": "session.audio", **audio})


def image_changed(session_id: int, image: dict[str, Any], html: str) -> None:
    """A picture of the session was queued, moved on, arrived or failed (media.images): its
    public fields (`event`: image-queued / image-progress / image-available / image-failed) and
    the rendered figure for htmx pages, to every socket of the session (stage sockets included).
    Callers throttle progress; call after commit."""
    _send(session_group(session_id), {"type": "session.image", "image": image, "html": html})


class DeltaStream:
    """Coalesces narration text for one turn into few, seq-tagged group messages."""

    def __init__(self, session_id: int, action_seq: int, interval_ms: int | None = None):
        self.session_id = session_id
        self.action_seq = action_seq
        self.interval = (settings.GTW_DELTA_COALESCE_MS if interval_ms is None else interval_ms) / 1000
        self.buffer: list[str] = []
        self.index = 0
        self.last_flush = 0.0
        self.sent_any = False
        self.listeners = _start_listeners(session_id, action_seq)
        self.opened = time.monotonic()  # issue 17: gtw_first_delta_seconds counts from here

    def push(self, text: str) -> None:
        if not text:
            return
        if self.listeners:
            _tell(self.listeners, "push", text)
        self.buffer.append(text)
        now = time.monotonic()
        if self.index == 0 or now - self.last_flush >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if now is None and self.listeners:
            _tell(self.listeners, "flush")  # the caller's flush: the text so far is complete
        if not self.buffer:
            return
        text = "".join(self.buffer)
        self.buffer = []
        if self.index == 0:
            mark("turn.first_delta")
            if not self.sent_any:  # the turn's first preview, not one after a provider retry
                metrics.first_delta(time.monotonic() - self.opened)
        _send(
            session_group(self.session_id),
            {"type": "session.delta", "action_seq": self.action_seq, "i": self.index, "text": text},
        )
        self.index += 1
        self.sent_any = True
        self.last_flush = now if now is not None else time.monotonic()

    def reset(self, notice: str) -> None:
        """Tell clients to discard this turn's preview (the provider is being retried)."""
        self.buffer = []
        if self.listeners:
            _tell(self.listeners, "reset")
        if self.sent_any:
            _send(
                session_group(self.session_id),
                {"type": "session.stream_reset", "action_seq": self.action_seq, "notice": notice},
            )
        self.index = 0
        self.sent_any = False


# ---- stage mode (campaigns.stage, narrative.turns.batch, realtime.stage_consumer) -----------


def stage_group(session_id: int) -> str:
    return f"stage.{session_id}"


def team_group(fireteam_id: int) -> str:
    return f"team.{fireteam_id}"


def stage_changed(session_id: int, html: dict[str, str], roster: dict[str, Any]) -> None:
    """The stage's roster (moderators, speakers, the queue, audience, teams, the beat window) to
    every stage socket. `html` holds the roster partial per view ("moderator", "member"); each
    socket forwards the one its seat may see. Call after commit."""
    _send(stage_group(session_id), {"type": "stage.roster", "html": html, "roster": roster})


async def stage_presence_async(session_id: int, online: int) -> None:
    """How many are connected to the stage: a count, not the list, so a join storm of hundreds
    stays a few bytes per socket."""
    layer = get_channel_layer()
    await layer.group_send(stage_group(session_id), {"type": "stage.presence", "online": online})


def team_notice(fireteam_id: int, notice: dict[str, Any]) -> None:
    """Something for one fireteam's sockets only (its squad debrief). Call after commit."""
    _send(team_group(fireteam_id), {"type": "team.notice", **notice})
