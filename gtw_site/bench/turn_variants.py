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
  for the p95 difference and, server side, the median paired difference. The timeline also
  shows whether the background telemetry writer was still writing inside a turn's path to its
  first delta. Then an in-process micro A/B (`micro_ab`: the narrator's get and first streamed
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


async def _run_ab(
    port: int, sessions: list[int], tokens: list[str], turns: int
) -> tuple[dict[str, base.Results], dict[str, list[list[float]]], list[str]]:
    """Both sessions' clients connected throughout; turns one by one in ABBA order. Returns the
    results per arm; per arm, each counted turn's client first-delta samples (the k-th of each
    arm are neighbours in time: a pair); and the arm of every POST in order, warm-ups included
    (the --trace timeline's turns line up with it)."""
    names = list(ARMS)
    posted: list[str] = []
    ticks = {name: asyncio.Event() for name in names}
    results = {name: base.Results() for name in names}
    per_turn: dict[str, list[list[float]]] = {name: [] for name in names}
    joined: dict[str, tuple] = {}
    try:
        for name, session_id in zip(names, sessions, strict=True):
            joined[name] = await _connect(port, session_id, tokens, ticks[name])
        run = secrets.token_hex(4)
        for i in range(base.WARMUP_TURNS + turns):
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
        for name in names:
            results[name].received = [c.seqs for c in joined[name][0]]
        return results, per_turn, posted
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


def median_paired_difference(on: list[list[float]], off: list[list[float]]) -> float:
    """The median over pairs of (on turn's mean sample - off turn's mean sample)."""
    return statistics.median(statistics.fmean(a) - statistics.fmean(b) for a, b in zip(on, off, strict=True))


def server_timeline(path: Path) -> list[tuple[float, int]]:
    """The server's side of each POST, in order, from the --trace timeline (gtw_site.trace:
    CLOCK_MONOTONIC marks of every process): the ms from Daphne's `action.received` to the
    worker's `turn.first_delta` — no client, loopback or event-loop time in it; NaN for a turn
    missing either mark — and how many batches the telemetry writer finished inside that span
    (a write overlapping the path to the first delta: what a background writer may still cost)."""
    with open(path) as f:
        marks = sorted((float(t), label) for t, _pid, label in (ln.split() for ln in f if ln.strip()))
    turns: list[tuple[dict[str, float], list[float]]] = []
    for t, label in marks:
        if label == "client.post_sent":
            turns.append(({}, []))
        elif turns:
            first, writes = turns[-1]
            first.setdefault(label, t)
            if label == "telemetry.written":
                writes.append(t)
    out = []
    for first, writes in turns:
        start, end = first.get("action.received"), first.get("turn.first_delta")
        if start is None or end is None:
            out.append((math.nan, 0))
        else:
            out.append(((end - start) * 1000, sum(1 for t in writes if start <= t <= end)))
    return out


def server_first_delta(path: Path) -> list[float]:
    """`server_timeline`'s ms to the first delta alone."""
    return [ms for ms, _writes in server_timeline(path)]


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


def ab_report(
    per_turn: dict[str, list[list[float]]], posted: list[str], trace_path: Path | None
) -> dict[str, object]:
    """What the A/B says about the first-delta p95, client view and server view, each with its
    paired-bootstrap 95% interval, and the paired median difference (server view); printed and
    returned for the JSON line."""
    on, off = per_turn[ARMS[0]], per_turn[ARMS[1]]
    out: dict[str, object] = {}
    delta, low, high = paired_bootstrap(on, off, p95_difference)
    out["first_delta_p95_added_ms"] = json_ms(delta)
    out["first_delta_p95_added_ci95_ms"] = [json_ms(low), json_ms(high)]
    print(
        f"client view: telemetry adds {delta:+.2f} ms to the first-delta p95 "
        f"(paired bootstrap 95% interval {low:+.2f} to {high:+.2f} ms, {len(on)} turn pairs x clients)"
    )
    if trace_path is None or not trace_path.exists():
        return out
    timeline = server_timeline(trace_path)
    s_on, s_off = server_pairs(posted, [ms for ms, _writes in timeline])
    if not s_on:
        return out
    overlapped = sum(1 for i, (_ms, writes) in enumerate(timeline) if i >= 2 * base.WARMUP_TURNS and writes)
    out["writer_overlaps"] = overlapped
    print(
        f"the telemetry writer finished a batch inside an action's path to its first delta in "
        f"{overlapped} of {len(timeline) - 2 * base.WARMUP_TURNS} counted turns"
    )
    delta, low, high = paired_bootstrap(s_on, s_off, p95_difference)
    mid, mid_low, mid_high = paired_bootstrap(s_on, s_off, median_paired_difference)
    flat_on, flat_off = [x for t in s_on for x in t], [x for t in s_off for x in t]
    out["server"] = {
        "pairs": len(s_on),
        "on_p50_p95_ms": [json_ms(percentile(flat_on, 50)), json_ms(percentile(flat_on, 95))],
        "off_p50_p95_ms": [json_ms(percentile(flat_off, 50)), json_ms(percentile(flat_off, 95))],
        "p95_added_ms": json_ms(delta),
        "p95_added_ci95_ms": [json_ms(low), json_ms(high)],
        "median_paired_added_ms": json_ms(mid),
        "median_paired_added_ci95_ms": [json_ms(mid_low), json_ms(mid_high)],
    }
    print(
        f"server view (action received -> first delta sent, {len(s_on)} pairs): p50/p95 on "
        f"{percentile(flat_on, 50):.2f} / {percentile(flat_on, 95):.2f} ms, off "
        f"{percentile(flat_off, 50):.2f} / {percentile(flat_off, 95):.2f} ms; p95 {delta:+.2f} ms "
        f"(95% interval {low:+.2f} to {high:+.2f}); paired median {mid:+.2f} ms "
        f"({mid_low:+.2f} to {mid_high:+.2f})"
    )
    verdict = "< 2 ms: met" if high < 2 else "not shown < 2 ms (interval's upper end >= 2 ms)"
    print(f"issue 17's check (server view, p95): {verdict}")
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
        with override_settings(GTW_TELEMETRY=arm == "on"), telemetry.scope(session_id=None):
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
                results, per_turn, posted = asyncio.run(_run_ab(port, sessions, tokens, turns))
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
        summary.update(ab_report(per_turn, posted, trace_path))
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
