from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class MemoryIn(Schema):
    text: str = Field(max_length=1_000_000)
    type: str = "declarative"
    visibility: str = "campaign"
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    importance: float = 0.5


class MemoryCreated(Schema):
    id: int
    ids: list[int]


class QueryIn(Schema):
    campaign: int
    query: str = Field(max_length=100_000)
    k: int = 10
    types: list[str] | None = None
    tags: list[str] | None = None


class Components(Schema):
    vector: float
    keyword: float
    recency: float
    importance: float
    distance: float | None


class MemoryOut(Schema):
    id: int
    text: str
    type: str
    visibility: str
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    source_seq: int | None
    created_at: datetime


class Hit(MemoryOut):
    # GMs only: null for players (the ranking is the engine room, issue 13).
    score: float | None = None
    components: Components | None = None
    # GMs only (issue 21): how surely it answers the query (0..1; under GTW_RECALL_CONFIDENCE the
    # narrator recalls nothing), and which stage found it ("search" | "second round").
    confidence: float | None = None
    via: str | None = None
    # The turns just before and after it, as context (the same scope as the hit: issue 21).
    neighbours: list[MemoryOut] = []


class QueryOut(Schema):
    results: list[Hit]


class ImportError_(Schema):
    line: int
    error: str


class ImportJobOut(Schema):
    """A bulk import queued on the memory cluster: progress while it runs, then the result."""

    id: int
    campaign: int
    filename: str
    status: str  # queued | running | done | failed
    total_lines: int
    done_lines: int
    percent: int
    imported: int
    error_count: int
    errors: list[ImportError_]
    message: str
    created_at: datetime
    finished_at: datetime | None
    status_url: str
