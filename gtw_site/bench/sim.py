"""`gtw bench sim --entities N --sim-windows W`: the procedural simulation's speed and the cost of a
beat boundary.

Pure Python, no database, no server (missions.simulation): a generated world of N entities
(seed 0), then W beat boundaries through the game's boundary path (`run_window`: restore and
check, an authorised window of `WINDOW_STEPS` steps, invariants, snapshot and hash check,
reconciliation and the players' lines).
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
from missions.simulation import ProceduralSimulation, Window, generate_world
from missions.simulation.window import run_window

WINDOW_STEPS = 12  # GTW_SIMULATION_BUDGET's default
SECTION = "## gtw bench sim"
HOW_MEASURED = f"""\
How measured: `gtw bench sim --entities N --sim-windows W` generates a world of N entities
(`missions.simulation.generate_world`, seed 0: N NPCs, a sector per ten of them, the market),
then runs W beat boundaries through the game's own boundary path
(`missions.simulation.window.run_window`, what the director's lockstep runs under the session
lock): restore the previous boundary's snapshot and check its hash, an authorised window of
{WINDOW_STEPS} steps (every step seeded by SHA-256 of campaign:session:beat:step), the world's
invariants, a snapshot (canonical JSON and its checksum) and its hash checked against the
provider's, the reconciliation and the players' "the world moves" lines. **boundary** is all
of it, timed per boundary; **steps/s** is W x {WINDOW_STEPS} over the summed step times. Pure
Python in one process: the snapshot row's INSERT and the events' append are not in it.
Target: boundary p95 < 50 ms at 1,000 entities."""
TABLE_HEADER = (
    "| entities | windows | boundary p50 / p95 / p99 (ms) | boundary CPU p95 (ms) | snapshot p95 (ms) "
    "| steps/s | snapshot KiB | machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---:|---|---:|---:|---:|---:|---|---|---|"
)


def run(*, entities: int, windows: int) -> dict:
    """The game's boundary path (`missions.simulation.window.run_window`, what
    missions.simulation_lockstep runs under the session lock), boundary after boundary, each
    restoring the snapshot the previous one left."""
    sim = ProceduralSimulation()
    sim.start({"campaign_id": 1, "session_id": 1}, generate_world(entities, 0))
    blob, expected = sim.snapshot(), sim.state_hash()
    boundary, boundary_cpu, snapshot_ms, window_s = [], [], [], 0.0
    for w in range(windows):
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = run_window(
            sim,
            blob,
            expected,
            Window(f"beat-{w}", sim.step_index, WINDOW_STEPS),
            campaign_id=1,
            session_id=1,
        )
        boundary.append((time.perf_counter() - t0) * 1000)
        boundary_cpu.append((time.process_time() - c0) * 1000)
        if not outcome.ok:
            raise SystemExit(f"gtw bench sim: the window drifted: {outcome.quarantined}")
        blob, expected = outcome.blob, outcome.state_hash
        window_s += outcome.timings["window_ms"] / 1000
        snapshot_ms.append(outcome.timings["snapshot_ms"])
    steps = windows * WINDOW_STEPS
    return {
        "entities": entities,
        "windows": windows,
        "steps": steps,
        **{f"boundary_p{q}_ms": json_ms(percentile(boundary, q)) for q in (50, 95, 99)},
        # CPU time of this process: what a boundary costs when it has a core to itself (the
        # wall-clock figures above grow with the machine's load; see the load column).
        "boundary_cpu_p95_ms": json_ms(percentile(boundary_cpu, 95)),
        "snapshot_p95_ms": json_ms(percentile(snapshot_ms, 95)),
        "steps_per_s": round(steps / window_s) if window_s else None,
        "snapshot_kib": round(len(blob) / 1024, 1),
        "state_hash": expected,
    }


def table_row(result: dict, machine: str, date: str, command: str) -> str:
    boundary = " / ".join(f"{result[f'boundary_p{q}_ms']}" for q in (50, 95, 99))
    return (
        f"| {result['entities']} | {result['windows']} | {boundary} | {result['boundary_cpu_p95_ms']} "
        f"| {result['snapshot_p95_ms']} "
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
    print(f"boundary CPU time p95: {result['boundary_cpu_p95_ms']} ms")
    print(f"steps/s: {result['steps_per_s']:,}   snapshot: {result['snapshot_kib']} KiB")
    if not args.no_write:
        command = f"gtw bench sim --entities {entities} --sim-windows {windows}"
        row = table_row(result, machine_text(load), datetime.now(UTC).date().isoformat(), command)
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_section(doc, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=2))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(result))
    return 0
