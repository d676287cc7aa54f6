"""The stage page's script (under node) asks the server about a due batch window only while its
socket is open."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


# ---- the stage page's window checks -----------------------------------------------------

STAGE_JS_HARNESS = r"""
const vm = require("vm"), fs = require("fs");
const handlers = {}, ticks = [], timers = [], sent = [];
const due = new Date(Date.now() - 5000).toISOString();
const countdown = { dataset: { closesAt: due, window: "1" }, textContent: "" };
const sandbox = {
  WebSocket: { OPEN: 1, CLOSED: 3 },
  navigator: { onLine: true },
  setInterval: (fn) => { ticks.push(fn); },
  setTimeout: (fn) => { timers.push(fn); },
  document: {
    readyState: "complete",
    body: { addEventListener: (name, fn) => { handlers[name] = fn; } },
    getElementById: (id) => (id === "window-countdown" ? countdown : null),
    addEventListener: () => {},
  },
};
sandbox.window = sandbox;
sandbox.addEventListener = () => {};
vm.createContext(sandbox);
for (const file of process.argv.slice(1)) { vm.runInContext(fs.readFileSync(file, "utf8"), sandbox); }
const socket = { readyState: 1 };
const wrapper = { send: (text) => sent.push(JSON.parse(text).type), reconnect: () => {} };
handlers["htmx:wsOpen"]({ detail: { event: { target: socket }, socketWrapper: wrapper } });
const later = () => {  // the next tick of the countdown, and the checks it scheduled
  ticks[0]();
  timers.splice(0).forEach((fn) => fn());
};
socket.readyState = 3;  // the network dropped; htmx has not reconnected yet
later();
const offline = sent.slice();
socket.readyState = 1;  // back
later();
console.log(JSON.stringify({ offline: offline, online: sent }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_stage_page_asks_about_a_due_window_only_while_its_socket_is_open(tmp_path):
    out = subprocess.run(
        ["node", "-e", STAGE_JS_HARNESS, str(ROOT / "static/live.js"), str(ROOT / "static/stage.js")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["offline"] == ["hello"]
    assert result["online"] == ["hello", "window_check"]
