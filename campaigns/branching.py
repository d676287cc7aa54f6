"""Branch a campaign at an event: a new campaign whose history (events and memories) is the
parent's up to seq S, and its own after. Copies, not references: later play in the parent can
never leak into the branch, and vice versa.

Copies keep their original `created_at`, so "before the branch point" means the same thing in
a branch as in its parent (and a branch of a branch inherits what its parent inherited).
Characters are copied as they were at seq S, and the copied events name the branch's
characters, so replaying the branch's log gives exactly its stored state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from campaigns import signals
from campaigns import state as reducer
from campaigns.errors import Invalid
from campaigns.events import to_record
from campaigns.models import Campaign, Character, Event, Membership, PlaySession
from campaigns.services import _require_gm
from gtw_site import ratelimit
from gtw_site.text import clean_text

BATCH = 500


@transaction.atomic
def campaign_branch(
    *, membership: Membership, session: PlaySession, at_seq: int, name: str = ""
) -> PlaySession:
    _require_gm(membership)
    _check_branchable(session, at_seq)
    # One request copies a session's whole history and memory: anyone running a campaign of
    # their own could otherwise multiply it without end.
    ratelimit.rate_check(scope="branch", ident=membership.user_id)
    parent = session.campaign
    name = clean_text(name or f"{parent.name} (branch at #{at_seq})", what="The branch name", max_len=120)
    branch = Campaign.objects.create(
        name=name,
        pack=parent.pack,
        personality=parent.personality,
        created_by=membership.user,
        # The branch plays the parent's pinned mission version, not whatever was uploaded since.
        mission_slug=parent.mission_slug,
        mission_hash=parent.mission_hash,
        # The party's stash as it is now; the engine takes back what was granted after the
        # branch point (campaign_branched), as it does for the characters' inventories.
        stash=parent.stash,
    )
    Membership.objects.bulk_create(
        Membership(campaign=branch, user_id=m.user_id, role=m.role) for m in parent.memberships.all()
    )
    events = list(Event.objects.filter(session=session, seq__lte=at_seq).order_by("seq"))
    cutoff = events[-1].created_at
    ids = _copy_characters(parent, branch)
    new_session = _copy_session(session, branch, events, ids, opened_by=membership.user)
    # Inside this transaction: memory copies the memories made before the branch point, the
    # engine takes back the rewards granted after it. A receiver that fails rolls it all back.
    signals.campaign_branched.send(
        sender=Campaign,
        session=session,
        new_session=new_session,
        at_seq=at_seq,
        cutoff=cutoff,
        characters=ids,
    )
    return new_session


def _check_branchable(session: PlaySession, at_seq: int) -> None:
    if session.kind == PlaySession.Kind.STAGE:
        # A stage lives on its seats, queue and batch windows, kept outside the copied log.
        raise Invalid("Stage sessions can't be branched; branch a party session.")
    if not isinstance(at_seq, int) or not 1 <= at_seq <= session.version:
        raise Invalid(f"at_seq must be between 1 and {session.version}.")


def keep_created_at(objs: list, originals: list[datetime]) -> None:
    """bulk_create stamps auto_now_add fields with "now"; put the originals back (for copies
    made into a branch, here and by campaign_branched's receivers)."""
    if not objs:
        return
    for obj, created_at in zip(objs, originals, strict=True):
        obj.created_at = created_at
    type(objs[0]).objects.bulk_update(objs, ["created_at"], batch_size=BATCH)


# ---- characters ----------------------------------------------------------------------------


def _copy_characters(parent: Campaign, branch: Campaign) -> dict[int, int]:
    """Copy the characters as they are now; returns parent character id → branch's. (The
    rewards granted after the branch point are the engine's to take back: see
    `signals.campaign_branched`.)"""
    originals = list(parent.characters.order_by("pk"))
    copies = Character.objects.bulk_create(
        Character(
            campaign=branch,
            owner_id=c.owner_id,
            name=c.name,
            archetype=c.archetype,
            attributes=c.attributes,
            xp=c.xp,
            level=c.level,
            inventory=c.inventory,
        )
        for c in originals
    )
    return {c.pk: copy.pk for c, copy in zip(originals, copies, strict=True)}


# ---- the session and its events --------------------------------------------------------------


def _remap(value: Any, ids: dict[int, int]) -> Any:
    """A payload with its character ids pointed at the branch's characters: `character_id`
    fields, the keys of `status_state` and the "pc:<id>" combatants of an initiative order."""
    if isinstance(value, list):
        return [_remap(v, ids) for v in value]
    if not isinstance(value, dict):
        return value
    keys = {str(old): str(new) for old, new in ids.items()}
    out = {}
    for key, v in value.items():
        if key == "character_id" and isinstance(v, int) and not isinstance(v, bool):
            out[key] = ids.get(v, v)
        elif key == "status_state" and isinstance(v, dict):
            out[key] = {keys.get(k, k): _remap(e, ids) for k, e in v.items()}
        elif key == "id" and isinstance(v, str) and v.startswith("pc:"):
            out[key] = "pc:" + keys.get(v[3:], v[3:])
        else:
            out[key] = _remap(v, ids)
    return out


def _copy_session(
    session: PlaySession, branch: Campaign, events: list[Event], ids: dict[int, int], *, opened_by
) -> PlaySession:
    copies = [
        Event(
            seq=e.seq,
            type=e.type,
            actor_id=e.actor_id,
            payload=_remap(e.payload, ids),
            seed=e.seed,
            idempotency_key=e.idempotency_key,
            audience=e.audience,
        )
        for e in events
    ]
    state = reducer.replay(to_record(e) for e in copies)
    new_session = PlaySession.objects.create(
        campaign=branch,
        number=1,
        title=f"{session} (branch)",
        opened_by=opened_by,
        version=events[-1].seq,
        state=state,
        state_hash=reducer.state_hash(state),
    )
    for e in copies:
        e.session = new_session
    Event.objects.bulk_create(copies, batch_size=BATCH)
    keep_created_at(copies, [e.created_at for e in events])
    return new_session
