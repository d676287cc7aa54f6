"""A campaign's lifecycle (issue 16 part 5): clone, archive/unarchive, its sessions and their
snapshots. Export and import (the save file) are in lifecycle_export.py.

campaigns imports no app above it: what other apps keep about a campaign (memory's memories)
they copy themselves, on the signals below, inside the service's transaction — a receiver that
raises rolls the whole clone back.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from campaigns import selectors, services
from campaigns.branching import BATCH, _remap, keep_created_at
from campaigns.errors import Conflict, Forbidden, NotFound
from campaigns.events import to_record
from campaigns.models import Campaign, Character, Event, Membership, PlaySession, Snapshot
from campaigns.services import _require_gm
from campaigns.state import apply, initial_state, state_hash
from gtw_site import ratelimit
from gtw_site.text import clean_text

# `campaign` was cloned into `clone` with its history (`history=True` only): `sessions` maps
# the source's session ids to the clone's, `users` nothing (same site, same people). memory
# copies the campaign's memories (memory.lifecycle). Sent inside the clone's transaction.
campaign_cloned = Signal()

# Export: receivers return `(section_name, json_data)` for what they keep about `campaign`
# (memory: "memories"). `people` maps user id -> the file's person ref ("u1", ...), `sessions`
# session id -> session number; a receiver names people and sessions by those, never by id.
campaign_exporting = Signal()

# Import, inside the import's transaction: receivers restore their section of the file
# (`sections[name]`, validated by them: raise Invalid on anything wrong, which rolls it all
# back) into `campaign`, with `people` (ref -> local user id or None) and `sessions`
# (number -> the new PlaySession id). They return a short line for the import report.
campaign_importing = Signal()


# ---- clone ------------------------------------------------------------------------------------


@transaction.atomic
def campaign_clone(*, membership: Membership, name: str = "", history: bool = False) -> Campaign:
    """A new campaign with the source's content (pack, personality, pinned mission), settings,
    members and characters as templates (name, archetype and attributes; level 1, no xp, no
    inventory). Its schedules are off: the clone has none until its GM sets one. Sessions,
    events and memories are copied only with `history=True` (then characters are copied as
    they are, with their progress, since the copied events refer to them)."""
    _require_gm(membership)
    ratelimit.rate_check(scope="campaign_copy", ident=membership.user_id)
    source = membership.campaign
    name = clean_text(name or f"{source.name} (copy)", what="The campaign name", max_len=services.NAME_MAX)
    clone = Campaign.objects.create(
        name=name,
        pack=source.pack,
        personality=source.personality,
        created_by=membership.user,
        mission_slug=source.mission_slug,
        mission_hash=source.mission_hash,
        stash=copy.deepcopy(source.stash) if history else [],
        settings=copy.deepcopy(source.settings or {}),
    )
    members = [Membership(campaign=clone, user_id=m.user_id, role=m.role) for m in source.memberships.all()]
    for m in members:
        if m.user_id == membership.user_id:
            m.role = Membership.Role.GM  # whoever clones runs the clone
    Membership.objects.bulk_create(members)
    originals = list(source.characters.order_by("pk"))
    copies = Character.objects.bulk_create(
        Character(
            campaign=clone,
            owner_id=c.owner_id,
            name=c.name,
            archetype=c.archetype,
            attributes=copy.deepcopy(c.attributes),
            xp=c.xp if history else 0,
            level=c.level if history else 1,
            inventory=copy.deepcopy(c.inventory) if history else [],
        )
        for c in originals
    )
    if history:
        ids = {c.pk: new.pk for c, new in zip(originals, copies, strict=True)}
        sessions = _copy_sessions(source, clone, ids)
        campaign_cloned.send(sender=Campaign, campaign=source, clone=clone, sessions=sessions)
    return clone


def _copy_sessions(source: Campaign, clone: Campaign, ids: dict[int, int]) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for session in source.sessions.order_by("number"):
        events = list(Event.objects.filter(session=session).order_by("seq"))
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
        state, snapshots = replay_with_snapshots(copies, [s.seq for s in session.snapshots.all()])
        new = PlaySession.objects.create(
            campaign=clone,
            number=session.number,
            title=session.title,
            status=session.status,
            kind=session.kind,
            opened_by_id=session.opened_by_id,
            version=events[-1].seq if events else 0,
            state=state,
            state_hash=state_hash(state),
        )
        for e in copies:
            e.session = new
        Event.objects.bulk_create(copies, batch_size=BATCH)
        keep_created_at(copies, [e.created_at for e in events])
        Snapshot.objects.bulk_create(
            Snapshot(session=new, seq=seq, state=snap, sha256=state_hash(snap)) for seq, snap in snapshots
        )
        mapping[session.pk] = new.pk
    return mapping


def replay_with_snapshots(events: list[Event], at: list[int]) -> tuple[dict, list[tuple[int, dict]]]:
    """Fold `events` (in seq order) from the initial state; also the states at the seqs `at`
    (where the source had snapshots), so a copy resumes from snapshots like its source."""
    wanted = set(at)
    state = initial_state()
    snaps: list[tuple[int, dict]] = []
    for event in events:
        state = apply(state, to_record(event))
        if event.seq in wanted:
            snaps.append((event.seq, state))
    return state, snaps


# ---- archive ---------------------------------------------------------------------------------


def campaign_archive(*, membership: Membership, archived: bool = True) -> Campaign:
    """Archive (read-only, hidden from dashboards and calendar feeds, no reminders) or restore
    the campaign. Archiving ends its active sessions first (each appends SessionEnded, which
    reveals its dice secret); archiving twice, or restoring an active campaign, changes nothing."""
    _require_gm(membership)
    campaign = membership.campaign
    with transaction.atomic():
        # The campaign row lock: a session opening now (session_open takes the same lock) waits,
        # then finds the campaign archived.
        Campaign.objects.select_for_update().get(pk=campaign.pk)
        if archived:
            for session in campaign.sessions.filter(status=PlaySession.Status.ACTIVE).order_by("number"):
                with contextlib.suppress(Conflict):  # ended meanwhile (a second tab)
                    services.session_end(session=session, membership=membership)
        Campaign.objects.filter(pk=campaign.pk).update(archived=bool(archived))
    campaign.refresh_from_db()
    return campaign


# ---- sessions and snapshots (reads) ---------------------------------------------------------


def session_list(*, viewer, campaign_id: int) -> list[PlaySession]:
    """The campaign's sessions (party and stage), newest first, for any member."""
    membership = selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    return list(membership.campaign.sessions.order_by("-number"))


def _gm_session(viewer, session_id: int) -> PlaySession:
    session, membership = selectors.session_membership_get(viewer=viewer, session_id=session_id)
    if membership.role != Membership.Role.GM:
        # A snapshot is the engine's whole state: mission internals, DDA, pending turns.
        raise Forbidden("Only the GM can read a session's snapshots.")
    return session


def snapshot_list(*, viewer, session_id: int) -> tuple[PlaySession, list[dict[str, Any]]]:
    session = _gm_session(viewer, session_id)
    rows = Snapshot.objects.filter(session=session).order_by("seq").values("seq", "sha256", "created_at")
    return session, list(rows)


def snapshot_get(*, viewer, session_id: int, seq: int) -> Snapshot:
    """The snapshot at `seq` as stored: its state JSON and the SHA-256 written with it."""
    session = _gm_session(viewer, session_id)
    snapshot = Snapshot.objects.filter(session=session, seq=seq).first()
    if snapshot is None:
        raise NotFound(f"This session has no snapshot at #{seq}.")
    return snapshot


def require_unarchived(campaign: Campaign) -> None:
    if campaign.archived:
        raise Conflict("This campaign is archived (read-only). Its GM can restore it from the campaign page.")
