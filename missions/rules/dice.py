"""Seeded dice: every roll in a campaign can be replayed from a stored seed.

Pure Python, no Django. A `DiceRolled` event stores the seed plus the keyword arguments
that produced it; feeding both back into `replay_check` / `replay_roll` yields the same
faces, so players (and moderators) can audit any roll after the fact.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

ALLOWED_SIDES = (2, 3, 4, 6, 8, 10, 12, 20, 100)
MAX_COUNT = 100
MAX_MODIFIER = 100
DC_RANGE = (1, 40)
CHECK_MODIFIER_RANGE = (-20, 20)

Outcome = Literal["critical_success", "success", "failure", "critical_failure"]


class DiceError(ValueError):
    """A dice expression or check parameter is out of bounds or malformed."""


def derive_seed(campaign_id: int, session_id: int, seq: int) -> int:
    """Return the seed for roll number `seq` of a session.

    The seed is the first 8 bytes, read as a big-endian unsigned integer and shifted right
    by 11 bits, of the SHA-256 digest of the ASCII string
    ``f"gtw-dice-v1:{campaign_id}:{session_id}:{seq}"``. The shift keeps it to 53 bits: exact
    in a JavaScript number and in PostgreSQL's signed BIGINT. To replay by hand::

        int.from_bytes(hashlib.sha256(b"gtw-dice-v1:1:2:3").digest()[:8], "big") >> 11

    then ``random.Random(seed)`` reproduces the roll.
    """
    text = f"gtw-dice-v1:{campaign_id}:{session_id}:{seq}"
    return int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:8], "big") >> 11


@dataclass(frozen=True)
class DiceExpression:
    count: int
    sides: int
    modifier: int = 0

    def __str__(self) -> str:
        if self.modifier > 0:
            return f"{self.count}d{self.sides}+{self.modifier}"
        if self.modifier < 0:
            return f"{self.count}d{self.sides}-{-self.modifier}"
        return f"{self.count}d{self.sides}"


# ASCII-only digits: `\d` would accept e.g. Arabic-Indic digits that int() then parses,
# and a length cap keeps int() from ever raising its own "too many digits" ValueError.
_EXPR_RE = re.compile(r"\s*([0-9]{1,6})?\s*[dD]\s*([0-9]{1,6})\s*(?:([+-])\s*([0-9]{1,6}))?\s*", re.ASCII)


def parse_expression(expr: str) -> DiceExpression:
    """Parse `NdM`, `NdM+K`, `NdM-K` or `dM` (whitespace tolerant) into a DiceExpression."""
    if not isinstance(expr, str):
        raise DiceError(f"dice expression must be a string, got {type(expr).__name__}")
    match = _EXPR_RE.fullmatch(expr)
    if match is None:
        raise DiceError(f"not a dice expression: {expr!r} (expected NdM, NdM+K, NdM-K or dM)")
    count_text, sides_text, sign, mod_text = match.groups()
    count = int(count_text) if count_text is not None else 1
    sides = int(sides_text)
    modifier = int(mod_text) if mod_text is not None else 0
    if sign == "-":
        modifier = -modifier
    if not 1 <= count <= MAX_COUNT:
        raise DiceError(f"dice count must be 1..{MAX_COUNT}, got {count} in {expr!r}")
    if sides not in ALLOWED_SIDES:
        allowed = ", ".join(f"d{s}" for s in ALLOWED_SIDES)
        raise DiceError(f"unsupported die d{sides} in {expr!r}; allowed: {allowed}")
    if abs(modifier) > MAX_MODIFIER:
        raise DiceError(f"modifier must be within ±{MAX_MODIFIER}, got {modifier} in {expr!r}")
    return DiceExpression(count=count, sides=sides, modifier=modifier)


@dataclass(frozen=True)
class RollResult:
    expression: str
    faces: tuple[int, ...]
    modifier: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "faces": list(self.faces),
            "modifier": self.modifier,
            "total": self.total,
        }


def roll(rng: random.Random, expr: str | DiceExpression) -> RollResult:
    parsed = expr if isinstance(expr, DiceExpression) else parse_expression(expr)
    faces = tuple(rng.randint(1, parsed.sides) for _ in range(parsed.count))
    return RollResult(
        expression=str(parsed), faces=faces, modifier=parsed.modifier, total=sum(faces) + parsed.modifier
    )


def replay_roll(seed: int, expr: str | DiceExpression) -> RollResult:
    return roll(random.Random(seed), expr)


def attribute_modifier(score: int) -> int:
    return (score - 10) // 2


@dataclass(frozen=True)
class CheckResult:
    faces: tuple[int, ...]
    kept: int
    natural: int
    modifier: int
    total: int
    dc: int
    outcome: Outcome
    advantage: bool
    disadvantage: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faces"] = list(self.faces)
        return data


def _require_int(value: Any, name: str, bounds: tuple[int, int]) -> int:
    # bool is an int subclass; a stray True must not sneak through as a modifier of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise DiceError(f"{name} must be an integer, got {value!r}")
    low, high = bounds
    if not low <= value <= high:
        raise DiceError(f"{name} must be {low}..{high}, got {value}")
    return value


def skill_check(
    *, rng: random.Random, modifier: int, dc: int, advantage: bool = False, disadvantage: bool = False
) -> CheckResult:
    """Roll a d20 check. Advantage keeps the higher of two d20, disadvantage the lower; both cancel.

    A natural 20 is a critical success and a natural 1 a critical failure whatever the DC.
    """
    _require_int(modifier, "modifier", CHECK_MODIFIER_RANGE)
    _require_int(dc, "dc", DC_RANGE)
    advantage, disadvantage = bool(advantage), bool(disadvantage)
    two_dice = advantage != disadvantage
    faces = tuple(rng.randint(1, 20) for _ in range(2 if two_dice else 1))
    kept = (max(faces) if advantage else min(faces)) if two_dice else faces[0]
    total = kept + modifier
    outcome: Outcome
    if kept == 20:
        outcome = "critical_success"
    elif kept == 1:
        outcome = "critical_failure"
    elif total >= dc:
        outcome = "success"
    else:
        outcome = "failure"
    return CheckResult(
        faces=faces,
        kept=kept,
        natural=kept,
        modifier=modifier,
        total=total,
        dc=dc,
        outcome=outcome,
        advantage=advantage,
        disadvantage=disadvantage,
    )


def replay_check(
    seed: int, *, modifier: int, dc: int, advantage: bool = False, disadvantage: bool = False
) -> CheckResult:
    return skill_check(
        rng=random.Random(seed), modifier=modifier, dc=dc, advantage=advantage, disadvantage=disadvantage
    )
