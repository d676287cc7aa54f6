"""The default image provider: the offline painter (media/images/painter.py). No key, no GPU,
no network; the same request paints the same picture."""

from __future__ import annotations

import time

from media.images.base import Generated, ImageJob, Progress, checked
from media.images.painter import paint


class ProceduralPainter:
    name = "procedural"
    model = "gtw-painter-1"
    rights = "CC0 — painted by this server's procedural painter"

    def __init__(self, *, step_delay_s: float = 0.0, max_bytes: int = 20_000_000):
        # A pause per step (0 by default): lets a demo or a browser test watch the progress bar.
        self.step_delay_s = step_delay_s
        self.max_bytes = max_bytes

    def generate(self, job: ImageJob, progress: Progress) -> Generated:
        total = 3

        def report(done: int, _total: int) -> None:
            progress(done, total)
            if self.step_delay_s and done < total:
                time.sleep(self.step_delay_s)

        data = paint(
            job.parts or {"kind": "scene"}, seed=job.seed, width=job.width, height=job.height, progress=report
        )
        return checked(data, provider=self.name, max_bytes=self.max_bytes)
