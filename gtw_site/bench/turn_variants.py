"""`gtw bench turn --telemetry ab` and `gtw bench turn --narrator local_llm`: the turn benchmark
(gtw_site/bench/turn.py: its server, clients and scoring) for issue 17's two questions.

- `--telemetry ab`: what telemetry costs the first delta. One server runs with GTW_TELEMETRY_AB=1
  (a bench-only switch: odd-numbered sessions record nothing — no ProviderCall rows, no prompts,
  no wrapper round the adapter) and two sessions, one even and one odd, each with the same N
  clients connected for the whole run. Turns alternate one by one, in ABBA order (on, off, off,
  on, …); `--turns` is per arm, and the k-th turn of each arm are neighbours in time: a pair
  that shares the machine's load of that moment. Two views, each with a PAIRED bootstrap 95%
  interval (pairs resampled together, 2,000 times): the clients' (POST sent → first delta, all
  N clients) and the server's own (Daphne's `action.received` → the worker's
  `turn.first_delta`, from the run's --trace timeline: no client, loopback or event-loop time),
  for the p95 difference (nearest rank, and the Harrell-Davis p95: every order statistic
  weighted, less jumpy over a few hundred turns) and, server side, the median paired difference.
  The timeline also shows how long the background telemetry writer was writing inside a turn's
  path to its first delta, and the turn thread's CPU to its first delta per arm (what telemetry
  adds on the path itself, resolved to tenths of a ms where the wall clock is not); the run prints
  its cost per pair and the server's CPU per turn (its telemetry writers' share apart, from
  /proc). Then an in-process micro A/B (`micro_ab`: the narrator's get and first streamed
  event, and the whole call with its row handed off, alternating telemetry on and off) in wall
  and thread CPU time, which resolves microseconds on a busy machine (GTW_BENCH_MICRO_CALLS
  calls per arm, default 3,000).
- `--narrator local_llm`: the turn with the local GGUF narrator (SmolLM2-135M, one thread) in
  place of the offline one; the first delta then waits for the offline rules' tool round and the
  model's first words.

Rows go to their own section of docs/BENCHMARKS.md, keyed by variant and clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import math
import os
import random
import secrets
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect

from gtw_site import trace
from gtw_site.bench import turn as base
from gtw_site.bench.common import (
    BASE_DIR,
    DOC,
    UNSET_ENV,
    json_ms,
    machine_text,
    percentile,
    server_failed,
    start_server,
    stop_server,
    update_section,
    wait_healthy,
)

SECTION = "## gtw bench turn: telemetry A/B and narrators"
HEADER = (
    "| variant | clients | turns | first delta p50 / p95 / p99 (ms) | committed p50 / p95 (ms) "
    "| lost deltas / events | machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---|---:|---:|---|---|---|---|---|---|"
)
HOW = """\
How measured: as `gtw bench turn` (its own `gtw up`, N websocket clients on loopback, times from
the client's POST to the first narration delta and to the Narration event, 2 warm-up turns).
`--telemetry ab`: one server with `GTW_TELEMETRY_AB=1`, two sessions (even id: telemetry on;
odd id: no ProviderCall rows, no stored prompts and no recording wrapper), N clients on each for
the whole run, turns alternating one by one in ABBA order so both arms see the same load;
`--turns` is per arm. The p95 difference comes with a paired bootstrap 95% interval (ABBA
neighbours resampled together, 2,000 times), from the clients and from the server's own trace
(action received → first delta sent). `--narrator local_llm`: the local GGUF narrator
(SmolLM2-135M Q4_1, one thread, `GTW_LOCAL_LLM_MAX_TOKENS` tokens) instead of the offline one."""
BOOTSTRAP = 2000
MICRO_CALLS = 3000  # per arm, in-process


def _row(variant: str, n: int, turns: int, r: base.Results, machine: str, command: str) -> str:
    fd = " / ".join(f"{percentile(r.first_delta, q):.1f}" for q in (50, 95, 99))
    cm = " / ".join(f"{percentile(r.commit, q):.1f}" for q in (50, 95))
    return (
        f"| {variant} | {n} | {turns} | {fd} | {cm} | {r.lost_deltas} / {r.lost_events} | {machine} "
        f"| {datetime.now(UTC).date()} | `{command}` |"
    )


def _sessions(n: int, ab: bool) -> tuple[list[int], list[str]]:
    """One session, or (A/B) an even- and an odd-numbered one the same players belong to."""
    first, tokens = base._setup_game(n)
    if not ab:
        return [first], tokens
    for _ in range(4):
        other, tokens = base._setup_game(n, end_old=False)
        if other % 2 != first % 2:
            on, off = sorted((first, other), key=lambda sid: sid % 2)
            return [on, off], tokens
    raise RuntimeError("could not open sessions of both parities")


async def _connect(port: int, session_id: int, tokens: list[str], tick: asyncio.Event):
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
    options = dict(origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None)
    clients: list[base.Client] = []
    readers: list[asyncio.Task] = []
    for token in tokens:  # one at a time: connecting is not what we measure
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **options)
        clients.append(base.Client(ws))
        readers.append(asyncio.create_task(base._read(clients[-1], tick)))
    for client in clients:
        await client.ws.send('{"type": "ping"}')
    try:
        await asyncio.wait_for(asyncio.gather(*(c.pong.wait() for c in clients)), 30)
    except TimeoutError:
        raise RuntimeError("not every client answered a ping within 30 s") from None
    return clients, readers


async def _turn(port: int, session_id: int, token: str, key: str, clients, tick: asyncio.Event):
    sent, returned, seq = await asyncio.to_thread(base._post_action, port, session_id, token, key)
    deadline = time.perf_counter() + base.TURN_TIMEOUT_S
    while not all(seq in c.done for c in clients) and time.perf_counter() < deadline:
        tick.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tick.wait(), deadline - time.perf_counter())
    return seq, sent, returned


ARMS = ("telemetry on", "telemetry off")
CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: str, children: bool = False) -> tuple[int, float]:
    """(ppid, user + system CPU seconds) from a /proc/<pid>[/task/<tid>]/stat file; `children`:
    plus the CPU of the children it has reaped (a PostgreSQL backend that ended, a worker)."""
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": comm may hold spaces
    used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return int(fields[1]), used * CLOCK_TICK_S


class ServerCpu:
    """The CPU time of the server under test: `gtw up` and every process under it, plus the
    embedded PostgreSQL and Redis of its data folder and their children (a write's INSERTs and
    fsyncs are the database's CPU); and of the telemetry writer threads in them (named
    "gtw-telemetry" in /proc, gtw_site.telemetry). Linux only; zeros elsewhere."""

    def __init__(self, root_pid: int, folder: Path) -> None:
        self.root_pid = root_pid
        self.folder = str(folder)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        roots = {self.root_pid}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                ppid, _cpu = _stat_cpu(f"/proc/{pid}/stat")
                if ppid == 1 and self.folder in Path(f"/proc/{pid}/cmdline").read_text():
                    roots.add(pid)  # the embedded servers, daemonised
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(pid)
        tree, todo = [], list(roots)
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        return tree

    def seconds(self) -> tuple[float, float]:
        """(the whole server's CPU seconds so far, its telemetry writers' CPU seconds so far). A
        process that ended counts in its parent's reaped-children time."""
        total = writers = 0.0
        try:
            pids = self._tree()
        except OSError:
            return 0.0, 0.0
        for pid in pids:
            try:
                total += _stat_cpu(f"/proc/{pid}/stat", children=True)[1]
                for task in os.scandir(f"/proc/{pid}/task"):
                    if Path(task.path, "comm").read_text().strip() == "gtw-telemetry":
                        writers += _stat_cpu(f"{task.path}/stat")[1]
            except (OSError, ValueError, IndexError):
                continue  # it exited meanwhile
        return total, writers


@dataclass
class RunCost:
    """What the counted turns cost: wall seconds, the server's CPU seconds (ServerCpu) and its
    telemetry writers' share."""

    seconds: float = 0.0
    writer_cpu_s: float = 0.0
    server_cpu_s: float = 0.0


async def _run_ab(
    port: int, sessions: list[int], tokens: list[str], turns: int, cpu: ServerCpu | None = None
) -> tuple[dict[str, base.Results], dict[str, list[list[float]]], list[str], RunCost]:
    """Both sessions' clients connected throughout; turns one by one in ABBA order. Returns the
    results per arm; per arm, each counted turn's client first-delta samples (the k-th of each
    arm are neighbours in time: a pair); the arm of every POST in order, warm-ups included
    (the --trace timeline's turns line up with it); and the counted turns' cost (`cpu`: the
    server's CPU, read before and after them)."""
    names = list(ARMS)
    cost = RunCost()
    snapshot = cpu.seconds if cpu is not None else (lambda: (0.0, 0.0))
    posted: list[str] = []
    ticks = {name: asyncio.Event() for name in names}
    results = {name: base.Results() for name in names}
    per_turn: dict[str, list[list[float]]] = {name: [] for name in names}
    joined: dict[str, tuple] = {}
    try:
        for name, session_id in zip(names, sessions, strict=True):
            joined[name] = await _connect(port, session_id, tokens, ticks[name])
        run = secrets.token_hex(4)
        started = start_cpu = None
        for i in range(base.WARMUP_TURNS + turns):
            if i == base.WARMUP_TURNS:
                started, start_cpu = time.perf_counter(), snapshot()
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                session_id = sessions[names.index(name)]
                clients = joined[name][0]
                posted.append(name)
                seq, sent, returned = await _turn(
                    port, session_id, tokens[0], f"ab-{run}-{name[-2:]}-{i}", clients, ticks[name]
                )
                if i >= base.WARMUP_TURNS:
                    before = len(results[name].first_delta)
                    base._score(results[name], clients, seq, sent, returned)
                    per_turn[name].append(results[name].first_delta[before:])
        if started is not None and start_cpu is not None:
            cost.seconds = time.perf_counter() - started
            end_cpu = snapshot()
            cost.server_cpu_s, cost.writer_cpu_s = end_cpu[0] - start_cpu[0], end_cpu[1] - start_cpu[1]
        for name in names:
            results[name].received = [c.seqs for c in joined[name][0]]
        return results, per_turn, posted, cost
    finally:
        for clients, readers in joined.values():
            for task in readers:
                task.cancel()
            await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)


