"""Prometheus metrics in multiprocess mode, across every Daphne process and task worker.

prometheus_client keeps each process's values in files under PROMETHEUS_MULTIPROC_DIR
(GTW_METRICS_DIR, default <data dir>/metrics); `gtw up` wipes the folder before it starts the
children (`wipe`). A scrape sums the files of every process. Files of processes that are gone are
swept at each scrape (`sweep_dead`), the issue's "a file per dead worker until scrapes take 10 to
40 s" (client_python 204, 367): their live gauges are dropped (`mark_process_dead`), and their
counter, histogram and summary files are folded into one archive file per type
(`<type>_archive.db`, values summed key by key, so totals never go backwards) and deleted
(`compact_dead`). However many workers come and go, the folder holds the live processes' files
plus at most three archives.

A scrape holds an exclusive lock on the folder (`.compact.lock`, flock) while it compacts and
reads, so two scrapes never see a file vanish mid-read or merge the same file twice. A compaction
cut short (the scraper killed) is finished by the next one: a journal written before the archive
is replaced names the files it holds, and the archive's digest tells whether the replace
happened (then those files are deleted, never merged again) or not (then they are merged anew).

Low cardinality only: labels are kinds, adapter names, outcomes and fixed buckets — never a
campaign, session, user or model name. Other apps report through the helpers here
(`turn_finished`, `first_delta`, `websocket`, `cache`); safety triggers are counted by
campaigns.safety.services (`gtw_safety_triggers`) into the same folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
_FILE_PID = re.compile(r"_(\d+)\.db$")
ARCHIVED_TYPES = ("counter", "histogram", "summary")  # summed across processes: safe to fold
LOCK_FILE = ".compact.lock"
JOURNAL = "archive.journal"  # not *.db: the collector never reads it
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_metrics: dict[str, Any] | None = None
_lock = threading.Lock()


def configure(directory: str) -> None:
    """Point this process (and the processes it starts) at `directory`; before any metric is
    made. Settings call it, so every process of one data folder shares the folder."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(ENV, directory)


def wipe(directory: str) -> None:
    """Empty the folder (`gtw up`, before the children start): last run's values are stale."""
    path = Path(directory)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)


def _made() -> dict[str, Any]:
    global _metrics
    if _metrics is not None:
        return _metrics
    with _lock:  # two threads must not register the same names twice
        if _metrics is None:
            _metrics = _build()
    return _metrics


def _build() -> dict[str, Any]:
    from prometheus_client import Counter, Gauge, Histogram

    return {
        "calls": Counter(
            "gtw_provider_calls",
            "Provider calls by kind, adapter and outcome",
            ["kind", "provider", "outcome"],
        ),
        "latency": Histogram(
            "gtw_provider_latency_seconds",
            "Provider call latency",
            ["kind", "provider"],
            buckets=LATENCY_BUCKETS,
        ),
        "ttft": Histogram(
            "gtw_provider_first_token_seconds",
            "Time to a streamed call's first event",
            ["kind", "provider"],
            buckets=LATENCY_BUCKETS,
        ),
        "turn": Histogram(
            "gtw_turn_seconds",
            "A turn's run, from its runner taking it to its narration",
            buckets=LATENCY_BUCKETS,
        ),
        "first_delta": Histogram(
            "gtw_first_delta_seconds", "Action to the first narration delta", buckets=LATENCY_BUCKETS
        ),
        "sockets": Gauge(
            "gtw_websocket_connections", "Open websocket connections", multiprocess_mode="livesum"
        ),
        "cache": Counter("gtw_cache_lookups", "Cache lookups (images, TTS)", ["cache", "result"]),
        # gtw_safety_triggers{source, category, action} is counted by campaigns.safety.services
        # in the same multiprocess folder, so this exposition carries it too.
    }


def _kind(row: dict[str, Any]) -> str:
    return str(row.get("kind") or row.get("role") or "unknown")[:40]


def provider_call(row: dict[str, Any]) -> None:
    """Count one provider call (a telemetry row, gtw_site.telemetry)."""
    m = _made()
    kind, provider = _kind(row), str(row.get("provider") or "unknown")[:40]
    m["calls"].labels(kind, provider, "ok" if row.get("ok", True) else "error").inc()
    m["latency"].labels(kind, provider).observe(float(row.get("latency_ms") or 0) / 1000)
    if row.get("ttft_ms") is not None:
        m["ttft"].labels(kind, provider).observe(float(row["ttft_ms"]) / 1000)


