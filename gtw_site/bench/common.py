"""What every `gtw bench …` shares: where things live, the throw-away server, the numbers, and the
docs/BENCHMARKS.md writer."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
# The benchmark data folder of `gtw bench turn` (and of the separate memory-bench database):
# never your game's var/.
DATA_DIR = BASE_DIR / "var" / "bench"
DOC = BASE_DIR / "docs" / "BENCHMARKS.md"
# Always the embedded servers in the benchmark's data folder: a benchmark must never write into a
# real database.
UNSET_ENV = ("DATABASE_URL", "REDIS_URL", "GTW_DB_NAME")
# Loopback only: a *_proxy variable in the user's shell must not reroute our requests.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- a bench's own database -----------------------------------------------------------------


def setup_database(folder: Path, db_name: str) -> None:
    """Django on `folder`'s embedded PostgreSQL, database `db_name` (created and migrated here),
    with the content packs loaded. Never a DATABASE_URL from the user's shell."""
    os.environ["GTW_DATA_DIR"] = str(folder)
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "gtw_site.settings"
    folder.mkdir(parents=True, exist_ok=True)
    import psycopg

    from gtw_site import embedded

    pg = embedded.start_postgres(folder)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            conn.execute(f'CREATE DATABASE "{db_name}"')
    os.environ["GTW_DB_NAME"] = db_name
    import django

    django.setup()
    from django.core.management import call_command

    from campaigns.content import content_load

    call_command("migrate", interactive=False, verbosity=0)
    content_load()


# ---- the server under test ------------------------------------------------------------------


def start_server(port: int, log, *, workers: int | None = None) -> subprocess.Popen:
    """A throw-away `gtw up` on `port` with the caller's environment (each bench sets it first).

    Own process group: Ctrl-C in this terminal reaches only us, and we stop the server with
    SIGTERM (it stops Daphne and the task cluster; the embedded servers stop with the last user)."""
    cmd = [sys.executable, "-m", "gtw_site.cli", "up", "--port", str(port)]
    if workers is not None:
        cmd += ["--web-workers", str(workers)]
    return subprocess.Popen(cmd, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT, process_group=0)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float) -> None:
    """Until /healthz answers 200; RuntimeError if the server exits or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`gtw up` exited with {proc.returncode}")
        with contextlib.suppress(OSError), HTTP.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f} s")


def server_failed(exc: BaseException, log_path: Path, name: str = "gtw bench") -> int:
    """Say why a benchmark run failed, with the end of the server's log; the exit status."""
    tail = log_path.read_text(errors="replace")[-3000:]
    sys.stderr.write(f"{name}: {exc!r}\n--- end of {log_path} ---\n{tail}")
    return 1


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- numbers ----------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest rank, no interpolation: every number reported is one that was measured."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def machine_text(load: float) -> str:
    """The docs table's machine column: nproc x CPU model, and the 1-minute load before the run."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return f"{os.cpu_count()} x {found.group(1).strip() if found else platform.machine()}, load {load:.1f}"


def json_ms(value: float) -> float | None:
    """Milliseconds for the final JSON line: rounded, and None for NaN (JSON has no NaN)."""
    return round(value, 1) if math.isfinite(value) else None


# ---- docs/BENCHMARKS.md -------------------------------------------------------------------------


def update_section(
    text: str, section: str, how: str, header: str, row: str, key_cols: int, *, sort: bool = False
) -> str:
    """Add or replace `row` in the first table of `section` (rows match on their first
    `key_cols` cells; with `sort`, rows are ordered by those cells, numbers as numbers);
    everything else in the file, other sections and the notes under a table included, stays."""

    def key(line: str) -> list[str]:
        return [c.strip() for c in line.split("|")[1 : 1 + key_cols]]

    def order(line: str) -> tuple:
        return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in key(line))

    if section not in text:
        head = text.rstrip() + "\n\n" if text.strip() else "# Benchmarks\n\n"
        return head + f"{section}\n\n{how}\n\n{header}\n{row}\n"
    start = text.index(section)
    following = re.search(r"^## ", text[start + len(section) :], re.M)
    end = start + len(section) + following.start() if following else len(text)
    lines = text[start:end].split("\n")
    top = next((i for i, ln in enumerate(lines) if ln.startswith(header.split("\n")[0][:12])), None)
    if top is None:
        lines[1:1] = ["", header, row]
    else:
        bottom = top
        while bottom < len(lines) and lines[bottom].startswith("|"):
            bottom += 1
        keep = [ln for ln in lines[top + 2 : bottom] if key(ln) != key(row)]
        rows = sorted([*keep, row], key=order) if sort else [*keep, row]
        lines[top:bottom] = [header, *rows]
    return text[:start] + "\n".join(lines) + text[end:]
