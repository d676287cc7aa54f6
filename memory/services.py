"""Writes: recording memories (from events, notes, imports) and embedding them in batches."""

from __future__ import annotations

import json
import logging
import math

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from campaigns.errors import Forbidden, Invalid
from campaigns.models import Character, Event, Membership, PlaySession
from gtw_site import jobs
from gtw_site.providers import ProviderError
from gtw_site.text import check_storable
from memory import policy
from memory.models import Memory, campaign_namespace, player_namespace
from memory.recall.store import FACT_TAG, facts_store
from memory.signals import memories_recorded
from memory.summaries import SUMMARY_KEY, SUMMARY_TAG

logger = logging.getLogger(__name__)

MAX_NOTE_CHARS = 50_000
MAX_METADATA_BYTES = 16_000
MAX_METADATA_DEPTH = 32
EMBED_BATCH = 64


class TooLarge(Invalid):
    status = 413
    code = "too_large"


def _clean_tags(tags: list[str] | tuple[str, ...] | None) -> list[str]:
    # A bare string is iterable too: "secret" must not become ['s', 'e', 'c', 'r', 'e', 't'].
    if tags is None:
        return []
    if not isinstance(tags, list | tuple):
        raise Invalid("tags must be a list of strings.")
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 40:
            raise Invalid("Tags are non-empty strings of at most 40 characters.")
        out.append(check_storable(tag.strip().lower(), what="A tag"))
    if len(out) > 20:
        raise Invalid("At most 20 tags per memory.")
    if SUMMARY_TAG in out:
        raise Invalid(f"The tag '{SUMMARY_TAG}' is reserved for the game's own session summaries.")
    return out