def bootstrap_p95_difference(
    on: list[list[float]], off: list[list[float]], *, resamples: int = BOOTSTRAP, seed: int = 17
) -> tuple[float, float, float]:
    """The p95 of `on` minus the p95 of `off` and its bootstrap 95% interval: turns (each a list
    of the clients' samples, which move together) resampled with replacement within each arm."""

    def p95(turns: list[list[float]]) -> float:
        return percentile([x for turn in turns for x in turn], 95)

    rng = random.Random(seed)
    point = p95(on) - p95(off)
    diffs = sorted(
        p95(rng.choices(on, k=len(on))) - p95(rng.choices(off, k=len(off))) for _ in range(resamples)
    )
    return point, diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]


def paired_bootstrap(
    on: list[list[float]],
    off: list[list[float]],
    stat: Callable[[list[list[float]], list[list[float]]], float],
    *,
    resamples: int = BOOTSTRAP,
    seed: int = 17,
) -> tuple[float, float, float]:
    """`stat(on, off)` and its bootstrap 95% interval, resampling PAIRS: on[k] and off[k] are
    the k-th turn of each arm, neighbours in the ABBA order, so they share the machine's load of
    that moment; resampled together, that shared noise cancels out of the difference instead of
    widening its interval (`bootstrap_p95_difference` resamples each arm on its own)."""
    if len(on) != len(off):
        raise ValueError("paired samples: both arms need the same number of turns")
    rng = random.Random(seed)
    picks = range(len(on))
    diffs = sorted(
        stat([on[k] for k in pick], [off[k] for k in pick])
        for pick in (rng.choices(picks, k=len(on)) for _ in range(resamples))
    )
    return stat(on, off), diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]


