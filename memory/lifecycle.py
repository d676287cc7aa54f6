"""Memories through a campaign's lifecycle (campaigns.lifecycle's signals): a clone with its
history gets copies of the campaign's memories; an export carries them in the file's
"memories" section; an import restores them into the new campaign. Copies, not references.

A memory's namespace travels as "campaign" (table knowledge) or a person ref ("u2": that
player's private memories), never as a site's ids. On import a private memory whose player has
no account here is left out: it was only ever theirs.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.utils import timezone

from campaigns.branching import BATCH, keep_created_at
from campaigns.errors import Invalid
from campaigns.models import Campaign
from gtw_site.text import clean_text
from memory.models import DIMENSIONS, Memory, campaign_namespace, player_namespace

SECTION = "memories"
TEXT_MAX = 20_000
TYPES = {choice for choice, _label in Memory.Type.choices}


def on_campaign_cloned(
    sender, *, campaign: Campaign, clone: Campaign, sessions: dict[int, int], **kwargs
) -> None:
    """Every memory of `campaign`, copied into `clone` (inside the clone's transaction)."""
    originals = list(Memory.objects.filter(campaign=campaign).order_by("pk"))
    old_ns, new_ns = campaign_namespace(campaign.pk), campaign_namespace(clone.pk)
    copies = Memory.objects.bulk_create(
        (
            Memory(
                campaign=clone,
                namespace=new_ns if m.namespace == old_ns else m.namespace,
                type=m.type,
                text=m.text,
                embedding=m.embedding,
                embedding_model=m.embedding_model,
                tags=m.tags,
                metadata=m.metadata,
                importance=m.importance,
                source_session_id=sessions.get(m.source_session_id),
                source_seq=m.source_seq,
                sources=[],
                inherited_from_id=m.pk,
                created_by_id=m.created_by_id,
            )
            for m in originals
        ),
        batch_size=BATCH,
    )
    keep_created_at(copies, [m.created_at for m in originals])


def on_campaign_exporting(
    sender, *, campaign: Campaign, people, sessions: dict[int, int], **kwargs
) -> tuple[str, list[dict[str, Any]]]:
    shared = campaign_namespace(campaign.pk)
    out = []
    for m in Memory.objects.filter(campaign=campaign).order_by("pk").iterator(chunk_size=BATCH):
        if m.namespace == shared:
            namespace = "campaign"
        elif m.namespace.startswith("player:") and m.namespace[7:].isdigit():
            namespace = people.ref(int(m.namespace[7:]))
        else:
            continue  # another campaign's namespace cannot be in this one; nothing to carry
        out.append(
            {
                "namespace": namespace,
                "type": m.type,
                "text": m.text,
                "tags": list(m.tags),
                "metadata": m.metadata,
                "importance": m.importance,
                "session": sessions.get(m.source_session_id),
                "seq": m.source_seq,
                "embedding": None if m.embedding is None else [float(x) for x in m.embedding],
                "embedding_model": m.embedding_model,
                "created_by": people.ref(m.created_by_id),
                "created_at": m.created_at.isoformat(),
            }
        )
    return SECTION, out


def on_campaign_importing(
    sender, *, campaign: Campaign, sections: dict[str, Any], people: dict, sessions: dict[int, int], **kwargs
) -> str | None:
    """Restore the file's memories into `campaign`; Invalid (the whole import rolls back) on any
    malformed one."""
    rows = sections.get(SECTION)
    if rows is None:
        return None
    if not isinstance(rows, list):
        raise Invalid("The file's memories are not a list.", code="bad_file")
    kept, when, skipped = [], [], 0
    for i, row in enumerate(rows, start=1):
        memory = _memory(row, i, campaign, people, sessions)
        if memory is None:
            skipped += 1
            continue
        kept.append(memory)
        when.append(_when(row.get("created_at")))
    copies = Memory.objects.bulk_create(kept, batch_size=BATCH)
    keep_created_at(copies, when)
    line = f"{len(copies)} memor{'y' if len(copies) == 1 else 'ies'} restored"
    if skipped:
        line += f"; {skipped} private one(s) left out (their players have no account here)"
    return line + "."


def _memory(row, i: int, campaign: Campaign, people: dict, sessions: dict[int, int]) -> Memory | None:
    def bad(what: str) -> Invalid:
        return Invalid(f"Memory {i} in the file is not valid: {what}.", code="bad_file")

    if not isinstance(row, dict):
        raise bad("not an object")
    namespace = row.get("namespace")
    if namespace == "campaign":
        ns = campaign_namespace(campaign.pk)
    elif isinstance(namespace, str) and namespace in people:
        if people[namespace] is None:
            return None
        ns = player_namespace(people[namespace])
    else:
        raise bad("unknown namespace")
    kind = row.get("type", Memory.Type.EPISODIC)
    if kind not in TYPES:
        raise bad("unknown type")
    text = row.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX:
        raise bad(f"its text must be 1 to {TEXT_MAX} characters")
    tags = row.get("tags") or []
    if (
        not isinstance(tags, list)
        or not all(isinstance(t, str) and len(t) <= 40 for t in tags)
        or len(tags) > 50
    ):
        raise bad("tags are up to 50 words of at most 40 characters")
    metadata = row.get("metadata") or {}
    importance = row.get("importance", 0.5)
    if not isinstance(metadata, dict):
        raise bad("metadata must be an object")
    if not isinstance(importance, int | float) or isinstance(importance, bool) or not 0 <= importance <= 1:
        raise bad("importance is a number from 0 to 1")
    embedding = row.get("embedding")
    if embedding is not None and (
        not isinstance(embedding, list)
        or len(embedding) != DIMENSIONS
        or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in embedding
        )
    ):
        embedding = None  # another model's vectors: re-embedded by `gtw memory reembed`
    session = row.get("session")
    seq = row.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise bad("seq is a whole number")
    creator = row.get("created_by")
    return Memory(
        campaign=campaign,
        namespace=ns,
        type=kind,
        text=clean_text(text, what=f"Memory {i}", max_len=TEXT_MAX),
        embedding=embedding,
        embedding_model=str(row.get("embedding_model") or "")[:80] if embedding is not None else "",
        tags=tags,
        metadata=metadata,
        importance=float(importance),
        source_session_id=sessions.get(session) if isinstance(session, int) else None,
        source_seq=seq,
        created_by_id=people.get(creator) if isinstance(creator, str) else None,
    )


def _when(value) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    return moment if moment is not None and moment.tzinfo is not None else timezone.now()
