"""The mission runtime: a pure reducer over a compiled mission AST. No Django, no I/O.

    state = initial_state(ast)
    state, effects = step(ast, state, {"type": "CheckResolved", ...}, rng)

`step` never mutates its inputs and never raises on an event dict: events it doesn't understand
(unknown type, missing or mistyped fields, unknown ids) leave the state unchanged with no effects.
After applying an event it settles the rules to a fixpoint, in this order within each pass (every pass
that changes something makes a change that can't be undone within the event, so `pass_limit(ast)`
passes always reach the fixpoint):

  1. reveal hidden objectives whose `hidden until` holds
  2. fail objectives whose `fail when` holds
  3. complete active objectives whose `complete when` holds (in their scene, requirements complete)
  4. tick clocks: a tick rule fires when its condition *becomes* true (false before the event,
     true now), at most once per event
  5. move to another scene: the first transition of the current scene whose condition holds, to a
     scene not yet entered during this event
  6. trigger twists (each once per mission)
  7. fail the mission on the first fail state that holds (fail states win over the end state)
  8. complete the mission when its `complete when` holds

Event conditions (`check ...`, `turn ended`) hold while the event is being settled, and only in the
scene where it happened: a check that moves the party on can't also complete the next scene's
objective. `turn ended` is the end of a turn that *took time* (`TurnEnded` with `took_time`, true
when absent): a question or a word with someone ends a turn without moving the mission's clocks or
its `turns` count. A clock that rises to one step short of full says so (a `ClockWarning` effect)
so the table is warned before it fills. Rewards are granted once each (objective rewards on
completion, the mission's on completion of the mission). Once the mission is complete or failed,
every event is ignored.

Nothing here is random today; `rng` is injected so rules that roll can be added without changing
the signature (callers seed it from the event, so replays stay identical).
"""

from __future__ import annotations

import random
from typing import Any

from missions.dsl.ast import BEATS
from missions.dsl.printer import condition as condition_text

STATE_VERSION = 1
OUTCOMES = ("critical_success", "success", "failure", "critical_failure")
OBJECTIVE_STATUSES = ("hidden", "active", "complete", "failed")

_RESULTS = {
    "succeeded": frozenset({"critical_success", "success"}),
    "failed": frozenset({"failure", "critical_failure"}),
    "critically_succeeded": frozenset({"critical_success"}),
    "critically_failed": frozenset({"critical_failure"}),
}
_CMP = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


class _Index:
    """Lookups over one AST, built per call (cheap: one dict per kind)."""

    __slots__ = ("ast", "clocks", "objectives", "scenes")

    def __init__(self, ast: dict[str, Any]):
        self.ast = ast
        self.scenes = {s["id"]: s for s in ast["scenes"]}
        self.objectives = {o["id"]: o for o in ast["objectives"]}
        self.clocks = {c["id"]: c for c in ast["clocks"]}


class _Event:
    """What the event being settled makes true: a resolved check, or the end of a turn."""

    __slots__ = ("check", "scene", "turn_ended")

    def __init__(self, scene: str | None, check: tuple[str, str | None, str] | None = None, turn_ended=False):
        self.scene = scene
        self.check = check
        self.turn_ended = turn_ended


_NO_EVENT = _Event(None)


def initial_state(ast: dict[str, Any], beat: str | None = BEATS[0]) -> dict[str, Any]:
    """The state before play: first scene, objectives visible unless `hidden until`, clocks at 0,
    at story beat `beat` (a new session opens at the director's first beat, inciting)."""
    return {
        "version": STATE_VERSION,
        "mission": ast["slug"],
        "status": "active",
        "ended_by": None,
        "scene": ast["scenes"][0]["id"] if ast["scenes"] else None,
        "beat": beat if beat in BEATS else None,
        "turns": 0,
        "objectives": {
            o["id"]: ("hidden" if o["hidden_until"] is not None else "active") for o in ast["objectives"]
        },
        "clocks": {c["id"]: 0 for c in ast["clocks"]},
        "flags": {},
        "twists": [],
        "rewards": [],
    }


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    new = dict(state)
    for key in ("objectives", "clocks", "flags"):
        new[key] = dict(state[key])
    for key in ("twists", "rewards"):
        new[key] = list(state[key])
    return new


