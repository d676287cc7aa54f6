"""`gtw bench turn --telemetry ab` and `gtw bench turn --narrator local_llm`: the turn benchmark
(gtw_site/bench/turn.py: its server, clients and scoring) for issue 17's two questions.

- `--telemetry ab`: what telemetry costs the first delta. One server runs with GTW_TELEMETRY_AB=1
  (odd-numbered sessions record nothing: no ProviderCall rows, no wrapper round the adapter) and
  two sessions, one even and one odd, with the same N clients; turns alternate between them in
  rounds, so both halves see the same machine load. Reports first-delta p50/p95/p99 for each and
  the p95 difference.
- `--narrator local_llm`: the turn with the local GGUF narrator (SmolLM2-135M, one thread) in
  place of the offline one; the first delta then waits for the offline rules' tool round and the
  model's first words.

Rows go to their own section of docs/BENCHMARKS.md, keyed by variant and clients.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import sys
from datetime import UTC, datetime

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
the client's POST to the first narration delta and to the Narration event, 2 warm-up turns per
block). `--telemetry ab`: one server with `GTW_TELEMETRY_AB=1`, two sessions (even id: telemetry
on; odd id: no ProviderCall rows and no recording wrapper), turns alternating between them in
blocks so both see the same load. `--narrator local_llm`: the local GGUF narrator (SmolLM2-135M
Q4_1, one thread, `GTW_LOCAL_LLM_MAX_TOKENS` tokens) instead of the offline one."""
ROUNDS = 4  # blocks per session in the A/B run, interleaved


def _row(variant: str, n: int, turns: int, r: base.Results, machine: str, command: str) -> str:
    fd = " / ".join(f"{percentile(r.first_delta, q):.1f}" for q in (50, 95, 99))
    cm = " / ".join(f"{percentile(r.commit, q):.1f}" for q in (50, 95))
    return (
        f"| {variant} | {n} | {turns} | {fd} | {cm} | {r.lost_deltas} / {r.lost_events} | {machine} "
        f"| {datetime.now(UTC).date()} | `{command}` |"
    )


def _merge(into: base.Results, more: base.Results) -> None:
    into.first_delta += more.first_delta
    into.commit += more.commit
    into.post += more.post
    into.lost_deltas += more.lost_deltas
    into.lost_events += more.lost_events
    into.timeouts += more.timeouts
    into.failures += more.failures


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
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = DATA_DIR / "server.log"
    print(f"gtw bench turn ({'telemetry A/B' if ab else narrator}): server on 127.0.0.1:{port}", flush=True)
    results: dict[str, base.Results] = {}
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
            names = ["telemetry on", "telemetry off"] if ab else [f"{narrator} narrator"]
            for name in names:
                results[name] = base.Results()
            rounds = ROUNDS if ab else 1
            per_block = max(1, turns // rounds)
            for _ in range(rounds):
                for name, session_id in zip(names, sessions, strict=True):
                    print(f"  {name}: session {session_id}, {per_block} turns + {base.WARMUP_TURNS} warm-up")
                    _merge(results[name], asyncio.run(base._run(port, session_id, tokens, per_block)))
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
    rows = [_row(name, n, per_block * rounds, r, machine, command) for name, r in results.items()]
    print(f"\n{HEADER}")
    for row in rows:
        print(row)
    summary: dict[str, object] = {"clients": n, "variant": "telemetry-ab" if ab else narrator}
    for name, r in results.items():
        key = name.replace(" ", "_")
        summary[key] = {f"p{q}_ms": json_ms(percentile(r.first_delta, q)) for q in (50, 95, 99)}
    if ab:
        delta = percentile(results["telemetry on"].first_delta, 95) - percentile(
            results["telemetry off"].first_delta, 95
        )
        summary["first_delta_p95_added_ms"] = json_ms(delta)
        print(f"telemetry adds {delta:+.1f} ms to the first-delta p95")
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else ""
        for row in rows:
            text = update_section(text, SECTION, HOW, HEADER, row, key_cols=2, sort=True)
        DOC.write_text(text)
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(summary))
    failed = any(r.timeouts or r.failures or not r.first_delta for r in results.values())
    return 1 if failed else 0
