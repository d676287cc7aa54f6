"""Resource drip: oxygen, fuel, credits and the like changing a little every turn.

Pure Python, no Django. A resource is a whole-number `value` kept between a `floor` (default
0) and an optional `cap`; use tenths or hundredths as the unit when a finer grain is needed,
so every value stays exact in JSON. `drip` applies per-turn rates (positive or negative) for
a number of turns and reports, as events, the turn on which a resource hit its floor
(``ResourceDepleted``) or its cap (``ResourceCapped``). A resource already resting on its floor
or cap does not report again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

MAX_VALUE = 1_000_000_000
MAX_RATE = 1_000_000
MAX_TURNS = 10_000

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)


class ResourceError(ValueError):
    """A resource, rate or turn count is malformed or out of bounds."""


def _require_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResourceError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ResourceError(f"{name} must be {low}..{high}, got {value}")
    return value


@dataclass(frozen=True)
class Resource:
    name: str
    value: int
    floor: int = 0
    cap: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise ResourceError(
                f"resource name must be 1-64 lowercase letters, digits, '-' or '_', got {self.name!r}"
            )
        _require_int(self.floor, f"floor of '{self.name}'", -MAX_VALUE, MAX_VALUE)
        if self.cap is not None:
            _require_int(self.cap, f"cap of '{self.name}'", self.floor, MAX_VALUE)
        high = MAX_VALUE if self.cap is None else self.cap
        _require_int(self.value, f"value of '{self.name}'", self.floor, high)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "floor": self.floor, "cap": self.cap}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Resource:
        if not isinstance(data, Mapping):
            raise ResourceError(f"resource '{name}' must be an object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in set(data) - {"value", "floor", "cap"})
        if unknown:
            raise ResourceError(f"resource '{name}' has unknown field(s): {', '.join(unknown)}")
        if "value" not in data:
            raise ResourceError(f"resource '{name}' is missing 'value'")
        return cls(name=name, value=data["value"], floor=data.get("floor", 0), cap=data.get("cap"))


def resources_to_dict(resources: Mapping[str, Resource]) -> dict[str, dict[str, Any]]:
    return {name: r.to_dict() for name, r in resources.items()}


def resources_from_dict(data: Mapping[str, Mapping[str, Any]]) -> dict[str, Resource]:
    if not isinstance(data, Mapping):
        raise ResourceError(f"resources must be an object of name to resource, got {type(data).__name__}")
    return {name: Resource.from_dict(name, spec) for name, spec in data.items()}


def _check_resources(resources: Mapping[str, Resource]) -> None:
    if not isinstance(resources, Mapping):
        raise ResourceError(
            f"resources must be a mapping of name to Resource, got {type(resources).__name__}"
        )
    for name, res in resources.items():
        if not isinstance(res, Resource) or res.name != name:
            raise ResourceError(f"resources['{name}'] must be the Resource named '{name}'")


def _event(kind: str, res: Resource, turn: int, value: int) -> dict[str, Any]:
    return {"type": kind, "resource": res.name, "turn": turn, "value": value}


def _settle(res: Resource, rate: int, turns: int) -> tuple[Resource, list[dict[str, Any]]]:
    if rate == 0 or turns == 0:
        return res, []
    raw = res.value + rate * turns
    if rate < 0 and raw <= res.floor:
        if res.value == res.floor:
            return res, []
        # First turn t with value + rate * t <= floor.
        turn = -(-(res.value - res.floor) // -rate)
        return replace(res, value=res.floor), [_event("ResourceDepleted", res, turn, res.floor)]
    if rate > 0 and res.cap is not None and raw >= res.cap:
        if res.value == res.cap:
            return res, []
        turn = -(-(res.cap - res.value) // rate)
        return replace(res, value=res.cap), [_event("ResourceCapped", res, turn, res.cap)]
    return replace(res, value=min(raw, MAX_VALUE)), []


def drip(
    resources: Mapping[str, Resource], rates: Mapping[str, int], turns: int = 1
) -> tuple[dict[str, Resource], list[dict[str, Any]]]:
    """Apply per-turn `rates` for `turns` turns; return (new resources, events).

    Resources without a rate are unchanged. Events are ``{"type": "ResourceDepleted" |
    "ResourceCapped", "resource", "turn", "value"}`` where `turn` (1..turns) is the turn it
    happened on; they are ordered by turn, then by resource name.
    """
    _check_resources(resources)
    if not isinstance(rates, Mapping):
        raise ResourceError(f"rates must be a mapping of resource name to per-turn change, got {rates!r}")
    _require_int(turns, "turns", 0, MAX_TURNS)
    for name, rate in rates.items():
        if name not in resources:
            raise ResourceError(f"rate given for unknown resource '{name}'")
        _require_int(rate, f"rate of '{name}'", -MAX_RATE, MAX_RATE)
    updated: dict[str, Resource] = {}
    events: list[dict[str, Any]] = []
    for name, res in resources.items():
        updated[name], found = _settle(res, rates.get(name, 0), turns)
        events.extend(found)
    events.sort(key=lambda e: (e["turn"], e["resource"]))
    return updated, events


def change(
    resources: Mapping[str, Resource], name: str, amount: int
) -> tuple[dict[str, Resource], list[dict[str, Any]]]:
    """Add (or, negative, spend) `amount` of one resource at once, clamped to floor/cap.

    Returns (new resources, events) like `drip`, with ``turn`` 0 on any event.
    """
    _check_resources(resources)
    if name not in resources:
        raise ResourceError(f"unknown resource '{name}'")
    _require_int(amount, f"amount of '{name}'", -MAX_VALUE, MAX_VALUE)
    res, events = _settle(resources[name], amount, 1)
    return {**resources, name: res}, [{**e, "turn": 0} for e in events]


def can_afford(resources: Mapping[str, Resource], costs: Mapping[str, int]) -> bool:
    """True when every cost can be paid without going below a resource's floor."""
    _check_resources(resources)
    for name, cost in costs.items():
        if name not in resources:
            raise ResourceError(f"unknown resource '{name}'")
        _require_int(cost, f"cost of '{name}'", 0, MAX_VALUE)
        if resources[name].value - cost < resources[name].floor:
            return False
    return True