def holds(ix: _Index, cond: dict[str, Any], state: dict[str, Any], event: _Event = _NO_EVENT) -> bool:
    """Whether a condition holds in `state` while `event` is being settled."""
    op = cond["op"]
    if op == "and":
        return all(holds(ix, a, state, event) for a in cond["args"])
    if op == "or":
        return any(holds(ix, a, state, event) for a in cond["args"])
    if op == "not":
        return not holds(ix, cond["arg"], state, event)
    if op == "check":
        if event.check is None or state["scene"] != event.scene:
            return False
        skill, attribute, outcome = event.check
        wanted = cond["skill"]
        if wanted is not None and wanted.lower() not in (skill, attribute):
            return False
        return outcome in _RESULTS[cond["result"]]
    if op == "turn_ended":
        return event.turn_ended and state["scene"] == event.scene
    if op == "objective":
        status = state["objectives"].get(cond["objective"])
        return status == cond["state"]
    if op == "clock":
        return _CMP[cond["cmp"]](state["clocks"].get(cond["clock"], 0), cond["value"])
    if op == "clock_full":
        clock = ix.clocks.get(cond["clock"])
        return clock is not None and state["clocks"].get(cond["clock"], 0) >= clock["size"]
    if op == "flag":
        return bool(state["flags"].get(cond["flag"]))
    if op == "flag_cmp":
        value, wanted = state["flags"].get(cond["flag"]), cond["value"]
        if cond["cmp"] in ("==", "!="):
            same = value is not None and type(value) is type(wanted) and value == wanted
            return same if cond["cmp"] == "==" else not same
        return type(value) is int and type(wanted) is int and _CMP[cond["cmp"]](value, wanted)
    if op == "turns":
        return _CMP[cond["cmp"]](state["turns"], cond["value"])
    if op == "turns_each":
        return _CMP[cond["cmp"]](turns_each(state), cond["value"])
    if op == "beat":
        return state["beat"] == cond["beat"]
    if op == "in_scene":
        return state["scene"] == cond["scene"]
    return False


def _reward_effect(reward: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "type": "RewardGranted",
        "reason": reason,
        "xp": reward["xp"],
        "items": list(reward["items"]),
        "loot": [{"table": loot["table"], "count": loot["count"]} for loot in reward["loot"]],
    }


def _grant(state: dict[str, Any], reward: dict[str, Any] | None, reason: str, effects: list[dict]) -> None:
    if reward is not None and reason not in state["rewards"]:
        state["rewards"].append(reason)
        effects.append(_reward_effect(reward, reason))


def _complete_objective(state: dict[str, Any], obj: dict[str, Any], effects: list[dict]) -> None:
    state["objectives"][obj["id"]] = "complete"
    effects.append({"type": "ObjectiveCompleted", "objective": obj["id"], "text": obj["text"]})
    _grant(state, obj["reward"], f"objective:{obj['id']}", effects)


def check_advance(ast: dict[str, Any], state: dict[str, Any], objective_id: Any) -> str | None:
    """None if the narrator may complete `objective_id` now (tool `mission_advance`), else why not."""
    if state.get("status") == "complete":
        return "mission already complete"
    if state.get("status") == "failed":
        return "mission already failed"
    ix = _Index(ast)
    if not isinstance(objective_id, str) or objective_id not in ix.objectives:
        return f"no such objective {objective_id!r}" if isinstance(objective_id, str) else "no such objective"
    obj = ix.objectives[objective_id]
    status = state["objectives"].get(objective_id)
    if status == "complete":
        return f"objective '{objective_id}' is already complete"
    if status == "failed":
        return f"objective '{objective_id}' has failed"
    if status == "hidden":
        return f"objective '{objective_id}' has not been revealed yet"
    if obj["scene"] is not None and state["scene"] != obj["scene"]:
        return f"objective '{objective_id}' can only be completed in scene '{obj['scene']}'"
    for required in obj["requires"]:
        if state["objectives"].get(required) != "complete":
            return f"objective '{objective_id}' requires '{required}' first"
    if obj["complete_when"] is not None and not holds(ix, obj["complete_when"], state):
        return f"objective '{objective_id}' completes only when: {condition_text(obj['complete_when'])}"
    return None


