"""Bulk import (JSONL) and re-embedding, shared by the API and `gtw memory …`."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from campaigns.errors import Conflict, DomainError, Invalid
from campaigns.models import Membership
from gtw_site import jobs
from memory import services
from memory.models import Memory, MemoryImport
from memory.services import TooLarge

logger = logging.getLogger(__name__)

MAX_LINES = 100_000  # `gtw memory import` on the server; uploads have settings.GTW_MEMORY's caps
PROGRESS_EVERY = 25  # lines between progress saves (and between yields to a running turn)
# A queued or running import that hasn't moved for this long has lost its worker.
STALLED_AFTER = timedelta(minutes=15)


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


def import_queue(*, membership: Membership, data: bytes, filename: str = "") -> MemoryImport:
    """Check an uploaded file's size, save it and queue its import on the memory cluster.

    Caller has checked the member (and charged their rate limit). TooLarge (413) for a file past
    the per-upload caps; Conflict (409) while the member's previous import is still running."""
    caps = settings.GTW_MEMORY
    check_size(len(data))
    lines = data.splitlines()
    if len(lines) > caps["import_max_lines"]:
        raise TooLarge(
            f"Imports are at most {caps['import_max_lines']:,} lines (this file has {len(lines):,}); "
            "split it into smaller files."
        )
    if not any(line.strip() for line in lines):
        raise Invalid("The file is empty: put one memory per line, as a JSON object.")
    with transaction.atomic():
        # One import at a time per user: the lock keeps two uploads at once from both passing.
        get_user_model().objects.select_for_update().filter(pk=membership.user_id).first()
        running = import_active(user_id=membership.user_id)
        if running is not None:
            raise Conflict(
                f"Your import of {running.filename or 'a file'} is still running "
                f"({running.done_lines:,} of {running.total_lines:,} lines); wait for it to finish."
            )
        job = MemoryImport.objects.create(
            campaign_id=membership.campaign_id,
            created_by_id=membership.user_id,
            filename=(filename or "")[:200],
            data=data,
            total_lines=len(lines),
        )
        transaction.on_commit(
            lambda: jobs.enqueue(
                "memory.tasks.import_memories", job.pk, group="memory", cluster=settings.MEMORY_CLUSTER
            )
        )
    return job


def check_size(size: int) -> None:
    """TooLarge (413) for an upload past GTW_MEMORY["import_max_bytes"] (callers check the
    declared size before reading the file)."""
    cap = settings.GTW_MEMORY["import_max_bytes"]
    if size > cap:
        raise TooLarge(
            f"Imports are at most {cap / 1_000_000:g} MB (this file is {size / 1_000_000:.1f} MB); "
            "split it into smaller files."
        )


def import_active(*, user_id: int) -> MemoryImport | None:
    """The member's import that is queued or running, if any (one that stalled doesn't count)."""
    since = timezone.now() - STALLED_AFTER
    return (
        MemoryImport.objects.filter(
            created_by_id=user_id,
            status__in=[MemoryImport.Status.QUEUED, MemoryImport.Status.RUNNING],
            updated_at__gte=since,
        )
        .defer("data")
        .first()
    )


def import_status(job: MemoryImport) -> dict:
    """What the uploader sees: progress while it runs, then the result."""
    status, message = job.status, job.message
    if job.active and job.updated_at < timezone.now() - STALLED_AFTER:
        status = MemoryImport.Status.FAILED
        message = (
            f"The import stopped after {job.done_lines:,} of {job.total_lines:,} lines (the server "
            "restarted); import the remaining lines again."
        )
    return {
        "id": job.pk,
        "campaign": job.campaign_id,
        "filename": job.filename,
        "status": status,
        "total_lines": job.total_lines,
        "done_lines": job.done_lines,
        "percent": 100
        if status == MemoryImport.Status.DONE
        else job.done_lines * 100 // max(job.total_lines, 1),
        "imported": job.imported,
        "error_count": job.error_count,
        "errors": job.errors,
        "message": message,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def import_run(job_id: int) -> MemoryImport | None:
    """The memory cluster's job: record a queued import, saving progress every PROGRESS_EVERY
    lines. Runs once: a job that is no longer queued (run already, or a duplicate task) is left
    alone. The member is looked up again, so someone removed from the campaign meanwhile
    imports nothing."""
    from gtw_site import busy

    claimed = MemoryImport.objects.filter(pk=job_id, status=MemoryImport.Status.QUEUED).update(
        status=MemoryImport.Status.RUNNING
    )
    if not claimed:
        return None
    job = MemoryImport.objects.get(pk=job_id)
    membership = Membership.objects.filter(campaign_id=job.campaign_id, user_id=job.created_by_id).first()
    if membership is None:
        return _finish(
            job, MemoryImport.Status.FAILED, message="You are no longer a member of this campaign."
        )

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            MemoryImport.objects.filter(pk=job_id).update(done_lines=done, updated_at=timezone.now())
            busy.wait_for_turns()  # players are waiting on a turn: the import can wait a moment

    try:
        result = import_jsonl(membership=membership, lines=bytes(job.data).splitlines(), progress=progress)
    except Exception:
        logger.exception("memory import %s failed", job_id)
        job.refresh_from_db(fields=["done_lines"])
        return _finish(
            job,
            MemoryImport.Status.FAILED,
            message=f"The import stopped at line {job.done_lines + 1:,} because of a server error; "
            "the lines before it were imported.",
        )
    job.done_lines = job.total_lines
    return _finish(
        job,
        MemoryImport.Status.DONE,
        imported=result["imported"],
        errors=result["errors"],
        error_count=result["error_count"],
    )


def _finish(job: MemoryImport, status: str, **fields) -> MemoryImport:
    for name, value in {"status": status, "data": b"", "finished_at": timezone.now(), **fields}.items():
        setattr(job, name, value)
    job.save()
    return job


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
