"""Issue 23 end to end, with the embedded services: a private `gtw up` in a temporary folder has its
PostgreSQL killed (SIGKILL) mid-turn and its Redis killed between turns, and every action is still
answered exactly once — the committed roll reused, one Narration, no TurnFailed — with the
player's socket showing every event they may see, in order.

It runs `gtw bench recovery` (which kills only the servers of the `gtw up` it started) and checks
its counts, never its times.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from tests.gtw_site.cli_helpers import GTW, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recovery-faults")]
# A loaded 2-core machine starts `gtw up` slowly; the answer times themselves are never asserted.
BENCH_TIMEOUT_S = 330


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "GTW_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "gtw_site.settings"}
    for name in ("GTW_DB_NAME", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    return env


def _migrated_template() -> Path:
    """A stopped, migrated embedded PostgreSQL folder, made once per set of migrations and kept
    beside the test run's own data (initdb + migrate are most of a fresh `gtw up`'s start-up).
    Copied per run, so every run still gets its own private server to kill."""
    names = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/migrations/0*.py"))
    names += sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*/migrations/0*.py"))
    key = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    template = Path(settings.DATA_DIR) / f"recovery-template-{key}"
    if not (template / "pg" / "PG_VERSION").exists() or not (template / "migrated").exists():
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir(parents=True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=_server_env(template),
            check=True,
            timeout=170,
        )  # exits, and the embedded servers stop with it (it was their last user)
        (template / "migrated").touch()
    return template


@pytest.fixture
def data_dir():
    """The private `gtw up`'s folder. Not pytest's tmp_path: as root, the embedded PostgreSQL runs
    as the `pgserver` user, which must traverse the path to restart it — and every pytest session
    on the machine (another run beside ours) resets /tmp/pytest-of-<user> to mode 0700."""
    path = Path(tempfile.mkdtemp(prefix="gtw-recovery-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(BENCH_TIMEOUT_S + 200)
def test_postgres_killed_mid_turn_and_redis_killed_between_turns(data_dir):
    tmp_path = data_dir
    # `gtw up` still migrates (a no-op, or whatever landed after the template was made).
    subprocess.run(["cp", "-a", str(_migrated_template() / "pg"), str(tmp_path / "pg")], check=True)
    env = {
        **os.environ,
        "GTW_BENCH_DATA_DIR": str(tmp_path),
        "GTW_Q_WORKERS": "1",  # a small machine: one turn worker is enough for one table
    }
    for name in ("DJANGO_SETTINGS_MODULE", "GTW_DB_NAME", "GTW_DATA_DIR", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    bench = subprocess.Popen(
        [*GTW, "bench", "recovery", "--no-write"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=BENCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        bench.terminate()  # the bench stops its `gtw up` (and so the servers) on SIGTERM
        stdout, stderr = bench.communicate(timeout=60)
    result = subprocess.CompletedProcess(bench.args, bench.returncode, stdout, stderr)
    log = (tmp_path / "server.log").read_text(errors="replace") if (tmp_path / "server.log").exists() else ""
    # Kept beside the run's data for a post-mortem (the temporary folder goes).
    (Path(settings.DATA_DIR) / "recovery-faults-server.log").write_text(f"{stdout}\n{stderr}\n{log}")
    lines = result.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), f"{result.stdout}\n{result.stderr}\n{log[-3000:]}"
    figures = json.loads(lines[-1])
    context = f"{figures}\n{result.stderr[-2000:]}\n{log[-3000:]}"

    assert figures["killed_mid_turn"], "PostgreSQL died after the roll and before the Narration"
    # Exactly once: one Narration per action, the interrupted turn's committed roll reused.
    assert len(figures["answers"]) == 4 and set(figures["answers"].values()) == {1}, context
    assert set(figures["rolls"].values()) == {1}, context
    assert figures["failed_turns"] == 0, "an outage is not the turn's fault: no TurnFailed"
    assert figures["exactly_once"]
    # The socket healed through both outages: nothing missing, nothing out of order.
    assert figures["socket_missing"] == 0 and figures["socket_gaps"] == 0, context
    assert figures["pg_recovery_s"] is not None and figures["redis_recovery_s"] is not None
    # The supervisor brought both back, and the worker that lost PostgreSQL re-ran its own turn.
    assert "PostgreSQL had stopped; restarted it." in log, context
    assert "Redis had stopped; restarted it." in log, context
    assert "lost the database during session" in log and "database back after" in log, context
    assert result.returncode == 0, context
