"""What the play page's mission panel shows: the mission view, the beats, the initiative, the
open objective and the characters' conditions."""

from __future__ import annotations

from campaigns.models import Character
from missions import runtime
from narrative import director
from narrative.engine.rules import mission_ast


def mission_view(session_state: dict) -> dict | None:
    """The mission panel's data (runtime.describe), or None when no mission runs."""
    mission = (session_state or {}).get("mission") or {}
    ast = mission_ast(mission.get("hash"))
    if ast is None or not mission.get("state"):
        return None
    view = runtime.describe(ast, mission["state"])
    for clock in view["clocks"]:
        clock["segments"] = [i < clock["value"] for i in range(clock["size"])]
    return view


def panel_context(state: dict) -> dict:
    """What the play page's mission panel shows (rendered by the page and pushed on changes)."""
    view = mission_view(state)
    beat = (state.get("director") or {}).get("beat") or "inciting"
    index = director.BEATS.index(beat) if beat in director.BEATS else 0
    return {
        "mission": view,
        "beats": [
            {"id": b, "label": director.BEAT_LABELS[b], "current": i == index, "past": i < index}
            for i, b in enumerate(director.BEATS)
        ],
        "initiative": state.get("initiative"),
        "objective": active_objective(view, state),
        "conditions": conditions(state),
    }


def conditions(state: dict) -> list[dict]:
    """Status effects on characters now, for the panel: [{"character", "effects": [...]}]."""
    names = {
        str(c.pk): c.name
        for c in Character.objects.filter(pk__in=[int(k) for k in (state.get("statuses") or {})])
    }
    return [
        {"character": names.get(key, "?"), "effects": effects}
        for key, effects in sorted((state.get("statuses") or {}).items())
        if effects
    ]


def active_objective(view: dict | None, state: dict) -> str | None:
    """The first objective still open (the play page's header line)."""
    open_ = (o["text"] for o in (view or {}).get("objectives", []) if o["status"] == "active")
    return next(open_, None) or state.get("objective")