def p95_difference(on: list[list[float]], off: list[list[float]]) -> float:
    """p95 of every sample of `on` minus that of `off` (nearest rank)."""
    return percentile([x for t in on for x in t], 95) - percentile([x for t in off for x in t], 95)


@functools.lru_cache(maxsize=32)
def _hd_weights(n: int, q: float) -> tuple[float, ...]:
    """Harrell-Davis weights for the q-quantile of n sorted samples: the Beta((n+1)q, (n+1)(1-q))
    mass of each ((i-1)/n, i/n] (its CDF integrated numerically: no scipy here)."""
    a, b = (n + 1) * q, (n + 1) * (1 - q)
    grid = 20_000
    xs = [(k + 0.5) / grid for k in range(grid)]  # midpoints: the log-density is finite there
    logs = [(a - 1) * math.log(x) + (b - 1) * math.log1p(-x) for x in xs]
    top = max(logs)
    density = [math.exp(v - top) for v in logs]
    total = sum(density)
    weights, acc, k = [], 0.0, 0
    for i in range(1, n + 1):
        edge = i * grid // n
        part = sum(density[k:edge])
        k = edge
        weights.append(part / total)
        acc += part
    return tuple(weights)


def hd_quantile(samples: list[float], q: float) -> float:
    """The Harrell-Davis estimate of the q-quantile: a weighted mean of every order statistic,
    not one of them — far less jumpy than the nearest rank at p95 over a few hundred samples,
    where the nearest rank is decided by a handful of tail samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return math.fsum(w * x for w, x in zip(_hd_weights(len(ordered), q), ordered, strict=True))


def hd_p95_difference(on: list[list[float]], off: list[list[float]]) -> float:
    """`p95_difference` with the Harrell-Davis p95 of each arm."""
    return hd_quantile([x for t in on for x in t], 0.95) - hd_quantile([x for t in off for x in t], 0.95)


def median_paired_difference(on: list[list[float]], off: list[list[float]]) -> float:
    """The median over pairs of (on turn's mean sample - off turn's mean sample)."""
    return statistics.median(statistics.fmean(a) - statistics.fmean(b) for a, b in zip(on, off, strict=True))


@dataclass
class ServerTurn:
    """One POST's server side, from the --trace timeline."""

    ms: float  # Daphne's `action.received` → the worker's `turn.first_delta`; NaN if either is missing
    writes_finished: int  # telemetry batches whose write ended inside that span
    overlap_ms: float  # how long the telemetry writer was writing inside that span (any process)
    cpu_ms: float  # the turn thread's CPU time from the turn's start to its first delta (NaN: none)


