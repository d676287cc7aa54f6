import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missions.rules.progression import (
    MAX_GRANT,
    MAX_LEVEL,
    MAX_XP,
    ProgressionError,
    grant_xp,
    level_for_xp,
    xp_for_level,
    xp_to_next_level,
)


def test_documented_curve_values():
    assert [xp_for_level(n) for n in (1, 2, 3, 4, 5, 10, 20)] == [0, 100, 300, 600, 1000, 4500, 19000]


def test_curve_is_strictly_increasing_with_growing_steps():
    totals = [xp_for_level(n) for n in range(1, MAX_LEVEL + 1)]
    steps = [b - a for a, b in itertools.pairwise(totals)]
    assert all(s > 0 for s in steps)
    assert steps == sorted(steps)


@settings(deadline=None)
@given(st.integers(0, MAX_XP), st.integers(0, MAX_XP))
def test_level_for_xp_is_monotonic_and_inverts_xp_for_level(a, b):
    low, high = sorted((a, b))
    assert level_for_xp(low) <= level_for_xp(high)
    level = level_for_xp(low)
    assert xp_for_level(level) <= low
    assert level == MAX_LEVEL or low < xp_for_level(level + 1)


@settings(deadline=None)
@given(st.integers(0, MAX_XP), st.integers(0, MAX_GRANT))
def test_grant_adds_and_counts_levels(xp, amount):
    new_xp, gained = grant_xp(xp, amount)
    assert new_xp == min(xp + amount, MAX_XP)
    assert gained == level_for_xp(new_xp) - level_for_xp(xp) >= 0


def test_level_up_boundaries_and_cap():
    assert grant_xp(99, 1) == (100, 1)
    assert grant_xp(0, 300) == (300, 2)
    assert level_for_xp(MAX_XP) == MAX_LEVEL
    assert grant_xp(xp_for_level(MAX_LEVEL), 5000) == (xp_for_level(MAX_LEVEL) + 5000, 0)
    assert xp_to_next_level(150) == 150
    assert xp_to_next_level(xp_for_level(MAX_LEVEL)) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: grant_xp(10, -5), "XP cannot be taken away"),
        (lambda: grant_xp(-1, 5), "xp must be 0..10000000"),
        (lambda: grant_xp(0, 1.5), "amount must be an integer"),
        (lambda: grant_xp(0, MAX_GRANT + 1), "amount must be 0..100000"),
        (lambda: xp_for_level(0), "level must be 1..20"),
        (lambda: xp_for_level(MAX_LEVEL + 1), "level must be 1..20"),
        (lambda: level_for_xp(True), "xp must be an integer"),
    ],
)
def test_bad_values_are_refused(call, message):
    with pytest.raises(ProgressionError, match=message):
        call()
