"""Shared helpers for the picture tests: a temporary storage, captured broadcasts, fake providers."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from gtw_site.providers.base import ProviderError
from media.images.base import Generated, ImageJob, checked


@pytest.fixture
def image_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def sent(monkeypatch):
    """Every message realtime.broadcast sends to a session group, as (group, message)."""
    from realtime import broadcast

    out: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: out.append((group, message)))
    return out


def png_bytes(width=32, height=18, colour=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


class FakeProvider:
    """A provider that does what `behaviour` says: "ok", "hang", "error500", "refusal",
    "corrupt", "crash"."""

    name = "fake"
    model = "fake-1"
    rights = "test pictures"
    behaviour = "ok"
    calls = 0

    def __init__(self, **kwargs):
        pass

    def generate(self, job: ImageJob, progress) -> Generated:
        type(self).calls += 1
        progress(1, 2)
        kind = type(self).behaviour
        if kind == "hang":
            import time

            for _ in range(200):
                time.sleep(0.02)
                progress(1, 2)  # raises Cancelled once the job gave up
        if kind == "error500":
            raise ProviderError("server error (500): boom", retryable=True, provider="fake", status=500)
        if kind == "refusal":
            raise ProviderError(
                "request rejected (400): content_policy_violation",
                retryable=False,
                provider="fake",
                status=400,
            )
        if kind == "crash":
            raise RuntimeError("the socket closed mid-job")
        data = png_bytes(job.width, job.height) if kind != "corrupt" else png_bytes()[:40]
        return checked(data, provider="fake")


@pytest.fixture
def fake_provider(settings, monkeypatch):
    from media.images.registry import IMAGE

    monkeypatch.setitem(IMAGE.providers, "fake", "tests.media.image_helpers:FakeProvider")
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "image": {"provider": "fake", "timeout": 5.0}}
    FakeProvider.behaviour = "ok"
    FakeProvider.calls = 0
    IMAGE.reset()
    yield FakeProvider
    IMAGE.reset()