def _check_json_value(value, *, depth: int) -> list:
    """One metadata value: storable as PostgreSQL jsonb. Returns the values nested in it."""
    if depth > MAX_METADATA_DEPTH:
        raise Invalid(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep.")
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise Invalid("metadata keys must be strings.")
            check_storable(key, what="A metadata key")
        return list(value.values())
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        check_storable(value, what="A metadata value")
    elif isinstance(value, float) and not math.isfinite(value):
        raise Invalid("metadata numbers must be finite (no NaN or Infinity).")
    elif value is not None and not isinstance(value, bool | int | float):
        raise Invalid("metadata holds only JSON values: objects, lists, strings, numbers, booleans, null.")
    return []


def _clean_metadata(metadata: dict | None) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid("metadata must be a JSON object.")
    if SUMMARY_KEY in metadata:
        raise Invalid(f"The metadata key '{SUMMARY_KEY}' is reserved for the game's own session summaries.")
    # Iterative, not recursive: a deeply nested value must be an Invalid, not a RecursionError.
    pending = [(metadata, 0)]
    while pending:
        value, depth = pending.pop()
        pending += [(child, depth + 1) for child in _check_json_value(value, depth=depth)]
    size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise TooLarge(f"metadata is at most {MAX_METADATA_BYTES:,} bytes as JSON (this is {size:,}).")
    return metadata


def _clean_importance(importance) -> float:
    # Compared before float(): float() of a huge JSON integer overflows.
    if isinstance(importance, bool) or not isinstance(importance, int | float) or not 0 <= importance <= 1:
        raise Invalid("importance is a number between 0 and 1.")
    return float(importance)


def memory_record(
    *,
    membership: Membership,
    text: str,
    type: str = Memory.Type.DECLARATIVE,
    visibility: str = "campaign",
    tags: list[str] | tuple[str, ...] | None = None,
    metadata: dict | None = None,
    importance: float = 0.5,
) -> list[Memory]:
    """A note written by a GM or player. Long text is split into chunks (one memory each)."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid("A memory needs some text.")
    if len(text) > MAX_NOTE_CHARS:
        raise TooLarge(
            f"Memories are at most {MAX_NOTE_CHARS:,} characters (this one is {len(text):,}); "
            "split it, or use the bulk import."
        )
    check_storable(text, what="The memory text")
    if type not in Memory.Type.values:
        raise Invalid(f"type must be one of {', '.join(Memory.Type.values)}.")
    if visibility not in ("campaign", "private"):
        raise Invalid("visibility must be 'campaign' or 'private'.")
    if visibility == "campaign" and not membership.can_act:
        raise Forbidden("Spectators can keep private notes only.")
    # Issue 18: a note that crosses the campaign's content settings is refused (block) or kept and
    # put in the GM's review queue (hold), like a shared doc (campaigns/safety/services.py).
    from campaigns.safety.services import check_text

    check_text(campaign=membership.campaign_id, text=text, source="note", author=membership.user_id)
    importance = _clean_importance(importance)
    metadata = _clean_metadata(metadata)
    namespace = (
        campaign_namespace(membership.campaign_id)
        if visibility == "campaign"
        else player_namespace(membership.user_id)
    )
    pieces = policy.chunk(text.strip(), limit=settings.GTW_MEMORY["max_text_chars"])
    tag_list = _clean_tags(tags)
    with transaction.atomic():
        memories = Memory.objects.bulk_create(
            Memory(
                campaign_id=membership.campaign_id,
                namespace=namespace,
                type=type,
                text=piece,
                tags=tag_list,
                metadata={
                    **metadata,
                    **({"part": i + 1, "of": len(pieces)} if len(pieces) > 1 else {}),
                },
                importance=importance,
                created_by=membership.user,
            )
            for i, piece in enumerate(pieces)
        )
        transaction.on_commit(schedule_embedding)
    return memories


def queue_record_from_events(session_id: int, events: list[Event]) -> None:
    """Event-store listener. Hands the work to the memory cluster, so neither a player's
    request nor the running turn waits for memory writes (ids only in the payload)."""
    if events:
        jobs.enqueue(
            "memory.tasks.record_events",
            session_id,
            [e.seq for e in events],
            group="memory",
            cluster=settings.MEMORY_CLUSTER,
        )


def record_from_events(session_id: int, events: list[Event]) -> list[Memory]:
    """Event-store listener: turn committed events into memories (keyword-searchable at once)."""
    if not events:
        return []
    session = PlaySession.objects.select_related("campaign").get(pk=session_id)
    names = {
        c.owner_id: c.name
        for c in Character.objects.filter(campaign_id=session.campaign_id).only("owner_id", "name")
    }
    views = [
        policy.EventView(
            seq=e.seq,
            type=e.type,
            actor_id=e.actor_id,
            payload=e.payload,
            audience=tuple(e.audience) if e.audience is not None else None,
        )
        for e in events
    ]
    # The X-card (issue 18): a withdrawn narration is forgotten, and never recorded if this job
    # runs after the tap (the session's state already lists it).
    withdrawn = set((session.state or {}).get("withdrawn") or ()) | set(policy.withdrawn_by(views))
    forget = set(policy.withdrawn_by(views)) | {v.seq for v in views if v.seq in withdrawn}
    if forget:
        forget_withdrawn(session, forget)
    views = [v for v in views if v.seq not in withdrawn]
    drafts = policy.decide(session.campaign_id, views, names)
    if not drafts:
        return []
    memories = Memory.objects.bulk_create(
        Memory(
            campaign_id=session.campaign_id,
            namespace=d.namespace,
            type=d.type,
            text=d.text,
            importance=d.importance,
            tags=list(d.tags),
            metadata=dict(d.metadata),
            source_session_id=session_id,
            source_seq=d.source_seq,
        )
        for d in drafts
    )
    schedule_embedding()
    # Narrative decides whether it is time for a session summary (the memories above are its
    # sources, so it hears of them only now).
    memories_recorded.send(sender=Memory, session=session, events=events, memories=memories)
    return memories


def forget_withdrawn(session, seqs: set[int]) -> int:
    """Forget what was remembered of the narrations the X-card withdrew (issue 18): their own
    memories, and the session summaries written from them (the next summary covers the span
    again, without them). Returns how many memories went."""
    rows = Memory.objects.filter(
        campaign_id=session.campaign_id, source_session_id=session.pk, source_seq__in=seqs
    ).exclude(tags__overlap=[SUMMARY_TAG, FACT_TAG])
    ids = list(rows.values_list("id", flat=True))
    # The summaries and the facts (issue 21) read in them go too.
    summaries = Memory.objects.filter(
        campaign_id=session.campaign_id, source_session_id=session.pk, tags__overlap=[SUMMARY_TAG, FACT_TAG]
    ).filter(sources__overlap=ids or [0])
    gone, _ = Memory.objects.filter(pk__in=[*ids, *summaries.values_list("id", flat=True)]).delete()
    return gone


def summary_store(*, session, text: str, after_seq: int, first_seq: int, last_seq: int) -> Memory:
    """Keep a summary of the session's events first_seq..last_seq (written by narrative) as a
    campaign memory, its sources the table memories recorded from events after `after_seq`."""
    namespace = campaign_namespace(session.campaign_id)
    sources = list(
        Memory.objects.filter(
            campaign_id=session.campaign_id,
            namespace=namespace,
            source_session=session,
            source_seq__gt=after_seq,
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
            metadata={SUMMARY_KEY: session.pk, "from_seq": first_seq, "to_seq": last_seq},
        )
        if settings.GTW_MEMORY.get("facts", True):
            # Issue 21: short facts read in the same span, each in its sources' namespace.
            facts_store(session=session, after_seq=after_seq, last_seq=last_seq)
        transaction.on_commit(schedule_embedding)
    return memory


def _embed_flag() -> str:
    # Per database: deployments (and parallel test workers) that share one Redis must not
    # swallow each other's embedding jobs.
    from django.db import connection

    return f"gtw:memory:embed-queued:{connection.settings_dict['NAME']}"


def schedule_embedding() -> None:
    # Debounced: one queued embedding job at a time is enough, it drains the whole backlog.
    if not cache.add(_embed_flag(), 1, timeout=60):
        return
    jobs.enqueue(
        "memory.tasks.embed_pending",
        group="memory",
        task_name="embed-pending",
        cluster=settings.MEMORY_CLUSTER,
    )


def embed_pending(*, limit: int = 5000) -> int:
    """Embed memories that have no vector yet, in batches. An embedder failure leaves them
    keyword-searchable and un-embedded; the next run (every minute under `gtw up`) retries."""
    from memory.embeddings import registry

    # New memories from here on schedule a fresh job.
    cache.delete(_embed_flag())
    done = 0
    try:
        embedder = registry.get()
    except ProviderError:
        logger.warning("embedder unavailable; memories stay keyword-only for now", exc_info=True)
        return 0
    while done < limit:
        with transaction.atomic():
            # skip_locked: two workers never embed the same rows.
            batch = list(
                Memory.objects.select_for_update(skip_locked=True)
                .filter(embedding__isnull=True)
                .order_by("id")
                .only("id", "text")[:EMBED_BATCH]
            )
            if not batch:
                break
            try:
                vectors = embedder.embed([m.text for m in batch])
            except ProviderError:
                logger.warning("embedding %s memories failed; will retry", len(batch), exc_info=True)
                break
            for memory, vector in zip(batch, vectors, strict=True):
                memory.embedding = vector
                memory.embedding_model = f"{embedder.name}:{embedder.model}"
            Memory.objects.bulk_update(batch, ["embedding", "embedding_model"])
        done += len(batch)
    return done
