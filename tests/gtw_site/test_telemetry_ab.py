"""`gtw bench turn --telemetry ab`'s statistics: the p95 difference between the arms and its
bootstrap interval, turns resampled with their clients' samples kept together; the paired
bootstrap over ABBA neighbours; the server's own time to the first delta, read from the trace."""

from __future__ import annotations

import random

import pytest

from gtw_site.bench.turn_variants import (
    bootstrap_p95_difference,
    median_paired_difference,
    p95_difference,
    paired_bootstrap,
    server_pairs,
    server_timeline,
)


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


def _pairs(rng: random.Random, n: int, shift: float) -> tuple[list[list[float]], list[list[float]]]:
    """n ABBA neighbours: the machine's load of the moment moves both turns of a pair alike."""
    on, off = [], []
    for _ in range(n):
        load = rng.expovariate(1 / 40)  # far larger than the shift we look for
        on.append([100 + load + shift + rng.gauss(0, 0.3)])
        off.append([100 + load + rng.gauss(0, 0.3)])
    return on, off


def test_pairing_resolves_a_shift_that_the_shared_load_hides_from_an_unpaired_bootstrap():
    rng = random.Random(3)
    on, off = _pairs(rng, 400, 1.5)
    _point, low, high = paired_bootstrap(on, off, median_paired_difference, resamples=400)
    assert 1.0 < low <= 1.5 <= high < 2.0
    _point, low, high = bootstrap_p95_difference(on, off, resamples=400)
    assert high - low > 10  # the same samples, each arm resampled alone: tens of ms wide


def test_paired_samples_must_come_in_pairs():
    with pytest.raises(ValueError, match="same number"):
        paired_bootstrap([[1.0]], [], p95_difference)


def test_the_server_view_is_read_from_the_trace_per_post_warm_ups_left_out(tmp_path):
    lines = []
    # Two warm-up rounds (on, off; off, on), then one counted pair; times in seconds.
    arms = ["telemetry on", "telemetry off", "telemetry off", "telemetry on", "telemetry on", "telemetry off"]
    for k, ms in enumerate([50, 60, 70, 80, 10.0, 12.5]):
        t0 = 100.0 + k
        lines += [f"{t0:.6f} 1 client.post_sent", f"{t0 + 0.002:.6f} 2 action.received"]
        if k == 4:  # a write of the last turn lands in this one's path
            lines.append(f"{t0 + 0.003:.6f} 3 telemetry.written")
        lines.append(f"{t0 + 0.002 + ms / 1000:.6f} 3 turn.first_delta")
    lines.append("105.5 3 turn.first_delta")  # a later mark of the same turn: the first one counts
    path = tmp_path / "trace.txt"
    path.write_text("\n".join(reversed(lines)) + "\n")  # processes append out of order

    timeline = server_timeline(path)
    assert [round(ms, 3) for ms, _w in timeline] == [50, 60, 70, 80, 10.0, 12.5]
    assert [w for _ms, w in timeline] == [0, 0, 0, 0, 1, 0]
    on, off = server_pairs(arms, [ms for ms, _w in timeline])
    assert [[round(x, 3) for x in t] for t in on] == [[10.0]]
    assert [[round(x, 3) for x in t] for t in off] == [[12.5]]
