"""The director: a five-beat story machine that paces a mission.

Pure Python, no Django. The engine calls `step` after each turn with a few signals from the
mission runtime; the director answers with its new state and a list of effects (data). A beat
change asks for a recap, and sets the narration word window and the drama intensity target.

Beats, in order: inciting → rising → twist → climax → denouement.

Transition table (``min`` / ``max`` are the beat's turn thresholds after pacing, see below;
``turns`` counts turns spent in the current beat; ``progress`` is the fraction of objectives
complete, ``clock`` the fullest mission clock, both 0..1):

=========== ============ ==================================================================
from        to           when
=========== ============ ==================================================================
any but     denouement   the mission is complete or failed (the only multi-beat jump)
denouement
inciting    rising       turns >= min, or progress > 0 (first objective progress)
rising      twist        a twist card fired; or turns >= min and (progress >= 0.5 or
                         clock >= 0.5); or turns >= max
twist       climax       turns >= min and (clock >= 0.75 or progress >= 0.75); or turns >= max
climax      denouement   turns >= max (the mission's end is the first row)
denouement  —            terminal: nothing moves it except the GM (`set_beat`)
=========== ============ ==================================================================

Rows are checked in that order and at most one applies per step, so the director never skips
a beat unless the mission ended. ``min_turns`` keeps a beat from being rushed by a lucky early
objective; ``max_turns`` keeps a stalled table from sitting in one beat forever.

Pacing (0.5 slow .. 1.5 fast) scales both thresholds: ``max(1, round(turns / pacing))``.
Denouement's thresholds are not used by `step` (it is terminal); they are there for the
engine, e.g. to suggest closing the session.
The GM can move the beat anywhere with `set_beat`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

BEATS: tuple[str, ...] = ("inciting", "rising", "twist", "climax", "denouement")
BEAT_LABELS: dict[str, str] = {
    "inciting": "Inciting",
    "rising": "Rising",
    "twist": "Twist",
    "climax": "Climax",
    "denouement": "Denouement",
}
MISSION_STATUSES = ("active", "complete", "failed")

DEFAULT_MIN_TURNS = {"inciting": 2, "rising": 4, "twist": 2, "climax": 2, "denouement": 1}
DEFAULT_MAX_TURNS = {"inciting": 6, "rising": 12, "twist": 8, "climax": 10, "denouement": 6}
DEFAULT_WORD_LIMITS = {"inciting": 180, "rising": 150, "twist": 160, "climax": 200, "denouement": 220}
# The drama curve: calm set-up, building tension, a spike at the twist, a peak, release.
DEFAULT_INTENSITY = {"inciting": 0.7, "rising": 0.9, "twist": 1.15, "climax": 1.4, "denouement": 0.6}

TWIST_PROGRESS = 0.5
TWIST_CLOCK = 0.5
CLIMAX_PROGRESS = 0.75
CLIMAX_CLOCK = 0.75

PACING_RANGE = (0.5, 1.5)
TURNS_RANGE = (1, 200)
WORDS_RANGE = (20, 2000)
INTENSITY_RANGE = (0.0, 3.0)
MAX_TURNS_ELAPSED = 1000
MAX_HISTORY = 50
WEIGHT_KEYS = ("pacing", "min_turns", "max_turns", "word_limits", "intensity")
SIGNAL_KEYS = ("turns_elapsed", "mission_progress", "max_clock", "mission_status", "twist_fired")


class DirectorError(ValueError):
    """Director weights, state or signals are malformed or out of bounds."""


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DirectorError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise DirectorError(f"{name} must be {low}..{high}, got {value}")
    return value


def _num(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DirectorError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise DirectorError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


def _check_beat(beat: Any) -> str:
    if beat not in BEATS:
        raise DirectorError(f"unknown beat {beat!r}; expected one of {', '.join(BEATS)}")
    return beat


def _per_beat(overrides: Any, defaults: Mapping[str, Any], name: str, check: Any) -> dict[str, Any]:
    if overrides is None:
        return dict(defaults)
    if not isinstance(overrides, Mapping):
        raise DirectorError(f"{name} must be an object of beat to value, got {type(overrides).__name__}")
    merged = dict(defaults)
    for beat, value in overrides.items():
        if beat not in BEATS:
            raise DirectorError(f"{name}: unknown beat {beat!r}; expected one of {', '.join(BEATS)}")
        merged[beat] = check(value, f"{name}.{beat}")
    return merged


@dataclass(frozen=True)
class DirectorConfig:
    """Pacing knobs, usually built from a personality's director weights (`from_weights`)."""

    pacing: float = 1.0
    min_turns: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIN_TURNS))
    max_turns: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_TURNS))
    word_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WORD_LIMITS))
    intensity: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INTENSITY))

    def __post_init__(self) -> None:
        _num(self.pacing, "pacing", *PACING_RANGE)
        for name, table, check in (
            ("min_turns", self.min_turns, lambda v, n: _int(v, n, *TURNS_RANGE)),
            ("max_turns", self.max_turns, lambda v, n: _int(v, n, *TURNS_RANGE)),
            ("word_limits", self.word_limits, lambda v, n: _int(v, n, *WORDS_RANGE)),
            ("intensity", self.intensity, lambda v, n: _num(v, n, *INTENSITY_RANGE)),
        ):
            if not isinstance(table, dict) or set(table) != set(BEATS):
                raise DirectorError(f"{name} must give a value for each beat: {', '.join(BEATS)}")
            for beat in BEATS:
                check(table[beat], f"{name}.{beat}")
        for beat in BEATS:
            if self.min_turns[beat] > self.max_turns[beat]:
                raise DirectorError(
                    f"min_turns.{beat} ({self.min_turns[beat]}) is greater than "
                    f"max_turns.{beat} ({self.max_turns[beat]})"
                )

    @classmethod
    def from_weights(cls, weights: Mapping[str, Any] | None) -> DirectorConfig:
        """Build a config from a personality's director weights; missing keys keep defaults.

        Shape: ``{"pacing": 0.5..1.5, "min_turns": {beat: int}, "max_turns": {beat: int},
        "word_limits": {beat: int}, "intensity": {beat: float}}``, every key optional, and each
        per-beat object may name only some beats.
        """
        if weights is None:
            return cls()
        if not isinstance(weights, Mapping):
            raise DirectorError(f"director weights must be an object, got {type(weights).__name__}")
        unknown = sorted(str(k) for k in set(weights) - set(WEIGHT_KEYS))
        if unknown:
            raise DirectorError(
                f"unknown director weight(s): {', '.join(unknown)}; expected {', '.join(WEIGHT_KEYS)}"
            )
        pacing = _num(weights.get("pacing", 1.0), "pacing", *PACING_RANGE)

        def ints(low: int, high: int) -> Any:
            return lambda v, n: _int(v, n, low, high)

        def nums(low: float, high: float) -> Any:
            return lambda v, n: _num(v, n, low, high)

        return cls(
            pacing=pacing,
            min_turns=_per_beat(weights.get("min_turns"), DEFAULT_MIN_TURNS, "min_turns", ints(*TURNS_RANGE)),
            max_turns=_per_beat(weights.get("max_turns"), DEFAULT_MAX_TURNS, "max_turns", ints(*TURNS_RANGE)),
            word_limits=_per_beat(
                weights.get("word_limits"), DEFAULT_WORD_LIMITS, "word_limits", ints(*WORDS_RANGE)
            ),
            intensity=_per_beat(
                weights.get("intensity"), DEFAULT_INTENSITY, "intensity", nums(*INTENSITY_RANGE)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pacing": self.pacing,
            "min_turns": dict(self.min_turns),
            "max_turns": dict(self.max_turns),
            "word_limits": dict(self.word_limits),
            "intensity": dict(self.intensity),
        }

    def turn_threshold(self, beat: str, which: str = "min") -> int:
        """A beat's min or max turn count after pacing: ``max(1, round(turns / pacing))``."""
        _check_beat(beat)
        table = self.min_turns if which == "min" else self.max_turns
        return max(1, round(table[beat] / self.pacing))


@dataclass(frozen=True)
class DirectorState:
    beat: str = "inciting"
    turns_in_beat: int = 0
    total_turns: int = 0
    # Transitions, oldest first: {"from", "to", "reason", "by", "at_turn"}; the last
    # MAX_HISTORY are kept.
    history: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        _check_beat(self.beat)
        _int(self.turns_in_beat, "turns_in_beat", 0, 10_000_000)
        _int(self.total_turns, "total_turns", 0, 10_000_000)
        if not isinstance(self.history, tuple) or not all(isinstance(h, dict) for h in self.history):
            raise DirectorError("history must be a tuple of transition objects")

    def to_dict(self) -> dict[str, Any]:
        return {
            "beat": self.beat,
            "turns_in_beat": self.turns_in_beat,
            "total_turns": self.total_turns,
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DirectorState:
        if not isinstance(data, Mapping):
            raise DirectorError(f"director state must be an object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in set(data) - {"beat", "turns_in_beat", "total_turns", "history"})
        if unknown:
            raise DirectorError(f"unknown director state field(s): {', '.join(unknown)}")
        history = data.get("history", [])
        if not isinstance(history, list) or not all(isinstance(h, Mapping) for h in history):
            raise DirectorError("history must be a list of transition objects")
        return cls(
            beat=data.get("beat", "inciting"),
            turns_in_beat=data.get("turns_in_beat", 0),
            total_turns=data.get("total_turns", 0),
            history=tuple(dict(h) for h in history),
        )

    @property
    def label(self) -> str:
        return BEAT_LABELS[self.beat]


def _check_signals(signals: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(signals, Mapping):
        raise DirectorError(f"signals must be an object, got {type(signals).__name__}")
    unknown = sorted(str(k) for k in set(signals) - set(SIGNAL_KEYS))
    if unknown:
        raise DirectorError(f"unknown signal(s): {', '.join(unknown)}; expected {', '.join(SIGNAL_KEYS)}")
    status = signals.get("mission_status", "active")
    if status not in MISSION_STATUSES:
        raise DirectorError(f"mission_status must be one of {', '.join(MISSION_STATUSES)}, got {status!r}")
    twist = signals.get("twist_fired", False)
    if not isinstance(twist, bool):
        raise DirectorError(f"twist_fired must be true or false, got {twist!r}")
    return {
        "turns_elapsed": _int(signals.get("turns_elapsed", 1), "turns_elapsed", 0, MAX_TURNS_ELAPSED),
        "mission_progress": _num(signals.get("mission_progress", 0.0), "mission_progress", 0.0, 1.0),
        "max_clock": _num(signals.get("max_clock", 0.0), "max_clock", 0.0, 1.0),
        "mission_status": status,
        "twist_fired": twist,
    }


def _next_beat(config: DirectorConfig, beat: str, turns: int, s: Mapping[str, Any]) -> tuple[str, str] | None:
    """The transition-table row for `beat`: (next beat, reason) or None to stay."""
    if beat == "denouement":
        return None
    if s["mission_status"] != "active":
        return "denouement", f"mission {s['mission_status']}"
    low = config.turn_threshold(beat, "min")
    high = config.turn_threshold(beat, "max")
    progress, clock = s["mission_progress"], s["max_clock"]
    label = BEAT_LABELS[beat]
    ran_long = f"{turns} turns in {label} (max {high})"
    if beat == "inciting":
        if progress > 0:
            return "rising", "first objective progress"
        if turns >= low:
            return "rising", f"{turns} turns in {label}"
        return None
    if beat == "rising":
        if s["twist_fired"]:
            return "twist", "a twist card fired"
        if turns >= low and progress >= TWIST_PROGRESS:
            return "twist", f"objectives {progress:.0%} complete"
        if turns >= low and clock >= TWIST_CLOCK:
            return "twist", f"a clock is {clock:.0%} full"
        if turns >= high:
            return "twist", ran_long
        return None
    if beat == "twist":
        if turns >= low and clock >= CLIMAX_CLOCK:
            return "climax", f"a clock is {clock:.0%} full"
        if turns >= low and progress >= CLIMAX_PROGRESS:
            return "climax", f"objectives {progress:.0%} complete"
        if turns >= high:
            return "climax", ran_long
        return None
    # climax: the mission's end is handled above.
    if turns >= high:
        return "denouement", ran_long
    return None


def _transition(
    state: DirectorState, to: str, reason: str, by: str, total: int
) -> tuple[DirectorState, list[dict[str, Any]]]:
    record = {"from": state.beat, "to": to, "reason": reason, "by": by, "at_turn": total}
    new_state = DirectorState(
        beat=to,
        turns_in_beat=0,
        total_turns=total,
        history=(*state.history, record)[-MAX_HISTORY:],
    )
    effect = {
        "type": "BeatChanged",
        "from": state.beat,
        "to": to,
        "label": BEAT_LABELS[to],
        "reason": reason,
        "by": by,
        "recap_requested": True,
    }
    return new_state, [effect]


def step(
    config: DirectorConfig, state: DirectorState, signals: Mapping[str, Any]
) -> tuple[DirectorState, list[dict[str, Any]]]:
    """Advance the director by one engine step (see the transition table above).

    `signals`: ``turns_elapsed`` (int >= 0, default 1), ``mission_progress`` and ``max_clock``
    (0..1, default 0), ``mission_status`` ("active" | "complete" | "failed", default active),
    ``twist_fired`` (bool, default false). Returns (new state, effects); effects are
    ``BeatChanged`` dicts, at most one per step.
    """
    if not isinstance(config, DirectorConfig):
        raise DirectorError(f"config must be a DirectorConfig, got {type(config).__name__}")
    if not isinstance(state, DirectorState):
        raise DirectorError(f"state must be a DirectorState, got {type(state).__name__}")
    s = _check_signals(signals)
    turns = state.turns_in_beat + s["turns_elapsed"]
    total = state.total_turns + s["turns_elapsed"]
    row = _next_beat(config, state.beat, turns, s)
    if row is None:
        return replace(state, turns_in_beat=turns, total_turns=total), []
    to, reason = row
    return _transition(state, to, reason, "director", total)


_BY_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}", re.ASCII)


def set_beat(
    state: DirectorState, beat: str, by: str = "gm", reason: str | None = None
) -> tuple[DirectorState, list[dict[str, Any]]]:
    """Move to `beat` by hand (the GM may move it anywhere, backwards included).

    Setting the current beat again is a no-op with no effects.
    """
    if not isinstance(state, DirectorState):
        raise DirectorError(f"state must be a DirectorState, got {type(state).__name__}")
    _check_beat(beat)
    if not isinstance(by, str) or not _BY_RE.fullmatch(by):
        raise DirectorError(f"by must be 1-64 letters, digits or _.:@-, got {by!r}")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
        raise DirectorError("reason must be a string of at most 200 characters")
    if beat == state.beat:
        return state, []
    text = reason or f"set by {by}"
    return _transition(state, beat, text, by, state.total_turns)


def word_limit(config: DirectorConfig, beat: str) -> int:
    """The most narration words the beat allows."""
    return config.word_limits[_check_beat(beat)]


_WORD_RE = re.compile(r"\S+")
# A sentence ends in . ! ? or … possibly followed by closing quotes or brackets.
_SENTENCE_END_RE = re.compile("[.!?\u2026][\"'\u201d\u2019\u00bb)\\]]*$")


def enforce_window(text: str, limit: int) -> str:
    """Trim `text` to at most `limit` words, at a sentence boundary where possible.

    Text within the limit is returned unchanged. Otherwise the cut falls after the last whole
    sentence inside the first `limit` words, provided that keeps at least half of them; if not
    (one very long sentence), the text is cut after word `limit` and ends with "…". Whitespace
    inside the kept part is preserved; trailing whitespace is dropped.
    """
    if not isinstance(text, str):
        raise DirectorError(f"text must be a string, got {type(text).__name__}")
    _int(limit, "limit", 1, 100_000)
    words = list(_WORD_RE.finditer(text))
    if len(words) <= limit:
        return text
    kept = words[:limit]
    for count in range(limit, 0, -1):
        if count * 2 < limit:
            break
        if _SENTENCE_END_RE.search(kept[count - 1].group()):
            return text[: kept[count - 1].end()]
    cut = text[: kept[-1].end()].rstrip(",;:-\u2013\u2014")
    return cut + "…"


def intensity_target(config: DirectorConfig, beat: str, dda_bounds: tuple[float, float]) -> float:
    """The drama curve's intensity for `beat`, clamped into the DDA caps `dda_bounds`.

    The director never asks for more (or less) than DDA allows.
    """
    _check_beat(beat)
    if not isinstance(dda_bounds, (tuple, list)) or len(dda_bounds) != 2:
        raise DirectorError(f"dda_bounds must be a (lo, hi) pair, got {dda_bounds!r}")
    lo = _num(dda_bounds[0], "dda_bounds lo", *INTENSITY_RANGE)
    hi = _num(dda_bounds[1], "dda_bounds hi", *INTENSITY_RANGE)
    if lo > hi:
        raise DirectorError(f"dda_bounds lo ({lo}) is greater than hi ({hi})")
    return max(lo, min(hi, config.intensity[beat]))
