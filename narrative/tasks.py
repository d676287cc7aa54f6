"""django-q2 jobs for narrative that run outside a turn (on the memory cluster: they can wait)."""

from __future__ import annotations

from narrative import summaries


def summarize_session(session_id: int) -> int | None:
    memory = summaries.summarize_session(session_id)
    return memory.pk if memory else None
