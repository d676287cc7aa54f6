"""`diffusers`: any local Stable Diffusion / SDXL folder (GTW_DIFFUSERS_PATH), loaded with
`local_files_only=True` (nothing is downloaded), on the CPU by default with one thread.

`diffusers` and `torch` are an optional extra, not installed by default (pip install
'galactic-tale-weaver[diffusers]'): without them this provider says so, clearly, when chosen.
Progress comes from `callback_on_step_end`; a job given up (timed out) interrupts the pipeline
at its next step."""

from __future__ import annotations

import io
from typing import Any

from gtw_site.providers import ProviderError, clip
from media.images.base import Cancelled, Generated, ImageJob, Progress, checked

MISSING = (
    "the diffusers provider needs the optional packages diffusers and torch "
    "(pip install 'galactic-tale-weaver[diffusers]'), which are not installed"
)


class DiffusersPipeline:
    name = "diffusers"
    rights = "as the local model's licence says (Stable Diffusion checkpoints: usually CreativeML OpenRAIL-M)"

    def __init__(
        self,
        *,
        path: str = "",
        device: str = "cpu",
        timeout: float = 900.0,
        max_bytes: int = 20_000_000,
        **_: object,
    ) -> None:
        if not path:
            raise ProviderError("no model folder (GTW_DIFFUSERS_PATH)", retryable=False, provider=self.name)
        try:
            import diffusers
            import torch
        except ImportError:
            raise ProviderError(MISSING, retryable=False, provider=self.name) from None
        self.model = path
        self.max_bytes = max_bytes
        self._torch = torch
        torch.set_num_threads(1)  # one CPU thread: the turns and the sockets share this machine
        try:
            self._pipe = diffusers.AutoPipelineForText2Image.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ProviderError(
                f"cannot load the model in {path}: {clip(str(exc), 200)}", retryable=False, provider=self.name
            ) from None
        self._pipe.to(device)
        self._pipe.set_progress_bar_config(disable=True)

    def generate(self, job: ImageJob, progress: Progress) -> Generated:
        generator = self._torch.Generator(device="cpu").manual_seed(job.seed)

        def on_step(pipe: Any, step: int, _timestep: Any, kwargs: dict) -> dict:
            try:
                progress(step + 1, job.steps)
            except Cancelled:
                pipe._interrupt = True  # diffusers stops at the next step
            return kwargs

        progress(0, job.steps)
        result = self._pipe(
            prompt=job.prompt,
            negative_prompt=job.negative or None,
            width=job.width - job.width % 8,
            height=job.height - job.height % 8,
            num_inference_steps=job.steps,
            generator=generator,
            callback_on_step_end=on_step,
        )
        buf = io.BytesIO()
        result.images[0].save(buf, format="PNG")
        return checked(buf.getvalue(), provider=self.name, max_bytes=self.max_bytes)
