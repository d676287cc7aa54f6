"""A scripted fake of OpenAI's POST /v1/embeddings, for the embedder contract tests.

It speaks the wire format on 127.0.0.1 so the adapter runs through the real SDK and a real
socket. The official SDK asks for `encoding_format: "base64"` unless told otherwise and
decodes little-endian float32 itself, so the server answers in whichever format was asked
(or in floats regardless, like servers that ignore the option). Each test may queue
`EmbedReply`s; a POST with none queued gets a default reply. Every POST is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def vector_for(text: str, dimensions: int) -> list[float]:
    """A deterministic, deliberately unnormalised vector derived from the text alone."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    values = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32) * 3.0
    return values.tolist()


@dataclass
class EmbedReply:
    status: int = 200
    error_message: str = ""
    error_type: str = "invalid_request_error"
    error_code: str | None = None
    # Seconds to wait before answering at all.
    delay: float = 0.0
    # Vectors this wide instead of the requested `dimensions`.
    width: int | None = None
    # Send `data` in reverse order (the API promises an `index`, not an order).
    reverse: bool = False
    # Answer with float lists even when base64 was asked for.
    force_float: bool = False
    # Drop the last item of `data`.
    drop_last: bool = False

    @classmethod
    def error(cls, status: int, message: str = "", code: str | None = None) -> EmbedReply:
        error_type = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
        return cls(
            status=status,
            error_message=message or _DEFAULT_ERRORS.get(status, "Something went wrong"),
            error_type=error_type,
            error_code=code,
        )


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


_DEFAULT_ERRORS = {
    400: "Invalid request",
    401: "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com.",
    403: "You are not allowed to use this model",
    404: "The model `text-embedding-9` does not exist or you do not have access to it.",
    429: "Rate limit reached for text-embedding-3-small on requests per min (RPM)",
    500: "The server had an error while processing your request",
}


class EmbedServer:
    default_dimensions = 1536  # what text-embedding-3-small returns when not asked to shorten

    def __init__(self) -> None:
        self.replies: deque[EmbedReply] = deque()
        self.requests: list[Received] = []
        self.closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.embed = self  # type: ignore[attr-defined]
        # A client that gave up (timeout tests) leaves the handler writing to a dead socket.
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def last_body(self) -> dict[str, Any]:
        return self.requests[-1].body

    def script(self, *replies: EmbedReply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> EmbedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        server: EmbedServer = self.server.embed  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        headers = {key.lower(): value for key, value in self.headers.items()}
        server.requests.append(Received(self.path, headers, body))
        if self.path != "/v1/embeddings":
            self._send_json(
                404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}}
            )
            return
        reply = server.replies.popleft() if server.replies else EmbedReply()
        try:
            if reply.delay and server.closing.wait(reply.delay):
                return
            if reply.status != 200:
                error = {"message": reply.error_message, "type": reply.error_type, "param": None}
                error["code"] = reply.error_code
                self._send_json(reply.status, {"error": error})
                return
            self._send_json(200, _response(body, reply, server.default_dimensions))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _response(body: dict[str, Any], reply: EmbedReply, default_dimensions: int) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    width = reply.width or body.get("dimensions") or default_dimensions
    as_base64 = body.get("encoding_format") == "base64" and not reply.force_float
    data = []
    for index, text in enumerate(inputs):
        vector = vector_for(text, width)
        if as_base64:
            encoded: Any = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        else:
            encoded = vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    if reply.reverse:
        data.reverse()
    if reply.drop_last:
        data.pop()
    tokens = sum(len(text.split()) for text in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", ""),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
