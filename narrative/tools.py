"""Narrator tools: JSON schemas, validation and dispatch to deterministic game code.

The model proposes; code disposes. A call is checked against its schema and the game's
rules before anything happens; a refused call is recorded (ToolRefused) and the refusal is
returned to the model, never applied. Every accepted call becomes an event whose seed is
derived from its seq, so replaying the log reproduces every number.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, replace
from typing import Any

import jsonschema

from campaigns import events
from campaigns import state as reducer
from campaigns.models import Character, Event
from gtw_site.text import has_unstorable, storable
from missions import runtime
from missions.rules import dda, dice, initiative, loot, progression, status
from narrative import decks, director, engine
from narrative.llm.base import ToolCall, ToolSpec

logger = logging.getLogger(__name__)

ATTRIBUTES = ["might", "agility", "wits", "tech", "presence"]

SKILL_CHECK = ToolSpec(
    name="rules_skill_check",
    description=(
        "Ask the game to roll a d20 skill check for the acting character when the outcome of their "
        "action is uncertain. The game rolls; you narrate the result it returns."
    ),
    parameters={
        "type": "object",
        "properties": {
            "skill": {"type": "string", "minLength": 1, "maxLength": 40},
            "attribute": {"type": "string", "enum": ATTRIBUTES},
            "dc": {"type": "integer", "minimum": 5, "maximum": 30},
            "advantage": {"type": "boolean"},
            "disadvantage": {"type": "boolean"},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["skill", "attribute", "dc"],
        "additionalProperties": False,
    },
)

RNG_ROLL = ToolSpec(
    name="rng_roll",
    description="Roll dice such as 2d6+1 for damage, loot or random tables. The game rolls.",
    parameters={
        "type": "object",
        "properties": {
            "expression": {"type": "string", "pattern": r"^\s*\d*\s*d\s*\d+\s*([+-]\s*\d+)?\s*$"},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
)

MISSION_ADVANCE = ToolSpec(
    name="mission_advance",
    description=(
        "Mark a mission objective complete when the story has clearly achieved it. The game "
        "checks the objective's conditions and refuses if they don't hold yet."
    ),
    parameters={
        "type": "object",
        "properties": {
            "objective": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,59}$"},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["objective"],
        "additionalProperties": False,
    },
)

WORLD_QUERY = ToolSpec(
    name="world_query",
    description="Look up the mission's current scene, objectives, clocks, NPCs present or world flags.",
    parameters={
        "type": "object",
        "properties": {
            "topic": {"type": "string", "enum": ["scene", "objectives", "clocks", "npcs", "flags"]}
        },
        "required": ["topic"],
        "additionalProperties": False,
    },
)

WORLD_UPDATE = ToolSpec(
    name="world_update",
    description=(
        'Record a fact about the world as a flag (e.g. airlock_open = true, crate = "delivered"). '
        "Mission objectives, clocks and twists react to flags."
    ),
    parameters={
        "type": "object",
        "properties": {
            "flag": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
            "value": {
                "type": ["string", "integer", "boolean"],
                "maxLength": 60,
                "minimum": -1000,
                "maximum": 1000,
            },
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["flag", "value"],
        "additionalProperties": False,
    },
)

NPC_SPEAK = ToolSpec(
    name="npc_speak",
    description="Have an NPC who is present in the scene say a line (shown to the players as a quote).",
    parameters={
        "type": "object",
        "properties": {
            "npc": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,59}$"},
            "line": {"type": "string", "minLength": 1, "maxLength": 300},
        },
        "required": ["npc", "line"],
        "additionalProperties": False,
    },
)

DECK_DRAW = ToolSpec(
    name="deck_draw",
    description=(
        "Draw a card from the story decks (a twist, complication, NPC agenda or hazard that fits "
        "the scene and beat). At most one draw per turn. Narrate the card you get."
    ),
    parameters={
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["twist", "complication", "agenda", "hazard"]},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["kind"],
        "additionalProperties": False,
    },
)

COMBAT_START = ToolSpec(
    name="combat_start",
    description="Start combat: the game rolls initiative for the party and the named foes.",
    parameters={
        "type": "object",
        "properties": {
            "foes": {
                "type": "array",
                "minItems": 1,
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 40},
                        "agility": {"type": "integer", "minimum": 1, "maximum": 30},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["foes"],
        "additionalProperties": False,
    },
)

STATUS_APPLY = ToolSpec(
    name="status_apply",
    description=(
        "Put a status effect from the game's list on a player character (e.g. shaken, wounded, "
        "stunned, chilled, inspired). The game applies its duration, stacking and modifiers."
    ),
    parameters={
        "type": "object",
        "properties": {
            "character": {"type": "string", "minLength": 1, "maxLength": 60},
            "effect": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["character", "effect"],
        "additionalProperties": False,
    },
)

COMBAT_END = ToolSpec(
    name="combat_end",
    description="End the current combat.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
)

TOOLS = [
    SKILL_CHECK,
    RNG_ROLL,
    MISSION_ADVANCE,
    WORLD_QUERY,
    WORLD_UPDATE,
    NPC_SPEAK,
    DECK_DRAW,
    COMBAT_START,
    COMBAT_END,
    STATUS_APPLY,
]
_BY_NAME = {t.name: t for t in TOOLS}
# Built once: re-checking the schema itself on every call was ~10% of a turn's CPU.
_VALIDATORS = {t.name: jsonschema.Draft202012Validator(t.parameters) for t in TOOLS}
MAX_DRAWS_PER_TURN = 1
# A rule that still says no once a call has passed its schema and `_refusal` (a number out of a
# rule's range, say) is a refusal for the model, never an error that fails the turn.
RULE_ERRORS = (
    dda.DdaError,
    dice.DiceError,
    initiative.InitiativeError,
    loot.LootError,
    progression.ProgressionError,
    status.StatusError,
    decks.DeckError,
    director.DirectorError,
)


@dataclass
class ToolOutcome:
    result: dict[str, Any]  # what goes back to the model
    event_seq: int | None  # the event that records it
    refused: bool = False


def call_key(action_seq: int, round_no: int, index: int, call: ToolCall) -> str:
    """Idempotency key for a tool call: its position in the turn and its name. A re-run turn
    (after a crash) gets the original event back instead of a second roll, even when the model
    phrases the call differently the second time: the state it sees has moved on (the first
    run's roll already completed an objective), and a committed roll is never rolled again."""
    return f"tool:{action_seq}:{round_no}:{index}:{storable(call.name[:40])}"


def dispatch(
    *,
    session,
    campaign_id: int,
    action_seq: int,
    actor_id: int | None,
    character: dict | None,
    call: ToolCall,
    round_no: int,
    index: int,
) -> tuple[ToolOutcome, list]:
    """Validate and run one call. Returns the outcome and the new (committed) events."""
    key = call_key(action_seq, round_no, index, call)
    session.refresh_from_db(fields=["state", "version"])  # earlier calls this turn moved it on
    replay = events.find_replay(session.pk, key)
    if replay is not None:  # a re-run turn: the call already happened
        return _outcome_of(replay.events), []
    call = replace(call, arguments=whole_numbers(call.arguments))
    error = _invalid(call) or _refusal(session, action_seq, call)
    if error is not None:
        return _refuse(session, key, action_seq, call, error)

    if call.name == "world_query":
        view = engine.mission_view(session.state) or {}
        topic = call.arguments["topic"]
        if topic == "flags":
            data = ((session.state.get("mission") or {}).get("state") or {}).get("flags", {})
        else:
            data = view.get(topic)
        return ToolOutcome({"topic": topic, topic: data}, None), []

    build = _BUILDERS[call.name](campaign_id, action_seq, actor_id, character, call.arguments)
    try:
        result = engine.append_engine(session, build, idempotency_key=key, actor_id=actor_id)
    except RULE_ERRORS as exc:  # the append rolled back: nothing happened but the refusal
        logger.info("tool %s refused by a rule: %s", call.name, exc)
        return _refuse(session, key, action_seq, call, f"the game's rules refuse this call: {exc}")
    created = [] if result.replayed else result.events
    return _outcome_of(result.events), created


def _invalid(call: ToolCall) -> str | None:
    """Why the call is malformed (unknown tool, bad JSON, schema, unstorable text), or None."""
    if call.name not in _BY_NAME:
        return f"unknown tool '{call.name}'; available: {', '.join(_BY_NAME)}"
    if call.raw_arguments.strip() and not call.arguments and not _is_empty_object(call.raw_arguments):
        return f"arguments are not valid JSON: {call.raw_arguments[:120]!r}"
    if has_unstorable(call.arguments):
        return (
            "arguments contain a NUL (\\u0000) or a lone surrogate character, which the game can't "
            "store; send the text without it"
        )
    problem = next(iter(_VALIDATORS[call.name].iter_errors(call.arguments)), None)
    if problem is not None:
        return f"invalid arguments for {call.name}: {problem.message}"
    return None


def _refuse(session, key: str, action_seq: int, call: ToolCall, error: str) -> tuple[ToolOutcome, list]:
    """Record a ToolRefused (what can't be stored removed) and return the reason to the model."""
    payload = {
        "action_seq": action_seq,
        "tool": call.name,
        "error": error,
        "arguments": call.arguments or call.raw_arguments[:500],
    }
    result = events.append(
        session,
        [events.NewEvent(type="ToolRefused", actor_id=None, payload=storable(payload))],
        idempotency_key=key,
    )
    return ToolOutcome({"error": error}, result.version, refused=True), (
        [] if result.replayed else result.events
    )


def whole_numbers(value: Any) -> Any:
    """`value` with every whole float (12.0) made an int (12). A JSON schema takes 12.0 as an
    integer, but the rules behind it check `isinstance(x, int)`; what passes one passes both."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _is_empty_object(raw: str) -> bool:
    try:
        return json.loads(raw) == {}
    except ValueError:
        return False


def _refusal(session, action_seq: int, call: ToolCall) -> str | None:
    """Rules a call must pass before anything happens; the reason goes back to the model."""
    args = call.arguments
    state = session.state or {}
    if call.name == "rng_roll":
        try:
            dice.parse_expression(args["expression"])
        except dice.DiceError as exc:
            return str(exc)
    if call.name == "mission_advance":
        mission = state.get("mission") or {}
        ast = engine.mission_ast(mission.get("hash"))
        if ast is None or not mission.get("state"):
            return "no mission is running in this session"
        return runtime.check_advance(ast, mission["state"], args["objective"])
    if call.name == "world_update" and not (state.get("mission") or {}).get("state"):
        return "no mission is running in this session: there is no world state to update"
    if call.name == "npc_speak":
        view = engine.mission_view(state) or {}
        present = {n["id"]: n for n in view.get("npcs", [])}
        if args["npc"] not in present:
            names = ", ".join(f"{k} ({v['name']})" for k, v in present.items()) or "nobody"
            return f"NPC '{args['npc']}' is not in this scene; present: {names}"
    if call.name == "deck_draw":
        drawn = Event.objects.filter(
            session=session, type="CardDrawn", payload__action_seq=action_seq
        ).count()
        if drawn >= MAX_DRAWS_PER_TURN:
            return f"at most {MAX_DRAWS_PER_TURN} card per turn; narrate the card already drawn"
    if call.name == "status_apply":
        catalogue = {e["name"] for e in session.campaign.pack.data.get("status_effects", [])}
        if args["effect"] not in catalogue:
            return (
                f"unknown status effect '{args['effect']}'; known: {', '.join(sorted(catalogue)) or 'none'}"
            )
        names = set(Character.objects.filter(campaign_id=session.campaign_id).values_list("name", flat=True))
        if args["character"] not in names:
            return f"no player character named '{args['character']}'; the party: {', '.join(sorted(names))}"
    if call.name == "combat_start" and state.get("initiative"):
        return "combat is already running; use combat_end first"
    if call.name == "combat_end" and not state.get("initiative"):
        return "no combat is running"
    return None


def _outcome_of(created: list) -> ToolOutcome:
    """What the model hears back: the first event is the call's own record."""
    if not created:
        return ToolOutcome({"ok": True}, None)
    first = created[0]
    if first.type == "ToolRefused":
        return ToolOutcome({"error": first.payload.get("error", "refused")}, first.seq, refused=True)
    hidden = ("action_seq", "mission_state", "director_state", "outcomes_kept")
    payload = {k: v for k, v in first.payload.items() if k not in hidden}
    if first.type == "DiceRolled":
        payload["seed"] = first.seed
    follow = [
        {
            "type": e.type,
            **{
                k: v
                for k, v in e.payload.items()
                if k
                in (
                    "objective",
                    "text",
                    "clock",
                    "value",
                    "size",
                    "title",
                    "label",
                    "scene",
                    "reason",
                    "xp",
                    "items",
                )
            },
        }
        for e in created[1:]
    ]
    if follow:
        payload["consequences"] = follow
    if first.type == "CardDrawn" and payload.get("seed") is None:
        payload["seed"] = first.seed
    return ToolOutcome(payload, first.seq)


def _skill_check(campaign_id, action_seq, actor_id, character, args):
    attrs = (character or {}).get("attributes") or {}
    modifier = dice.attribute_modifier(int(attrs.get(args["attribute"], 10)))

    def build(batch: engine.Batch):
        seq = batch.next_seq
        seed = batch.rules.seed(seq)
        offset = engine.dc_offset(batch.state, batch.rules.dda_config)
        dc = dda.apply_dc(args["dc"], offset)
        acting = next((c for c in batch.rules.characters if c.owner_id == actor_id), None)
        from_status = batch.status_modifier(acting.id if acting else None, args["attribute"])
        check = dice.skill_check(
            rng=random.Random(seed),
            modifier=max(-20, min(20, modifier + from_status)),
            dc=dc,
            advantage=args.get("advantage", False),
            disadvantage=args.get("disadvantage", False),
        )
        batch.add(
            "DiceRolled",
            {
                "kind": "check",
                "action_seq": action_seq,
                "skill": args["skill"],
                "attribute": args["attribute"],
                "reason": args.get("reason", ""),
                "character": (character or {}).get("name"),
                "base_dc": args["dc"],
                "dc_offset": offset,
                "outcomes_kept": reducer.RECENT_OUTCOMES,
                "status_modifier": from_status,
                **check.to_dict(),
            },
            actor_id=actor_id,
            seeded=True,
        )
        batch.dda_after(check.outcome)
        batch.feed(
            {
                "type": "CheckResolved",
                "skill": args["skill"],
                "attribute": args["attribute"],
                "outcome": check.outcome,
                "actor": (character or {}).get("name"),
            }
        )

    return build


def _rng_roll(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        seed = batch.rules.seed(batch.next_seq)
        rolled = dice.roll(random.Random(seed), args["expression"])
        batch.add(
            "DiceRolled",
            {
                "kind": "roll",
                "action_seq": action_seq,
                "reason": args.get("reason", ""),
                "character": (character or {}).get("name"),
                **rolled.to_dict(),
            },
            actor_id=actor_id,
            seeded=True,
        )

    return build


def _mission_advance(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        batch.add(
            "MissionAdvanced",
            {"action_seq": action_seq, "objective": args["objective"], "reason": args.get("reason", "")},
        )
        batch.feed({"type": "Advance", "objective": args["objective"]})

    return build


def _world_update(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        batch.add(
            "WorldUpdated",
            {
                "action_seq": action_seq,
                "flag": args["flag"],
                "value": args["value"],
                "reason": args.get("reason", ""),
            },
        )
        batch.feed({"type": "SetFlag", "name": args["flag"], "value": args["value"]})

    return build


def _npc_speak(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        npc = next((n for n in batch.rules.mission_ast["npcs"] if n["id"] == args["npc"]), None)
        batch.add(
            "NpcSpoke",
            {
                "action_seq": action_seq,
                "npc": args["npc"],
                "name": npc["name"] if npc else args["npc"],
                "line": args["line"].strip(),
            },
        )

    return build


def _deck_draw(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        card = batch.draw(args["kind"])
        if card is None:
            batch.add(
                "ToolRefused",
                {
                    "action_seq": action_seq,
                    "tool": "deck_draw",
                    "error": f"no {args['kind']} card fits this scene and beat; narrate without one",
                    "arguments": args,
                },
            )
            return
        batch.events[-1].payload["action_seq"] = action_seq

    return build


def _combat_start(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        combatants = [
            {"id": f"pc:{c.id}", "attribute": max(1, min(30, c.agility))} for c in batch.rules.characters
        ]
        names = {f"pc:{c.id}": c.name for c in batch.rules.characters}
        for i, foe in enumerate(args["foes"]):
            combatants.append({"id": f"foe:{i}", "attribute": foe.get("agility", 10)})
            names[f"foe:{i}"] = foe["name"]
        seed = batch.rules.seed(batch.next_seq)
        order = initiative.roll_initiative(combatants, random.Random(seed))
        batch.add(
            "InitiativeRolled",
            {
                "action_seq": action_seq,
                "order": [{**e.to_dict(), "name": names[e.id], "side": e.id.split(":")[0]} for e in order],
            },
            seeded=True,
        )

    return build


def _status_apply(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        target = next(c for c in batch.rules.characters if c.name == args["character"])
        spec = batch.status_apply(target.id, args["effect"], source=args.get("reason", ""))
        batch.add(
            "StatusApplied",
            {
                "action_seq": action_seq,
                "character_id": target.id,
                "character": target.name,
                "name": args["effect"],
                "label": spec.get("label", args["effect"]),
                "modifiers": spec.get("modifiers", {}),
                "duration": spec.get("duration", 1),
                "reason": args.get("reason", ""),
            },
        )

    return build


def _combat_end(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        batch.add("CombatEnded", {"action_seq": action_seq})

    return build


_BUILDERS = {
    "rules_skill_check": _skill_check,
    "rng_roll": _rng_roll,
    "mission_advance": _mission_advance,
    "world_update": _world_update,
    "npc_speak": _npc_speak,
    "deck_draw": _deck_draw,
    "combat_start": _combat_start,
    "combat_end": _combat_end,
    "status_apply": _status_apply,
}
