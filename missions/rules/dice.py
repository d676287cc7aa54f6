"""Seeded dice: every roll in a campaign can be replayed from a stored seed.

Pure Python, no Django. A `DiceRolled` event stores the seed plus the keyword arguments
that produced it; feeding both back into `replay_check` / `replay_roll` yields the same
faces, so players (and moderators) can audit any roll after the fact.

Fair dice (issue 11 hole 8). A v1 seed derives from public values only, so anyone could
compute the next d20 before acting. A v2 seed also mixes in a per-session secret: the server
draws it when the session opens (or resumes), publishes only its SHA-256 (`commitment`) in
that first event, and reveals the secret when the session ends. Until then nobody but the GM
can predict a roll; afterwards anyone can check that the revealed secret matches the
commitment and re-derive every seed (`verify_roll`). Each seeded event records which
derivation it used (`SeedKey.record`); events without a record are v1.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
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


V1 = "gtw-dice-v1"
V2 = "gtw-dice-v2"
DERIVATIONS = (V1, V2)
_SECRET_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def derive_seed(campaign_id: int, session_id: int, seq: int, secret: str | None = None) -> int:
    """Return the seed for roll number `seq` of a session.

    The seed is the first 8 bytes, read as a big-endian unsigned integer and shifted right
    by 11 bits, of the SHA-256 digest of an ASCII string:

    - v1 (no secret; sessions from before fair dice):
      ``f"gtw-dice-v1:{campaign_id}:{session_id}:{seq}"``
    - v2 (with the session's secret, 64 lowercase hex digits):
      ``f"gtw-dice-v2:{campaign_id}:{session_id}:{seq}:{secret}"``

    The shift keeps it to 53 bits: exact in a JavaScript number and in PostgreSQL's signed
    BIGINT. To replay by hand::

        int.from_bytes(hashlib.sha256(b"gtw-dice-v1:1:2:3").digest()[:8], "big") >> 11

    then ``random.Random(seed)`` reproduces the roll. A v2 secret is public once the session
    has ended; check it first with ``hashlib.sha256(secret.encode()).hexdigest() ==
    commitment`` (the hash published when the session opened or resumed).
    """
    if secret is None:
        text = f"{V1}:{campaign_id}:{session_id}:{seq}"
    else:
        text = f"{V2}:{campaign_id}:{session_id}:{seq}:{check_secret(secret)}"
    return int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:8], "big") >> 11


def check_secret(secret: Any) -> str:
    """The secret as given, or DiceError: 64 lowercase hex digits (32 random bytes)."""
    if not isinstance(secret, str) or _SECRET_RE.fullmatch(secret) is None:
        raise DiceError("a dice secret is 64 lowercase hex digits")
    return secret


def commitment(secret: str) -> str:
    """SHA-256 of the secret (hex): published before any roll, so the secret can't change."""
    return hashlib.sha256(check_secret(secret).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class SeedKey:
    """Everything a seed derives from besides the seq. `secret` None means v1."""

    campaign_id: int
    session_id: int
    secret: str | None = None

    @property
    def derivation(self) -> str:
        return V1 if self.secret is None else V2

    def seed(self, seq: int) -> int:
        return derive_seed(self.campaign_id, self.session_id, seq, self.secret)

    def record(self) -> dict[str, Any]:
        """What a seeded event stores about its seed's inputs: never the secret, only its
        commitment (a copied event in a branch still names the session it was rolled in)."""
        data: dict[str, Any] = {
            "derivation": self.derivation,
            "campaign": self.campaign_id,
            "session": self.session_id,
        }
        if self.secret is not None:
            data["commitment"] = commitment(self.secret)
        return data


def key_at(campaign_id: int, session_id: int, seq: int, secrets: Sequence[tuple[int, str]] = ()) -> SeedKey:
    """The key in force at `seq`: the secret of the latest (from_seq, secret) pair with
    from_seq <= seq, or v1 when there is none (a session from before fair dice). A secret
    applies from the seq of the event that committed it, so re-deriving a seq later (a
    re-run turn) always gives the same seed."""
    current = None
    for from_seq, secret in sorted(secrets):
        if from_seq > seq:
            break
        current = secret
    return SeedKey(campaign_id, session_id, current)


def record_of(payload: Mapping[str, Any], *, campaign_id: int, session_id: int) -> dict[str, Any]:
    """The seed inputs an event recorded (`seed_from`), or v1 with the given ids for events
    from before fair dice. DiceError when the record is malformed."""
    record = payload.get("seed_from")
    if record is None:
        return {"derivation": V1, "campaign": campaign_id, "session": session_id}
    if not isinstance(record, Mapping) or record.get("derivation") not in DERIVATIONS:
        raise DiceError("the event's seed record names no known derivation")
    for name in ("campaign", "session"):
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DiceError(f"the event's seed record has no {name} id")
    if record["derivation"] == V2 and not isinstance(record.get("commitment"), str):
        raise DiceError("a v2 seed record names no commitment")
    return dict(record)


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


@dataclass(frozen=True)
class Verification:
    """A DiceRolled event re-derived from its seed inputs: `seed` and `faces` are what the
    inputs give; `problems` says, in words, where the event differs (empty when it matches)."""

    derivation: str
    seed: int
    faces: tuple[int, ...]
    total: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_roll(
    payload: Mapping[str, Any],
    *,
    seq: int,
    recorded_seed: int | None,
    record: Mapping[str, Any],
    secret: str | None,
) -> Verification:
    """Re-derive the seed of DiceRolled event `seq` from `record` (see `record_of`) and the
    secret (v2; None for v1), re-roll it with the event's own parameters, and compare.
    DiceError when the event can't be checked at all (not a roll, parameters missing)."""
    problems: list[str] = []
    if record["derivation"] == V2:
        if secret is None:
            raise DiceError("a v2 roll can only be checked with its session's secret")
        if commitment(secret) != record["commitment"]:
            problems.append("the secret does not match the commitment published before the roll")
        seed = derive_seed(record["campaign"], record["session"], seq, secret)
    else:
        seed = derive_seed(record["campaign"], record["session"], seq)
    if recorded_seed != seed:
        problems.append(f"the recorded seed {recorded_seed} is not the seed {seed} its inputs give")
    try:
        if payload.get("kind") == "check":
            check = replay_check(
                seed,
                modifier=payload["modifier"],
                dc=payload["dc"],
                advantage=bool(payload.get("advantage")),
                disadvantage=bool(payload.get("disadvantage")),
            )
            faces, total = check.faces, check.total
            expected = {"kept": check.kept, "outcome": check.outcome}
        elif payload.get("kind") == "roll":
            rolled = replay_roll(seed, payload["expression"])
            faces, total, expected = rolled.faces, rolled.total, {}
        else:
            raise DiceError("this event is not a dice roll")
    except (KeyError, TypeError):
        raise DiceError("the roll's parameters are missing from the event") from None
    if list(faces) != list(payload.get("faces") or []):
        problems.append(f"the seed rolls {list(faces)}, the event shows {payload.get('faces')}")
    if total != payload.get("total"):
        problems.append(f"the seed totals {total}, the event shows {payload.get('total')}")
    for name, value in expected.items():
        if payload.get(name) != value:
            problems.append(f"the seed gives {name} {value}, the event shows {payload.get(name)}")
    return Verification(
        derivation=record["derivation"], seed=seed, faces=tuple(faces), total=total, problems=tuple(problems)
    )
