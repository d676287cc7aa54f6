"""django-q2 jobs for memory: batch embedding and session summaries."""

from __future__ import annotations

import logging

from memory import services, summaries

logger = logging.getLogger(__name__)


def record_events(session_id: int, seqs: list[int]) -> int:
    from campaigns.models import Event

    events = list(Event.objects.filter(session_id=session_id, seq__in=seqs).order_by("seq"))
    return len(services.record_from_events(session_id, events))


def embed_pending() -> int:
    return services.embed_pending()


def summarize_session(session_id: int) -> int | None:
    memory = summaries.summarize_session(session_id)
    return memory.pk if memory else None
