"""Experience and levels.

Pure Python, no Django. The XP curve is triangular: reaching level ``n`` takes
``100 * n * (n - 1) / 2`` total XP, so each level costs 100 XP more than the one before:

=====  ========  ==============
level  total XP  XP from prior
=====  ========  ==============
1      0         -
2      100       100
3      300       200
4      600       300
5      1,000     400
10     4,500     900
20     19,000    1,900
=====  ========  ==============

Levels stop at `MAX_LEVEL`; XP keeps accumulating past it (up to `MAX_XP`) so nothing earned
is lost if the cap is raised later.
"""

from __future__ import annotations

from typing import Any

MAX_LEVEL = 20
XP_STEP = 100
MAX_XP = 10_000_000
MAX_GRANT = 100_000


class ProgressionError(ValueError):
    """An XP amount or level is out of bounds."""


def _require_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProgressionError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ProgressionError(f"{name} must be {low}..{high}, got {value}")
    return value


def xp_for_level(level: int) -> int:
    """Total XP needed to reach `level` (1..MAX_LEVEL)."""
    _require_int(level, "level", 1, MAX_LEVEL)
    return XP_STEP * level * (level - 1) // 2


def level_for_xp(xp: int) -> int:
    """The level a character with `xp` total XP has reached, capped at MAX_LEVEL."""
    _require_int(xp, "xp", 0, MAX_XP)
    level = 1
    while level < MAX_LEVEL and xp_for_level(level + 1) <= xp:
        level += 1
    return level


def xp_to_next_level(xp: int) -> int | None:
    """XP still needed for the next level, or None at the level cap."""
    level = level_for_xp(xp)
    if level == MAX_LEVEL:
        return None
    return xp_for_level(level + 1) - xp


def grant_xp(xp: int, amount: int) -> tuple[int, int]:
    """Add `amount` XP; return (new_xp, levels_gained). Negative amounts are refused.

    Total XP is capped at MAX_XP; levels at MAX_LEVEL.
    """
    _require_int(xp, "xp", 0, MAX_XP)
    if isinstance(amount, int) and not isinstance(amount, bool) and amount < 0:
        raise ProgressionError(f"XP cannot be taken away: amount must be >= 0, got {amount}")
    _require_int(amount, "amount", 0, MAX_GRANT)
    new_xp = min(xp + amount, MAX_XP)
    return new_xp, level_for_xp(new_xp) - level_for_xp(xp)