def _marks(path: Path) -> list[tuple[float, str, str]]:
    with open(path) as f:
        return sorted((float(t), pid, label) for t, pid, label in (ln.split() for ln in f if ln.strip()))


def server_timeline(path: Path) -> list[ServerTurn]:
    """The server's side of each POST, in order, from the --trace timeline (gtw_site.trace:
    CLOCK_MONOTONIC marks of every process): the ms from Daphne's `action.received` to the
    worker's `turn.first_delta` — no client, loopback or event-loop time in it — how the
    telemetry writer's work (`telemetry.writing` → `telemetry.written`, per process) overlapped
    that span (what a background writer may still cost the first delta), and the turn thread's
    CPU time to its first delta (`turn.first_delta_cpu_us=…`, marked in A/B runs only)."""
    marks = _marks(path)
    writing: dict[str, float] = {}
    intervals: list[tuple[float, float]] = []
    for t, pid, label in marks:
        if label == "telemetry.writing":
            writing[pid] = t
        elif label == "telemetry.written":
            intervals.append((writing.pop(pid, t), t))
    turns: list[dict[str, float]] = []
    for t, _pid, label in marks:
        if label == "client.post_sent":
            turns.append({})
        elif turns:
            name, _, value = label.partition("=")
            turns[-1].setdefault(name, float(value) if value else t)
    out = []
    for first in turns:
        start, end = first.get("action.received"), first.get("turn.first_delta")
        cpu = first.get("turn.first_delta_cpu_us", math.nan) / 1000
        if start is None or end is None:
            out.append(ServerTurn(math.nan, 0, 0.0, cpu))
            continue
        finished = sum(1 for _a, b in intervals if start <= b <= end)
        overlap = sum(max(0.0, min(b, end) - max(a, start)) for a, b in intervals)
        out.append(ServerTurn((end - start) * 1000, finished, overlap * 1000, cpu))
    return out