def turn_finished(seconds: float) -> None:
    _made()["turn"].observe(seconds)


def first_delta(seconds: float) -> None:
    _made()["first_delta"].observe(seconds)


def websocket(delta: int) -> None:
    _made()["sockets"].inc(delta)


def cache(name: str, hit: bool) -> None:
    _made()["cache"].labels(name[:20], "hit" if hit else "miss").inc()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def folder_lock(directory: str) -> Iterator[None]:
    """The folder's compaction lock (exclusive, across processes)."""
    import fcntl

    with open(Path(directory) / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sweep_dead(directory: str) -> list[int]:
    """Drop the live gauges of processes that are gone and fold their counter and histogram files
    into the archives. Caller holds `folder_lock`. Returns their pids."""
    from prometheus_client import multiprocess

    dead: set[int] = set()
    for path in Path(directory).glob("*.db"):
        found = _FILE_PID.search(path.name)
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        try:
            multiprocess.mark_process_dead(pid, directory)
        except OSError:
            logger.debug("metrics files of pid %s already gone", pid)
    compact_dead(directory, dead)
    return sorted(dead)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finish_journal(folder: Path) -> None:
    """Complete (or drop) a compaction that was cut short; see the module docstring."""
    journal = folder / JOURNAL
    if not journal.exists():
        return
    try:
        entry = json.loads(journal.read_text())
        archive = folder / entry["archive"]
        if archive.exists() and _digest(archive) == entry["digest"]:
            for name in entry["files"]:
                (folder / name).unlink(missing_ok=True)  # already in the archive
        (folder / f"{entry['archive']}.tmp").unlink(missing_ok=True)
    except (ValueError, KeyError, TypeError):
        logger.warning("unreadable metrics journal dropped")
    journal.unlink(missing_ok=True)


def compact_dead(directory: str, pids: set[int] | list[int]) -> int:
    """Fold the dead `pids`' counter, histogram and summary files into `<type>_archive.db` and
    delete them. Caller holds `folder_lock`. Returns how many files were folded."""
    from prometheus_client.mmap_dict import MmapedDict

    folder = Path(directory)
    _finish_journal(folder)
    folded = 0
    for kind in ARCHIVED_TYPES:
        files = [f for pid in sorted(pids) if (f := folder / f"{kind}_{pid}.db").exists()]
        if not files:
            continue
        archive = folder / f"{kind}_archive.db"
        totals: dict[str, float] = {}
        for source in ([archive] if archive.exists() else []) + files:
            for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(source)):
                totals[key] = totals.get(key, 0.0) + value
        staged = folder / f"{archive.name}.tmp"
        staged.unlink(missing_ok=True)
        out = MmapedDict(str(staged))
        try:
            for key, value in totals.items():
                out.write_value(key, value, 0.0)
        finally:
            out.close()
        entry = {"archive": archive.name, "digest": _digest(staged), "files": [f.name for f in files]}
        (folder / f"{JOURNAL}.tmp").write_text(json.dumps(entry))
        os.replace(folder / f"{JOURNAL}.tmp", folder / JOURNAL)
        os.replace(staged, archive)  # the commit point
        for source in files:
            source.unlink(missing_ok=True)
        (folder / JOURNAL).unlink(missing_ok=True)
        folded += len(files)
    return folded


def queue_depth() -> int | None:
    """Tasks waiting in the django-q2 broker, or None when it cannot be read."""
    try:
        from django_q.brokers import get_broker

        return int(get_broker().queue_size() or 0)
    except Exception:
        logger.debug("queue depth not read", exc_info=True)
        return None


def exposition(directory: str) -> tuple[bytes, str]:
    """The text exposition of every process's metrics (after sweeping dead ones' files)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
    from prometheus_client.core import GaugeMetricFamily

    _made()  # this process's own files exist even before its first call
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)

    depth = queue_depth()  # read before taking the folder lock: the broker may be slow

    class QueueDepth:
        def collect(self):
            if depth is not None:
                yield GaugeMetricFamily("gtw_task_queue_depth", "Tasks waiting for a worker", value=depth)

    registry.register(QueueDepth())
    with folder_lock(directory):
        sweep_dead(directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
