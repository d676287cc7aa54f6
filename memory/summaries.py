"""Session summaries as memory keeps them: how one is marked, and reading them back.

Narrative writes them (narrative/summaries.py: the prompt and the summarizer call) and stores
them through `memory.services.summary_store`; the play page's "Previously…" line reads
`latest_recap`. Only public events are summarised into the campaign namespace: a summary must
never carry one player's private knowledge to the table."""

from __future__ import annotations

from memory.models import Memory, campaign_namespace

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


def summarized_upto(session) -> int:
    """The last event seq the session's summaries already cover (0: none yet)."""
    last = (
        summaries_of(session.campaign_id)
        .filter(**{f"metadata__{SUMMARY_KEY}": session.pk})
        .order_by("-source_seq")
        .first()
    )
    return last.source_seq if last else 0


def latest_recap(session) -> Memory | None:
    """The newest summary of this campaign, for the 'Previously…' line on the play page."""
    return summaries_of(session.campaign_id).order_by("-created_at").first()


def summary_body(memory: Memory) -> str:
    """A summary's own words, without the "Summary of … (events a to b): " heading
    `memory.services.summary_store` gives it for recall."""
    head, sep, body = memory.text.partition("): ")
    return body if sep and head.startswith("Summary of ") else memory.text
