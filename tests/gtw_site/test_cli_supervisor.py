"""`gtw up`'s supervisor: a dead child's whole group is killed before the restart and at shutdown,
restarts back off and give up on a crash loop, the start-up probe refuses a web server that never
answers, unanswered turns are re-run. The supervisor is driven with small fake children (Python
one-liners); one slow test runs a real `gtw up`."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gtw_site.cli import supervisor, up
from gtw_site.cli.supervisor import Child, CrashLoop, Supervisor
from tests.gtw_site.cli_helpers import GTW, ROOT


def alive(pid: int) -> bool:
    """Running (a zombie is dead: here PID 1 never reaps orphans)."""
    return supervisor._live_group(str(pid)) is not None


def wait_for(condition, timeout: float = 10.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {condition}")


def fake_child(name: str, code: str, **kwargs) -> Child:
    return Child(name, [sys.executable, "-c", textwrap.dedent(code)], dict(os.environ), **kwargs)


# A main process that forks a worker into its own group (like django-q's sentinel), writes the
# worker's pid to PIDFILE, then exits with 3. The worker ignores SIGTERM: only SIGKILL stops it.
FORKS_A_STUBBORN_WORKER_AND_DIES = """
    import os, signal, sys, time
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
        os._exit(0)
    with open({pidfile!r} + ".tmp", "w") as f:
        f.write(str(pid))
    os.rename({pidfile!r} + ".tmp", {pidfile!r})
    sys.exit(3)
