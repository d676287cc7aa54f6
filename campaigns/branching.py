"""Branch a campaign at an event: a new campaign whose history (events and memories) is the
parent's up to seq S, and its own after. Copies, not references: later play in the parent can
never leak into the branch, and vice versa."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from campaigns import state as reducer
from campaigns.errors import Invalid
from campaigns.events import to_record
from campaigns.models import Campaign, Character, Event, Membership, PlaySession
from campaigns.services import _require_gm, clean_text


@transaction.atomic
def campaign_branch(
    *, membership: Membership, session: PlaySession, at_seq: int, name: str = ""
) -> PlaySession:
    from memory.models import Memory, campaign_namespace

    _require_gm(membership)
    if not isinstance(at_seq, int) or not 1 <= at_seq <= session.version:
        raise Invalid(f"at_seq must be between 1 and {session.version}.")
    parent = session.campaign
    name = clean_text(name or f"{parent.name} (branch at #{at_seq})", what="The branch name", max_len=120)
    branch = Campaign.objects.create(
        name=name, pack=parent.pack, personality=parent.personality, created_by=membership.user
    )
    Membership.objects.bulk_create(
        Membership(campaign=branch, user_id=m.user_id, role=m.role) for m in parent.memberships.all()
    )
    Character.objects.bulk_create(
        Character(
            campaign=branch, owner_id=c.owner_id, name=c.name, archetype=c.archetype, attributes=c.attributes
        )
        for c in parent.characters.all()
    )
    events = list(Event.objects.filter(session=session, seq__lte=at_seq).order_by("seq"))
    state = reducer.replay(to_record(e) for e in events)
    new_session = PlaySession.objects.create(
        campaign=branch,
        number=1,
        title=f"{session} (branch)",
        opened_by=membership.user,
        version=at_seq,
        state=state,
        state_hash=reducer.state_hash(state),
    )
    Event.objects.bulk_create(
        Event(
            session=new_session,
            seq=e.seq,
            type=e.type,
            actor_id=e.actor_id,
            payload=e.payload,
            seed=e.seed,
            idempotency_key=e.idempotency_key,
            audience=e.audience,
        )
        for e in events
    )
    cutoff = events[-1].created_at
    inherited = Memory.objects.filter(campaign=parent).filter(
        Q(source_session=session, source_seq__lte=at_seq)
        | (~Q(source_session=session) & Q(created_at__lte=cutoff))
        | (Q(source_session__isnull=True) & Q(created_at__lte=cutoff))
    )
    old_ns, new_ns = campaign_namespace(parent.pk), campaign_namespace(branch.pk)
    Memory.objects.bulk_create(
        Memory(
            campaign=branch,
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
        for m in inherited.iterator()
    )
    return new_session
