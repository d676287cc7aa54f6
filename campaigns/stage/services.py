"""Stage services: opening a stage, seats, raised hands, speakers, moving members between
fireteams, moderators. Every change is an Event (HandRaised, HandApproved, SpeakerMuted,
TeamAssigned, …) so late joiners and replays see it; the StageSeat table is the fast projection
the roster reads, written in the same transaction. After commit the event store's listeners
broadcast the events, then `signals.roster_changed` has the roster sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import events, signals, teams
from campaigns.errors import Conflict, Forbidden, Invalid
from campaigns.models import Campaign, Character, Fireteam, FireteamMember, Membership, PlaySession, StageSeat
from campaigns.services import _opening_payload
from campaigns.stage.selectors import is_moderator
from gtw_site import ratelimit
from gtw_site.text import clean_text


def now() -> datetime:
    return timezone.now()  # one seam for tests that move the clock


# ---- guards ---------------------------------------------------------------------------------


def require_moderator(session: PlaySession, membership: Membership) -> None:
    if not is_moderator(session, membership):
        raise Forbidden("Only a stage moderator can do that.")


def _require_gm(membership: Membership, what: str = "do that") -> None:
    if membership.role != Membership.Role.GM:
        raise Forbidden(f"Only the campaign's game master can {what}.")


def require_active(session: PlaySession) -> None:
    if session.status != PlaySession.Status.ACTIVE:
        raise Conflict("This stage session has ended.")


def _refuse_spectator(membership: Membership) -> None:
    if membership.role == Membership.Role.SPECTATOR:
        raise Forbidden("Spectators watch the stage; they can't raise a hand or act.")


def rate_check(*, scope: str, user_id: int) -> None:
    """Stage hands and actions: the shared per-user limits (scopes "stage_hand", "stage_action")."""
    ratelimit.rate_check(scope=f"stage_{scope}", ident=user_id)


# ---- seats ----------------------------------------------------------------------------------


def seat_ensure(*, session: PlaySession, membership: Membership, lock: bool = False) -> StageSeat:
    """The member's seat, created on first use: the GM moderates, everyone else starts in the
    audience, on their fireteam if they have one. A new seat changes the roster (its audience),
    so it is sent after commit (no event: joining the audience is not a story beat)."""
    qs = StageSeat.objects.select_related("team")
    if lock:
        qs = qs.select_for_update(of=("self",))
    seat = qs.filter(session=session, membership=membership).first()
    if seat is not None:
        return seat
    team_id = (
        FireteamMember.objects.filter(membership=membership).values_list("fireteam_id", flat=True).first()
    )
    role = StageSeat.Role.MODERATOR if membership.role == Membership.Role.GM else StageSeat.Role.AUDIENCE
    try:
        with transaction.atomic():
            StageSeat.objects.create(session=session, membership=membership, role=role, team_id=team_id)
            transaction.on_commit(lambda sid=session.pk: roster_changed(sid))
    except IntegrityError:
        pass  # created by a concurrent request
    return qs.get(session=session, membership=membership)


def who(membership: Membership) -> dict[str, Any]:
    """How a stage event names a member: user id, username, and their character's name."""
    name = (
        Character.objects.filter(campaign_id=membership.campaign_id, owner_id=membership.user_id)
        .values_list("name", flat=True)
        .first()
    )
    username = membership.user.username
    return {"user_id": membership.user_id, "username": username, "name": name or username}


def _record(session: PlaySession, type: str, payload: dict, *, actor_id: int | None) -> list:
    """Append one stage event; after commit (its broadcast first), the new roster goes out.
    Caller holds a transaction."""
    result = events.append(session.pk, [events.NewEvent(type=type, payload=payload, actor_id=actor_id)])
    transaction.on_commit(lambda: roster_changed(session.pk))
    return result.events


def roster_changed(session_id: int) -> None:
    """Say who sits where changed (signals.roster_changed; realtime sends the roster). Call from
    transaction.on_commit, after the append whose events the listeners broadcast."""
    signals.roster_changed.send(sender=StageSeat, session_id=session_id)


# ---- opening a stage ------------------------------------------------------------------------


