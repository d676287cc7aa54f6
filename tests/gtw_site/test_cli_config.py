"""`gtw`'s configuration: the probe connects to the bound address, allowed hosts follow it, bad
settings read as one line without a traceback, `gtw doctor` builds each role's provider, and
processes starting at once agree on one secret key file."""

from __future__ import annotations

import multiprocessing
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gtw_site import settings as gtw_settings
from gtw_site.cli import doctor, up
from tests.gtw_site.cli_helpers import GTW, ROOT

# ---- the probe connects to the bound address; the bound address is an allowed host ------------


def test_the_probe_connects_to_the_bound_address():
    assert up._probe_host("0.0.0.0") == "127.0.0.1"  # noqa: S104
    with socket.socket() as server:
        server.bind(("127.0.0.2", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.recv(100)
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        assert up._wait_http(up._probe_host("127.0.0.2"), port, timeout=3)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["localhost", "127.0.0.1", "[::1]"]),
        ({"GTW_HOST": "192.168.1.20"}, ["localhost", "127.0.0.1", "[::1]", "192.168.1.20"]),
        ({"GTW_HOST": "0.0.0.0"}, ["localhost", "127.0.0.1", "[::1]"]),  # noqa: S104
        ({"GTW_HOST": "fe80::1"}, ["localhost", "127.0.0.1", "[::1]", "[fe80::1]"]),
        ({"GTW_HOST": "192.168.1.20", "GTW_ALLOWED_HOSTS": "game.example.com"}, ["game.example.com"]),
    ],
)
def test_allowed_hosts_default_to_loopback_plus_the_bound_host(monkeypatch, env, expected):
    monkeypatch.delenv("GTW_HOST", raising=False)
    monkeypatch.delenv("GTW_ALLOWED_HOSTS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert gtw_settings._allowed_hosts() == expected


# ---- bad configuration: one line, no traceback ----------------------------------------------------


def run_gtw(*argv, tmp_path, **env) -> subprocess.CompletedProcess:
    # External (unreachable) database and Redis: settings load without starting embedded servers.
    base = {
        **os.environ,
        "GTW_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "GTW_DB_NAME", "GTW_PORT", "GTW_WEB_WORKERS"):
        base.pop(name, None)
    return subprocess.run(
        [*GTW, *argv], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or result.returncode == 2, result.stderr  # argparse adds its usage line
    return lines[-1]


def test_bad_gtw_port_does_not_break_help_and_reads_as_one_line(tmp_path):
    assert run_gtw("--help", tmp_path=tmp_path, GTW_PORT="abc").returncode == 0
    assert run_gtw("up", "--help", tmp_path=tmp_path, GTW_WEB_WORKERS="x").returncode == 0
    line = one_line_error(run_gtw("up", tmp_path=tmp_path, GTW_PORT="abc"))
    assert line == "gtw: GTW_PORT must be a whole number, got 'abc'"
    line = one_line_error(run_gtw("up", tmp_path=tmp_path, GTW_PORT="70000"))
    assert line == "gtw: GTW_PORT must be a port number from 0 to 65535, got 70000"
    line = one_line_error(run_gtw("up", tmp_path=tmp_path, GTW_WEB_WORKERS="0"))
    assert line == "gtw: GTW_WEB_WORKERS must be at least 1, got 0"
    result = run_gtw("up", "--port", "70000", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--port: must be a port number from 0 to 65535, got 70000" in one_line_error(result)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GTW_Q_WORKERS": "abc"}, "GTW_Q_WORKERS must be a whole number, got 'abc'"),
        ({"GTW_LLM_TIMEOUT": "30s"}, "GTW_LLM_TIMEOUT must be a number (e.g. 2.5), got '30s'"),
        ({"GTW_PRESENCE_TTL_S": "soon"}, "GTW_PRESENCE_TTL_S must be a number (e.g. 2.5), got 'soon'"),
        (
            {"DATABASE_URL": "foo://db/x"},
            "DATABASE_URL is not a valid database URL (Scheme 'foo://' is unknown)",
        ),
        ({"DATABASE_URL": "postgres://u:p@h:port/x"}, "DATABASE_URL is not a valid database URL"),
    ],
)
def test_bad_settings_read_as_one_configuration_error(tmp_path, env, message):
    line = one_line_error(run_gtw("doctor", tmp_path=tmp_path, **env))
    assert line.startswith("gtw: configuration error: ") and message in line


def test_env_helpers_raise_improperly_configured(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("GTW_X", "7.5")
    assert gtw_settings.env_float("GTW_X", 1.0) == 7.5
    with pytest.raises(ImproperlyConfigured, match=r"GTW_X must be a whole number, got '7\.5'"):
        gtw_settings.env_int("GTW_X", 1)
    monkeypatch.setenv("GTW_X", "nan")
    with pytest.raises(ImproperlyConfigured, match="GTW_X must be a number"):
        gtw_settings.env_float("GTW_X", 1.0)
    monkeypatch.setenv("GTW_X", " ")
    assert gtw_settings.env_int("GTW_X", 4) == 4


def test_presence_timings_accept_fractions(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from gtw_site import settings as s; print(s.GTW_PRESENCE_TTL_S)"],
        cwd=ROOT,
        env={
            **os.environ,
            "GTW_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "GTW_PRESENCE_TTL_S": "7.5",
            "GTW_PRESENCE_HEARTBEAT_S": "2.5",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "7.5", result.stderr


# ---- doctor builds each role's provider ---------------------------------------------------------


def test_doctor_reports_a_provider_that_cannot_be_built(tmp_path):
    result = run_gtw(
        "doctor",
        tmp_path=tmp_path,
        GTW_NARRATOR_PROVIDER="bogus",
        GTW_SUMMARIZER_PROVIDER="openai",
        OPENAI_API_KEY="",
    )
    assert result.returncode == 1
    assert "✗ narrator     bogus: unknown provider 'bogus' for role narrator" in result.stdout
    assert "✗ summarizer   openai: no API key configured" in result.stdout
    assert "Traceback" not in result.stderr


def test_provider_check_passes_for_the_offline_narrator(settings):
    ok, role, detail = doctor._provider_check("narrator")
    assert (ok, role) == (True, "narrator") and detail.startswith("offline (")


# ---- the secret key file ---------------------------------------------------------------------------


def _read_key_in_child(path: str, barrier, results) -> None:
    barrier.wait()
    results.put(gtw_settings.secret_key_file(Path(path)))


def test_processes_starting_at_once_agree_on_one_private_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    old_umask = os.umask(0)  # the file must not depend on the umask to be private
    try:
        for attempt in range(5):
            path = tmp_path / f"key{attempt}"
            barrier, results = ctx.Barrier(6), ctx.Queue()
            procs = [
                ctx.Process(target=_read_key_in_child, args=(str(path), barrier, results)) for _ in range(6)
            ]
            for proc in procs:
                proc.start()
            keys = {results.get(timeout=30) for _ in procs}
            for proc in procs:
                proc.join(timeout=30)
            assert len(keys) == 1 and "" not in keys, keys
            assert keys == {path.read_text()}
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_a_key_file_still_being_written_is_waited_for(tmp_path):
    path = tmp_path / "secret_key"
    path.touch(mode=0o600)  # another process just created it and has not written yet
    timer = threading.Timer(0.3, lambda: path.write_text("the-key"))
    timer.start()
    try:
        assert gtw_settings.secret_key_file(path) == "the-key"
    finally:
        timer.cancel()