def server_first_delta(path: Path) -> list[float]:
    """`server_timeline`'s ms to the first delta alone."""
    return [turn.ms for turn in server_timeline(path)]


def server_pairs(posted: list[str], server: list[float]) -> tuple[list[list[float]], list[list[float]]]:
    """The counted turns' server times, paired like the client samples (the k-th of each arm),
    a pair dropped when either turn's marks are missing."""
    by_arm: dict[str, list[float]] = {name: [] for name in ARMS}
    for i, (name, ms) in enumerate(zip(posted, server, strict=False)):
        if i >= 2 * base.WARMUP_TURNS:  # each warm-up round posts one turn per arm
            by_arm[name].append(ms)
    pairs = [
        (a, b)
        for a, b in zip(by_arm[ARMS[0]], by_arm[ARMS[1]], strict=False)
        if math.isfinite(a) and math.isfinite(b)
    ]
    return [[a] for a, _ in pairs], [[b] for _, b in pairs]


def _interval(name: str, stat, on, off) -> tuple[dict[str, object], str, float]:
    """`stat`'s paired-bootstrap interval as JSON fields, as text, and its upper end."""
    point, low, high = paired_bootstrap(on, off, stat)
    return (
        {name: json_ms(point), f"{name}_ci95": [json_ms(low), json_ms(high)]},
        f"{point:+.2f} ms (95% interval {low:+.2f} to {high:+.2f})",
        high,
    )


