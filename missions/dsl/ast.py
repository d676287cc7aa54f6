"""The mission AST: constants, error types, the compiled result and the content hash.

The AST is plain JSON data (dicts, lists, str, int, bool, None). While parsing and validating,
nodes also carry private keys that start with "_" (`_pos`: field -> (line, col), `_at`: the node's
first token, `_errors`: problems found while building the node); `strip_private` removes them
before the AST is hashed or handed out, so positions never change the content hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

VERSION = 1

MAX_SOURCE_CHARS = 256 * 1024
MAX_CONDITION_DEPTH = 32
MAX_NUMBER = 1_000_000_000
CLOCK_SIZE_RANGE = (1, 12)
LOOT_COUNT_RANGE = (1, 99)
# The most XP one reward can grant: missions.rules.progression.MAX_GRANT, what the engine grants.
MAX_XP = 100_000

BEATS = ("inciting", "rising", "twist", "climax", "denouement")
DECK_KINDS = ("twist", "complication", "hazard", "agenda")
# The card fields a `draw ... where` can filter on (narrative.decks.matches; cards have no tags).
WHERE_KEYS = ("biome", "beat", "faction")
CHECK_RESULTS = ("succeeded", "failed", "critically_succeeded", "critically_failed")
OBJECTIVE_STATES = ("complete", "failed", "active")
COMPARISONS = (">=", "<=", "==", "!=", ">", "<")

# Every keyword of the grammar. They can't be used as names (ids, skills, flags, tables, ...):
# the printer could not always write them back unambiguously.
_KEYWORD_TEXT = (
    "mission biome summary scene description go to when objective in requires hidden until complete "
    "fail reward clock size tick twist at beat text draw where npc faction role agenda on xp loot "
    "item and or not check full flag turns turn ended succeeded failed critically active true false "
    "detail knows voice pressed each"
)
KEYWORDS = frozenset(_KEYWORD_TEXT.split())
# Words added with the lore statements (scene `detail`, npc `knows` and `voice`, `when pressed`).
# They only ever stand at the start of a statement inside a scene or npc body (or after a knows
# line's `when`), where no name can, so the contextual lexer never takes them for a name: they
# stay usable as names, and missions written before them (an npc called `voice`) still compile.
# So is `each`, which only follows `turns` in a condition (`turns each >= 8`).
SOFT_KEYWORDS = frozenset(("detail", "knows", "voice", "pressed", "each"))
RESERVED = KEYWORDS - SOFT_KEYWORDS

# Lore: what a look or a question can reveal in a scene, what an NPC knows and how they sound.
# A fact is short enough for an NPC to say it in one line (npc_speak takes up to 300 characters).
MAX_FACT_CHARS = 240
MAX_VOICE_CHARS = 400
MAX_FACTS = 24  # per scene (details) and per NPC (knows)

Pos = tuple[int, int]


@dataclass(frozen=True)
class DslError:
    """One problem in a mission source, at a 1-based line and column."""

    filename: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}: {self.message}"


class MissionError(ValueError):
    """A mission source did not compile; `.errors` lists every problem found, sorted by position."""

    def __init__(self, errors: list[DslError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


@dataclass(frozen=True)
class CompiledMission:
    """A parsed and validated mission. `ast` is JSON data; `content_hash` is sha256 of its canonical JSON."""

    ast: dict[str, Any] = field(repr=False)
    content_hash: str
    slug: str
    title: str
    biome: str


def canonical_json(ast: dict[str, Any]) -> str:
    return json.dumps(ast, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(ast: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(ast).encode("utf-8")).hexdigest()


def strip_private(node: Any) -> Any:
    """A copy of `node` without the private "_" keys. Depth is bounded by the parser's limit."""
    if isinstance(node, dict):
        return {k: strip_private(v) for k, v in node.items() if not k.startswith("_")}
    if isinstance(node, list):
        return [strip_private(v) for v in node]
    return node


def iter_conditions(cond: dict[str, Any] | None):
    """Yield every node of a condition tree, parents before children (iteratively)."""
    if cond is None:
        return
    stack = [cond]
    while stack:
        node = stack.pop()
        yield node
        op = node.get("op")
        if op in ("and", "or"):
            stack.extend(reversed(node["args"]))
        elif op == "not":
            stack.append(node["arg"])