def _apply(ix: _Index, state: dict[str, Any], event: dict[str, Any], effects: list[dict]) -> _Event | None:
    """Apply one event to `state` (a private copy). None: the event is not understood, or was refused."""
    kind = event.get("type")
    here = state["scene"]
    if kind == "CheckResolved":
        skill, attribute, outcome = event.get("skill"), event.get("attribute"), event.get("outcome")
        if not isinstance(skill, str) or outcome not in OUTCOMES:
            return None
        attr = attribute.lower() if isinstance(attribute, str) else None
        return _Event(here, check=(skill.lower(), attr, outcome))
    if kind == "TurnEnded":
        took_time = event.get("took_time", True)
        if not isinstance(took_time, bool):
            return None
        if not took_time:  # a question or talk: the mission's time stands still
            return _Event(here)
        state["turns"] += 1
        actors = event.get("actors")
        if isinstance(actors, list):
            counts = state.setdefault("turns_by", {})
            for actor in {str(a) for a in actors if isinstance(a, int | str) and not isinstance(a, bool)}:
                counts[actor] = counts.get(actor, 0) + 1
        return _Event(here, turn_ended=True)
    if kind == "SetFlag":
        name, value = event.get("name"), event.get("value")
        if not isinstance(name, str) or not name or not isinstance(value, str | int | bool):
            return None
        state["flags"][name] = value
        return _Event(here)
    if kind == "BeatChanged":
        beat = event.get("beat")
        if not isinstance(beat, str) or beat not in BEATS:
            return None
        state["beat"] = beat
        return _Event(here)
    if kind == "Advance":
        oid = event.get("objective")
        if not isinstance(oid, str):
            return None
        reason = check_advance(ix.ast, state, oid)
        if reason is not None:
            effects.append({"type": "AdvanceRefused", "objective": oid, "reason": reason})
            return None
        _complete_objective(state, ix.objectives[oid], effects)
        return _Event(here)
    if kind == "GmOverride":
        return _override(ix, state, event, effects)
    return None


def _override(ix: _Index, state: dict[str, Any], event: dict[str, Any], effects: list[dict]) -> _Event | None:
    here = state["scene"]
    oid, cid, sid = event.get("objective"), event.get("clock"), event.get("scene")
    if isinstance(oid, str) and oid in ix.objectives:
        status = event.get("status")
        previous = state["objectives"][oid]
        if not isinstance(status, str) or status not in OBJECTIVE_STATUSES or status == previous:
            return None
        state["objectives"][oid] = status
        obj = ix.objectives[oid]
        effects.append(
            {
                "type": "ObjectiveOverridden",
                "objective": oid,
                "status": status,
                "previous": previous,
                "text": obj["text"],
            }
        )
        if status == "complete":
            _grant(state, obj["reward"], f"objective:{oid}", effects)
        return _Event(here)
    if isinstance(cid, str) and cid in ix.clocks:
        value = event.get("value")
        if type(value) is not int:
            return None
        clock = ix.clocks[cid]
        old = state["clocks"][cid]
        new = max(0, min(clock["size"], value))
        if new == old:
            return None
        state["clocks"][cid] = new
        effects.append(_clock_effect(clock, new, new - old))
        _warn(ix, clock, old, new, effects)
        return _Event(here)
    if isinstance(sid, str) and sid in ix.scenes and sid != here:
        state["scene"] = sid
        effects.append({"type": "SceneChanged", "scene": sid, "title": ix.scenes[sid]["title"]})
        return _Event(here)
    return None


def _clock_effect(clock: dict[str, Any], value: int, by: int) -> dict[str, Any]:
    return {
        "type": "ClockTicked",
        "clock": clock["id"],
        "label": clock["label"],
        "value": value,
        "size": clock["size"],
        "by": by,
        "full": value >= clock["size"],
    }


def turns_each(state: dict[str, Any]) -> int:
    """`turns each`: the fewest turns that took time any one actor has had — counting only those
    who have acted at all (a player who never acts can't hold the mission still). 0 before anyone
    has acted, or for logs from before `TurnEnded` named its actors."""
    counts = [n for n in (state.get("turns_by") or {}).values() if isinstance(n, int)]
    return min(counts) if counts else 0


def _mentions_full(cond: dict[str, Any] | None, clock: dict[str, Any]) -> bool:
    """Whether `cond` reads the clock at full (`clock c full`, or a comparison only its last
    segment satisfies, like `clock c >= size`)."""
    if not isinstance(cond, dict):
        return False
    op = cond.get("op")
    if op in ("and", "or"):
        return any(_mentions_full(a, clock) for a in cond["args"])
    if op == "not":
        return _mentions_full(cond["arg"], clock)
    if cond.get("clock") != clock["id"]:
        return False
    if op == "clock_full":
        return True
    if op == "clock":
        size, value = clock["size"], cond["value"]
        return _CMP[cond["cmp"]](size, value) and not _CMP[cond["cmp"]](size - 1, value)
    return False