def ab_report(
    per_turn: dict[str, list[list[float]]],
    posted: list[str],
    trace_path: Path | None,
    cost: RunCost | None = None,
) -> dict[str, object]:
    """What the A/B says about the first-delta p95, client view and server view, each with its
    paired-bootstrap 95% interval (nearest-rank p95 and the Harrell-Davis p95), the paired
    median difference (server view), the turn thread's CPU to its first delta, how the telemetry
    writer overlapped the path to the first delta, and what the run cost; printed and returned
    for the JSON line."""
    on, off = per_turn[ARMS[0]], per_turn[ARMS[1]]
    out: dict[str, object] = {}
    delta, low, high = paired_bootstrap(on, off, p95_difference)
    out["first_delta_p95_added_ms"] = json_ms(delta)
    out["first_delta_p95_added_ci95_ms"] = [json_ms(low), json_ms(high)]
    print(
        f"client view: telemetry adds {delta:+.2f} ms to the first-delta p95 "
        f"(paired bootstrap 95% interval {low:+.2f} to {high:+.2f} ms, {len(on)} turn pairs x clients)"
    )
    if cost is not None and cost.seconds:
        pairs = max(1, len(on))
        out["seconds_per_pair"] = round(cost.seconds / pairs, 3)
        out["server_cpu_ms_per_turn"] = json_ms(cost.server_cpu_s * 1000 / (2 * pairs))
        out["writer_cpu_ms_per_on_turn"] = json_ms(cost.writer_cpu_s * 1000 / pairs)
        print(
            f"cost: {cost.seconds / pairs:.2f} s per pair; the server's CPU (gtw up, its workers, its "
            f"PostgreSQL and Redis) {cost.server_cpu_s * 1000 / (2 * pairs):.1f} ms per turn; its "
            f"telemetry writers' {cost.writer_cpu_s * 1000 / pairs:.2f} ms per telemetry-on turn"
        )
    if trace_path is None or not trace_path.exists():
        return out
    timeline = server_timeline(trace_path)
    counted = timeline[2 * base.WARMUP_TURNS :]
    s_on, s_off = server_pairs(posted, [turn.ms for turn in timeline])
    if not s_on:
        return out
    finished = sum(1 for turn in counted if turn.writes_finished)
    overlapped = [turn.overlap_ms for turn in counted if turn.overlap_ms > 0]
    out["writer_overlaps"] = finished
    out["writer_overlapping_turns"] = len(overlapped)
    out["writer_overlap_ms_total"] = json_ms(sum(overlapped))
    print(
        f"the telemetry writer was writing inside an action's path to its first delta in "
        f"{len(overlapped)} of {len(counted)} counted turns ({sum(overlapped):.1f} ms in all; a batch "
        f"finished inside it in {finished})"
    )
    flat_on, flat_off = [x for t in s_on for x in t], [x for t in s_off for x in t]
    server: dict[str, object] = {
        "pairs": len(s_on),
        "on_p50_p95_ms": [json_ms(percentile(flat_on, 50)), json_ms(percentile(flat_on, 95))],
        "off_p50_p95_ms": [json_ms(percentile(flat_off, 50)), json_ms(percentile(flat_off, 95))],
    }
    fields, p95_text, p95_high = _interval("p95_added_ms", p95_difference, s_on, s_off)
    server.update(fields)
    fields, hd_text, hd_high = _interval("hd_p95_added_ms", hd_p95_difference, s_on, s_off)
    server.update(fields)
    fields, median_text, _high = _interval("median_paired_added_ms", median_paired_difference, s_on, s_off)
    server.update(fields)
    out["server"] = server
    print(
        f"server view (action received -> first delta sent, {len(s_on)} pairs): p50/p95 on "
        f"{percentile(flat_on, 50):.2f} / {percentile(flat_on, 95):.2f} ms, off "
        f"{percentile(flat_off, 50):.2f} / {percentile(flat_off, 95):.2f} ms; p95 {p95_text}; "
        f"Harrell-Davis p95 {hd_text}; paired median {median_text}"
    )
    c_on, c_off = server_pairs(posted, [turn.cpu_ms for turn in timeline])
    if c_on:
        cpu: dict[str, object] = {"pairs": len(c_on)}
        flat_on, flat_off = [x for t in c_on for x in t], [x for t in c_off for x in t]
        cpu["on_p50_p95_ms"] = [json_ms(percentile(flat_on, 50)), json_ms(percentile(flat_on, 95))]
        cpu["off_p50_p95_ms"] = [json_ms(percentile(flat_off, 50)), json_ms(percentile(flat_off, 95))]
        # The median: a worker's first turn of a session (its caches cold) is one far outlier.
        fields, cpu_mean, _high = _interval("median_paired_added_ms", median_paired_difference, c_on, c_off)
        cpu.update(fields)
        fields, cpu_hd, cpu_high = _interval("hd_p95_added_ms", hd_p95_difference, c_on, c_off)
        cpu.update(fields)
        out["turn_cpu_to_first_delta"] = cpu
        print(
            f"the turn thread's CPU to its first delta ({len(c_on)} pairs): p50/p95 on "
            f"{percentile(flat_on, 50):.2f} / {percentile(flat_on, 95):.2f} ms, off "
            f"{percentile(flat_off, 50):.2f} / {percentile(flat_off, 95):.2f} ms; paired median {cpu_mean}; "
            f"Harrell-Davis p95 {cpu_hd}"
        )
        # What telemetry can add to the first delta is work on its path: the turn thread's (this
        # CPU) and the writer's beside it (the overlap above). Both are resolved to well under
        # 2 ms where the wall-clock p95 of a loaded 2-core machine is not.
        shared = len(overlapped) / max(1, len(counted))
        met = cpu_high < 2 and shared <= 0.05
        out["cpu_check_met"] = met
        print(
            f"issue 17's check (work on the path: the turn's CPU p95 upper end {cpu_high:+.2f} ms, "
            f"the writer beside {shared:.1%} of turns): {'< 2 ms: met' if met else 'not shown'}"
        )
    verdict = (
        "< 2 ms: met" if max(p95_high, hd_high) < 2 else "not shown < 2 ms (an interval's upper end >= 2 ms)"
    )
    print(f"issue 17's check (server view, wall clock, p95, both estimators): {verdict}")
    return out


