"""`gtw bench turn --telemetry ab` and `gtw bench turn --narrator local_llm`: the turn benchmark
(gtw_site/bench/turn.py: its server, clients and scoring) for issue 17's two questions.

- `--telemetry ab`: what telemetry costs the first delta. One server runs with GTW_TELEMETRY_AB=1
  (odd-numbered sessions record nothing: no ProviderCall rows, no prompts, no wrapper round the
  adapter) and two sessions, one even and one odd, each with the same N clients connected for
  the whole run. Turns alternate one by one, in ABBA order (on, off, off, on, …), so both arms
  see the same machine load minute by minute; `--turns` is per arm. Reports first-delta
  p50/p95/p99 for each, the p95 difference and its bootstrap 95% interval (turns resampled with
  replacement, each turn's N client samples kept together, 2,000 resamples), then an in-process
  micro A/B (`micro_ab`: the narrator's get and first streamed event, and the whole call with its
  row written, alternating telemetry on and off) that resolves tens of microseconds.
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
import os
import random
import secrets
import signal
import socket
import sys
import time
from datetime import UTC, datetime

from websockets.asyncio.client import connect

from gtw_site.bench import turn as base
from gtw_site.bench.common import (
    BASE_DIR,
    DATA_DIR,
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
`--turns` is per arm. The p95 difference comes with a bootstrap 95% interval (turns resampled,
2,000 times). `--narrator local_llm`: the local GGUF narrator (SmolLM2-135M Q4_1, one thread,
`GTW_LOCAL_LLM_MAX_TOKENS` tokens) instead of the offline one."""
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


async def _run_ab(
    port: int, sessions: list[int], tokens: list[str], turns: int
) -> tuple[dict[str, base.Results], dict[str, list[list[float]]]]:
    """Both sessions' clients connected throughout; turns one by one in ABBA order. Returns the
    results per arm and, per arm, each turn's client first-delta samples (for the bootstrap)."""
    names = ["telemetry on", "telemetry off"]
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
                seq, sent, returned = await _turn(
                    port, session_id, tokens[0], f"ab-{run}-{name[-2:]}-{i}", clients, ticks[name]
                )
                if i >= base.WARMUP_TURNS:
                    before = len(results[name].first_delta)
                    base._score(results[name], clients, seq, sent, returned)
                    per_turn[name].append(results[name].first_delta[before:])
        for name in names:
            results[name].lost_events += sum(c.seq_gaps for c in joined[name][0])
        return results, per_turn
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


def micro_ab(calls: int = MICRO_CALLS) -> dict[str, dict[str, float]]:
    """In-process, alternating call by call: the offline narrator's `registry.get` and first
    streamed event (what stands before a first delta), and the whole call with its held row and
    prompt handed to the background writer after it (a turn's end: what the runner pays while
    it holds the session's lock), telemetry on vs off. Returns p50/p95 in ms."""
    from django.test import override_settings

    from gtw_site import telemetry
    from narrative.llm import registry
    from narrative.llm.base import ChatRequest, Message

    request = ChatRequest(
        messages=[Message(role="system", content="Narrate."), Message(role="user", content=base.ACTION_TEXT)],
        context={"action": {"text": base.ACTION_TEXT, "character": {"name": "Runner 0"}}},
    )
    samples: dict[str, list[float]] = {k: [] for k in ("first_on", "first_off", "call_on", "call_off")}
    for i in range(calls * 2):
        arm = "on" if (i % 4) in (0, 3) else "off"  # ABBA
        with override_settings(GTW_TELEMETRY=arm == "on"), telemetry.scope(session_id=None):
            started = time.perf_counter()
            with telemetry.deferred():
                stream = registry.get("narrator").stream(request)
                next(stream)
                samples[f"first_{arm}"].append((time.perf_counter() - started) * 1000)
                for _ in stream:
                    pass
            samples[f"call_{arm}"].append((time.perf_counter() - started) * 1000)
            telemetry.flush()  # untimed: the writer's INSERTs never pile up into the next sample
    return {k: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for k, v in samples.items()}


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
    folder = BASE_DIR / "var" / "bench-telemetry" if ab else DATA_DIR
    os.environ["GTW_DATA_DIR"] = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = folder / "server.log"
    print(f"gtw bench turn ({'telemetry A/B' if ab else narrator}): server on 127.0.0.1:{port}", flush=True)
    results: dict[str, base.Results] = {}
    per_turn: dict[str, list[list[float]]] = {}
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
            connections.close_all()
            gc.collect()
            gc.freeze()
            if ab:
                print(f"  sessions {sessions[0]} (on) / {sessions[1]} (off): {turns} turns each, ABBA")
                results, per_turn = asyncio.run(_run_ab(port, sessions, tokens, turns))
                print(f"  in-process micro A/B: {MICRO_CALLS} calls per arm")
                micro = micro_ab()
            else:
                name = f"{narrator} narrator"
                print(f"  {name}: session {sessions[0]}, {turns} turns + {base.WARMUP_TURNS} warm-up")
                results[name] = asyncio.run(base._run(port, sessions[0], tokens, turns))
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
        delta, low, high = bootstrap_p95_difference(per_turn["telemetry on"], per_turn["telemetry off"])
        summary["first_delta_p95_added_ms"] = json_ms(delta)
        summary["first_delta_p95_added_ci95_ms"] = [json_ms(low), json_ms(high)]
        arm_turns = len(per_turn["telemetry on"])
        print(
            f"telemetry adds {delta:+.1f} ms to the first-delta p95 "
            f"(bootstrap 95% interval {low:+.1f} to {high:+.1f} ms, {arm_turns} turns per arm)"
        )
        summary["micro_ms"] = {k: {q: json_ms(v) for q, v in qs.items()} for k, qs in micro.items()}
        print(
            "in-process, {n} calls per arm: get + first event p50 {a:.3f} vs {b:.3f} ms, p95 {c:.3f} vs "
            "{d:.3f}; whole call with its row written p50 {e:.3f} vs {f:.3f} ms (on vs off)".format(
                n=MICRO_CALLS,
                a=micro["first_on"]["p50"],
                b=micro["first_off"]["p50"],
                c=micro["first_on"]["p95"],
                d=micro["first_off"]["p95"],
                e=micro["call_on"]["p50"],
                f=micro["call_off"]["p50"],
            )
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
