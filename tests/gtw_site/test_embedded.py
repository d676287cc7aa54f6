"""The zero-setup path: embedded PostgreSQL/Redis lifecycles and `gtw up`'s guard rails.

These start real servers in temporary folders, in subprocesses, so they never disturb the
servers the test run itself uses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import pytest

ROOT = Path(__file__).resolve().parents[2]
GTW = [sys.executable, "-m", "gtw_site.cli"]
pytestmark = pytest.mark.slow


def run_py(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_postgres_killed_under_us_is_restarted(tmp_path):
    result = run_py(
        f"""
        import os, signal, time, psycopg
        from pathlib import Path
        from gtw_site import embedded
        data = Path({str(tmp_path)!r})
        pg = embedded.start_postgres(data)
        with psycopg.connect(pg.url) as c:
            assert c.execute("select 1").fetchone() == (1,)
        info = Path(pg.pgdata, "postmaster.pid").read_text().split()[0]
        os.kill(int(info), signal.SIGKILL)
        for _ in range(400):  # a ceiling (20 s or more), for a loaded machine
            if not embedded.postgres_running(data):
                break
            time.sleep(0.05)
        try:
            psycopg.connect(pg.url, connect_timeout=2).close()
            print("STILL-UP")
        except psycopg.OperationalError as exc:
            print("DOWN-CLEARLY", type(exc).__name__)
        print("RESTARTED", embedded.restart_postgres_if_down(data))
        with psycopg.connect(pg.url) as c:
            print("QUERY", c.execute("select 41 + 1").fetchone()[0])
        """
    )
    assert "DOWN-CLEARLY OperationalError" in result.stdout, result.stderr
    assert "RESTARTED True" in result.stdout and "QUERY 42" in result.stdout


def test_redis_is_shared_and_stopped_by_the_last_process(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from gtw_site import embedded
            r = embedded.start_redis(Path({str(tmp_path)!r}))
            print(r.socket_path, flush=True)
            sys.stdin.readline()
        """),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        sock = holder.stdout.readline().strip()
        # A second process attaches and leaves: the server stays up for the first.
        second = run_py(f"""
            from pathlib import Path
            from gtw_site import embedded
            r = embedded.start_redis(Path({str(tmp_path)!r}))
            print("SAME", str(r.socket_path) == {sock!r}, r.ping())
        """)
        assert "SAME True True" in second.stdout, second.stderr
        assert Path(sock).exists()
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=20)
    finally:
        holder.kill()
    for _ in range(400):  # a ceiling (20 s or more), for a loaded machine
        if not Path(sock).exists():
            break
        time.sleep(0.05)
    assert not Path(sock).exists(), "the last process out stops Redis"


def test_second_gtw_up_in_the_same_folder_gets_a_clear_message(tmp_path):
    from gtw_site.cli.up import acquire_folder_lock

    lock = acquire_folder_lock(tmp_path)
    lock.write("pid 12345, http://127.0.0.1:8000/")
    lock.flush()
    try:
        result = subprocess.run(
            [*GTW, "up", "--port", "0"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "GTW_DATA_DIR": str(tmp_path)},
        )
    finally:
        lock.close()
    assert result.returncode == 1
    assert "already running in this folder (pid 12345" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_clash_gets_a_clear_message(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*GTW, "up", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "GTW_DATA_DIR": str(tmp_path)},
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gtw(data: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    env = {**os.environ, "GTW_DATA_DIR": str(data), "GTW_Q_WORKERS": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("GTW_DB_NAME", None)  # the test database name of the run, not of this fresh cluster
    proc = subprocess.Popen(
        [*GTW, "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    queue: Queue = Queue()
    # A reader thread, so a wedged server fails the test instead of hanging it.
    threading.Thread(
        target=lambda: [queue.put(line) for line in proc.stdout] + [queue.put(None)], daemon=True
    ).start()
    proc.lines = queue
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = queue.get(timeout=max(0.1, deadline - time.monotonic()))
        except Empty:
            break
        if line is None:
            break
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return proc, lines
    kill_tree(proc)
    raise AssertionError("gtw up did not come up:\n" + "".join(lines))


def kill_tree(proc: subprocess.Popen) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    proc.kill()


def stop_gtw(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        raise
    out = []
    while (line := proc.lines.get(timeout=10)) is not None:
        out.append(line)
    return "".join(out)


def test_gtw_up_serves_stops_cleanly_and_keeps_data(tmp_path):
    import urllib.request

    port = free_port()
    proc, lines = start_gtw(tmp_path, port)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
        assert b'"pgvector": "ok"' in body
        banner = "".join(lines)
        assert "Demo accounts (shown once" in banner and "gm@example.com" in banner
    finally:
        out = stop_gtw(proc)
    assert proc.returncode == 0, out
    assert "stopped" in out
    pg_pid_file = tmp_path / "pg" / "postmaster.pid"
    for _ in range(400):  # a ceiling (20 s or more), for a loaded machine
        if not pg_pid_file.exists() and not (tmp_path / "redis" / "redis.sock").exists():
            break
        time.sleep(0.1)
    assert not pg_pid_file.exists(), "PostgreSQL is stopped when gtw up exits"
    assert not (tmp_path / "redis" / "redis.sock").exists(), "Redis is stopped when gtw up exits"

    # Second start: data kept, demo passwords not printed again.
    proc, lines = start_gtw(tmp_path, port)
    stop_gtw(proc)
    assert "Demo accounts" not in "".join(lines)
    ready = [line for line in lines if "ready in" in line]
    assert ready, lines
    print("second start:", ready[0].strip())


def test_ctrl_c_during_start_up_stops_cleanly(tmp_path):
    """Regression: a SIGINT between spawning the children and installing the handlers killed
    `gtw up` with a KeyboardInterrupt and orphaned Daphne and the task cluster."""
    env = {**os.environ, "GTW_DATA_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("GTW_DB_NAME", None)  # the test database name of the run, not of this fresh cluster
    proc = subprocess.Popen(
        [*GTW, "up", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = proc.stdout.readline()
    assert "starting" in first
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        kill_tree(proc)
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "stopped" in out