def micro_ab(calls: int = MICRO_CALLS) -> dict[str, dict[str, float]]:
    """In-process, alternating call by call (ABBA): the offline narrator's `registry.get` and
    first streamed event (what stands before a first delta), and the whole call with its held row
    and prompt handed to the background writer after it (a turn's end: what the runner pays
    while it holds the session's lock), telemetry on vs off, with a narrator-sized system prompt.
    Wall time and this thread's CPU time (which a busy machine barely moves). Returns p50/p95
    in ms per sample kind, and for the CPU kinds the paired-bootstrap interval of the p50
    difference (`*_cpu_added`: on minus off)."""
    from django.test import override_settings

    from gtw_site import telemetry
    from narrative.llm import registry
    from narrative.llm.base import ChatRequest, Message
    from narrative.turns.prompts import prompt_template

    request = ChatRequest(
        messages=[
            Message(role="system", content=prompt_template("narrator_system.txt")),
            Message(role="user", content=base.ACTION_TEXT),
        ],
        context={"action": {"text": base.ACTION_TEXT, "character": {"name": "Runner 0"}}},
    )
    kinds = ("first", "first_cpu", "call", "call_cpu", "writer_cpu")
    samples: dict[str, list[float]] = {f"{k}_{arm}": [] for k in kinds for arm in ("on", "off")}
    for i in range(calls * 2):
        arm = "on" if (i % 4) in (0, 3) else "off"  # ABBA
        # No yield to turns here (there are none): the writer takes each batch at once.
        with (
            override_settings(GTW_TELEMETRY=arm == "on", GTW_TELEMETRY_YIELD_S=0),
            telemetry.scope(session_id=None),
        ):
            started, cpu = time.perf_counter(), time.thread_time()
            with telemetry.deferred():
                stream = registry.get("narrator").stream(request)
                next(stream)
                samples[f"first_{arm}"].append((time.perf_counter() - started) * 1000)
                samples[f"first_cpu_{arm}"].append((time.thread_time() - cpu) * 1000)
                for _ in stream:
                    pass
            samples[f"call_{arm}"].append((time.perf_counter() - started) * 1000)
            samples[f"call_cpu_{arm}"].append((time.thread_time() - cpu) * 1000)
            # Not in the call's time: the writer's INSERTs never pile up into the next sample.
            # While this thread only waits, the process's CPU time is the writer thread's.
            waiting = time.process_time()
            telemetry.flush()
            samples[f"writer_cpu_{arm}"].append((time.process_time() - waiting) * 1000)
    out = {k: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for k, v in samples.items()}
    for kind in ("first_cpu", "call_cpu"):
        on, off = ([[x] for x in samples[f"{kind}_{arm}"]] for arm in ("on", "off"))
        point, low, high = paired_bootstrap(on, off, p50_difference, resamples=1000)
        out[f"{kind}_added"] = {"p50": point, "low": low, "high": high}
    return out


def p50_difference(on: list[list[float]], off: list[list[float]]) -> float:
    return percentile([x for t in on for x in t], 50) - percentile([x for t in off for x in t], 50)


