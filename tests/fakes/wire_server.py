"""A scripted fake of the OpenAI and Anthropic HTTP APIs, for adapter contract tests.

It speaks each vendor's wire format (SSE framing, chunk shapes, error bodies) on
127.0.0.1, so the adapters are exercised through the real SDKs and real sockets. Each
test queues `Reply`s; every POST consumes one and is recorded in `requests`.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gtw_site.providers import ProviderError


@dataclass
class ScriptedCall:
    id: str
    name: str
    # The argument text exactly as the vendor streams it, one piece per delta.
    pieces: list[str]

    @classmethod
    def split(cls, id: str, name: str, arguments: dict[str, Any] | str, parts: int = 3) -> ScriptedCall:
        """Cut the argument JSON into `parts` pieces, wherever that falls (mid-key, mid-string)."""
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        size = max(1, -(-len(text) // parts))
        return cls(id, name, [text[i : i + size] for i in range(0, len(text), size)])

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class Reply:
    text: list[str] = field(default_factory=list)
    tool_calls: list[ScriptedCall] = field(default_factory=list)
    # The vendor's own stop reason; by default derived from whether tools were called.
    stop: str | None = None
    usage: tuple[int, int] = (12, 5)
    # OpenAI only: put usage on the finish chunk even when not asked (llama.cpp does).
    usage_with_finish: bool = False
    # OpenAI only: interleave the tool calls' deltas instead of sending them one after another.
    interleave_calls: bool = False
    # OpenAI only: how tool-call deltas are numbered. "distinct": OpenAI's own (index 0, 1, …,
    # id and name on the first delta only); "zero": Ollama's (every call index 0); "absent":
    # Gemini's OpenAI endpoint (no index). The last two send each call's opener with its first
    # piece of arguments, as those servers send a call whole.
    call_index: str = "distinct"
    # OpenAI only: give every argument delta an id of its own, as some servers do.
    renumber_ids: bool = False
    status: int = 200
    error_message: str = ""
    error_code: str | None = None  # OpenAI only: the body's `code`
    # Seconds to wait before answering at all.
    delay: float = 0.0
    # The following count SSE events already sent.
    stall_after: int | None = None
    stall_for: float = 0.0
    drop_after: int | None = None  # close the socket mid-body (incomplete chunked response)
    truncate_after: int | None = None  # end the body cleanly, but early
    error_event_after: int | None = None  # send the vendor's in-stream error event, then end
    # A server that trickles: wait `gap` seconds before every SSE event (or body piece), and
    # first send `keepalives` frames that carry nothing: SSE comments (OpenAI), `ping` events
    # (Anthropic), or whitespace ahead of a JSON body (non-streamed replies).
    gap: float = 0.0
    keepalives: int = 0

    @classmethod
    def error(cls, status: int, message: str = "") -> Reply:
        return cls(
            status=status, error_message=message or _DEFAULT_ERRORS.get(status, "Something went wrong")
        )


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


_DEFAULT_ERRORS = {
    400: "Invalid request",
    401: "Incorrect API key provided",
    403: "You are not allowed to use this model",
    404: "The model does not exist",
    429: "Rate limit reached for requests",
    500: "The server had an error while processing your request",
    529: "Overloaded",
}
_OPENAI_ERROR_TYPES = {401: "invalid_request_error", 429: "rate_limit_exceeded"}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class WireServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Received] = []
        self.closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.wire = self  # type: ignore[attr-defined]
        # A client that gave up (timeout tests) leaves the handler writing to a dead socket.
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01})

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last_body(self) -> dict[str, Any]:
        return self.requests[-1].body

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked bodies, so a dropped connection is detectable

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        wire: WireServer = self.server.wire  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        headers = {key.lower(): value for key, value in self.headers.items()}
        wire.requests.append(Received(self.path, headers, body))
        if self.path.endswith("/chat/completions"):
            vendor = "openai"
        elif self.path.endswith("/messages"):
            vendor = "anthropic"
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        reply = wire.replies.popleft() if wire.replies else Reply.error(500, "wire server: nothing scripted")
        try:
            if reply.delay and wire.closing.wait(reply.delay):
                return
            if reply.status != 200:
                self._send_json(reply.status, _error_body(vendor, reply))
            elif not body.get("stream") and (reply.gap or reply.keepalives):
                full = _openai_json(reply, body) if vendor == "openai" else _anthropic_json(reply, body)
                self._trickle_json(wire, reply, full)
            elif body.get("stream"):
                frames = _openai_frames(reply, body) if vendor == "openai" else _anthropic_frames(reply, body)
                self._stream(wire, vendor, reply, frames)
            else:
                full = _openai_json(reply, body) if vendor == "openai" else _anthropic_json(reply, body)
                self._send_json(200, full)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _trickle_json(self, wire: WireServer, reply: Reply, payload: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in [" \n"] * reply.keepalives + [json.dumps(payload)]:
            if wire.closing.wait(reply.gap):
                return
            self._chunk(piece)
        self.wfile.write(b"0\r\n\r\n")

    def _stream(self, wire: WireServer, vendor: str, reply: Reply, frames: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        keepalive = ": keepalive\n\n" if vendor == "openai" else _sse("ping", {"type": "ping"})
        for _ in range(reply.keepalives):
            if wire.closing.wait(reply.gap):
                return
            self._chunk(keepalive)
        for sent, frame in enumerate(frames):
            if reply.gap and wire.closing.wait(reply.gap):
                return
            if sent == reply.drop_after:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if sent == reply.truncate_after:
                break
            if sent == reply.error_event_after:
                self._chunk(_error_event(vendor))
                break
            if sent == reply.stall_after and wire.closing.wait(reply.stall_for):
                return
            self._chunk(frame)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, frame: str) -> None:
        data = frame.encode()
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")


def _error_body(vendor: str, reply: Reply) -> dict[str, Any]:
    if vendor == "openai":
        kind = _OPENAI_ERROR_TYPES.get(
            reply.status, "server_error" if reply.status >= 500 else "invalid_request"
        )
        return {
            "error": {"message": reply.error_message, "type": kind, "param": None, "code": reply.error_code}
        }
    kind = _ANTHROPIC_ERROR_TYPES.get(reply.status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": reply.error_message},
        "request_id": "req_wire",
    }


def _error_event(vendor: str) -> str:
    if vendor == "openai":
        error = {"message": "The server had an error while processing your request", "type": "server_error"}
        return f"data: {json.dumps({'error': error})}\n\n"
    return _sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def _openai_usage(reply: Reply) -> dict[str, int]:
    prompt, completion = reply.usage
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _openai_frames(reply: Reply, body: dict[str, Any]) -> list[str]:
    def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
        choices = [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}]
        payload = {
            "id": "chatcmpl-wire",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": body.get("model"),
            "choices": [] if delta is None and finish is None else choices,
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n"

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": piece}) for piece in reply.text]
    openers = [
        {"index": i, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}}
        for i, c in enumerate(reply.tool_calls)
    ]
    pieces = [
        [{"index": i, "function": {"arguments": p}} for p in c.pieces] for i, c in enumerate(reply.tool_calls)
    ]
    if reply.renumber_ids:
        for c, deltas in zip(reply.tool_calls, pieces, strict=True):
            for n, delta in enumerate(deltas):
                delta["id"] = f"{c.id}-{n}"
    if reply.call_index != "distinct":
        for opener, deltas in zip(openers, pieces, strict=True):
            if deltas:
                opener["function"]["arguments"] = deltas.pop(0)["function"]["arguments"]
            for delta in [opener, *deltas]:
                if reply.call_index == "zero":
                    delta["index"] = 0
                else:
                    del delta["index"]
            if not opener["id"]:
                del opener["id"]
    if reply.interleave_calls:
        frames += [chunk({"tool_calls": [opener]}) for opener in openers]
        longest = max((len(p) for p in pieces), default=0)
        frames += [chunk({"tool_calls": [p[n]]}) for n in range(longest) for p in pieces if n < len(p)]
    else:
        for opener, deltas in zip(openers, pieces, strict=True):
            frames += [chunk({"tool_calls": [opener]})] + [chunk({"tool_calls": [d]}) for d in deltas]
    stop = reply.stop or ("tool_calls" if reply.tool_calls else "stop")
    finish_extra = {"usage": _openai_usage(reply)} if reply.usage_with_finish else {}
    frames.append(chunk({}, finish=stop, **finish_extra))
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(chunk(usage=_openai_usage(reply)))
    frames.append("data: [DONE]\n\n")
    return frames


def _openai_json(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.text) or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.text}}
            for c in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.stop or ("tool_calls" if reply.tool_calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": _openai_usage(reply),
    }


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _anthropic_frames(reply: Reply, body: dict[str, Any]) -> list[str]:
    tokens_in, tokens_out = reply.usage
    message = {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": 1},
    }
    frames = [_sse("message_start", {"type": "message_start", "message": message})]
    index = 0
    if reply.text:
        block = {"type": "text", "text": ""}
        frames.append(
            _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        )
        frames.append(_sse("ping", {"type": "ping"}))
        for piece in reply.text:
            delta = {"type": "text_delta", "text": piece}
            frames.append(
                _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for call in reply.tool_calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        frames.append(
            _sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            )
        )
        for piece in call.pieces:
            delta = {"type": "input_json_delta", "partial_json": piece}
            frames.append(
                _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    stop = reply.stop or ("tool_use" if reply.tool_calls else "end_turn")
    frames.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": tokens_out},
            },
        )
    )
    frames.append(_sse("message_stop", {"type": "message_stop"}))
    return frames


def _anthropic_json(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": "".join(reply.text)})
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.text)}
        for c in reply.tool_calls
    ]
    tokens_in, tokens_out = reply.usage
    return {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": reply.stop or ("tool_use" if reply.tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def drain(events) -> tuple[list, ProviderError | None]:
    """Every stream event until the end or a ProviderError (returned, not raised)."""
    seen = []
    try:
        for event in events:
            seen.append(event)
    except ProviderError as exc:
        return seen, exc
    return seen, None