def stakes(ast: dict[str, Any], clock_id: str) -> list[str]:
    """What filling `clock_id` can end: the texts of the fail states (and the objectives whose
    `fail when`) that read it at full. Empty when nothing fails on it."""
    clock = next((c for c in ast["clocks"] if c["id"] == clock_id), None)
    if clock is None:
        return []
    found = [f["text"] for f in ast["fails"] if _mentions_full(f["when"], clock)]
    found += [
        f"Objective lost: {o['text']}" for o in ast["objectives"] if _mentions_full(o["fail_when"], clock)
    ]
    return found


def _warn(ix: _Index, clock: dict[str, Any], old: int, new: int, effects: list[dict]) -> None:
    """One step before full (rising to it), the table is warned: a ClockWarning effect."""
    if old < clock["size"] - 1 <= new < clock["size"]:
        effects.append(
            {
                "type": "ClockWarning",
                "clock": clock["id"],
                "label": clock["label"],
                "value": new,
                "size": clock["size"],
                "stakes": stakes(ix.ast, clock["id"]),
            }
        )


def pass_limit(ast: dict[str, Any]) -> int:
    """Passes `_settle` may need: one per change that can happen during an event (an objective is
    revealed, then completed or failed; each tick rule fires once; each scene is entered once; each
    twist fires once), plus the pass that finds nothing left to do."""
    ticks = sum(len(clock["ticks"]) for clock in ast["clocks"])
    return 2 * len(ast["objectives"]) + ticks + len(ast["scenes"]) + len(ast["twists"]) + 1


def _settle(
    ix: _Index, before: dict[str, Any], state: dict[str, Any], event: _Event, effects: list[dict]
) -> None:
    ast = ix.ast
    objectives = state["objectives"]
    ticks = [(clock, tick) for clock in ast["clocks"] for tick in clock["ticks"]]
    was_true = [holds(ix, tick["when"], before) for _, tick in ticks]
    ticked = [False] * len(ticks)
    entered = {state["scene"], event.scene}
    for _ in range(pass_limit(ast)):
        changed = False
        for obj in ast["objectives"]:
            cond = obj["hidden_until"]  # None when a GM override hid it: only the GM reveals it again
            if cond is not None and objectives[obj["id"]] == "hidden" and holds(ix, cond, state, event):
                objectives[obj["id"]] = "active"
                effects.append({"type": "ObjectiveRevealed", "objective": obj["id"], "text": obj["text"]})
                changed = True
        for obj in ast["objectives"]:
            cond = obj["fail_when"]
            if (
                cond is not None
                and objectives[obj["id"]] in ("hidden", "active")
                and holds(ix, cond, state, event)
            ):
                objectives[obj["id"]] = "failed"
                effects.append({"type": "ObjectiveFailed", "objective": obj["id"], "text": obj["text"]})
                changed = True
        for obj in ast["objectives"]:
            cond = obj["complete_when"]
            if (
                cond is not None
                and objectives[obj["id"]] == "active"
                and (obj["scene"] is None or obj["scene"] == state["scene"])
                and all(objectives.get(r) == "complete" for r in obj["requires"])
                and holds(ix, cond, state, event)
            ):
                _complete_objective(state, obj, effects)
                changed = True
        for i, (clock, tick) in enumerate(ticks):
            now = holds(ix, tick["when"], state, event)
            if now and not was_true[i] and not ticked[i]:
                ticked[i] = True
                old = state["clocks"][clock["id"]]
                new = max(0, min(clock["size"], old + tick["by"]))
                if new != old:
                    state["clocks"][clock["id"]] = new
                    effects.append(_clock_effect(clock, new, new - old))
                    _warn(ix, clock, old, new, effects)
                    changed = True
            was_true[i] = now
        scene = ix.scenes.get(state["scene"])
        for move in scene["transitions"] if scene is not None else ():
            if (
                move["to"] not in entered
                and move["to"] in ix.scenes
                and holds(ix, move["when"], state, event)
            ):
                state["scene"] = move["to"]
                entered.add(move["to"])
                effects.append(
                    {"type": "SceneChanged", "scene": move["to"], "title": ix.scenes[move["to"]]["title"]}
                )
                changed = True
                break
        for twist in ast["twists"]:
            if twist["id"] in state["twists"]:
                continue
            if twist["beat"] is not None and state["beat"] != twist["beat"]:
                continue
            if twist["when"] is not None and not holds(ix, twist["when"], state, event):
                continue
            state["twists"].append(twist["id"])
            draw = twist["draw"]
            effects.append(
                {
                    "type": "TwistTriggered",
                    "twist": twist["id"],
                    "text": twist["text"],
                    "draw": {"deck": draw["deck"], "where": dict(draw["where"])}
                    if draw is not None
                    else None,
                }
            )
            changed = True
        for fail in ast["fails"]:
            if holds(ix, fail["when"], state, event):
                state["status"] = "failed"
                state["ended_by"] = fail["id"]
                effects.append({"type": "MissionFailed", "fail": fail["id"], "text": fail["text"]})
                return
        end = ast["complete_when"]
        if end is not None and holds(ix, end, state, event):
            state["status"] = "complete"
            state["ended_by"] = "complete"
            effects.append({"type": "MissionCompleted"})
            _grant(state, ast["reward"], "mission", effects)
            return
        if not changed:
            return


