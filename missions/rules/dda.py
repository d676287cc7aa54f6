"""Dynamic difficulty adjustment (DDA).

Pure Python, no Django. After each check the engine calls `adjust` with the outcomes of the
recent checks (newest last) and the current `DdaState`. Over the last `window` outcomes:

* failures >= ``ease_ratio`` of them  -> one step easier: DC offset -step, intensity -intensity_step;
* successes >= ``harden_ratio`` of them -> one step harder: DC offset +step, intensity +intensity_step;
* otherwise, or with fewer than `min_samples` outcomes -> hold.

Critical successes and failures count as successes and failures. ``ease_ratio + harden_ratio``
must exceed 1 so that both can never hold at once. The result never leaves the configured caps
(``dc_min_offset..dc_max_offset`` and ``intensity_min..intensity_max``) and moves at most one step
per call; a state that is outside the caps (because the config changed) is first pulled back
inside them. `reason` is a sentence for the event log, e.g. "4 of last 6 checks failed: DC -1".
`apply_dc` adds the offset to a base DC and clamps the result to 5..30.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

SUCCESS_OUTCOMES = frozenset({"success", "critical_success"})
FAILURE_OUTCOMES = frozenset({"failure", "critical_failure"})
OUTCOMES = SUCCESS_OUTCOMES | FAILURE_OUTCOMES
DC_BOUNDS = (5, 30)
MAX_WINDOW = 50
OFFSET_LIMIT = 10
INTENSITY_LIMITS = (0.1, 3.0)
MAX_OUTCOMES = 10_000
# Intensity is rounded so repeated steps of 0.1 read 1.2, not 1.2000000000000002; nine places
# keep any configured step (and so the one-step-per-call promise) intact.
_PLACES = 9
# 0.6 * 5 may be 3.0000000000000004; a count is compared with a little slack.
_EPS = 1e-9


class DdaError(ValueError):
    """A DDA config, state or outcome list is malformed or out of bounds."""


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DdaError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise DdaError(f"{name} must be {low}..{high}, got {value}")
    return value


def _num(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DdaError(f"{name} must be a finite number, got {value!r}")
    if value > high or value < low or (low_open and value == low):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise DdaError(f"{name} must be in {interval}, got {value}")
    return float(value)


@dataclass(frozen=True)
class DdaConfig:
    window: int = 6
    dc_min_offset: int = -3
    dc_max_offset: int = 3
    intensity_min: float = 0.5
    intensity_max: float = 1.5
    step: int = 1
    intensity_step: float = 0.1
    ease_ratio: float = 0.6
    harden_ratio: float = 0.7
    min_samples: int = 3

    def __post_init__(self) -> None:
        _int(self.window, "window", 1, MAX_WINDOW)
        _int(self.dc_min_offset, "dc_min_offset", -OFFSET_LIMIT, 0)
        _int(self.dc_max_offset, "dc_max_offset", 0, OFFSET_LIMIT)
        lo, hi = INTENSITY_LIMITS
        _num(self.intensity_min, "intensity_min", lo, hi)
        _num(self.intensity_max, "intensity_max", lo, hi)
        if self.intensity_min > self.intensity_max:
            raise DdaError(
                f"intensity_min ({self.intensity_min}) is greater than intensity_max ({self.intensity_max})"
            )
        _int(self.step, "step", 1, OFFSET_LIMIT)
        _num(self.intensity_step, "intensity_step", 0.0, 1.0, low_open=True)
        _num(self.ease_ratio, "ease_ratio", 0.0, 1.0, low_open=True)
        _num(self.harden_ratio, "harden_ratio", 0.0, 1.0, low_open=True)
        if self.ease_ratio + self.harden_ratio <= 1:
            raise DdaError(
                "ease_ratio + harden_ratio must exceed 1 so both cannot trigger at once, "
                f"got {self.ease_ratio} + {self.harden_ratio}"
            )
        _int(self.min_samples, "min_samples", 1, self.window)

    @property
    def intensity_bounds(self) -> tuple[float, float]:
        """(lo, hi) for `narrative.director.intensity_target`."""
        return (self.intensity_min, self.intensity_max)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DdaConfig:
        if not isinstance(data, Mapping):
            raise DdaError(f"DDA config must be an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(data) - names)
        if unknown:
            expected = ", ".join(sorted(names))
            raise DdaError(f"unknown DDA setting(s): {', '.join(unknown)}; expected {expected}")
        return cls(**data)


@dataclass(frozen=True)
class DdaState:
    dc_offset: int = 0
    intensity: float = 1.0

    def __post_init__(self) -> None:
        _int(self.dc_offset, "dc_offset", -OFFSET_LIMIT, OFFSET_LIMIT)
        _num(self.intensity, "intensity", *INTENSITY_LIMITS)

    def to_dict(self) -> dict[str, Any]:
        return {"dc_offset": self.dc_offset, "intensity": self.intensity}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DdaState:
        if not isinstance(data, Mapping):
            raise DdaError(f"DDA state must be an object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in set(data) - {"dc_offset", "intensity"})
        if unknown:
            raise DdaError(f"unknown DDA state field(s): {', '.join(unknown)}")
        return cls(dc_offset=data.get("dc_offset", 0), intensity=data.get("intensity", 1.0))


@dataclass(frozen=True)
class DdaAdjustment:
    dc_offset: int
    intensity: float
    reason: str
    changed: bool

    @property
    def state(self) -> DdaState:
        return DdaState(dc_offset=self.dc_offset, intensity=self.intensity)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DdaAdjustment:
        try:
            state = DdaState(dc_offset=data["dc_offset"], intensity=data["intensity"])
            reason, changed = data["reason"], data["changed"]
        except KeyError as exc:
            raise DdaError(f"DDA adjustment is missing {exc.args[0]!r}") from None
        if not isinstance(reason, str) or not isinstance(changed, bool):
            raise DdaError("DDA adjustment needs a string 'reason' and a boolean 'changed'")
        return cls(dc_offset=state.dc_offset, intensity=state.intensity, reason=reason, changed=changed)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _describe(before: DdaState, after_offset: int, after_intensity: float) -> str:
    parts = []
    if after_offset != before.dc_offset:
        parts.append(f"DC {_signed(after_offset - before.dc_offset)}")
    if after_intensity != before.intensity:
        parts.append(f"intensity {after_intensity:g}")
    return ", ".join(parts)


def adjust(config: DdaConfig, recent_outcomes: Sequence[str], current: DdaState) -> DdaAdjustment:
    """Decide the next DC offset and intensity from the recent check outcomes (newest last)."""
    if not isinstance(config, DdaConfig):
        raise DdaError(f"config must be a DdaConfig, got {type(config).__name__}")
    if not isinstance(current, DdaState):
        raise DdaError(f"current must be a DdaState, got {type(current).__name__}")
    if isinstance(recent_outcomes, (str, bytes)) or not isinstance(recent_outcomes, Sequence):
        raise DdaError(f"recent_outcomes must be a list of outcomes, got {type(recent_outcomes).__name__}")
    if len(recent_outcomes) > MAX_OUTCOMES:
        raise DdaError(f"at most {MAX_OUTCOMES} outcomes, got {len(recent_outcomes)}")
    for outcome in recent_outcomes:
        if outcome not in OUTCOMES:
            expected = ", ".join(sorted(OUTCOMES))
            raise DdaError(f"unknown check outcome {outcome!r}; expected one of {expected}")

    # Pull a state from an older, wider config back inside today's caps first.
    offset = int(_clamp(current.dc_offset, config.dc_min_offset, config.dc_max_offset))
    intensity = _clamp(current.intensity, config.intensity_min, config.intensity_max)
    clamped = (offset, intensity) != (current.dc_offset, current.intensity)

    window = list(recent_outcomes[-config.window :])
    n = len(window)
    failed = sum(1 for o in window if o in FAILURE_OUTCOMES)
    succeeded = n - failed
    direction = 0
    if n < config.min_samples:
        summary = f"only {n} check{'s' if n != 1 else ''} so far (need {config.min_samples})"
    elif failed >= config.ease_ratio * n - _EPS:
        direction = -1
        summary = f"{failed} of last {n} checks failed"
    elif succeeded >= config.harden_ratio * n - _EPS:
        direction = 1
        summary = f"{succeeded} of last {n} checks succeeded"
    else:
        summary = f"{failed} of last {n} checks failed, {succeeded} succeeded"

    new_offset = int(_clamp(offset + direction * config.step, config.dc_min_offset, config.dc_max_offset))
    stepped = round(intensity + direction * config.intensity_step, _PLACES)
    new_intensity = _clamp(stepped, config.intensity_min, config.intensity_max)
    changed = clamped or (new_offset, new_intensity) != (offset, intensity)
    moved = _describe(current, new_offset, new_intensity)
    if direction and (new_offset, new_intensity) == (offset, intensity):
        limit = "easiest" if direction < 0 else "hardest"
        verdict = f"already at the {limit} setting (DC {_signed(offset)}, intensity {intensity:g})"
        reason = f"{summary}: {verdict}"
        if clamped:
            reason += f"; pulled inside the caps ({moved})"
    elif moved:
        reason = f"{summary}: {moved}"
        if clamped and not direction:
            reason += " (pulled inside the caps)"
    else:
        reason = f"{summary}: holding at DC {_signed(offset)}, intensity {intensity:g}"
    return DdaAdjustment(dc_offset=new_offset, intensity=new_intensity, reason=reason, changed=changed)


def apply_dc(base_dc: int, adjustment: DdaAdjustment | DdaState | int) -> int:
    """The DC to roll against: `base_dc` plus the DDA offset, clamped to 5..30."""
    _int(base_dc, "base_dc", 1, 40)
    if isinstance(adjustment, (DdaAdjustment, DdaState)):
        offset = adjustment.dc_offset
    else:
        offset = _int(adjustment, "dc offset", -OFFSET_LIMIT, OFFSET_LIMIT)
    low, high = DC_BOUNDS
    return max(low, min(high, base_dc + offset))
