"""Issue 17 part 5: /metrics in prometheus_client's multiprocess mode — summed across worker
processes while they run, dead workers' live gauges swept, low-cardinality labels, and served
only to the bearer token or a loopback client with no proxy in front (401/403 otherwise)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import Client

from gtw_site import metrics, telemetry
from gtw_site.providers import Usage

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import sys
    from gtw_site import metrics
    for _ in range(int(sys.argv[1])):
        metrics.provider_call({"kind": "chat", "provider": "offline", "ok": True, "latency_ms": 30})
    metrics.provider_call({"kind": "chat", "provider": "offline", "ok": False, "latency_ms": 900})
    metrics.websocket(+2)
    print("ready", flush=True)
    sys.stdin.readline()  # stay alive until the test is done scraping
    """
)


def start_worker(directory: Path, calls: int) -> subprocess.Popen:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(calls)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start!r} not in the exposition")


@pytest.fixture
def metrics_dir(tmp_path, settings):
    settings.GTW_METRICS_DIR = str(tmp_path)
    settings.GTW_METRICS_TOKEN = ""
    settings.GTW_PROXY_HOPS = 0
    return tmp_path


def test_a_scrape_sums_two_running_workers_and_sweeps_a_dead_ones_gauge(metrics_dir):
    first, second = start_worker(metrics_dir, 3), start_worker(metrics_dir, 4)
    try:
        body = Client().get("/metrics").content.decode()
        calls = 'gtw_provider_calls_total{kind="chat",outcome="ok",provider="offline"}'
        assert value(body, calls) == 7
        assert value(body, 'gtw_provider_calls_total{kind="chat",outcome="error",provider="offline"}') == 2
        assert value(body, 'gtw_provider_latency_seconds_count{kind="chat",provider="offline"}') == 9
        assert value(body, "gtw_websocket_connections") == 4

        second.stdin.close()
        second.wait(timeout=10)
        body = Client().get("/metrics").content.decode()
        assert value(body, "gtw_websocket_connections") == 2  # the dead worker's sockets are gone
        assert value(body, calls) == 7  # counters never go backwards
        assert not list(metrics_dir.glob(f"gauge_live*_{second.pid}.db"))
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.stdin.close()
                proc.wait(timeout=10)


@pytest.mark.django_db
def test_labels_stay_low_cardinality(metrics_dir):
    """No campaign, session, user or model names: many sessions leave one series."""
    for session_id in range(20):
        with telemetry.scope(session_id=session_id, campaign_id=session_id):
            telemetry.record_call(
                role="narrator",
                provider="openai",
                model=f"m-{session_id}",
                latency_ms=3,
                usage=Usage(1, 1),
                kind="chat",
            )
    body, _ = metrics.exposition(os.environ[metrics.ENV])
    text = body.decode()
    series = [line for line in text.splitlines() if line.startswith("gtw_provider_calls_total{")]
    labels = {name for line in series for name in re.findall(r'(\w+)="', line)}
    assert labels == {"kind", "outcome", "provider"}
    assert sum('kind="chat",outcome="ok",provider="openai"' in line for line in series) == 1
    assert "m-1" not in text


@pytest.mark.django_db
def test_loopback_without_a_token_may_scrape(metrics_dir):
    response = Client().get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")


def test_a_remote_client_without_the_token_gets_401(metrics_dir):
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_behind_a_proxy_loopback_is_not_enough(metrics_dir, settings):
    settings.GTW_PROXY_HOPS = 1
    assert Client().get("/metrics").status_code == 401


def test_the_bearer_token_opens_it_from_anywhere_and_a_wrong_one_is_403(metrics_dir, settings):
    settings.GTW_METRICS_TOKEN = "metrics-token-0123456789"
    remote = Client(REMOTE_ADDR="203.0.113.9")
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789").status_code == 200
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Basic abc").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403  # even on loopback
    assert remote.get("/metrics").status_code == 401


def test_a_token_is_refused_when_none_is_configured(metrics_dir):
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 403


def test_gtw_up_wipes_the_folder(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale")
    metrics.wipe(str(folder))
    assert list(folder.iterdir()) == []


def test_dead_workers_files_are_folded_into_one_archive_and_totals_are_kept(metrics_dir):
    """Regression (client_python 204/367): every dead worker left its counter and histogram files
    behind, so the folder — and each scrape — grew with every worker ever started."""
    calls = 'gtw_provider_calls_total{kind="chat",outcome="ok",provider="offline"}'
    count = 'gtw_provider_latency_seconds_count{kind="chat",provider="offline"}'
    bucket = 'gtw_provider_latency_seconds_bucket{kind="chat",le="0.05",provider="offline"}'
    survivor = start_worker(metrics_dir, 1)
    try:
        for wave in (1, 2):
            workers = [start_worker(metrics_dir, n) for n in (2, 3, 4)]
            for proc in workers:
                proc.stdin.close()
                proc.wait(timeout=10)
            body = Client().get("/metrics").content.decode()
            dead_pids = {str(p.pid) for p in workers}
            left = {path.name for path in metrics_dir.glob("*.db")}
            assert not {name for name in left if name.rsplit("_", 1)[-1][:-3] in dead_pids}, left
            assert {"counter_archive.db", "histogram_archive.db"} <= left
            # The live processes' files plus one archive per type, however many workers died.
            owners = {name.rsplit("_", 1)[-1][: -len(".db")] for name in left}
            assert owners <= {"archive", str(survivor.pid), str(os.getpid())}, left
            assert value(body, calls) == 1 + wave * 9  # survivor 1, each wave 2 + 3 + 4
            assert value(body, count) == 2 + wave * 12  # one error call per worker too
            assert value(body, bucket) == 1 + wave * 9  # histogram buckets summed, not lost
            assert value(body, "gtw_websocket_connections") == 2  # only the survivor's
        again = Client().get("/metrics").content.decode()
        assert value(again, calls) == 19  # a second scrape folds nothing twice
    finally:
        survivor.stdin.close()
        survivor.wait(timeout=10)


def test_a_compaction_cut_short_is_finished_without_counting_twice(metrics_dir):
    calls = 'gtw_provider_calls_total{kind="chat",outcome="ok",provider="offline"}'
    worker = start_worker(metrics_dir, 5)
    worker.stdin.close()
    worker.wait(timeout=10)
    dead = metrics_dir / f"counter_{worker.pid}.db"
    kept = dead.read_bytes()
    assert value(Client().get("/metrics").content.decode(), calls) == 5
    # As if the scraper died after replacing the archive but before deleting the worker's file:
    archive = metrics_dir / "counter_archive.db"
    dead.write_bytes(kept)
    (metrics_dir / metrics.JOURNAL).write_text(
        json.dumps({"archive": archive.name, "digest": metrics._digest(archive), "files": [dead.name]})
    )
    assert value(Client().get("/metrics").content.decode(), calls) == 5
    assert not dead.exists() and not (metrics_dir / metrics.JOURNAL).exists()
    # …and as if it died before the replace (the journal names an archive that never landed):
    dead.write_bytes(kept)
    (metrics_dir / metrics.JOURNAL).write_text(
        json.dumps({"archive": archive.name, "digest": "not-this-one", "files": [dead.name]})
    )
    assert value(Client().get("/metrics").content.decode(), calls) == 10  # merged once, now
    assert not dead.exists()
