"""A branch's memories (campaigns.signals.campaign_branched): copies, not references, of the
memories the parent had at the branch point, so later play on either side never leaks across."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from campaigns.branching import BATCH, keep_created_at
from campaigns.models import PlaySession
from memory.models import Memory, campaign_namespace


def on_campaign_branched(
    sender, *, session: PlaySession, new_session: PlaySession, at_seq: int, cutoff: datetime, **kwargs
) -> None:
    """This session's memories up to seq S; the campaign's others (notes, other sessions) made
    no later than event S. Runs inside campaign_branch's transaction."""
    parent_id, branch_id = session.campaign_id, new_session.campaign_id
    inherited = list(
        Memory.objects.filter(campaign_id=parent_id)
        .filter(
            Q(source_session=session, source_seq__lte=at_seq)
            | (~Q(source_session=session) & Q(created_at__lte=cutoff))
        )
        .order_by("pk")
    )
    old_ns, new_ns = campaign_namespace(parent_id), campaign_namespace(branch_id)
    copies = Memory.objects.bulk_create(
        (
            Memory(
                campaign_id=branch_id,
                namespace=new_ns if m.namespace == old_ns else m.namespace,
                type=m.type,
                text=m.text,
                embedding=m.embedding,
                embedding_model=m.embedding_model,
                tags=m.tags,
                metadata=m.metadata,
                importance=m.importance,
                source_session=new_session if m.source_session_id == session.pk else None,
                source_seq=m.source_seq,
                sources=[],
                inherited_from_id=m.pk,
                created_by_id=m.created_by_id,
            )
            for m in inherited
        ),
        batch_size=BATCH,
    )
    keep_created_at(copies, [m.created_at for m in inherited])
