"""Bulk import (JSONL) and re-embedding, shared by the API and `gtw memory …`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection, transaction

from campaigns.errors import DomainError, Invalid
from campaigns.models import Membership
from memory import services
from memory.models import Memory

MAX_LINES = 100_000


def import_jsonl(
    *,
    membership: Membership,
    lines: Iterable[str | bytes],
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """One memory per line: {"text", "type"?, "visibility"?, "tags"?, "metadata"?, "importance"?}.
    Bad lines are reported with their line number and skipped; good ones are kept."""
    created, errors = 0, []
    rows = list(lines)
    if len(rows) > MAX_LINES:
        raise Invalid(f"At most {MAX_LINES:,} lines per import.")
    for number, raw in enumerate(rows, start=1):
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        if not raw.strip():
            continue
        try:
            item = _parse_line(raw)
            with transaction.atomic():
                created += len(
                    services.memory_record(
                        membership=membership,
                        text=item.get("text"),
                        type=item.get("type", "declarative"),
                        visibility=item.get("visibility", "campaign"),
                        tags=item.get("tags"),
                        metadata=item.get("metadata"),
                        importance=item.get("importance", 0.5),
                    )
                )
        except (ValueError, DomainError) as exc:
            errors.append({"line": number, "error": getattr(exc, "message", None) or str(exc)})
        if progress:
            progress(number, len(rows))
    return {"imported": created, "errors": errors[:100], "error_count": len(errors)}


def _parse_line(raw: str) -> dict:
    try:
        item = json.loads(raw)
    except RecursionError:
        raise Invalid("the line is nested too deeply to be a memory") from None
    if not isinstance(item, dict):
        raise Invalid("each line must be a JSON object")
    return item


def progress_bar(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def reembed(*, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the vector column for the configured dimension and re-embed every memory."""
    dims = settings.GTW_MEMORY["dimensions"]
    with transaction.atomic(), connection.cursor() as cursor:
        # Deferred FK checks from earlier writes in this transaction would block the ALTER.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DROP INDEX IF EXISTS memory_embedding_hnsw")
        cursor.execute(
            f"ALTER TABLE memory_memory ALTER COLUMN embedding TYPE vector({int(dims)}) USING NULL"
        )
        cursor.execute(
            "CREATE INDEX memory_embedding_hnsw ON memory_memory USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        Memory.objects.update(embedding=None, embedding_model="")
    total = Memory.objects.count()
    done = 0
    while True:
        step = services.embed_pending(limit=512)
        done += step
        if progress:
            progress(done, total)
        if step == 0:
            break
    return done
