"""What every image provider takes and returns, and the check every result passes. Pure."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gtw_site.providers.base import ProviderError

Progress = Callable[[int, int], None]  # (done, total) steps; raises Cancelled to stop the work

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class Cancelled(Exception):
    """Raised from a progress callback: the job was given up (timed out); stop painting."""


@dataclass(frozen=True)
class ImageJob:
    prompt: str
    negative: str
    seed: int
    width: int
    height: int
    steps: int
    parts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generated:
    data: bytes
    content_type: str
    width: int
    height: int


class ImageProvider(Protocol):
    name: str
    model: str
    rights: str  # the licence or terms its pictures come under, shown in the gallery

    def generate(self, job: ImageJob, progress: Progress) -> Generated: ...


def checked(data: bytes, *, provider: str, max_bytes: int = 20_000_000) -> Generated:
    """`data` as a Generated picture, or ProviderError (not retryable) when it is empty, too
    large, not an image Pillow can fully decode, or a format we do not serve."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ProviderError("returned an empty image", retryable=False, provider=provider)
    if len(data) > max_bytes:
        raise ProviderError(f"returned an image over {max_bytes} bytes", retryable=False, provider=provider)
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # verify() does not decode the pixels; a truncated file fails here
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ProviderError(f"returned a corrupt image ({exc})", retryable=False, provider=provider) from exc
    if fmt not in FORMATS:
        raise ProviderError(
            f"returned an unsupported image format {fmt!r}", retryable=False, provider=provider
        )
    return Generated(data=data, content_type=FORMATS[fmt], width=width, height=height)
