"""Condense stretches of play into dense summary memories (summarizer role; offline default
is extractive). Only public events are summarised into the campaign namespace: a summary
must never carry one player's private knowledge to the table."""

from __future__ import annotations

from django.db import transaction

from campaigns.models import Event, PlaySession
from memory.models import Memory, campaign_namespace
from narrative import prompts
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message

MIN_EVENTS = 3
SYSTEM = (
    "Summarise this stretch of a role-playing session for the game master's notes: who did what, "
    "what was learned (names, places, numbers), what changed, what is unresolved. Dense, factual, "
    "at most 120 words, no flourishes. " + prompts.DATA_RULE
)
# Marks a summary; `memory_record` refuses both on notes, so players cannot forge one.
SUMMARY_TAG = "summary"
SUMMARY_KEY = "summary_of_session"


def summaries_of(campaign_id: int):
    """The summaries the system wrote for this campaign: in its namespace, written by nobody,
    tagged, and ending at an event. A player's note is none of these, whatever its tags say."""
    return Memory.objects.filter(
        campaign_id=campaign_id,
        namespace=campaign_namespace(campaign_id),
        created_by__isnull=True,
        tags__contains=[SUMMARY_TAG],
        source_seq__isnull=False,
    )


def summarize_session(session_id: int) -> Memory | None:
    session = PlaySession.objects.select_related("campaign").get(pk=session_id)
    last = (
        summaries_of(session.campaign_id)
        .filter(**{f"metadata__{SUMMARY_KEY}": session_id})
        .order_by("-source_seq")
        .first()
    )
    upto = last.source_seq if last else 0
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
    summarizer = registry.get("summarizer")
    text = summarizer.complete(
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
    ).strip()
    if not text:
        return None
    first_seq, last_seq = events[0].seq, events[-1].seq
    namespace = campaign_namespace(session.campaign_id)
    sources = list(
        Memory.objects.filter(
            campaign_id=session.campaign_id,
            namespace=namespace,
            source_session=session,
            source_seq__gt=upto,
            source_seq__lte=last_seq,
        )
        .exclude(tags__contains=[SUMMARY_TAG])
        .values_list("id", flat=True)
    )
    with transaction.atomic():
        memory = Memory.objects.create(
            campaign_id=session.campaign_id,
            namespace=namespace,
            type=Memory.Type.DECLARATIVE,
            text=f"Summary of {session} (events {first_seq} to {last_seq}): {text}",
            importance=0.8,
            tags=[SUMMARY_TAG],
            sources=sources,
            source_session=session,
            source_seq=last_seq,
            metadata={SUMMARY_KEY: session_id, "from_seq": first_seq, "to_seq": last_seq},
        )
        from memory.services import schedule_embedding

        transaction.on_commit(schedule_embedding)
    return memory


def latest_recap(session: PlaySession) -> Memory | None:
    """The newest summary of this campaign, for the 'Previously…' line on the play page."""
    return summaries_of(session.campaign_id).order_by("-created_at").first()
