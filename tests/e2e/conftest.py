"""Real-browser fixtures: a Daphne process on the test database, and headless Debian chromium.

Daphne runs as a subprocess with the test settings (tasks inline, so a turn runs in the Daphne
process that received the action) and GTW_DB_NAME pointing at pytest-django's database; the
data must therefore be committed (transactional tests). Browsers log in by carrying a Django
session cookie made with `Client.force_login`.

Transactional tests flush their database: where several people share one var/test server,
give a run its own database with `GTW_DB_NAME=<name> pytest tests/e2e` (-> test_<name>).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "shots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    # A ceiling: Daphne's start (Django, the app registry, the channel layer) took over 30 s on a
    # loaded 2-core machine.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"daphne did not become healthy in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def daphne(transactional_db, tmp_path):
    """Base URL of a Daphne serving the committed test data. Killed at teardown, before the flush."""
    from django.db import connection

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gtw_site.test_settings",
        "GTW_DB_NAME": connection.settings_dict["NAME"],
        "GTW_OFFLINE_WORD_DELAY_MS": "30",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "daphne.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "gtw_site.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        tail = int(os.environ.get("GTW_E2E_LOG_CHARS", "4000"))
        print(f"--- daphne log (tail) ---\n{log.read_text(errors='replace')[-tail:]}")  # shown on failure


@pytest.fixture
def session_cookie():
    """`session_cookie(user)` -> the value of a logged-in `sessionid` cookie for that user."""
    from django.test import Client

    def make(user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return make


@pytest.fixture
def browser(daphne, monkeypatch):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

    # Playwright's sync API keeps an event loop set on this thread; our ORM calls stay sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def shot():
    """`shot(page, name)` saves a full-page screenshot to shots/ when GTW_SHOTS=1."""
    enabled = os.environ.get("GTW_SHOTS") == "1"
    if enabled:
        SHOTS.mkdir(exist_ok=True)

    def take(page, name: str) -> None:
        if enabled:
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take


TIMEOUT_MS = 30_000  # a ceiling for any one wait in the browser, never a pace


@pytest.fixture
def persona_pages(browser, daphne, session_cookie):
    """`persona_pages({"gm": gm, "player": player}, height=900)`: a logged-in page per persona,
    each in its own browser context (closed after the test)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts = []

    def make(users: dict, height: int = 800) -> dict:
        made = {}
        for name, user in users.items():
            context = browser.new_context(base_url=daphne, viewport={"width": 1280, "height": height})
            context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": daphne}])
            context.set_default_timeout(TIMEOUT_MS)
            contexts.append(context)
            made[name] = context.new_page()
        return made

    yield make
    for context in contexts:
        context.close()
