"""`diffusers`: any local Stable Diffusion / SDXL folder (GTW_DIFFUSERS_PATH), loaded with
`local_files_only=True` (nothing is downloaded), on the CPU by default with one thread
(GTW_DIFFUSERS_THREADS).

`diffusers` and `torch` are an optional extra, not installed by default (pip install
'galactic-tale-weaver[diffusers]', or `make test`, which installs requirements-images.lock):
without them this provider says so, clearly, when chosen. The model folder is the operator's
setting only: a runtime choice (the providers page) picks this provider, never a path.

Building the adapter is cheap — the packages are looked up, not imported, and the folder checked
for its model_index.json — so choosing this provider on the providers page, or its health
there, never loads a model into a web process; the images worker loads the pipeline at its first
picture and keeps it.

Progress comes from `callback_on_step_end`. A job given up (timed out) makes the progress
callback raise `Cancelled`, which leaves the pipeline at that step: no further denoising, no VAE
decode. One picture at a time per loaded pipeline (a pipeline keeps per-call state on itself),
so a job that timed out and is still winding down never shares it with the next one.

Tested for real (tests/media/test_image_diffusers.py) on a tiny random-weight pipeline built from
configs and saved to a folder."""

from __future__ import annotations

import importlib.util
import io
import threading
from pathlib import Path
from typing import Any

from gtw_site.providers import ProviderError, clip
from media.images.base import Generated, ImageJob, Progress, checked

MISSING = (
    "the diffusers provider needs the optional packages diffusers, transformers and torch "
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
        threads: int = 1,
        timeout: float = 900.0,
        max_bytes: int = 20_000_000,
        **_: object,
    ) -> None:
        if not path:
            raise ProviderError("no model folder (GTW_DIFFUSERS_PATH)", retryable=False, provider=self.name)
        if any(importlib.util.find_spec(name) is None for name in ("diffusers", "transformers", "torch")):
            raise ProviderError(MISSING, retryable=False, provider=self.name)
        if not (Path(path) / "model_index.json").is_file():
            raise ProviderError(
                f"cannot load the model in {path}: no model_index.json there (a diffusers folder, "
                "as save_pretrained writes it)",
                retryable=False,
                provider=self.name,
            )
        self.model = path
        self.device = device
        self.max_bytes = max_bytes
        self.threads = max(1, int(threads))
        self._torch: Any = None
        self._pipe: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """The pipeline, loaded from the folder at the first call (offline: local_files_only)."""
        with self._lock:
            if self._pipe is None:
                try:
                    import diffusers
                    import torch
                except ImportError:
                    raise ProviderError(MISSING, retryable=False, provider=self.name) from None
                # One CPU thread by default: the turns and the sockets share this machine.
                torch.set_num_threads(self.threads)
                try:
                    pipe = diffusers.AutoPipelineForText2Image.from_pretrained(
                        self.model, local_files_only=True
                    )
                    pipe.to(self.device)
                except Exception as exc:  # noqa: BLE001 - a partial or corrupt folder, a bad device
                    raise ProviderError(
                        f"cannot load the model in {self.model}: {type(exc).__name__}: {clip(str(exc), 200)}",
                        retryable=False,
                        provider=self.name,
                    ) from None
                pipe.set_progress_bar_config(disable=True)
                self._torch, self._pipe = torch, pipe
            return self._pipe

    def generate(self, job: ImageJob, progress: Progress) -> Generated:
        progress(0, job.steps)
        pipe = self.load()
        # Per thread for some backends: set it again on the job's own thread.
        self._torch.set_num_threads(self.threads)
        generator = self._torch.Generator(device="cpu").manual_seed(job.seed)

        def on_step(pipe: Any, step: int, _timestep: Any, kwargs: dict) -> dict:
            # Raises Cancelled once the job gave up: the pipeline stops here.
            progress(step + 1, getattr(pipe, "num_timesteps", None) or job.steps)
            return kwargs

        with self._lock:
            result = pipe(
                prompt=job.prompt,
                negative_prompt=job.negative or None,
                width=max(8, job.width - job.width % 8),
                height=max(8, job.height - job.height % 8),
                num_inference_steps=max(1, job.steps),
                generator=generator,
                callback_on_step_end=on_step,
            )
        buf = io.BytesIO()
        result.images[0].save(buf, format="PNG")
        return checked(buf.getvalue(), provider=self.name, max_bytes=self.max_bytes)
