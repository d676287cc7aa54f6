"""API shapes for the content settings and the review queue. Values are checked by the services
after the caller's access is: an unknown category or action is a clear 422 there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class PolicyIn(Schema):
    actions: dict[str, Any] = Field(
        default_factory=dict, description="category → allow | soften | hold | block (only those to change)"
    )
    redact: list[str] | str | None = Field(
        default=None, description='PII kinds to redact, e.g. ["email", "phone"]; "default" = the site\'s'
    )


class PolicyOut(Schema):
    actions: dict[str, str]
    redact: list[str]
    categories: dict[str, str]


class DecideIn(Schema):
    verdict: str = Field(max_length=10, description="approve | edit | reject")
    text: str | None = Field(default=None, description="the edited text (verdict edit)")


class ItemOut(Schema):
    id: int
    source: str
    status: str
    text: str
    final_text: str
    categories: list[str]
    scores: dict[str, float]
    author: str | None
    session_id: int | None
    created_at: datetime
    decided_at: datetime | None
    released_seq: int | None
