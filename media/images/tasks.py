"""The picture job, on the images cluster (GTW_IMAGES; settings.IMAGE_CLUSTER).

`generate(image_id)` claims a queued row (one worker wins; a duplicate job finds nothing to do),
runs the provider on a thread of its own under the provider timeout while this thread reports
progress (throttled) to the session's sockets, checks the picture, stores it (content-addressed,
never half written) and only then marks the row ready. Every failure leaves the row `failed` with
the reason for the GM; the turn never waits for any of it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gtw_site import telemetry
from gtw_site.providers.base import ProviderError, clip
from gtw_site.telemetry import in_thread
from media.images import store
from media.images.base import Cancelled, ImageJob, checked
from media.images.registry import adapter_for
from media.images.services import notify
from media.models import Image

logger = logging.getLogger(__name__)


class _Progress:
    """Written by the provider's thread, read by the job's: the latest (done, total)."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 1
        self.cancelled = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        if self.cancelled.is_set():
            raise Cancelled()
        with self.lock:
            self.done, self.total = max(0, int(done)), max(1, int(total))

    def percent(self) -> int:
        with self.lock:
            # Never 100 before the file is stored: 100 means "ready".
            return min(99, int(100 * self.done / self.total))


def _claim(image_id: int) -> Image | None:
    claimed = Image.objects.filter(pk=image_id, status=Image.Status.QUEUED).update(
        status=Image.Status.RUNNING,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
        progress=0,
        error="",
    )
    if not claimed:
        return None
    return Image.objects.select_related("campaign").get(pk=image_id)


def _provider_for(image: Image):
    """The provider that the row was keyed for, as the runtime selection builds it (the choice
    may have changed since: media.images.registry.adapter_for)."""
    return adapter_for(image)


def _fail(image_id: int, reason: str) -> None:
    Image.objects.filter(pk=image_id, status=Image.Status.RUNNING).update(
        status=Image.Status.FAILED, error=clip(reason, 1000), finished_at=timezone.now()
    )
    transaction.on_commit(lambda: notify(image_id))


def generate(image_id: int) -> str:
    """Paint one picture. Returns the row's final status ("" when another job had it)."""
    image = _claim(image_id)
    if image is None:
        return ""
    notify(image_id)
    conf = settings.GTW_IMAGES
    job = ImageJob(
        prompt=image.prompt,
        negative=image.negative,
        seed=image.seed,
        width=image.width,
        height=image.height,
        steps=image.steps,
        parts=image.parts or {},
    )
    progress = _Progress()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gtw-image-{image_id}")
    try:
        # Telemetry rows and the runtime choice are the picture's campaign's (and session's).
        with telemetry.scope(campaign_id=image.campaign_id, session_id=image.session_id):
            provider, timeout = _provider_for(image)
            future = in_thread(pool, provider.generate, job, progress)
        deadline = time.monotonic() + timeout
        interval = float(conf["progress_interval_s"])
        shown = 0
        while True:
            try:
                result = future.result(timeout=max(0.05, min(interval, deadline - time.monotonic())))
                break
            except FutureTimeout:
                if time.monotonic() >= deadline:
                    progress.cancelled.set()
                    future.cancel()
                    raise ProviderError(
                        f"no picture after {timeout:.0f} s (GTW_IMAGE_TIMEOUT_S)",
                        retryable=True,
                        provider=image.provider,
                    ) from None
                percent = progress.percent()
                if percent != shown:
                    shown = percent
                    Image.objects.filter(pk=image_id, status=Image.Status.RUNNING).update(progress=percent)
                    notify(image_id)
        result = checked(result.data, provider=image.provider, max_bytes=int(conf["max_bytes"]))
        name = store.save(result.data, result.content_type)
    except ProviderError as exc:
        _fail(image_id, str(exc))
        return Image.Status.FAILED
    except Cancelled:
        _fail(image_id, "cancelled")
        return Image.Status.FAILED
    except OSError as exc:  # the disk is full, the storage is unreachable
        logger.warning("picture %s: could not store the file", image_id, exc_info=True)
        _fail(image_id, f"could not store the picture: {exc.strerror or exc}")
        return Image.Status.FAILED
    except Exception as exc:  # a provider bug must not leave the row "generating"
        logger.exception("picture %s: the provider failed", image_id)
        _fail(image_id, f"unexpected {type(exc).__name__}: {exc}")
        return Image.Status.FAILED
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    Image.objects.filter(pk=image_id).update(
        status=Image.Status.READY,
        path=name,
        content_type=result.content_type,
        size_bytes=len(result.data),
        width=result.width,
        height=result.height,
        progress=100,
        rights=getattr(provider, "rights", "")[:200],
        finished_at=timezone.now(),
    )
    transaction.on_commit(lambda: notify(image_id))
    return Image.Status.READY


def recover_at_start() -> int:
    """The images cluster starts: nothing of its is running, so every picture left queued or
    running by a killed worker is queued again (or failed after GTW_IMAGE_MAX_ATTEMPTS)."""
    from media.images.services import recover_interrupted

    return recover_interrupted(all_running=True)
