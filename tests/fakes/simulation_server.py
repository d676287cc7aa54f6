"""A fake learned world model speaking docs/SIMULATION.md's JSON protocol (POST /v1/step) on
127.0.0.1, for the remote simulation provider's contract tests.

It really steps the posted world (with the procedural stepper, seeded the same way), so a
well-behaved answer hashes exactly like the local provider's. `mode` makes it misbehave:
"slow" (answers after `delay` seconds), "wrong_hash" (claims a hash its world does not have),
"http500", "short" (runs at most `cap` steps per call), "not_json", "objective" (also reports
an objective the world completed on its own). Every request body is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from missions.simulation import ProceduralSimulation, Window


class FakeWorldModel:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.cap = 2
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.requests.append(body)
                fake.auth.append(self.headers.get("Authorization") or "")
                status, answer = fake.answer(self.path, body)
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path != "/v1/step":
            return 404, {"error": "no such route"}
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "http500":
            return 500, {"error": "the model fell over"}
        if self.mode == "not_json":
            return 200, b"<html>oops</html>"
        window = body["window"]
        budget = min(window["budget"], self.cap) if self.mode == "short" else window["budget"]
        sim = ProceduralSimulation()
        sim.campaign_id, sim.session_id = body["campaign_id"], body["session_id"]
        sim.world, sim.step_index = body["world"], body["step"]
        protected = tuple(window.get("protected") or ())
        report = sim.step(Window(window["beat_id"], window["start_step"], budget, protected))
        changes = list(report.changes)
        if self.mode == "objective":
            changes.append({"step": window["start_step"], "kind": "objective_completed", "objective": "dock"})
        claimed = report.state_hash
        if self.mode == "wrong_hash":
            claimed = hashlib.sha256(b"a world of its own").hexdigest()
        return 200, {"steps": budget, "world": sim.world, "changes": changes, "state_hash": claimed}
