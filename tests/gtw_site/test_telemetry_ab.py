"""`gtw bench turn --telemetry ab`'s statistics: the p95 difference between the arms and its
bootstrap interval, turns resampled with their clients' samples kept together."""

from __future__ import annotations

import random

from gtw_site.bench.turn_variants import bootstrap_p95_difference


def _turns(rng: random.Random, n: int, shift: float) -> list[list[float]]:
    out = []
    for _ in range(n):
        turn_load = rng.expovariate(1 / 10)  # the machine's load moves all of a turn's clients
        out.append([100 + shift + turn_load + rng.gauss(0, 3) for _ in range(8)])
    return out


def test_a_real_shift_is_found_and_its_interval_holds_it():
    rng = random.Random(1)
    off, on = _turns(rng, 300, 0), _turns(rng, 300, 25)
    point, low, high = bootstrap_p95_difference(on, off, resamples=500)
    assert low <= point <= high
    assert low > 0 and low <= 25 <= high


def test_no_shift_gives_an_interval_across_zero():
    rng = random.Random(2)
    off, on = _turns(rng, 300, 0), _turns(rng, 300, 0)
    _point, low, high = bootstrap_p95_difference(on, off, resamples=500)
    assert low < 0 < high
