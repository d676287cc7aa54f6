"""`gtw bench mission --lines L --steps S`: mission compile time and runtime cost per event.

Runs `missions.bench.run` (pure Python, no database, no server): 20 compiles of a generated
L-line mission, then S seeded random game events through `missions.runtime.step`. Not a test:
prints p50/p95/p99, a final JSON line, and (unless --no-write) adds or replaces its row in the
"gtw bench mission" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

from gtw_site.bench.common import (
    BASE_DIR,
    DOC,
    machine_text,
    update_section,
)
from missions import bench

SECTION = "## gtw bench mission"
HOW_MEASURED = """\
How measured: `gtw bench mission --lines L --steps S` generates a valid mission of L lines
(`missions.bench.generate_mission_source`, seed 0: chained chapters, each a scene, three
objectives, a clock, a twist, an NPC and a fail state), compiles it 20 times (**compile**: parse +
validate + content hash, `missions.dsl.compile_source`), then feeds S seeded random game events
(checks, turn ends, flags, advances, beat changes, GM overrides) through `missions.runtime.step`,
restarting the mission whenever it ends (**step**: one event, timed alone). Pure Python in one
process, no database. Percentiles are nearest rank; **steps/s** is S over the summed step times.
With 20 compiles the p99 is the slowest one, the first: it also pays the one-time parser build."""
TABLE_HEADER = (
    "| lines | steps | compile p50 / p95 / p99 (ms) | step p50 / p95 / p99 (µs) | steps/s | restarts "
    "| machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---:|---|---|---:|---:|---|---|---|"
)


def command_for(lines: int, steps: int) -> str:
    return f"gtw bench mission --lines {lines} --steps {steps}"


def table_row(result: dict, machine: str, date: str, command: str) -> str:
    compile_ms = " / ".join(f"{result[f'compile_p{q}_ms']:.2f}" for q in (50, 95, 99))
    step_us = " / ".join(f"{result[f'step_p{q}_us']:.1f}" for q in (50, 95, 99))
    return (
        f"| {result['lines']} | {result['steps']} | {compile_ms} | {step_us} | {result['steps_per_s']:,} "
        f"| {result['restarts']} | {machine} | {date} | `{command}` |"
    )


def update_doc(text: str, row: str) -> str:
    """Add or replace our row (same lines and steps) in the section; everything else stays."""

    return update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=2)


def print_table(result: dict, out=sys.stdout) -> None:
    out.write(f"{'':<14}{'p50':>10}{'p95':>10}{'p99':>10}\n")
    out.write(
        f"{'compile (ms)':<14}" + "".join(f"{result[f'compile_p{q}_ms']:>10.2f}" for q in (50, 95, 99)) + "\n"
    )
    out.write(
        f"{'step (µs)':<14}" + "".join(f"{result[f'step_p{q}_us']:>10.1f}" for q in (50, 95, 99)) + "\n"
    )
    out.write(
        f"steps/s: {result['steps_per_s']:,}   restarts: {result['restarts']}   "
        f"wall: {result['wall_s']:.2f} s\n"
    )


def main(args) -> int:
    lines, steps = args.lines, args.steps
    if lines < 1 or steps < 1:
        sys.stderr.write("gtw bench mission: --lines and --steps must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    print(f"gtw bench mission: a {lines}-line mission, {steps} runtime steps", flush=True)
    result = bench.run(lines=lines, steps=steps)
    print_table(result)
    if not args.no_write:
        machine = machine_text(load)
        date = datetime.now(UTC).date().isoformat()
        row = table_row(result, machine, date, command_for(lines, steps))
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_doc(doc, row))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(result))
    return 0
