from __future__ import annotations

from ninja import Schema
from pydantic import Field


class ImageRequestIn(Schema):
    campaign: int
    type: str = Field(max_length=20)
    # Longer subjects are refused with a clear 422 by the service (never truncated silently);
    # the cap here only keeps a 100,000-character body from being copied around.
    subject: str = Field("", max_length=100_000)
    seed: int | None = None
    session: int | None = None


class ImageOut(Schema):
    image_id: int
    campaign: int
    session: int | None
    type: str
    subject: str
    status: str
    progress: int
    prompt: str
    negative: str
    style: str
    provider: str
    model: str
    seed: int
    width: int
    height: int
    steps: int
    rights: str
    hash: str
    hidden: bool
    created_at: str
    url: str | None
    failed: bool
    error: str | None = None
    attempts: int | None = None


class ImageQueuedOut(Schema):
    image_id: int
    status: str
    progress: int
