"""`gtw bench sim --entities N --sim-windows W`: the procedural simulation's speed and the cost of a
beat boundary.

Pure Python, no database, no server (missions.simulation): a generated world of N entities
(seed 0), then W beat boundaries, each one an authorised window of `WINDOW_STEPS` steps, a
snapshot (canonical JSON with its checksum) and the reconciliation of the window's changes.
Prints p50/p95/p99, a final JSON line (`steps_per_s`, `boundary_p95_ms`), and (unless --no-write)
adds or replaces its row in the "gtw bench sim" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime

from gtw_site.bench.common import BASE_DIR, DOC, json_ms, machine_text, percentile, update_section
from missions.simulation import ProceduralSimulation, Window, generate_world, reconcile

WINDOW_STEPS = 10
SECTION = "## gtw bench sim"
HOW_MEASURED = f"""\
How measured: `gtw bench sim --entities N --sim-windows W` generates a world of N entities
(`missions.simulation.generate_world`, seed 0: N NPCs, a sector per ten of them, the market),
then runs W beat boundaries: each is an authorised window of {WINDOW_STEPS} steps
(`ProceduralSimulation.step`, every step seeded by SHA-256 of campaign:session:beat:step, the
world hashed at its end), a snapshot (`snapshot()`: canonical JSON and its checksum) and the
reconciliation of the window's changes (`missions.simulation.reconcile`). **boundary** is the
three together, timed per boundary; **steps/s** is W x {WINDOW_STEPS} over the summed window
times. Pure Python in one process, no database. Target: boundary p95 < 50 ms at 1,000 entities."""
TABLE_HEADER = (
    "| entities | windows | boundary p50 / p95 / p99 (ms) | snapshot p95 (ms) | steps/s | snapshot KiB "
    "| machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---:|---|---:|---:|---:|---|---|---|"
)


def run(*, entities: int, windows: int) -> dict:
    sim = ProceduralSimulation()
    sim.start({"campaign_id": 1, "session_id": 1}, generate_world(entities, 0))
    boundary, snapshot_ms, window_s = [], [], 0.0
    dead: set[int] = set()
    size = 0
    for w in range(windows):
        t0 = time.perf_counter()
        report = sim.step(Window(f"beat-{w}", sim.step_index, WINDOW_STEPS))
        t1 = time.perf_counter()
        blob = sim.snapshot()
        t2 = time.perf_counter()
        decision = reconcile(report, dead=dead)
        t3 = time.perf_counter()
        dead |= {c["npc"] for c in decision.accepted if c["kind"] == "npc_died"}
        window_s += t1 - t0
        snapshot_ms.append((t2 - t1) * 1000)
        boundary.append((t3 - t0) * 1000)
        size = len(blob)
    steps = windows * WINDOW_STEPS
    return {
        "entities": entities,
        "windows": windows,
        "steps": steps,
        **{f"boundary_p{q}_ms": json_ms(percentile(boundary, q)) for q in (50, 95, 99)},
        "snapshot_p95_ms": json_ms(percentile(snapshot_ms, 95)),
        "steps_per_s": round(steps / window_s) if window_s else None,
        "snapshot_kib": round(size / 1024, 1),
        "state_hash": sim.state_hash(),
    }


def table_row(result: dict, machine: str, date: str, command: str) -> str:
    boundary = " / ".join(f"{result[f'boundary_p{q}_ms']}" for q in (50, 95, 99))
    return (
        f"| {result['entities']} | {result['windows']} | {boundary} | {result['snapshot_p95_ms']} "
        f"| {result['steps_per_s']:,} | {result['snapshot_kib']} | {machine} | {date} | `{command}` |"
    )


def main(args) -> int:
    entities, windows = args.entities, args.windows_sim
    if entities < 1 or windows < 1:
        sys.stderr.write("gtw bench sim: --entities and --sim-windows must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    print(
        f"gtw bench sim: {entities} entities, {windows} beat boundaries of {WINDOW_STEPS} steps", flush=True
    )
    result = run(entities=entities, windows=windows)
    print(f"{'':<16}{'p50':>10}{'p95':>10}{'p99':>10}")
    print(f"{'boundary (ms)':<16}" + "".join(f"{result[f'boundary_p{q}_ms']:>10}" for q in (50, 95, 99)))
    print(f"steps/s: {result['steps_per_s']:,}   snapshot: {result['snapshot_kib']} KiB")
    if not args.no_write:
        command = f"gtw bench sim --entities {entities} --sim-windows {windows}"
        row = table_row(result, machine_text(load), datetime.now(UTC).date().isoformat(), command)
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_section(doc, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=2))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(result))
    return 0