def main(args) -> int:
    n, turns = args.clients, args.turns
    ab = args.telemetry == "ab"
    narrator = args.narrator
    if n < 1 or turns < 1:
        sys.stderr.write("gtw bench: --clients and --turns must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    os.environ.update(base.BENCH_ENV)
    os.environ["GTW_NARRATOR_PROVIDER"] = narrator
    if ab:
        os.environ["GTW_TELEMETRY_AB"] = "1"
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The A/B run keeps its own data folder, so a long run never meets another benchmark's
    # server on var/bench.
    folder = base.DATA_DIR if not ab else base.DATA_DIR.with_name(base.DATA_DIR.name + "-telemetry")
    os.environ["GTW_DATA_DIR"] = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = folder / "server.log"
    print(f"gtw bench turn ({'telemetry A/B' if ab else narrator}): server on 127.0.0.1:{port}", flush=True)
    results: dict[str, base.Results] = {}
    per_turn: dict[str, list[list[float]]] = {}
    posted: list[str] = []
    # The A/B's server view: every process marks the turn's steps on one clock (gtw_site.trace).
    trace_path = folder / "trace.txt" if ab else None
    if trace_path is not None:
        trace_path.unlink(missing_ok=True)
        trace.record_to(str(trace_path))  # before the server starts: its processes inherit it
    micro: dict[str, dict[str, float]] = {}
    cost: RunCost | None = None
    with open(log_path, "w") as log:
        proc = start_server(port, log)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            from django.db import connections

            sessions, tokens = _sessions(n, ab)
            gc.collect()
            gc.freeze()
            before = {sid: base.session_version(sid) for sid in sessions}
            connections.close_all()
            if ab:
                print(f"  sessions {sessions[0]} (on) / {sessions[1]} (off): {turns} turns each, ABBA")
                cpu = ServerCpu(proc.pid, folder)
                results, per_turn, posted, cost = asyncio.run(_run_ab(port, sessions, tokens, turns, cpu))
                for name, sid in zip(ARMS, sessions, strict=True):
                    results[name].lost_events = base.lost_events(sid, before[sid], results[name].received, n)
                calls = int(os.environ.get("GTW_BENCH_MICRO_CALLS") or MICRO_CALLS)
                print(f"  in-process micro A/B: {calls} calls per arm")
                micro = micro_ab(calls)
            else:
                name = f"{narrator} narrator"
                print(f"  {name}: session {sessions[0]}, {turns} turns + {base.WARMUP_TURNS} warm-up")
                results[name] = asyncio.run(base._run(port, sessions[0], tokens, turns))
                sid = sessions[0]
                results[name].lost_events = base.lost_events(sid, before[sid], results[name].received, n)
        except (RuntimeError, OSError) as exc:
            return server_failed(exc, log_path)
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    flags = "--telemetry ab" if ab else f"--narrator {narrator}"
    command = f"gtw bench turn --clients {n} --turns {turns} {flags}"
    machine = machine_text(load)
    rows = [_row(name, n, turns, r, machine, command) for name, r in results.items()]
    print(f"\n{HEADER}")
    for row in rows:
        print(row)
    summary: dict[str, object] = {"clients": n, "variant": "telemetry-ab" if ab else narrator}
    for name, r in results.items():
        key = name.replace(" ", "_")
        summary[key] = {f"p{q}_ms": json_ms(percentile(r.first_delta, q)) for q in (50, 95, 99)}
    if ab:
        summary.update(ab_report(per_turn, posted, trace_path, cost))
        summary["micro_ms"] = {k: {q: round(v, 3) for q, v in qs.items()} for k, qs in micro.items()}
        print(
            "in-process, {n} calls per arm: get + first event p50 {a:.3f} vs {b:.3f} ms, p95 {c:.3f} vs "
            "{d:.3f}; whole call with its row handed off p50 {e:.3f} vs {f:.3f} ms (on vs off)".format(
                n=int(os.environ.get("GTW_BENCH_MICRO_CALLS") or MICRO_CALLS),
                a=micro["first_on"]["p50"],
                b=micro["first_off"]["p50"],
                c=micro["first_on"]["p95"],
                d=micro["first_off"]["p95"],
                e=micro["call_on"]["p50"],
                f=micro["call_off"]["p50"],
            )
        )
        print(
            f"  the writer's CPU per batch (the process's, while the caller waits on it): p50 "
            f"{micro['writer_cpu_on']['p50']:.3f} / p95 {micro['writer_cpu_on']['p95']:.3f} ms"
        )
        for kind, what in (("first_cpu", "get + first event"), ("call_cpu", "whole call, handed off")):
            added, on, off = micro[f"{kind}_added"], micro[f"{kind}_on"], micro[f"{kind}_off"]
            print(
                f"  thread CPU, {what}: p50 {on['p50']:.3f} vs {off['p50']:.3f} ms, on minus off "
                f"{added['p50']:+.3f} ms (95% interval {added['low']:+.3f} to "
                f"{added['high']:+.3f})"
            )
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else ""
        for row in rows:
            text = update_section(text, SECTION, HOW, HEADER, row, key_cols=2, sort=True)
        DOC.write_text(text)
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(summary))
    failed = any(r.timeouts or r.failures or not r.first_delta for r in results.values())
    return 1 if failed else 0
