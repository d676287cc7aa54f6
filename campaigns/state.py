"""The session reducer: pure, no Django. state + event → new state.

The state is plain JSON data so it can be snapshotted, hashed and compared. `replay(events)`
from an empty state must always equal the live state kept on the session row; a hypothesis
stateful test holds us to that.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BEATS = ("Inciting", "Rising", "Twist", "Climax", "Denouement")
# Action events wait in `pending` until a Narration (or a TurnFailed) answers them.
TERMINAL_FOR_ACTION = ("Narration", "TurnFailed")


@dataclass(frozen=True)
class EventRecord:
    seq: int
    type: str
    actor_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None


def initial_state() -> dict[str, Any]:
    return {
        "version": 0,
        "status": "active",
        "scene": None,
        "objective": None,
        "beat": BEATS[0],
        "pending": [],
        "failed": {},
        "counts": {},
        "participants": {},
        "last_narration_seq": None,
        "last_roll": None,
        # The game engine's state (missions/runtime, narrative/director, missions/rules/dda).
        # Engine events carry the new engine state in their payloads, computed by the pure
        # engine when they were appended; the reducer only copies it, so replay is exact.
        "mission": None,  # {"slug", "title", "hash", "state": runtime state}
        "director": None,  # narrative.director state
        "dda": None,  # {"dc_offset", "intensity"}
        "outcomes": [],  # the last RECENT_OUTCOMES skill-check outcomes (DDA's input)
        "drawn": [],  # story-deck cards drawn this session ("deck:card")
        "initiative": None,  # the running combat's order, or None
        "statuses": {},  # character id -> status effects (missions.rules.status dicts)
    }


def apply(state: Mapping[str, Any], event: EventRecord) -> dict[str, Any]:
    """Fold one event. Returns a new dict; never mutates `state`. Unknown types only bump version."""
    if event.seq != state["version"] + 1:
        raise ValueError(f"event seq {event.seq} does not follow version {state['version']}")
    new = copy.deepcopy(dict(state))
    new["version"] = event.seq
    counts = new["counts"]
    counts[event.type] = counts.get(event.type, 0) + 1
    payload = event.payload
    handler = _HANDLERS.get(event.type)
    if handler:
        handler(new, event, payload)
    _engine_state(new, payload)
    return new


# Check outcomes kept for DDA: as many as its widest window (missions.rules.dda.MAX_WINDOW; a
# test holds them equal). A check event records how many it kept ("outcomes_kept"), so logs
# written when 12 were kept replay exactly as they were folded then.
RECENT_OUTCOMES = 50
LEGACY_RECENT_OUTCOMES = 12


def _engine_state(state, payload):
    # .get() on older snapshots that predate these keys.
    if "mission_state" in payload and state.get("mission"):
        state["mission"] = {**state["mission"], "state": payload["mission_state"]}
    if "director_state" in payload:
        state["director"] = payload["director_state"]
    if "dda_state" in payload:
        state["dda"] = payload["dda_state"]
    if "status_state" in payload:
        state["statuses"] = payload["status_state"]


def _session_opened(state, event, payload):
    state["status"] = "active"
    state["scene"] = payload.get("scene")
    state["objective"] = payload.get("objective")
    if payload.get("mission_ref"):
        _mission_started(state, event, payload)


def _action(state, event, payload):
    if payload.get("batched"):
        # A stage action waits in its beat window, not in `pending` (see stage mode below).
        window = _stage(state)["window"]
        if window is not None and window["n"] == payload.get("window"):
            window["actions"].append(event.seq)
    else:
        state["pending"].append(event.seq)
    if event.actor_id is not None:
        key = str(event.actor_id)
        state["participants"][key] = state["participants"].get(key, 0) + 1


def _narration(state, event, payload):
    action_seq = payload.get("action_seq")
    if action_seq in state["pending"]:
        state["pending"].remove(action_seq)
    state["failed"].pop(str(action_seq), None)
    state["last_narration_seq"] = event.seq
    if payload.get("batch") is not None:  # a stage's batch summary answers its window
        stage = _stage(state)
        stage["unsummarised"] = [w for w in stage["unsummarised"] if w["n"] != payload["batch"]]
    xcard = state.get("xcard")
    if xcard and xcard.get("turns", 0) > 0:  # the X-card's steer-away note lasts this many more
        xcard["turns"] -= 1


def _turn_failed(state, event, payload):
    action_seq = payload.get("action_seq")
    if action_seq in state["pending"]:
        state["pending"].remove(action_seq)
        state["failed"][str(action_seq)] = payload.get("error", "")


def _turn_retried(state, event, payload):
    action_seq = payload.get("action_seq")
    if str(action_seq) in state["failed"]:
        del state["failed"][str(action_seq)]
        state["pending"].append(action_seq)
        state["pending"].sort()


def _dice_rolled(state, event, payload):
    state["last_roll"] = {"seq": event.seq, "outcome": payload.get("outcome"), "total": payload.get("total")}
    if payload.get("kind") == "check" and payload.get("outcome"):
        keep = _outcomes_kept(payload)
        state["outcomes"] = [*state.get("outcomes", []), payload["outcome"]][-keep:]


def _outcomes_kept(payload) -> int:
    kept = payload.get("outcomes_kept")
    if type(kept) is not int or not 1 <= kept <= RECENT_OUTCOMES:
        return LEGACY_RECENT_OUTCOMES  # events from before the count was recorded
    return kept


def _mission_started(state, event, payload):
    ref = payload.get("mission_ref") or {}
    state["mission"] = {
        "slug": ref.get("slug"),
        "title": ref.get("title"),
        "hash": ref.get("hash"),
        "state": payload.get("mission_state"),
    }
    state["drawn"] = []
    if payload.get("scene"):
        state["scene"] = payload["scene"]
    if payload.get("objective"):
        state["objective"] = payload["objective"]
    if payload.get("beat") in BEATS:
        state["beat"] = payload["beat"]


def _scene_changed(state, event, payload):
    if payload.get("scene_info"):
        state["scene"] = payload["scene_info"]


def _card_drawn(state, event, payload):
    card = f"{payload.get('deck')}:{payload.get('card')}"
    state["drawn"] = [*state.get("drawn", []), card]


def _initiative_rolled(state, event, payload):
    state["initiative"] = {"order": payload.get("order", []), "round": 1}


def _combat_ended(state, event, payload):
    state["initiative"] = None


def _objective_set(state, event, payload):
    state["objective"] = payload.get("objective")


def _beat_changed(state, event, payload):
    if payload.get("beat") in BEATS:
        state["beat"] = payload["beat"]
    elif payload.get("label") in BEATS:
        state["beat"] = payload["label"]


def _session_ended(state, event, payload):
    state["status"] = "ended"


def _session_resumed(state, event, payload):
    state["status"] = "active"


_HANDLERS = {
    "SessionOpened": _session_opened,
    "Action": _action,
    "Narration": _narration,
    "TurnFailed": _turn_failed,
    "TurnRetried": _turn_retried,
    "DiceRolled": _dice_rolled,
    "ObjectiveSet": _objective_set,
    "BeatChanged": _beat_changed,
    "SessionEnded": _session_ended,
    "SessionResumed": _session_resumed,
    "MissionStarted": _mission_started,
    "SceneChanged": _scene_changed,
    "CardDrawn": _card_drawn,
    "InitiativeRolled": _initiative_rolled,
    "CombatEnded": _combat_ended,
}


# ---- the X-card (narrative.xcard; issue 18 part 4) ------------------------------------------
# A tap withdraws a narration (never deletes its row): its seq joins `withdrawn`, and what shows
# it to the table (the play page, the socket, the events API, memory, the narrator's context)
# shows it as withdrawn, without its text. `xcard` keeps the narrator's steer-away note for the
# next `turns` narrations. setdefault: sessions (and snapshots) from before the X-card have
# neither key, and a session nobody tapped in keeps the state (and hash) it always had.
WITHDRAWN_KEEPS = ("action_seq", "of_seq", "batch", "close_seq", "window")


def _xcard_tapped(state, event, payload):
    seq = payload.get("narration_seq")
    withdrawn = state.setdefault("withdrawn", [])
    if type(seq) is int and seq not in withdrawn:
        withdrawn.append(seq)
    turns = payload.get("steer_turns")
    state["xcard"] = {"seq": event.seq, "turns": turns if type(turns) is int and turns > 0 else 0}


_HANDLERS["XCardTapped"] = _xcard_tapped


def withdrawn_seqs(state: Mapping[str, Any] | None) -> frozenset[int]:
    """The seqs of the narrations the X-card withdrew."""
    return frozenset((state or {}).get("withdrawn") or ())


def withdrawn_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a withdrawn narration still shows: which turn it answered, never its text."""
    return {**{k: payload[k] for k in WITHDRAWN_KEEPS if k in payload}, "withdrawn": True}


