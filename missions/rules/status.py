"""Status effects with durations and stacking rules.

Pure Python, no Django. An effect lasts `duration` rounds and carries attribute modifiers
(``{"agility": -2}``). What happens when an effect with the same name is applied again is
decided by the incoming effect's `stacking` rule:

=============  =================================================================
rule           on re-application of an effect with the same name
=============  =================================================================
refresh        one instance; the new one replaces it (duration reset)
stack          one instance; stacks +1 up to `max_stacks`, duration reset
independent    a separate instance is added; each ticks down on its own
ignore         the first one wins; the new one is dropped
=============  =================================================================

Applying an effect whose stacking rule differs from the instance already present raises
`StatusError`: two rules for one name is a content bug, not something to guess about.
A stacked effect's modifiers are multiplied by its stack count. Every function returns a new
list; inputs are never mutated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Stacking = Literal["refresh", "stack", "independent", "ignore"]
STACKING_RULES: tuple[str, ...] = ("refresh", "stack", "independent", "ignore")
MAX_DURATION = 1000
MAX_STACKS = 99
MAX_MODIFIER = 20
MAX_TICK = 1000

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)


class StatusError(ValueError):
    """A status effect, or an operation on a list of them, is malformed or out of bounds."""


def _require_int(value: Any, name: str, low: int, high: int) -> int:
    # bool is an int subclass; True must not pass for a duration of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise StatusError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise StatusError(f"{name} must be {low}..{high}, got {value}")
    return value


@dataclass(frozen=True)
class StatusEffect:
    """One instance of an effect. `modifiers` is a sorted tuple of (attribute, amount) pairs."""

    name: str
    duration: int
    stacking: Stacking = "refresh"
    modifiers: tuple[tuple[str, int], ...] = ()
    stacks: int = 1
    max_stacks: int = 1
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise StatusError(
                f"effect name must be 1-64 lowercase letters, digits, '-' or '_', got {self.name!r}"
            )
        _require_int(self.duration, f"duration of '{self.name}'", 1, MAX_DURATION)
        if self.stacking not in STACKING_RULES:
            raise StatusError(
                f"stacking of '{self.name}' must be one of {', '.join(STACKING_RULES)}, got {self.stacking!r}"
            )
        _require_int(self.max_stacks, f"max_stacks of '{self.name}'", 1, MAX_STACKS)
        _require_int(self.stacks, f"stacks of '{self.name}'", 1, self.max_stacks)
        if self.stacking != "stack" and self.max_stacks != 1:
            raise StatusError(f"max_stacks of '{self.name}' only applies to stacking 'stack'")
        if not isinstance(self.source, str) or len(self.source) > 120:
            raise StatusError(f"source of '{self.name}' must be a string of at most 120 characters")
        if not isinstance(self.modifiers, tuple):
            raise StatusError(f"modifiers of '{self.name}' must be a tuple of (attribute, amount) pairs")
        seen: set[str] = set()
        for pair in self.modifiers:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and pair[0]):
                raise StatusError(
                    f"modifiers of '{self.name}' must be (attribute, amount) pairs, got {pair!r}"
                )
            if pair[0] in seen:
                raise StatusError(f"modifiers of '{self.name}' name '{pair[0]}' twice")
            seen.add(pair[0])
            _require_int(pair[1], f"modifier '{pair[0]}' of '{self.name}'", -MAX_MODIFIER, MAX_MODIFIER)

    @classmethod
    def make(
        cls,
        name: str,
        duration: int,
        *,
        stacking: Stacking = "refresh",
        modifiers: Mapping[str, int] | None = None,
        max_stacks: int = 1,
        source: str = "",
    ) -> StatusEffect:
        """Build an effect from a plain modifier mapping (the usual way to create one)."""
        if modifiers is not None and not isinstance(modifiers, Mapping):
            raise StatusError(f"modifiers of '{name}' must be a mapping of attribute to amount")
        pairs = tuple(sorted((modifiers or {}).items(), key=lambda kv: str(kv[0])))
        return cls(
            name=name,
            duration=duration,
            stacking=stacking,
            modifiers=pairs,
            max_stacks=max_stacks,
            source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "duration": self.duration,
            "stacking": self.stacking,
            "modifiers": dict(self.modifiers),
            "stacks": self.stacks,
            "max_stacks": self.max_stacks,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusEffect:
        if not isinstance(data, Mapping):
            raise StatusError(f"a status effect must be an object, got {type(data).__name__}")
        allowed = {"name", "duration", "stacking", "modifiers", "stacks", "max_stacks", "source"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise StatusError(f"unknown status effect field(s): {', '.join(map(str, unknown))}")
        for key in ("name", "duration"):
            if key not in data:
                raise StatusError(f"status effect is missing '{key}'")
        modifiers = data.get("modifiers", {})
        if not isinstance(modifiers, Mapping):
            raise StatusError(f"modifiers of {data['name']!r} must be an object of attribute to amount")
        return cls(
            name=data["name"],
            duration=data["duration"],
            stacking=data.get("stacking", "refresh"),
            modifiers=tuple(sorted(modifiers.items(), key=lambda kv: str(kv[0]))),
            stacks=data.get("stacks", 1),
            max_stacks=data.get("max_stacks", 1),
            source=data.get("source", ""),
        )


def _check_list(effects: Sequence[StatusEffect]) -> list[StatusEffect]:
    if isinstance(effects, (str, bytes)) or not isinstance(effects, Iterable):
        raise StatusError(f"effects must be a list of StatusEffect, got {type(effects).__name__}")
    items = list(effects)
    for item in items:
        if not isinstance(item, StatusEffect):
            raise StatusError(f"effects must contain StatusEffect values, got {type(item).__name__}")
    return items


def apply(effects: Sequence[StatusEffect], new: StatusEffect) -> list[StatusEffect]:
    """Return the effects after applying `new`, following `new.stacking` (see the module table)."""
    current = _check_list(effects)
    if not isinstance(new, StatusEffect):
        raise StatusError(f"new effect must be a StatusEffect, got {type(new).__name__}")
    same = [i for i, e in enumerate(current) if e.name == new.name]
    for i in same:
        if current[i].stacking != new.stacking:
            raise StatusError(
                f"effect '{new.name}' is already present with stacking '{current[i].stacking}', "
                f"cannot apply it with stacking '{new.stacking}'"
            )
    if not same or new.stacking == "independent":
        return [*current, new]
    index = same[0]
    if new.stacking == "ignore":
        return current
    if new.stacking == "refresh":
        updated = new
    else:  # stack
        updated = replace(new, stacks=min(current[index].stacks + 1, new.max_stacks))
    return [*current[:index], updated, *current[index + 1 :]]


def tick(effects: Sequence[StatusEffect], rounds: int = 1) -> tuple[list[StatusEffect], list[StatusEffect]]:
    """Advance time by `rounds`; return (remaining, expired), each in the original order.

    An effect expires when its duration reaches zero; `expired` holds the effects as they were
    before the tick, so the caller can report what ended.
    """
    current = _check_list(effects)
    _require_int(rounds, "rounds", 0, MAX_TICK)
    remaining: list[StatusEffect] = []
    expired: list[StatusEffect] = []
    for effect in current:
        if effect.duration > rounds:
            remaining.append(replace(effect, duration=effect.duration - rounds))
        else:
            expired.append(effect)
    return remaining, expired


def remove(effects: Sequence[StatusEffect], name: str) -> tuple[list[StatusEffect], list[StatusEffect]]:
    """Remove every instance named `name` (a cure, a dispel); return (remaining, removed)."""
    current = _check_list(effects)
    return [e for e in current if e.name != name], [e for e in current if e.name == name]


def modifiers(effects: Sequence[StatusEffect]) -> dict[str, int]:
    """Sum the attribute modifiers of all effects (a stacked effect counts once per stack).

    Attributes whose modifiers cancel out are left out, so an empty dict means "no change".
    """
    totals: dict[str, int] = {}
    for effect in _check_list(effects):
        for attribute, amount in effect.modifiers:
            totals[attribute] = totals.get(attribute, 0) + amount * effect.stacks
    return {k: v for k, v in sorted(totals.items()) if v != 0}


def effects_to_list(effects: Sequence[StatusEffect]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in _check_list(effects)]


def effects_from_list(data: Sequence[Mapping[str, Any]]) -> list[StatusEffect]:
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise StatusError(f"status effects must be a list, got {type(data).__name__}")
    return [StatusEffect.from_dict(item) for item in data]
