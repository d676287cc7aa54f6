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
    if ast is None or not mission.get("state") or mission["state"].get("closed"):
        return None  # no mission, or free play (the GM set the mission aside)
    view = runtime.describe(ast, mission["state"])
    for clock in view["clocks"]:
        clock["segments"] = [i < clock["value"] for i in range(clock["size"])]
        clock["stakes"] = runtime.stakes(ast, clock["id"])
        # One step from full: the panel shows it as a warning (issue 13: warn before it fills).
        clock["warning"] = view["status"] == "active" and clock["value"] >= clock["size"] - 1
    earned = mission["state"].get("earned") or {}
    view["earned"] = {
        "xp": earned.get("xp", 0),
        "items": earned.get("items", []),
        "levels": earned.get("levels", []),
    }
    return view


def free_play_on(session_state: dict) -> bool:
    """Whether the GM set the session's mission aside (play goes on with no mission)."""
    mission = (session_state or {}).get("mission") or {}
    return bool((mission.get("state") or {}).get("closed"))


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
        "free_play": free_play_on(state),
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
    """The objective the party works on now (the play page's header line): the first open one
    that can be done here and now, else the first open one. None once nothing is open — never a
    completed one — and none after the mission's end or in free play. Without a mission, the
    session's own objective line (a session opened with no mission)."""
    if view is None:
        return None if (state or {}).get("mission") else (state or {}).get("objective")
    if view.get("status") != "active":
        return None
    open_ = [o for o in view.get("objectives", []) if o["status"] == "active"]
    here = view.get("scene", {}).get("id")
    ready = [o for o in open_ if not o["blocked_by"] and o["scene"] in (None, here)]
    return (ready or open_ or [{"text": None}])[0]["text"]
