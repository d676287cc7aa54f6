"""Narrator tools: JSON schemas, validation and dispatch to deterministic game code.

The model proposes; code disposes. A call is checked against its schema and the game's
rules before anything happens; a refused call is recorded (ToolRefused) and the refusal is
returned to the model, never applied. Every accepted call becomes an event whose seed is
derived from its seq, so replaying the log reproduces every number.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

import jsonschema

from campaigns import events
from missions.rules import dice
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

TOOLS = [SKILL_CHECK, RNG_ROLL]
_BY_NAME = {t.name: t for t in TOOLS}
# Built once: re-checking the schema itself on every call was ~10% of a turn's CPU.
_VALIDATORS = {t.name: jsonschema.Draft202012Validator(t.parameters) for t in TOOLS}


@dataclass
class ToolOutcome:
    result: dict[str, Any]  # what goes back to the model
    event_seq: int | None  # the event that records it
    refused: bool = False


def call_key(action_seq: int, round_no: int, index: int, call: ToolCall) -> str:
    """Idempotency key for a tool call. A re-run turn that makes the same call (same
    position, name and arguments) gets the original event back instead of a second roll."""
    digest = hashlib.sha256(json.dumps([call.name, call.arguments], sort_keys=True).encode()).hexdigest()[:16]
    return f"tool:{action_seq}:{round_no}:{index}:{digest}"


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
    spec = _BY_NAME.get(call.name)
    error = None
    if spec is None:
        error = f"unknown tool '{call.name}'; available: {', '.join(_BY_NAME)}"
    elif call.raw_arguments and not call.arguments:
        error = f"arguments are not valid JSON: {call.raw_arguments[:120]!r}"
    else:
        problem = next(iter(_VALIDATORS[call.name].iter_errors(call.arguments)), None)
        if problem is not None:
            error = f"invalid arguments for {call.name}: {problem.message}"
    if error is None and call.name == "rng_roll":
        try:
            dice.parse_expression(call.arguments["expression"])
        except dice.DiceError as exc:
            error = str(exc)

    if error is not None:
        result = events.append(
            session,
            [
                events.NewEvent(
                    type="ToolRefused",
                    actor_id=None,
                    payload={
                        "action_seq": action_seq,
                        "tool": call.name,
                        "error": error,
                        "arguments": call.arguments or call.raw_arguments[:500],
                    },
                )
            ],
            idempotency_key=key,
        )
        return ToolOutcome({"error": error}, result.version, refused=True), (
            [] if result.replayed else result.events
        )

    args = call.arguments
    if call.name == "rules_skill_check":
        attrs = (character or {}).get("attributes") or {}
        modifier = dice.attribute_modifier(int(attrs.get(args["attribute"], 10)))

        def build(seq: int) -> tuple[dict, int]:
            seed = dice.derive_seed(campaign_id, session.pk, seq)
            check = dice.skill_check(
                rng=random.Random(seed),
                modifier=modifier,
                dc=args["dc"],
                advantage=args.get("advantage", False),
                disadvantage=args.get("disadvantage", False),
            )
            payload = {
                "kind": "check",
                "action_seq": action_seq,
                "skill": args["skill"],
                "attribute": args["attribute"],
                "reason": args.get("reason", ""),
                "character": (character or {}).get("name"),
                **check.to_dict(),
            }
            return payload, seed
    else:

        def build(seq: int) -> tuple[dict, int]:
            seed = dice.derive_seed(campaign_id, session.pk, seq)
            rolled = dice.roll(random.Random(seed), args["expression"])
            payload = {
                "kind": "roll",
                "action_seq": action_seq,
                "reason": args.get("reason", ""),
                "character": (character or {}).get("name"),
                **rolled.to_dict(),
            }
            return payload, seed

    result = events.append(
        session, [events.NewEvent(type="DiceRolled", actor_id=actor_id, build=build)], idempotency_key=key
    )
    event = result.events[0]
    payload = dict(event.payload)
    payload.pop("action_seq", None)
    payload["seed"] = event.seed
    return ToolOutcome(payload, event.seq), ([] if result.replayed else result.events)
