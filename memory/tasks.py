"""django-q2 jobs for memory: recording events, batch embedding, bulk imports. (Session
summaries are narrative's job: narrative.tasks.summarize_session.)"""

from __future__ import annotations

import logging

from gtw_site.busy import wait_for_turns
from gtw_site.trace import mark
from memory import services

logger = logging.getLogger(__name__)


def record_events(session_id: int, seqs: list[int]) -> int:
    from campaigns.models import Event

    wait_for_turns()  # players are waiting on the turn; memory can wait a moment
    mark("memory.record")
    events = list(Event.objects.filter(session_id=session_id, seq__in=seqs).order_by("seq"))
    return len(services.record_from_events(session_id, events))


def embed_pending() -> int:
    wait_for_turns()
    mark("memory.embed")
    n = services.embed_pending()
    mark("memory.embed.end")
    return n


def mark_recalled(memory_ids: list[int]) -> None:
    from memory.retrieval import mark_recalled

    mark_recalled(memory_ids)


def import_memories(job_id: int) -> int | None:
    """A queued bulk import (memory.importer.import_queue); returns how many memories it made."""
    from memory.importer import import_run

    wait_for_turns()
    mark("memory.import")
    job = import_run(job_id)
    return job.imported if job is not None else None