"""


def read_pid(path: Path) -> int:
    pid = wait_for(lambda: path.exists() and path.read_text())
    path.unlink()
    return int(pid)


# ---- a dead child's whole group is killed before the restart, and at shutdown ----------------


def test_a_dead_childs_workers_are_killed_before_it_is_restarted(tmp_path):
    pidfile = tmp_path / "worker.pid"
    out = io.StringIO()
    sup = Supervisor(out, backoff_s=0.01, group_grace_s=0.5)
    child = sup.add(fake_child("tasks", FORKS_A_STUBBORN_WORKER_AND_DIES.format(pidfile=str(pidfile))))
    try:
        worker = read_pid(pidfile)
        first = child.proc
        first.wait(timeout=10)
        assert alive(worker), "the orphaned worker lives on after its main process died"

        assert sup.check() == []  # handles the exit: kills the group, waits out the back-off
        assert not alive(worker), "SIGTERM is ignored, so SIGKILL after the grace period"
        assert "gtw: tasks exited with 3; restarting it in 0.01 s." in out.getvalue()

        time.sleep(0.02)
        assert sup.check() == [child]
        assert child.proc is not first
        second_worker = read_pid(pidfile)
    finally:
        sup.stop(grace=2)
    assert not alive(second_worker)
    assert sup.groups == set()


def test_shutdown_kills_what_a_child_left_behind(tmp_path):
    """The main process stops on SIGTERM, but its worker (same group) would live on."""
    pidfile = tmp_path / "worker.pid"
    sup = Supervisor(io.StringIO(), group_grace_s=0.5)
    sup.add(
        fake_child(
            "memory-tasks",
            f"""
            import os, time
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            open({str(pidfile)!r}, "w").write(str(pid))
            time.sleep(60)
            """,
        )
    )
    worker = wait_for(lambda: pidfile.exists() and pidfile.read_text() and int(pidfile.read_text()))
    main = sup.children[0].proc
    sup.stop(grace=5)
    assert main.returncode == -signal.SIGTERM
    assert not alive(worker)


# ---- back-off, giving up on a crash loop, the start-up banner -----------------------------------


def test_restarts_back_off_exponentially_and_give_up_on_a_crash_loop():
    out = io.StringIO()
    sup = Supervisor(out, backoff_s=0.5, max_crashes=5, crash_window_s=60)
    child = sup.add(fake_child("web-1", "import sys; sys.exit(2)"))
    now = 1000.0
    for _ in range(4):
        child.proc.wait(timeout=10)
        assert sup.check(now=now) == []
        now = child.restart_at
        assert sup.check(now=now) == [child]
    child.proc.wait(timeout=10)
    with pytest.raises(CrashLoop, match=r"web-1 exited with 2 \(exit 5 within 60 s\); giving up"):
        sup.check(now=now)
    delays = [line.rsplit(" in ", 1)[1] for line in out.getvalue().splitlines()]
    assert delays == ["0.5 s.", "1 s.", "2 s.", "4 s."]
    sup.stop()


def test_crashes_spread_out_never_give_up_and_keep_the_short_delay():
    out = io.StringIO()
    sup = Supervisor(out, backoff_s=0.5, max_crashes=5, crash_window_s=60)
    child = sup.add(fake_child("web-1", "import sys; sys.exit(2)"))
    now = 1000.0
    for _ in range(8):
        child.proc.wait(timeout=10)
        sup.check(now=now)
        assert child.restart_at == now + 0.5
        sup.check(now=child.restart_at)
        now += 61
    sup.stop()


def serve_with(monkeypatch, sup: Supervisor, port: int, stop_when, ready_timeout: float) -> tuple[int, str]:
    monkeypatch.setattr(up, "_resume_turns", lambda out: 0)
    monkeypatch.setattr(up, "READY_TIMEOUT_S", ready_timeout)
    fake_settings = SimpleNamespace(EMBEDDED_POSTGRES=False, EMBEDDED_REDIS=False)
    args = SimpleNamespace(host="127.0.0.1", web_workers=1)
    try:
        code = up._serve(sup, args, port, Path("/nowhere"), fake_settings, time.monotonic(), stop_when)
    finally:
        sup.stop(grace=2)
    return code, sup.out.getvalue()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_a_web_server_that_never_answers_is_not_reported_up(monkeypatch):
    sup = Supervisor(io.StringIO())
    sup.add(fake_child("web-1", "import time; time.sleep(60)"))
    out = sup.out
    code, text = serve_with(monkeypatch, sup, free_port(), lambda: "Press Ctrl-C" in out.getvalue(), 1.0)
    assert code == 0
    assert "is up" not in text
    assert "the web server did not answer at http://localhost:" in text


def test_a_web_server_that_keeps_crashing_at_start_stops_gtw_up(monkeypatch):
    sup = Supervisor(io.StringIO(), backoff_s=0.01)
    sup.add(fake_child("web-1", "import sys; sys.exit(1)"))
    with pytest.raises(CrashLoop, match="web-1 exited with 1"):
        serve_with(monkeypatch, sup, free_port(), lambda: False, 30.0)
    assert "is up" not in sup.out.getvalue()


# ---- unanswered turns are re-run after the turns cluster restarts, and periodically ----------


def test_supervise_reruns_unanswered_turns_after_a_restart_and_periodically(tmp_path):
    marker = tmp_path / "crashed-once"
    out = io.StringIO()
    sup = Supervisor(out, backoff_s=0.01)
    sup.add(
        fake_child(
            "tasks",
            f"""
            import os, sys, time
            if not os.path.exists({str(marker)!r}):
                open({str(marker)!r}, "w").close()
                sys.exit(1)
            time.sleep(60)
            """,
            runs_turns=True,
        )
    )
    sup.add(fake_child("memory-tasks", "import time; time.sleep(60)"))
    calls: list[float] = []

    def resume() -> int:
        calls.append(time.monotonic())
        return 1

    started = time.monotonic()
    try:
        supervisor.supervise(
            sup, lambda: None, resume, lambda: time.monotonic() - started > 1.5, tick=0.02, resume_every=0.4
        )
    finally:
        sup.stop(grace=2)
    assert "gtw: re-running unanswered turns in 1 session(s)" in out.getvalue()
    assert calls[0] - started < 0.4, "right after the restart, before the first periodic round"
    assert len(calls) >= 3, calls


def test_resume_turns_calls_the_start_up_resume_and_survives_a_database_blip(monkeypatch):
    import narrative.turns

    monkeypatch.setattr(narrative.turns, "resume_all_pending", lambda: 2)
    assert up._resume_turns(io.StringIO()) == 2

    def down():
        raise ConnectionError("database is restarting")

    monkeypatch.setattr(narrative.turns, "resume_all_pending", down)
    out = io.StringIO()
    assert up._resume_turns(out) == 0
    assert "could not check for unanswered turns (ConnectionError); will retry" in out.getvalue()


# ---- slow: a real `gtw up` on a non-default address, its task cluster killed under it -------------


def descendants(pid: int) -> list:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).children(recursive=True)
    return []


@pytest.mark.slow
def test_gtw_up_on_another_address_and_a_killed_task_cluster(tmp_path):
    import urllib.request

    import psutil

    from tests.gtw_site.test_embedded import kill_tree

    port = free_port("127.0.0.2")
    env = {**os.environ, "GTW_DATA_DIR": str(tmp_path), "GTW_Q_WORKERS": "1"}
    for name in ("DJANGO_SETTINGS_MODULE", "GTW_DB_NAME", "GTW_ALLOWED_HOSTS", "GTW_HOST", "GTW_PORT"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [*GTW, "up", "--host", "127.0.0.2", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: set = set()
    try:
        wait_for(lambda: any("Press Ctrl-C" in line for line in lines), timeout=120, step=0.1)
        banner = "".join(lines)
        # The probe found the server on 127.0.0.2 (it used to stall 20 s on 127.0.0.1).
        assert f"is up at http://127.0.0.2:{port}/" in banner, banner
        # 127.0.0.2 is an allowed host without GTW_ALLOWED_HOSTS (it used to answer 400).
        body = urllib.request.urlopen(f"http://127.0.0.2:{port}/healthz", timeout=10).read()
        assert b'"pgvector": "ok"' in body

        def task_cluster():
            for child in psutil.Process(proc.pid).children():
                with contextlib.suppress(psutil.Error):
                    if "qcluster" in child.cmdline() and "Q_CLUSTER_NAME" not in child.environ():
                        return child
            return None

        main = task_cluster()
        old = wait_for(lambda: len(descendants(main.pid)) >= 3 and descendants(main.pid), timeout=60)
        seen.update(p.pid for p in [main, *old])
        main.kill()
        wait_for(lambda: any("tasks was killed by SIGKILL" in line for line in lines), timeout=30)
        # Its sentinel and workers are gone, not running on beside the new cluster.
        wait_for(lambda: not any(alive(p.pid) for p in old), timeout=15)
        new = wait_for(lambda: (c := task_cluster()) and c.pid != main.pid and c, timeout=30)
        wait_for(lambda: len(descendants(new.pid)) >= 3, timeout=60)
        seen.update(p.pid for p in [new, *descendants(new.pid)])
        seen.update(p.pid for p in descendants(proc.pid))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            raise
        reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert not [pid for pid in seen if alive(pid)], out
