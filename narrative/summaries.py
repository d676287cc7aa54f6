"""Session summaries, written by narrative: every `GTW_MEMORY["summary_every"]` narrations, the
summarizer role (offline default: extractive) condenses the public play since the last summary;
memory stores it (`memory.services.summary_store`) and the play page shows the newest as its
"Previously…" line (`memory.summaries.latest_recap`). Only public events are summarised: a
summary must never carry one player's private knowledge to the table."""

from __future__ import annotations

from django.conf import settings

from campaigns.models import Event, PlaySession
from gtw_site import jobs
from memory import services as memory_services
from memory import summaries as memory_summaries
from memory.models import Memory
from narrative import prompts
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message

MIN_EVENTS = 3
SYSTEM = (
    "Summarise this stretch of a role-playing session for the game master's notes: who did what, "
    "what was learned (names, places, numbers), what changed, what is unresolved. Dense, factual, "
    "at most 120 words, no flourishes. " + prompts.DATA_RULE
)


def summarize_session(session_id: int) -> Memory | None:
    """Summarise the session's public actions and narrations since its last summary; None when
    fewer than MIN_EVENTS are new or the summarizer says nothing."""
    session = PlaySession.objects.select_related("campaign").get(pk=session_id)
    upto = memory_summaries.summarized_upto(session)
    events = list(
        Event.objects.filter(
            session=session, seq__gt=upto, type__in=["Action", "Narration"], audience__isnull=True
        )
        .select_related("actor")
        .order_by("seq")
    )
    if len(events) < MIN_EVENTS:
        return None
    lines = []
    for e in events:
        if e.type == "Action":
            lines.append(
                f"{e.payload.get('character') or (e.actor.username if e.actor else 'Someone')}: "
                f"{e.payload.get('text', '')}"
            )
        else:
            lines.append(f"GM: {e.payload.get('text', '')}")
    text = (
        registry.get("summarizer")
        .complete(
            ChatRequest(
                messages=[
                    Message(role="system", content=SYSTEM),
                    # Players' actions are their own words: data, never instructions.
                    Message(role="user", content=prompts.data_block("play", "\n".join(lines))),
                ],
                max_tokens=300,
                temperature=0.2,
                seed=events[-1].seq,
            )
        )
        .strip()
    )
    if not text:
        return None
    return memory_services.summary_store(
        session=session, text=text, after_seq=upto, first_seq=events[0].seq, last_seq=events[-1].seq
    )


def on_memories_recorded(sender, *, session, events, **kwargs) -> None:
    """memory.signals.memories_recorded: after every `summary_every`-th narration, queue a
    summary on the memory cluster (its sources, the memories just recorded, exist by now)."""
    if not any(e.type == "Narration" for e in events):
        return
    narrations = (session.state.get("counts") or {}).get("Narration", 0)
    every = settings.GTW_MEMORY["summary_every"]
    if every and narrations and narrations % every == 0:
        jobs.enqueue(
            "narrative.tasks.summarize_session", session.pk, group="memory", cluster=settings.MEMORY_CLUSTER
        )
