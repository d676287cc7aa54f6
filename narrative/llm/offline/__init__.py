"""The offline narrator: procedural, deterministic prose with no network and no model weights.

- `narrator`: OfflineNarrator (the "offline" provider, narrative.llm.registry) and write_aside;
- `batch`: stage mode, one summary for a beat window of batched actions;
- `context`: the tolerant reading of a turn's context, shared by both;
- `writer`: the template writer and the narrations of outcomes, plain actions and loot;
- `phrases`: the phrase tables (narrative.intent reads its vocabulary from them).

The narrator's names are loaded on first use: `phrases` must import without the narrator,
because narrative.intent (which the narrator uses) reads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from narrative.llm.offline.context import TONES
    from narrative.llm.offline.narrator import (
        ADVANCE_TOOL,
        CHECK_TOOL,
        COMBAT_TOOL,
        DRAW_TOOL,
        NPC_TOOL,
        ROLL_TOOL,
        STATUS_TOOL,
        OfflineNarrator,
        write_aside,
    )

_EXPORTS = {
    name: "narrative.llm.offline.narrator"
    for name in (
        "OfflineNarrator",
        "write_aside",
        "ADVANCE_TOOL",
        "CHECK_TOOL",
        "COMBAT_TOOL",
        "DRAW_TOOL",
        "NPC_TOOL",
        "ROLL_TOOL",
        "STATUS_TOOL",
    )
} | {"TONES": "narrative.llm.offline.context"}

__all__ = [
    "ADVANCE_TOOL",
    "CHECK_TOOL",
    "COMBAT_TOOL",
    "DRAW_TOOL",
    "NPC_TOOL",
    "ROLL_TOOL",
    "STATUS_TOOL",
    "TONES",
    "OfflineNarrator",
    "write_aside",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
