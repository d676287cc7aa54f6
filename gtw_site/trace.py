"""A cross-process timeline for `gtw bench turn --trace`.

With GTW_TRACE_FILE set, `mark(label)` appends "<monotonic seconds> <pid> <label>" to that file.
CLOCK_MONOTONIC is one clock for every process on the machine, so marks written by Daphne, the
task workers and the benchmark's clients line up. Unset (always, outside the benchmark), a mark
costs one global lookup.
"""

from __future__ import annotations

import os
import statistics
import time

_PATH = os.environ.get("GTW_TRACE_FILE")


def record_to(path: str) -> None:
    """Start marking into `path`, in this process and in every process it starts from now on."""
    global _PATH
    os.environ["GTW_TRACE_FILE"] = _PATH = path


def mark(label: str) -> None:
    if _PATH:
        # O_APPEND writes of one short line are atomic: processes never interleave a line.
        fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{time.perf_counter():.6f} {os.getpid()} {label}\n".encode())
        finally:
            os.close(fd)


def breakdown(path: str, start: str, skip: int = 0) -> list[tuple[str, float, float, int]]:
    """Per label: median and max ms after the `start` mark that opened its turn (first
    occurrence per turn only), skipping the first `skip` turns. Sorted by median."""
    with open(path) as f:
        marks = sorted((float(t), label) for t, _pid, label in (line.split() for line in f if line.strip()))
    turns: list[list[tuple[float, str]]] = []
    for t, label in marks:
        if label == start:
            turns.append([(t, label)])
        elif turns:
            turns[-1].append((t, label))
    samples: dict[str, list[float]] = {}
    for turn in turns[skip:]:
        t0, seen = turn[0][0], set()
        for t, label in turn:
            if label not in seen:
                seen.add(label)
                samples.setdefault(label, []).append((t - t0) * 1000)
    rows = [(label, statistics.median(v), max(v), len(v)) for label, v in samples.items()]
    return sorted(rows, key=lambda r: r[1])
