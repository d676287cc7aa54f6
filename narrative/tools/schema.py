"""The narrator's tools as the model sees them (JSON schemas), and the check a call must pass
against its schema before any rule looks at it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from gtw_site.text import has_unstorable
from narrative.llm.base import ToolCall, ToolSpec

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
    description=(
        "Roll dice such as 2d6+1 for damage, loot or random tables. The game rolls. For a search "
        'or scavenging roll, set `loot` to a loot table of the pack (or "any"): the roll decides '
        "how much turns up, the game draws the finds and puts them in the searcher's inventory, "
        "and you hear back exactly what was found — narrate only that."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {"type": "string", "pattern": r"^\s*\d*\s*d\s*\d+\s*([+-]\s*\d+)?\s*$"},
            "reason": {"type": "string", "maxLength": 200},
            "loot": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]{0,63}$"},
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

IMAGE_REQUEST = ToolSpec(
    name="image_request",
    description=(
        "Ask for a picture for the table: the current scene, a player character's portrait, or an "
        "item. It is painted in the background and shown to everyone when ready; keep narrating."
    ),
    parameters={
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["scene", "portrait", "item"]},
            "subject": {"type": "string", "maxLength": 300},
            "character": {"type": "string", "minLength": 1, "maxLength": 60},
        },
        "required": ["type"],
        "additionalProperties": False,
    },
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
    IMAGE_REQUEST,
]
_BY_NAME = {t.name: t for t in TOOLS}
# Built once: re-checking the schema itself on every call was ~10% of a turn's CPU.
_VALIDATORS = {t.name: jsonschema.Draft202012Validator(t.parameters) for t in TOOLS}
MAX_DRAWS_PER_TURN = 1


def invalid_reason(call: ToolCall) -> str | None:
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
