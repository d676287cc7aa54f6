"""Writing facts (issue 21): short semantic memories the summariser's job extracts beside each
session summary (memory/recall/facts.py is the pure extract; this is its thin shell).

A fact is a `semantic` memory tagged `fact`, written by nobody, its `sources` the memories it
was read in, in **their** namespace: a fact read in a player's private memory is that player's
private fact. Recall finds facts like any memory, under the same scope filters; the X-card's
forgetting removes the facts of a withdrawn narration with it (memory.services.forget_withdrawn).
"""

from __future__ import annotations

from django.db import transaction

from memory.models import Memory
from memory.recall import facts
from memory.summaries import SUMMARY_TAG

FACT_TAG = "fact"


def facts_store(*, session, after_seq: int, last_seq: int, names=()) -> list[Memory]:
    """Facts from the memories the session recorded from events after `after_seq` up to
    `last_seq`, in every namespace (each fact stays in its sources' own), skipping facts the
    campaign already holds in that namespace. Returns the new fact memories."""
    from memory.services import schedule_embedding

    sources = list(
        Memory.objects.filter(
            campaign_id=session.campaign_id,
            source_session=session,
            source_seq__gt=after_seq,
            source_seq__lte=last_seq,
        )
        .exclude(tags__overlap=[SUMMARY_TAG, FACT_TAG])
        .order_by("source_seq", "id")
        .values_list("id", "namespace", "text")
    )
    drafts = facts.extract([facts.Source(*row) for row in sources], known=names)
    if not drafts:
        return []
    have = set(
        Memory.objects.filter(
            campaign_id=session.campaign_id,
            tags__contains=[FACT_TAG],
            namespace__in={d.namespace for d in drafts},
        ).values_list("namespace", "text")
    )
    new = [d for d in drafts if (d.namespace, d.text) not in have]
    if not new:
        return []
    with transaction.atomic():
        memories = Memory.objects.bulk_create(
            Memory(
                campaign_id=session.campaign_id,
                namespace=d.namespace,
                type=Memory.Type.SEMANTIC,
                text=d.text,
                importance=0.6,
                tags=[FACT_TAG],
                sources=list(d.sources),
                source_session=session,
                source_seq=last_seq,
                metadata={"fact_of_session": session.pk},
            )
            for d in new
        )
        transaction.on_commit(schedule_embedding)
    return memories
