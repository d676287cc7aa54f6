"""Narrator tools: JSON schemas, validation and dispatch to deterministic game code.

The model proposes; code disposes. A call is checked against its schema and the game's
rules before anything happens; a refused call is recorded (ToolRefused) and the refusal is
returned to the model, never applied. Every accepted call becomes an event whose seed is
derived from its seq, so replaying the log reproduces every number.

The package: `schema` (the tools as the model sees them, and schema validation), `dispatch`
(the rules a call must pass, refusals, running it) and `builders` (the events each tool
appends). Every name is re-exported here; patch a name where it is looked up.
"""

from narrative.tools.builders import BUILDERS
from narrative.tools.dispatch import RULE_ERRORS, ToolOutcome, call_key, dispatch, outcome_of
from narrative.tools.schema import (
    ATTRIBUTES,
    COMBAT_END,
    COMBAT_START,
    DECK_DRAW,
    IMAGE_REQUEST,
    MAX_DRAWS_PER_TURN,
    MISSION_ADVANCE,
    NPC_SPEAK,
    RNG_ROLL,
    SKILL_CHECK,
    STATUS_APPLY,
    TOOLS,
    WORLD_QUERY,
    WORLD_UPDATE,
    invalid_reason,
    whole_numbers,
)

__all__ = [
    "ATTRIBUTES",
    "BUILDERS",
    "COMBAT_END",
    "COMBAT_START",
    "DECK_DRAW",
    "IMAGE_REQUEST",
    "MAX_DRAWS_PER_TURN",
    "MISSION_ADVANCE",
    "NPC_SPEAK",
    "RNG_ROLL",
    "RULE_ERRORS",
    "SKILL_CHECK",
    "STATUS_APPLY",
    "TOOLS",
    "WORLD_QUERY",
    "WORLD_UPDATE",
    "ToolOutcome",
    "call_key",
    "dispatch",
    "invalid_reason",
    "outcome_of",
    "whole_numbers",
]
