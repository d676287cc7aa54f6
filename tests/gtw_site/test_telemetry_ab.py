"""`gtw bench turn --telemetry ab`'s statistics: the p95 difference between the arms and its
bootstrap interval, turns resampled with their clients' samples kept together; the paired
bootstrap over ABBA neighbours; the server's own time to the first delta, read from the trace."""

from __future__ import annotations

import random

import pytest

from gtw_site.bench.common import percentile
from gtw_site.bench.turn_variants import (
    bootstrap_p95_difference,
    hd_p95_difference,
    hd_quantile,
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
        if k == 4:  # a write of the last turn, begun before this action, ends in its path
            lines += [f"{t0 - 0.001:.6f} 3 telemetry.writing", f"{t0 + 0.003:.6f} 3 telemetry.written"]
        if k == 5:  # one that starts inside this turn's path and ends after its first delta
            lines += [f"{t0 + 0.010:.6f} 4 telemetry.writing", f"{t0 + 0.030:.6f} 4 telemetry.written"]
        lines.append(f"{t0 + 0.002 + ms / 1000:.6f} 3 turn.first_delta")
        lines.append(f"{t0 + 0.002 + ms / 1000:.6f} 3 turn.first_delta_cpu_us={1000 + k}")
    lines.append("105.5 3 turn.first_delta")  # a later mark of the same turn: the first one counts
    path = tmp_path / "trace.txt"
    path.write_text("\n".join(reversed(lines)) + "\n")  # processes append out of order

    timeline = server_timeline(path)
    assert [round(t.ms, 3) for t in timeline] == [50, 60, 70, 80, 10.0, 12.5]
    assert [t.writes_finished for t in timeline] == [0, 0, 0, 0, 1, 0]
    # Overlap with the path (action received → first delta), whichever end of the write is in it.
    assert [round(t.overlap_ms, 3) for t in timeline] == [0, 0, 0, 0, 1.0, 4.5]
    assert [round(t.cpu_ms, 3) for t in timeline] == [1.0, 1.001, 1.002, 1.003, 1.004, 1.005]
    on, off = server_pairs(arms, [t.ms for t in timeline])
    assert [[round(x, 3) for x in t] for t in on] == [[10.0]]
    assert [[round(x, 3) for x in t] for t in off] == [[12.5]]


def test_the_harrell_davis_p95_weighs_the_tail_not_one_sample():
    samples = [float(x) for x in range(1, 201)]
    assert hd_quantile(samples, 0.5) == pytest.approx(100.5, abs=0.01)
    assert 188 < hd_quantile(samples, 0.95) < 193  # between the order statistics around rank 190
    # The largest sample alone, far out, moves the nearest-rank p95 not at all, the HD estimate
    # by its small weight: a tail of a few samples no longer flips the p95 from one rank to the next.
    spiked = [*samples[:199], 1200.0]
    assert percentile(spiked, 95) == percentile(samples, 95)
    assert 0 < hd_quantile(spiked, 0.95) - hd_quantile(samples, 0.95) < 1000 * 0.01


def test_the_paired_bootstrap_of_the_hd_p95_holds_a_real_shift():
    rng = random.Random(4)
    on, off = _pairs(rng, 400, 1.5)
    point, low, high = paired_bootstrap(on, off, hd_p95_difference, resamples=400)
    assert low <= 1.5 <= high and low <= point <= high
    on, off = _pairs(rng, 400, 0.0)
    _point, low, high = paired_bootstrap(on, off, median_paired_difference, resamples=400)
    assert low < 0 < high
