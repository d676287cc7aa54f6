"""django-q2 jobs for memory: batch embedding and session summaries."""

from __future__ import annotations

import logging

from memory import services, summaries

logger = logging.getLogger(__name__)


def embed_pending() -> int:
    return services.embed_pending()


def summarize_session(session_id: int) -> int | None:
    memory = summaries.summarize_session(session_id)
    return memory.pk if memory else None