def replay(events: Iterable[EventRecord], state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    current = dict(state) if state is not None else initial_state()
    for event in events:
        current = apply(current, event)
    return current


def state_hash(state: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON form (sorted keys, no whitespace)."""
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---- stage mode (campaigns.stage): beat windows that batch actions ----------------------------
# A stage's actions are flagged `batched`: they wait in their beat window, not in `pending`
# (`_action`), so the per-action turn runner never answers them. Closing a window moves it to
# `unsummarised` until the GM's batch summary (a Narration with `batch`, `_narration`) answers it.


def _stage(state) -> dict[str, Any]:
    # setdefault: sessions (and snapshots) from before stage mode have no "stage" key.
    return state.setdefault("stage", {"window": None, "windows": 0, "unsummarised": []})


def _batch_window_opened(state, event, payload):
    stage = _stage(state)
    n = payload.get("window") or stage["windows"] + 1
    stage["windows"] = max(stage["windows"], n)
    stage["window"] = {
        "n": n,
        "opened_seq": event.seq,
        "seconds": payload.get("seconds"),
        "closes_at": payload.get("closes_at"),
        "actions": [],
    }


def _batch_window_closed(state, event, payload):
    stage = _stage(state)
    window = stage["window"]
    if window is None or window["n"] != payload.get("window"):
        return
    stage["window"] = None
    stage["unsummarised"].append({"n": window["n"], "close_seq": event.seq, "actions": window["actions"]})


_HANDLERS.update(
    {
        "BatchWindowOpened": _batch_window_opened,
        "BatchWindowClosed": _batch_window_closed,
    }
)


# ---- research (missions.techtree; issue 19) --------------------------------------------------
# Tech-tree research is campaign-wide: missions.techtree folds every session's research events
# (and BeatChanged, which runs research time down) through `research_fold`, the same function
# that keeps this session's `research` here, so the campaign's view and a replay agree. Keyed by
# "<owner kind>:<owner id>:<tree slug>". setdefault: a session with no research keeps the state
# (and hash) it always had; BeatChanged touches `research` only once a session has one.
RESEARCH_TYPES = ("ResearchStarted", "ResearchCompleted")


def research_entry() -> dict[str, Any]:
    return {"done": [], "done_at": {}, "active": None, "spent": 0, "beats": 0}


def research_fold(research: dict[str, Any], type: str, payload: Mapping[str, Any]) -> None:
    """Fold one research-relevant event into `research` (mutated in place)."""
    if type == "BeatChanged":
        for entry in research.values():
            entry["beats"] += 1
            active = entry["active"]
            if active and active["beats_left"] > 0:
                active["beats_left"] -= 1
        return
    key = payload.get("owner")
    node = payload.get("node")
    if not isinstance(key, str) or not isinstance(node, str):
        return
    entry = research.setdefault(key, research_entry())
    if type == "ResearchStarted":
        beats = payload.get("beats")
        points = payload.get("points")
        entry["active"] = {"node": node, "beats_left": beats if type_is_int(beats) and beats > 0 else 0}
        entry["spent"] += points if type_is_int(points) and points > 0 else 0
    elif type == "ResearchCompleted":
        if node not in entry["done"]:
            entry["done"].append(node)
            entry["done_at"][node] = entry["beats"]
        if entry["active"] and entry["active"]["node"] == node:
            entry["active"] = None


def type_is_int(value: Any) -> bool:
    return type(value) is int


def _research(state, event, payload):
    research_fold(state.setdefault("research", {}), event.type, payload)


def _beat_changed_research(state, event, payload):
    _beat_changed(state, event, payload)
    if state.get("research"):
        research_fold(state["research"], "BeatChanged", payload)


_HANDLERS.update(
    {
        "ResearchStarted": _research,
        "ResearchCompleted": _research,
        "BeatChanged": _beat_changed_research,
    }
)


# ---- the world simulation (missions.simulation; issue 19) ------------------------------------
# `simulation` appears once a session starts one (so every other session keeps its hash). The
# simulation's events carry what the shell decided (snapshot id, step, state hash); the reducer
# only copies them, so a replay of the log reproduces the live state exactly. `status`:
# running | stopped | fallback (drifted: plain narration until the GM starts it again).
def _simulation(state, event, payload):
    sim = state.get("simulation") or {}
    if event.type == "SimulationStarted":
        sim = {
            "provider": payload.get("provider"),
            "status": "running",
            "start_snapshot": payload.get("snapshot"),
            "windows": 0,
            "drifts": 0,
        }
    elif not sim:
        return
    if event.type == "SimulationStopped":
        sim["status"] = "stopped"
    elif event.type == "SimulationDrifted":
        sim["status"] = "fallback"
        sim["drifts"] = sim.get("drifts", 0) + 1
    elif event.type == "SimulationStepped":
        sim["windows"] = sim.get("windows", 0) + 1
    for key in ("snapshot", "step", "hash"):
        if key in payload and event.type != "SimulationDrifted":
            sim[key] = payload[key]
    state["simulation"] = sim


_HANDLERS.update(
    {
        "SimulationStarted": _simulation,
        "SimulationStepped": _simulation,
        "SimulationRestored": _simulation,
        "SimulationStopped": _simulation,
        "SimulationDrifted": _simulation,
    }
)