def step(
    ast: dict[str, Any], state: dict[str, Any], event: dict[str, Any], rng: random.Random
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Apply `event`, settle the rules, return (new state, effects). Inputs are never mutated."""
    new = _copy(state)
    if not isinstance(event, dict) or new["status"] != "active":
        return new, []
    ix = _Index(ast)
    effects: list[dict[str, Any]] = []
    settled = _apply(ix, new, event, effects)
    if settled is None:
        return (new, effects) if effects else (_copy(state), [])
    _settle(ix, state, new, settled, effects)
    return new, effects


def describe(ast: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """What the narrator prompt and the UI show: the scene, visible objectives, clocks, NPCs present."""
    ix = _Index(ast)
    scene = ix.scenes.get(state["scene"]) or {"id": state["scene"], "title": "", "description": ""}
    ended = state["status"] != "active"
    objectives = []
    for obj in ast["objectives"]:
        status = state["objectives"].get(obj["id"], "hidden")
        if status == "hidden":
            continue
        if ended and status == "active":
            status = "unfinished"  # the mission is over: nothing is open any more
        objectives.append(
            {
                "id": obj["id"],
                "text": obj["text"],
                "status": status,
                "scene": obj["scene"],
                "blocked_by": [r for r in obj["requires"] if state["objectives"].get(r) != "complete"],
            }
        )
    clocks = [
        {"id": c["id"], "label": c["label"], "value": state["clocks"].get(c["id"], 0), "size": c["size"]}
        for c in ast["clocks"]
    ]
    return {
        "mission": {
            "slug": ast["slug"],
            "title": ast["title"],
            "biome": ast["biome"],
            "summary": ast["summary"],
        },
        "status": state["status"],
        "scene": {"id": scene["id"], "title": scene["title"], "description": scene["description"]},
        "objectives": objectives,
        "clocks": clocks,
        # A clock that can end something stands one step from full: say so before it fills.
        "at_risk": not ended and any(c["value"] >= c["size"] - 1 and stakes(ast, c["id"]) for c in clocks),
        "ending": _ending(ast, state),
        "npcs": [
            {
                "id": n["id"],
                "name": n["name"],
                "faction": n["faction"],
                "role": n["role"],
                "agenda": n["agenda"],
            }
            for n in ast["npcs"]
            if not n["scenes"] or state["scene"] in n["scenes"]
        ],
        "beat": state["beat"],
        "turns": state["turns"],
        "turns_each": turns_each(state),
    }


def _ending(ast: dict[str, Any], state: dict[str, Any]) -> dict[str, Any] | None:
    """How the mission ended (None while it runs): the outcome and what the table reads."""
    if state["status"] == "complete":
        return {"outcome": "complete", "text": f"{ast['title']}: every goal is met."}
    if state["status"] == "failed":
        fail = next((f for f in ast["fails"] if f["id"] == state.get("ended_by")), None)
        return {"outcome": "failed", "text": fail["text"] if fail else "The mission is lost."}
    return None