def stage_open(*, membership: Membership, title: str = "") -> PlaySession:
    """The GM opens a stage session (a PlaySession of kind "stage")."""
    _require_gm(membership, "open a stage session")
    campaign = membership.campaign
    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=campaign.pk)  # serialises session numbering
        number = (campaign.sessions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        session = PlaySession.objects.create(
            campaign=campaign,
            number=number,
            kind=PlaySession.Kind.STAGE,
            title=clean_text(title, what="The stage title", max_len=120, required=False) or f"Stage {number}",
            opened_by=membership.user,
        )
        payload = {**_opening_payload(campaign), "kind": "stage"}
        events.append(
            session,
            [
                signals.lifecycle_event(
                    "SessionOpened", session_id=session.pk, payload=payload, actor_id=membership.user_id
                )
            ],
        )
        seat_ensure(session=session, membership=membership)
    session.refresh_from_db()
    return session


# ---- hands, speakers, teams, moderators -----------------------------------------------------


def hand_raise(*, session: PlaySession, membership: Membership) -> StageSeat:
    require_active(session)
    _refuse_spectator(membership)
    rate_check(scope="hand", user_id=membership.user_id)
    with transaction.atomic():
        seat = seat_ensure(session=session, membership=membership, lock=True)
        if seat.role == StageSeat.Role.SPEAKER:
            raise Conflict("You're already on stage.")
        if seat.role == StageSeat.Role.MODERATOR:
            raise Conflict("Moderators are on stage already; no need to raise a hand.")
        if seat.hand_raised_at is not None:
            return seat  # already in the queue: keep its place
        seat.hand_raised_at = now()
        seat.save(update_fields=["hand_raised_at", "updated_at"])
        _record(session, "HandRaised", who(membership), actor_id=membership.user_id)
    return seat


def hand_lower(*, session: PlaySession, membership: Membership) -> StageSeat:
    require_active(session)
    _refuse_spectator(membership)
    with transaction.atomic():
        seat = seat_ensure(session=session, membership=membership, lock=True)
        if seat.hand_raised_at is None:
            return seat
        seat.hand_raised_at = None
        seat.save(update_fields=["hand_raised_at", "updated_at"])
        _record(session, "HandLowered", who(membership), actor_id=membership.user_id)
    return seat


def _moderated(session, membership, target) -> tuple[StageSeat, dict]:
    """Checks for a moderator acting on `target`; returns the target's locked seat and names."""
    require_active(session)
    require_moderator(session, membership)
    seat = seat_ensure(session=session, membership=target, lock=True)
    return seat, {**who(target), "by": membership.user.username}


def hand_approve(*, session: PlaySession, membership: Membership, target: Membership) -> StageSeat:
    with transaction.atomic():
        seat, payload = _moderated(session, membership, target)
        if seat.hand_raised_at is None:
            raise Conflict(f"{payload['username']} has not raised a hand.")
        seat.role, seat.hand_raised_at, seat.muted = StageSeat.Role.SPEAKER, None, False
        seat.save(update_fields=["role", "hand_raised_at", "muted", "updated_at"])
        _record(session, "HandApproved", payload, actor_id=membership.user_id)
    return seat


def hand_deny(*, session: PlaySession, membership: Membership, target: Membership) -> StageSeat:
    with transaction.atomic():
        seat, payload = _moderated(session, membership, target)
        if seat.hand_raised_at is None:
            raise Conflict(f"{payload['username']} has not raised a hand.")
        seat.hand_raised_at = None
        seat.save(update_fields=["hand_raised_at", "updated_at"])
        _record(session, "HandDenied", payload, actor_id=membership.user_id)
    return seat


def speaker_mute(
    *, session: PlaySession, membership: Membership, target: Membership, muted: bool = True
) -> StageSeat:
    with transaction.atomic():
        seat, payload = _moderated(session, membership, target)
        if seat.role != StageSeat.Role.SPEAKER:
            raise Conflict(f"{payload['username']} is not a speaker.")
        if seat.muted == muted:
            return seat
        seat.muted = muted
        seat.save(update_fields=["muted", "updated_at"])
        _record(session, "SpeakerMuted" if muted else "SpeakerUnmuted", payload, actor_id=membership.user_id)
    return seat


def speaker_remove(*, session: PlaySession, membership: Membership, target: Membership) -> StageSeat:
    with transaction.atomic():
        seat, payload = _moderated(session, membership, target)
        if seat.role != StageSeat.Role.SPEAKER:
            raise Conflict(f"{payload['username']} is not a speaker.")
        seat.role, seat.muted = StageSeat.Role.AUDIENCE, False
        seat.save(update_fields=["role", "muted", "updated_at"])
        _record(session, "SpeakerRemoved", payload, actor_id=membership.user_id)
    return seat


def team_assign(
    *, session: PlaySession, membership: Membership, target: Membership, fireteam_id: int | None
) -> StageSeat:
    """Move a member onto a fireteam (or off every team with None). The fireteam is the
    campaign's, so the move holds beyond this stage."""
    with transaction.atomic():
        seat, payload = _moderated(session, membership, target)
        team = None
        if fireteam_id is not None:
            team = Fireteam.objects.filter(pk=fireteam_id, campaign_id=session.campaign_id).first()
            if team is None:
                raise Invalid(f"There is no fireteam #{fireteam_id} in this campaign.")
            if target.role == Membership.Role.SPECTATOR:
                raise Invalid("Spectators watch; they can't join a fireteam.")
        if seat.team_id == (team.pk if team else None):
            return seat
        previous = seat.team.name if seat.team else None
        teams.fireteam_membership_set(target=target, team=team)
        seat.team = team
        seat.save(update_fields=["team", "updated_at"])
        # The same member's seats in other live stages follow.
        teams.seats_follow(target=target, team=team, except_session_id=session.pk)
        payload |= {"fireteam_id": team.pk if team else None, "fireteam": team.name if team else None}
        _record(session, "TeamAssigned", payload | {"previous": previous}, actor_id=membership.user_id)
    return seat


def moderator_set(
    *, session: PlaySession, membership: Membership, target: Membership, moderator: bool = True
) -> StageSeat:
    """The GM promotes a member to moderator of this stage (or demotes them to the audience)."""
    require_active(session)
    _require_gm(membership, "promote moderators")
    with transaction.atomic():
        seat = seat_ensure(session=session, membership=target, lock=True)
        if target.role == Membership.Role.GM:
            raise Conflict("The game master always moderates.")
        if moderator and target.role == Membership.Role.SPECTATOR:
            raise Invalid("Spectators watch the stage; they can't be made moderators.")
        role = StageSeat.Role.MODERATOR if moderator else StageSeat.Role.AUDIENCE
        if (seat.role == StageSeat.Role.MODERATOR) == moderator:
            return seat
        seat.role, seat.hand_raised_at, seat.muted = role, None, False
        seat.save(update_fields=["role", "hand_raised_at", "muted", "updated_at"])
        payload = {**who(target), "by": membership.user.username}
        _record(
            session,
            "ModeratorPromoted" if moderator else "ModeratorDemoted",
            payload,
            actor_id=membership.user_id,
        )
    return seat
