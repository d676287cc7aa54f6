"""`automatic1111`: the Stable Diffusion web UI's API (`--api`): POST /sdapi/v1/txt2img, with
progress from GET /sdapi/v1/progress polled while it paints."""

from __future__ import annotations

import threading

from gtw_site.providers import ProviderError
from media.images.base import Generated, ImageJob, Progress, checked
from media.images.remote import b64_image, call

POLL_S = 0.5


class Automatic1111:
    name = "automatic1111"
    rights = (
        "as the model's licence says (a local Stable Diffusion checkpoint: usually CreativeML OpenRAIL-M)"
    )

    def __init__(
        self,
        *,
        base_url: str,
        model: str = "",
        timeout: float = 900.0,
        max_bytes: int = 20_000_000,
        **_: object,
    ) -> None:
        if not base_url:
            raise ProviderError("no server address (GTW_A1111_URL)", retryable=False, provider=self.name)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.max_bytes = max_bytes

    def generate(self, job: ImageJob, progress: Progress) -> Generated:
        body = {
            "prompt": job.prompt,
            "negative_prompt": job.negative,
            "seed": job.seed,
            "width": job.width - job.width % 8,
            "height": job.height - job.height % 8,
            "steps": job.steps,
            "n_iter": 1,
            "batch_size": 1,
            "send_images": True,
            "save_images": False,
        }
        if self.model:
            body["override_settings"] = {"sd_model_checkpoint": self.model}
        answer: dict = {}

        def paint() -> None:
            try:
                answer["reply"] = call(
                    self.name,
                    "POST",
                    f"{self.base_url}/sdapi/v1/txt2img",
                    body=body,
                    timeout=self.timeout,
                    model=self.model,
                )
            except Exception as exc:  # noqa: BLE001 — handed to the caller's thread
                answer["error"] = exc

        worker = threading.Thread(target=paint, name="gtw-a1111", daemon=True)
        worker.start()
        progress(0, job.steps)
        while worker.is_alive():
            worker.join(POLL_S)
            if not worker.is_alive():
                break
            try:
                state = call(
                    self.name, "GET", f"{self.base_url}/sdapi/v1/progress?skip_current_image=true", timeout=5
                )
            except ProviderError:
                continue  # progress is a nicety: the painting itself decides
            step = (state.get("state") or {}).get("sampling_step")
            steps = (state.get("state") or {}).get("sampling_steps") or job.steps
            if isinstance(step, int) and isinstance(steps, int) and steps > 0:
                progress(min(step, steps), steps)
            elif isinstance(state.get("progress"), (int, float)):
                progress(int(state["progress"] * 100), 100)
        if "error" in answer:
            raise answer["error"]
        images = (answer.get("reply") or {}).get("images") or []
        if not images:
            raise ProviderError("returned no image", retryable=False, provider=self.name)
        data = b64_image(self.name, images[0])
        progress(job.steps, job.steps)
        return checked(data, provider=self.name, max_bytes=self.max_bytes)
