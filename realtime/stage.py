"""Realtime helpers for stage sessions: the stage socket's frames (pydantic), the roster as it
goes out after commit, and the partials a stage socket renders for its own member.

The roster partial is rendered twice per change (the moderator's view with controls, everyone
else's without) and sent once to `stage.<id>`; each socket forwards the view its seat may see.
A stage log entry renders from the event's JSON, once per process (cached by session and seq —
events never change), so a hundred sockets in one Daphne share one render.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from django.template.loader import render_to_string
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from campaigns.stage.selectors import box_key, me_context  # the stage page renders them too
from realtime.messages import ActionFrame, Ping

# ---- frames ---------------------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    # htmx's ws-send sends an empty form field as "".
    return None if isinstance(value, str) and not value.strip() else value


OptionalInt = Annotated[int | None, BeforeValidator(_blank_is_none)]
Username = Annotated[str, Field(min_length=1, max_length=150)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    HEADERS: dict | None = None  # htmx's ws-send adds it to every frame


class StageHello(_Frame):
    """On (re)connect: the last seq the client holds, and which action box it shows
    ("<can act>:<window>"), so a reconnect does not wipe a half-typed action."""

    type: Literal["hello"]
    last_seq: int = Field(ge=0)
    box: str | None = Field(default=None, max_length=40)


class RaiseHand(_Frame):
    type: Literal["raise_hand", "lower_hand"]


class Moderate(_Frame):
    type: Literal["approve", "deny", "mute", "unmute", "remove", "promote", "demote"]
    username: Username


class AssignTeam(_Frame):
    type: Literal["assign_team"]
    username: Username
    fireteam: OptionalInt = Field(default=None, ge=1)


class WindowOpen(_Frame):
    type: Literal["window_open"]
    seconds: OptionalInt = Field(default=None, ge=1, le=3600)


class WindowControl(_Frame):
    """window_close: a moderator closes the window; window_check: a client's countdown reached
    zero (anyone may ask; the server closes only a window whose time is up)."""

    type: Literal["window_close", "window_check"]


StageFrame = Annotated[
    StageHello | Ping | ActionFrame | RaiseHand | Moderate | AssignTeam | WindowOpen | WindowControl,
    Field(discriminator="type"),
]
stage_frame = TypeAdapter(StageFrame)
KNOWN_TYPES = {
    "hello",
    "ping",
    "action",
    "raise_hand",
    "lower_hand",
    "approve",
    "deny",
    "mute",
    "unmute",
    "remove",
    "promote",
    "demote",
    "assign_team",
    "window_open",
    "window_close",
    "window_check",
}
WRITE_TYPES = KNOWN_TYPES - {"hello", "ping", "window_check"}


# ---- the roster -----------------------------------------------------------------------------


def roster_html(roster: dict[str, Any], *, moderator: bool) -> str:
    """The roster and beat-window panels, out of band, for one view."""
    return render_to_string(
        "stage/_roster_oob.html", {"roster": roster, "is_moderator": moderator, "oob": True}
    )


def send_roster(session_id: int) -> None:
    """Render and send the stage's roster to every stage socket. Call after commit."""
    from campaigns.models import PlaySession
    from campaigns.stage.selectors import stage_roster
    from realtime import broadcast

    session = PlaySession.objects.filter(pk=session_id).first()
    if session is None:
        return
    roster = stage_roster(session)
    html = {"moderator": roster_html(roster, moderator=True), "member": roster_html(roster, moderator=False)}
    broadcast.stage_changed(session_id, html, roster)


def me_html(roster: dict[str, Any], username: str) -> str:
    return render_to_string("stage/stage.html#me", {**me_context(roster, username), "oob": True})


def action_box_html(roster: dict[str, Any], username: str) -> str:
    context = {**me_context(roster, username), "idempotency_key": uuid.uuid4().hex, "oob": True}
    context["box_key"] = box_key(roster, username)
    return render_to_string("stage/stage.html#action-box", context)


# ---- log entries ----------------------------------------------------------------------------


def is_stage_entry(event: dict[str, Any]) -> bool:
    """Events the stage page renders itself (the rest use the play page's log-entry partial)."""
    from campaigns.stage.selectors import STAGE_EVENTS

    payload = event.get("payload") or {}
    return (
        event["type"] in STAGE_EVENTS
        or (event["type"] == "Action" and bool(payload.get("batched")))
        or (event["type"] == "Narration" and payload.get("batch") is not None)
    )


def event_view(event: dict[str, Any]) -> SimpleNamespace:
    """An event's JSON (broadcast.event_json) shaped like the model for the templates."""
    actor = SimpleNamespace(username=event["actor"]) if event.get("actor") else None
    return SimpleNamespace(
        seq=event["seq"],
        type=event["type"],
        payload=event.get("payload") or {},
        seed=event.get("seed"),
        actor=actor,
        actor_id=event.get("actor_id"),
        audience=event.get("audience"),
    )


_cache: OrderedDict[tuple[int, int, bool], str] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 1024


def entry_oob_html(session_id: int, event: dict[str, Any]) -> str:
    # A narration the X-card withdrew renders anew, without its text (issue 18).
    key = (session_id, event["seq"], bool((event.get("payload") or {}).get("withdrawn")))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    view = event_view(event)
    # Live, a closed window is always still being summarised; its Narration deletes the preview.
    html = render_to_string(
        "stage/_entry_oob.html", {"event": view, "summarising": {view.seq}, "pending": set(), "live": True}
    )
    with _cache_lock:
        _cache[key] = html
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return html


def squad_html(notice: dict[str, Any]) -> str:
    return render_to_string("stage/_squad_oob.html", {"item": notice})
