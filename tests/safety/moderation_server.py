"""A fake of OpenAI's POST /v1/moderations on 127.0.0.1, speaking its wire format (the
`results[0].categories` / `category_scores` objects keyed "violence/graphic", "self-harm/intent",
…, and the error body). Each test queues replies; every request is recorded."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LABELS = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def moderation_body(flags: dict[str, float], model: str = "omni-moderation-latest") -> dict[str, Any]:
    """A 200 body flagging `flags` (label → score); every other label is false, scored low."""
    return {
        "id": "modr-123",
        "model": model,
        "results": [
            {
                "flagged": bool(flags),
                "categories": {label: label in flags for label in LABELS},
                "category_scores": {label: flags.get(label, 0.0001) for label in LABELS},
                "category_applied_input_types": {label: ["text"] for label in LABELS},
            }
        ],
    }


class ModerationServer:
    def __init__(self) -> None:
        self.replies: deque[tuple[int, dict[str, Any]]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def flag(self, **flags: float) -> None:
        """Queue a reply; keyword names use _ for / and - ("violence_graphic", "self_harm_intent")."""
        named = {k.replace("self_harm", "self-harm").replace("_", "/"): v for k, v in flags.items()}
        self.replies.append((200, moderation_body(named)))

    def fail(self, status: int, message: str) -> None:
        self.replies.append((status, {"error": {"message": message, "type": "server_error", "code": None}}))

    def __enter__(self) -> ModerationServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: ModerationServer = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        fake.requests.append(body)
        fake.headers.append({k.lower(): v for k, v in self.headers.items()})
        if not self.path.endswith("/moderations"):
            status, payload = 404, {"error": {"message": f"no route {self.path}"}}
        elif fake.replies:
            status, payload = fake.replies.popleft()
        else:
            status, payload = 500, {"error": {"message": "fake: nothing scripted"}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
