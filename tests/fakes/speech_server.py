"""A scripted fake of OpenAI's audio API — POST /v1/audio/transcriptions (multipart: file,
model, language, response_format) and POST /v1/audio/speech (JSON: model, voice, input,
response_format, speed) — for the speech adapters' contract tests, through the real SDK and a
real socket on 127.0.0.1. Each test may queue `SpeechReply`s; every request is recorded.
"""

from __future__ import annotations

import io
import json
import threading
import wave
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tiny_wav(seconds: float = 0.25, rate: int = 24000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x10" * int(seconds * rate))
    return buffer.getvalue()


@dataclass
class SpeechReply:
    status: int = 200
    text: str = "open the airlock"
    audio: bytes | None = None  # None: a short WAV
    error_message: str = "Something went wrong"
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)  # form fields, or the JSON body
    file: bytes = b""
    filename: str = ""
    file_type: str = ""


class SpeechServer:
    def __init__(self) -> None:
        self.replies: deque[SpeechReply] = deque()
        self.requests: list[Received] = []
        self.closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *replies: SpeechReply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> SpeechServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], bytes, str, str]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    data, filename, file_type = b"", "", ""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            data, filename, file_type = (
                part.get_payload(decode=True),
                part.get_filename(),
                part.get_content_type(),
            )
        else:
            fields[name] = part.get_payload(decode=True).decode()
    return fields, data, filename, file_type


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        server: SpeechServer = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {key.lower(): value for key, value in self.headers.items()}
        received = Received(self.path, headers)
        if self.path == "/v1/audio/transcriptions":
            received.fields, received.file, received.filename, received.file_type = _multipart(
                headers.get("content-type", ""), raw
            )
        else:
            received.fields = json.loads(raw or b"{}")
        server.requests.append(received)
        reply = server.replies.popleft() if server.replies else SpeechReply()
        try:
            if reply.delay and server.closing.wait(reply.delay):
                return
            if self.path not in ("/v1/audio/transcriptions", "/v1/audio/speech"):
                self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())
            elif reply.status != 200:
                error = {"error": {"message": reply.error_message, "type": "server_error", "code": None}}
                self._send(reply.status, json.dumps(error).encode())
            elif self.path == "/v1/audio/transcriptions":
                self._send(200, json.dumps({"text": reply.text}).encode())
            else:
                audio = tiny_wav() if reply.audio is None else reply.audio
                self._send(200, audio, "audio/wav")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
