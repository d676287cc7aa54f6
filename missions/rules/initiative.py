"""Initiative order and turn tracking for a combat round.

Pure Python, no Django. Each combatant rolls a d20 and adds its modifier (`agility_mod`, or
the modifier of an `attribute` score, as in `dice.attribute_modifier`). Order is by total,
then by modifier, then by a seeded roll-off: the tied combatants each roll another d20,
repeating among those still tied. Combatants roll in order of their id (as text), not in the
order given, so the same set of combatants and the same seed always give the same order.
Every die rolled is stored on the entry, so the order can be shown and audited.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from missions.rules.dice import attribute_modifier

MAX_COMBATANTS = 100
MODIFIER_RANGE = (-20, 20)
ATTRIBUTE_RANGE = (1, 40)
# A roll-off between two combatants is still tied after 50 rounds with probability 20**-50;
# the cap only guarantees termination, after which the id order decides.
MAX_ROLLOFF_ROUNDS = 50

CombatantId = str | int


class InitiativeError(ValueError):
    """A combatant list or turn-tracker operation is malformed."""


def _require_int(value: Any, name: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InitiativeError(f"{name} must be an integer, got {value!r}")
    low, high = bounds
    if not low <= value <= high:
        raise InitiativeError(f"{name} must be {low}..{high}, got {value}")
    return value


def _check_id(value: Any) -> CombatantId:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise InitiativeError(f"combatant id must be a non-empty string or an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class InitiativeEntry:
    id: CombatantId
    modifier: int
    roll: int
    total: int
    rolloff: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "modifier": self.modifier,
            "roll": self.roll,
            "total": self.total,
            "rolloff": list(self.rolloff),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InitiativeEntry:
        try:
            return cls(
                id=_check_id(data["id"]),
                modifier=_require_int(data["modifier"], "modifier", MODIFIER_RANGE),
                roll=_require_int(data["roll"], "roll", (1, 20)),
                total=_require_int(data["total"], "total", (-100, 100)),
                rolloff=tuple(_require_int(f, "roll-off die", (1, 20)) for f in data.get("rolloff", ())),
            )
        except KeyError as exc:
            raise InitiativeError(f"initiative entry is missing {exc.args[0]!r}") from None
        except TypeError:
            raise InitiativeError(f"initiative entry must be an object, got {type(data).__name__}") from None


def _modifier_of(combatant: Mapping[str, Any]) -> int:
    has_mod = "agility_mod" in combatant
    has_attr = "attribute" in combatant
    if has_mod == has_attr:
        raise InitiativeError(
            f"combatant {combatant.get('id')!r} needs exactly one of 'agility_mod' or 'attribute'"
        )
    if has_mod:
        return _require_int(combatant["agility_mod"], f"agility_mod of {combatant['id']!r}", MODIFIER_RANGE)
    score = _require_int(combatant["attribute"], f"attribute of {combatant['id']!r}", ATTRIBUTE_RANGE)
    return attribute_modifier(score)


def _roll_off(group: list[InitiativeEntry], rng: random.Random) -> list[InitiativeEntry]:
    """Order a group tied on total and modifier by repeated d20 roll-offs.

    Tie groups are resolved breadth-first, higher group first, so the rng is always consumed
    in the same order for the same seed.
    """
    pending = [group]
    resolved: list[InitiativeEntry] = []
    rounds = 0
    while pending:
        rounds += 1
        still_tied: list[list[InitiativeEntry]] = []
        for tied in pending:
            if len(tied) == 1 or rounds > MAX_ROLLOFF_ROUNDS:
                resolved.extend(tied)
                continue
            rolled = [replace(e, rolloff=(*e.rolloff, rng.randint(1, 20))) for e in tied]
            rolled.sort(key=lambda e: -e.rolloff[-1])
            start = 0
            for i in range(1, len(rolled) + 1):
                if i == len(rolled) or rolled[i].rolloff[-1] != rolled[start].rolloff[-1]:
                    still_tied.append(rolled[start:i])
                    start = i
        pending = still_tied
    # Each entry carries its roll-off history; ordering by it (higher first, compared die by
    # die) is the roll-off's outcome. The id decides only in the capped case.
    return sorted(resolved, key=lambda e: (tuple(-f for f in e.rolloff), str(e.id)))


def roll_initiative(combatants: Sequence[Mapping[str, Any]], rng: random.Random) -> list[InitiativeEntry]:
    """Roll initiative for `combatants` (``{"id", "agility_mod"}`` or ``{"id", "attribute"}``).

    Returns the entries in acting order, first to act first.
    """
    if isinstance(combatants, (str, bytes, Mapping)) or not isinstance(combatants, Sequence):
        raise InitiativeError(f"combatants must be a list, got {type(combatants).__name__}")
    if not 1 <= len(combatants) <= MAX_COMBATANTS:
        raise InitiativeError(f"initiative needs 1..{MAX_COMBATANTS} combatants, got {len(combatants)}")
    prepared: list[tuple[CombatantId, int]] = []
    seen: set[str] = set()
    for combatant in combatants:
        if not isinstance(combatant, Mapping):
            raise InitiativeError(f"a combatant must be an object, got {type(combatant).__name__}")
        if "id" not in combatant:
            raise InitiativeError("a combatant is missing 'id'")
        cid = _check_id(combatant["id"])
        if str(cid) in seen:
            raise InitiativeError(f"combatant id {cid!r} appears twice")
        seen.add(str(cid))
        prepared.append((cid, _modifier_of(combatant)))
    prepared.sort(key=lambda item: str(item[0]))
    entries = []
    for cid, mod in prepared:
        face = rng.randint(1, 20)
        entries.append(InitiativeEntry(id=cid, modifier=mod, roll=face, total=face + mod))
    entries.sort(key=lambda e: (-e.total, -e.modifier, str(e.id)))
    ordered: list[InitiativeEntry] = []
    start = 0
    for i in range(1, len(entries) + 1):
        if i == len(entries) or (entries[i].total, entries[i].modifier) != (
            entries[start].total,
            entries[start].modifier,
        ):
            group = entries[start:i]
            ordered.extend(group if len(group) == 1 else _roll_off(group, rng))
            start = i
    return ordered


@dataclass(frozen=True)
class TurnState:
    """Whose turn it is: `order` of combatant ids, `index` into it, and the round (from 1)."""

    order: tuple[CombatantId, ...]
    index: int = 0
    round: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.order, tuple):
            raise InitiativeError("turn order must be a tuple of combatant ids")
        for cid in self.order:
            _check_id(cid)
        if len({str(c) for c in self.order}) != len(self.order):
            raise InitiativeError("turn order names a combatant twice")
        if self.order:
            _require_int(self.index, "turn index", (0, len(self.order) - 1))
        elif self.index != 0:
            raise InitiativeError("turn index must be 0 when nobody is left in the order")
        _require_int(self.round, "round", (1, 1_000_000))

    @property
    def current(self) -> CombatantId | None:
        return self.order[self.index] if self.order else None

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "index": self.index, "round": self.round}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnState:
        if not isinstance(data, Mapping) or "order" not in data:
            raise InitiativeError("turn state must be an object with 'order'")
        order = data["order"]
        if not isinstance(order, (list, tuple)):
            raise InitiativeError("turn order must be a list of combatant ids")
        return cls(order=tuple(order), index=data.get("index", 0), round=data.get("round", 1))


def start_combat(entries: Sequence[InitiativeEntry]) -> TurnState:
    """Round 1, first entry to act."""
    return TurnState(order=tuple(e.id for e in entries))


def next_turn(state: TurnState) -> tuple[TurnState, bool]:
    """Advance to the next combatant; return (state, new_round_started)."""
    if not state.order:
        raise InitiativeError("nobody is left in the turn order")
    index = state.index + 1
    if index >= len(state.order):
        return replace(state, index=0, round=state.round + 1), True
    return replace(state, index=index), False


def remove_combatant(state: TurnState, combatant_id: CombatantId) -> TurnState:
    """Drop a combatant (fled, fell). If it was acting, the next one in order is up."""
    keys = [str(c) for c in state.order]
    if str(combatant_id) not in keys:
        raise InitiativeError(f"combatant {combatant_id!r} is not in the turn order")
    pos = keys.index(str(combatant_id))
    order = state.order[:pos] + state.order[pos + 1 :]
    index = state.index - 1 if pos < state.index else state.index
    if not order:
        return TurnState(order=(), index=0, round=state.round)
    if index >= len(order):
        # The last in order was acting and left: the round is over.
        return TurnState(order=order, index=0, round=state.round + 1)
    return TurnState(order=order, index=index, round=state.round)


def add_combatant(state: TurnState, entry: InitiativeEntry, entries: Sequence[InitiativeEntry]) -> TurnState:
    """Insert a late arrival by its initiative among `entries` (the current order's entries).

    The acting combatant keeps the turn; the newcomer acts this round only if it slots in
    after the current index.
    """
    if str(entry.id) in {str(c) for c in state.order}:
        raise InitiativeError(f"combatant {entry.id!r} is already in the turn order")
    by_id = {str(e.id): e for e in entries}
    missing = [c for c in state.order if str(c) not in by_id]
    if missing:
        raise InitiativeError(f"no initiative entry for {missing[0]!r}")
    key = (-entry.total, -entry.modifier, str(entry.id))
    pos = len(state.order)
    for i, cid in enumerate(state.order):
        other = by_id[str(cid)]
        if key < (-other.total, -other.modifier, str(other.id)):
            pos = i
            break
    order = (*state.order[:pos], entry.id, *state.order[pos:])
    index = state.index + 1 if pos <= state.index and state.order else state.index
    return TurnState(order=order, index=index, round=state.round)
