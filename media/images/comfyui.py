"""`comfyui`: a ComfyUI server. POST /prompt with a workflow (GTW_COMFYUI_WORKFLOW, an API-format
workflow JSON whose strings may hold {{prompt}}, {{negative}}, {{seed}}, {{width}}, {{height}},
{{steps}}, {{checkpoint}}; a plain SDXL txt2img workflow by default), progress over its websocket,
the result from /history and /view.

What peers got wrong, and what this does instead:
- the end of a job is `execution_success` in new servers but only `executing` with `node: null`
  in old ones (ComfyUI issue 8395): both count, and so does the job showing up in /history;
- websocket messages get lost (a proxy, a reconnect, a message sent before we listened): when the
  socket is silent for SILENCE_S, or closes, /history/<id> is polled instead, until the deadline;
- `execution_error` (and an error status in /history) is a failure with ComfyUI's own message;
  a refused workflow (HTTP 400 with node_errors) names the node.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from gtw_site.providers import ProviderError, clip, safe_url
from media.images.base import Generated, ImageJob, Progress, checked
from media.images.remote import call

SILENCE_S = 5.0  # a socket quiet this long: look in /history
POLL_S = 1.0

DEFAULT_WORKFLOW: dict[str, Any] = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": "{{seed}}",
            "steps": "{{steps}}",
            "cfg": 7,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "{{checkpoint}}"}},
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": 1},
    },
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{negative}}", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "gtw", "images": ["8", 0]}},
}


def fill(workflow: Any, values: dict[str, Any]) -> Any:
    """The workflow with every "{{name}}" replaced: a string that is only a placeholder becomes
    the value itself (a number stays a number), one inside other text is replaced as text."""
    if isinstance(workflow, dict):
        return {k: fill(v, values) for k, v in workflow.items()}
    if isinstance(workflow, list):
        return [fill(v, values) for v in workflow]
    if isinstance(workflow, str):
        for name, value in values.items():
            token = "{{" + name + "}}"
            if workflow == token:
                return value
            workflow = workflow.replace(token, str(value))
    return workflow


class ComfyUI:
    name = "comfyui"
    rights = "as the workflow's checkpoint licence says (local ComfyUI)"

    def __init__(
        self,
        *,
        base_url: str,
        workflow: str = "",
        checkpoint: str = "",
        ws_url: str = "",
        timeout: float = 900.0,
        max_bytes: int = 20_000_000,
        **_: object,
    ) -> None:
        if not base_url:
            raise ProviderError("no server address (GTW_COMFYUI_URL)", retryable=False, provider=self.name)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.checkpoint = checkpoint
        self.model = checkpoint
        parts = urlsplit(self.base_url)
        self.ws_url = ws_url or urlunsplit(
            ("wss" if parts.scheme == "https" else "ws", parts.netloc, parts.path + "/ws", "", "")
        )
        if workflow:
            try:
                with open(workflow, encoding="utf-8") as fh:
                    self.workflow = json.load(fh)
            except (OSError, ValueError) as exc:
                raise ProviderError(
                    f"cannot read the workflow {workflow}: {exc}", retryable=False, provider=self.name
                ) from None
        else:
            self.workflow = copy.deepcopy(DEFAULT_WORKFLOW)

    # ---- one job -------------------------------------------------------------------------

    def generate(self, job: ImageJob, progress: Progress) -> Generated:
        deadline = time.monotonic() + self.timeout
        client_id = uuid.uuid4().hex
        graph = fill(
            self.workflow,
            {
                "prompt": job.prompt,
                "negative": job.negative,
                "seed": job.seed,
                "width": job.width - job.width % 8,
                "height": job.height - job.height % 8,
                "steps": job.steps,
                "checkpoint": self.checkpoint,
            },
        )
        # Listening before the job is queued, so no message is sent unheard.
        with self._connect(client_id) as socket:
            queued = call(
                self.name,
                "POST",
                f"{self.base_url}/prompt",
                body={"prompt": graph, "client_id": client_id},
                timeout=30,
                model=self.model,
            )
            prompt_id = queued.get("prompt_id") if isinstance(queued, dict) else None
            if not prompt_id:
                raise ProviderError(
                    f"refused the workflow: {clip(json.dumps(queued), 200)}",
                    retryable=False,
                    provider=self.name,
                )
            progress(0, job.steps)
            if socket is not None:
                self._listen(socket, prompt_id, job, progress, deadline)
        outputs = self._wait_history(prompt_id, progress, job, deadline)
        return self._fetch(outputs)

    def _connect(self, client_id: str):
        """The websocket as a context manager, or one that yields None when it cannot be
        opened: /history polling alone still finishes the job."""
        try:
            from websockets.sync.client import connect

            return connect(
                f"{self.ws_url}?{urlencode({'clientId': client_id})}", open_timeout=5, max_size=2**24
            )
        except Exception:  # noqa: BLE001 — no socket (refused, no websockets package)
            return contextlib.nullcontext(None)

    def _listen(self, socket, prompt_id: str, job: ImageJob, progress: Progress, deadline: float) -> None:
        """Until the job ends on the socket, the socket goes quiet for SILENCE_S or closes."""
        while time.monotonic() < deadline:
            try:
                raw = socket.recv(timeout=SILENCE_S)
            except TimeoutError:
                return  # silent: /history decides
            except Exception:  # noqa: BLE001 — closed mid-job: /history decides
                return
            if isinstance(raw, bytes):
                continue  # a preview picture
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            kind = message.get("type")
            data = message.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue  # another client's job
            if kind == "progress" and isinstance(data.get("value"), int) and isinstance(data.get("max"), int):
                progress(data["value"], max(data["max"], 1))
            elif kind == "execution_error":
                reason = data.get("exception_message") or data.get("exception_type") or "error"
                raise ProviderError(
                    f"the workflow failed: {clip(str(reason), 200)}",
                    retryable=False,
                    provider=self.name,
                )
            elif kind == "execution_success" and data.get("prompt_id") == prompt_id:
                return
            elif kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return  # an older server's end of job
            elif kind == "execution_interrupted":
                raise ProviderError(
                    "the job was interrupted on the server", retryable=True, provider=self.name
                )

    def _wait_history(self, prompt_id: str, progress: Progress, job: ImageJob, deadline: float) -> dict:
        while True:
            history = call(self.name, "GET", f"{self.base_url}/history/{prompt_id}", timeout=30)
            entry = history.get(prompt_id) if isinstance(history, dict) else None
            if entry:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    raise ProviderError(
                        f"the workflow failed: {_history_error(status)}", retryable=False, provider=self.name
                    )
                outputs = entry.get("outputs") or {}
                if outputs and (status.get("completed", True) or status.get("status_str") == "success"):
                    return outputs
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"no picture from {safe_url(self.base_url)} in time", retryable=True, provider=self.name
                )
            progress_check(progress, job)
            time.sleep(POLL_S)

    def _fetch(self, outputs: dict) -> Generated:
        for node in outputs.values():
            for image in (node or {}).get("images") or []:
                if image.get("type", "output") != "output":
                    continue
                query = urlencode(
                    {"filename": image["filename"], "subfolder": image.get("subfolder", ""), "type": "output"}
                )
                data = call(self.name, "GET", f"{self.base_url}/view?{query}", timeout=60, raw=True)
                return checked(data, provider=self.name, max_bytes=self.max_bytes)
        raise ProviderError(
            "the workflow finished without saving an image (no SaveImage output)",
            retryable=False,
            provider=self.name,
        )


def progress_check(progress: Progress, job: ImageJob) -> None:
    """Lets a job that was given up stop polling: the callback raises Cancelled by then. It
    reports nothing new (a step count we do not know)."""
    checker = getattr(progress, "cancelled", None)
    if checker is not None and checker.is_set():
        from media.images.base import Cancelled

        raise Cancelled()


def _history_error(status: dict) -> str:
    for name, data in status.get("messages") or []:
        if name == "execution_error" and isinstance(data, dict):
            return clip(str(data.get("exception_message") or "error"), 200)
    return "error"
