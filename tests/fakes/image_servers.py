"""Local servers speaking the image vendors' wire formats, for the adapters' contract tests:
the OpenAI Images API, AUTOMATIC1111's /sdapi/v1, and ComfyUI (HTTP on one port, its
websocket on another). Each records what it was sent and does what the test scripts."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def png(width=64, height=36, colour=(200, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


class _Server:
    def __init__(self, handler_cls):
        self.requests: list[tuple[str, str, Any]] = []
        self.script: dict[str, Any] = {}
        outer = self

        class Handler(handler_cls):
            server_state = outer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class _Base(BaseHTTPRequestHandler):
    server_state: _Server

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None


# ---- OpenAI Images API ----------------------------------------------------------------------


class _OpenAI(_Base):
    def do_POST(self):
        state = self.server_state
        body = self._body()
        state.requests.append(("POST", self.path, body))
        mode = state.script.get("mode", "ok")
        if mode == "500":
            return self._json(500, {"error": {"message": "The server had an error", "type": "server_error"}})
        if mode == "refusal":
            return self._json(
                400,
                {
                    "error": {
                        "message": "Your request was rejected as a result of our safety system.",
                        "type": "invalid_request_error",
                        "code": "content_policy_violation",
                    }
                },
            )
        if mode == "slow":
            time.sleep(state.script.get("delay", 3))
        data = state.script.get("b64") or base64.b64encode(png(1536, 1024)).decode()
        return self._json(200, {"created": 1, "data": [{"b64_json": data}], "usage": {"total_tokens": 10}})


def openai_server() -> _Server:
    return _Server(_OpenAI)


# ---- AUTOMATIC1111 ----------------------------------------------------------------------------


class _A1111(_Base):
    def do_POST(self):
        state = self.server_state
        body = self._body()
        state.requests.append(("POST", self.path, body))
        if self.path != "/sdapi/v1/txt2img":
            return self._json(404, {"detail": "Not Found"})
        if state.script.get("mode") == "500":
            return self._json(
                500, {"error": "RuntimeError", "detail": "CUDA out of memory", "body": "", "errors": ""}
            )
        steps = body["steps"]
        state.script["total"] = steps
        for step in range(steps + 1):
            state.script["step"] = step
            time.sleep(state.script.get("step_s", 0.05))
        images = [state.script.get("b64") or base64.b64encode(png(body["width"], body["height"])).decode()]
        return self._json(
            200, {"images": images, "parameters": body, "info": json.dumps({"seed": body["seed"]})}
        )

    def do_GET(self):
        state = self.server_state
        state.requests.append(("GET", self.path, None))
        if self.path.startswith("/sdapi/v1/progress"):
            step = state.script.get("step", 0)
            total = state.script.get("total", 1) or 1
            return self._json(
                200,
                {
                    "progress": step / total,
                    "eta_relative": 1.0,
                    "state": {"sampling_step": step, "sampling_steps": total, "job_count": 1},
                    "current_image": None,
                },
            )
        return self._json(404, {"detail": "Not Found"})


def a1111_server() -> _Server:
    return _Server(_A1111)


# ---- ComfyUI --------------------------------------------------------------------------------


class _Comfy(_Base):
    def do_POST(self):
        state = self.server_state
        body = self._body()
        state.requests.append(("POST", self.path, body))
        if self.path != "/prompt":
            return self._json(404, {})
        if state.script.get("mode") == "bad_workflow":
            return self._json(
                400,
                {
                    "error": {
                        "type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                    },
                    "node_errors": {"4": {"errors": [{"message": "Value not in list: ckpt_name"}]}},
                },
            )
        prompt_id = f"p{len(state.requests)}"
        state.script["prompt_id"] = prompt_id
        state.script["client_id"] = body.get("client_id")
        state.script["started"] = time.monotonic()
        state.comfy_queue.append((prompt_id, body))
        return self._json(200, {"prompt_id": prompt_id, "number": 1, "node_errors": {}})

    def do_GET(self):
        state = self.server_state
        state.requests.append(("GET", self.path, None))
        parts = urlsplit(self.path)
        if parts.path.startswith("/history/"):
            prompt_id = parts.path.rsplit("/", 1)[1]
            done = state.script.get("done", {})
            if prompt_id not in done:
                return self._json(200, {})
            outcome = done[prompt_id]
            if outcome == "error":
                status = {
                    "status_str": "error",
                    "completed": False,
                    "messages": [
                        [
                            "execution_error",
                            {"prompt_id": prompt_id, "exception_message": "CUDA out of memory"},
                        ]
                    ],
                }
                return self._json(200, {prompt_id: {"outputs": {}, "status": status}})
            outputs = {
                "9": {"images": [{"filename": f"gtw_{prompt_id}.png", "subfolder": "", "type": "output"}]}
            }
            status = {"status_str": "success", "completed": True, "messages": []}
            return self._json(200, {prompt_id: {"outputs": outputs, "status": status}})
        if parts.path == "/view":
            query = parse_qs(parts.query)
            if query.get("type") != ["output"] or not query.get("filename", [""])[0].startswith("gtw_"):
                return self._json(404, {})
            data = state.script.get("image") or png(64, 36)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        return self._json(404, {})


class ComfyServer(_Server):
    """HTTP on `url`, the websocket on `ws_url`. script["ws"]: "success" (progress, then
    execution_success), "legacy" (progress, then executing node=None), "error"
    (execution_error), "silent" (nothing; /history has it after a while), "close" (the socket
    closes mid-job), "stuck" (one step, then nothing anywhere)."""

    def __init__(self):
        super().__init__(_Comfy)
        self.comfy_queue: list[tuple[str, dict]] = []
        self.ws_thread = None
        self._ws = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/ws"

    def __enter__(self):
        from websockets.sync.server import serve

        super().__enter__()
        self._ws = serve(self._socket, "127.0.0.1", 0)
        self.ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)
        self.ws_thread.start()
        return self

    def __exit__(self, *exc):
        self._ws.shutdown()
        super().__exit__(*exc)

    def _socket(self, conn):
        mode = self.script.get("ws", "success")
        conn.send(
            json.dumps(
                {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "x"}}
            )
        )
        deadline = time.monotonic() + 10
        while not self.comfy_queue and time.monotonic() < deadline:
            try:
                conn.recv(timeout=0.02)
            except TimeoutError:
                continue
            except Exception:  # the client went away (a refused workflow)
                return
        if not self.comfy_queue:
            return
        prompt_id, body = self.comfy_queue.pop(0)
        steps = body["prompt"]["3"]["inputs"]["steps"] if "3" in body["prompt"] else 4
        done = self.script.setdefault("done", {})
        if mode == "stuck":  # one step, then nothing, ever: /history never has it either
            conn.send(
                json.dumps({"type": "progress", "data": {"value": 1, "max": steps, "prompt_id": prompt_id}})
            )
            time.sleep(2.5)
            return
        if mode == "silent":
            time.sleep(0.3)
            done[prompt_id] = "ok"
            time.sleep(2)
            return
        # Another client's job on the same server: must be ignored.
        conn.send(
            json.dumps({"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "someone-else"}})
        )
        conn.send(json.dumps({"type": "execution_start", "data": {"prompt_id": prompt_id}}))
        for step in range(1, steps + 1):
            conn.send(
                json.dumps(
                    {
                        "type": "progress",
                        "data": {"value": step, "max": steps, "prompt_id": prompt_id, "node": "3"},
                    }
                )
            )
            conn.send(b"\x00\x00\x00\x01preview")  # a binary preview frame
            if mode == "close" and step == 1:
                done[prompt_id] = "ok"
                conn.close()
                return
        if mode == "error":
            done[prompt_id] = "error"
            conn.send(
                json.dumps(
                    {
                        "type": "execution_error",
                        "data": {
                            "prompt_id": prompt_id,
                            "exception_message": "CUDA out of memory",
                            "exception_type": "RuntimeError",
                        },
                    }
                )
            )
            return
        done[prompt_id] = "ok"
        if mode == "legacy":  # an older server: the end is `executing` with no node
            conn.send(json.dumps({"type": "executing", "data": {"node": None, "prompt_id": prompt_id}}))
        else:  # a current one: `execution_success` (ComfyUI 8395)
            conn.send(
                json.dumps({"type": "execution_success", "data": {"prompt_id": prompt_id, "timestamp": 1}})
            )
        time.sleep(0.5)


def comfy_server() -> ComfyServer:
    return ComfyServer()
