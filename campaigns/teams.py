"""Fireteams and alliances: the campaign's standing teams (the GM manages them). A fireteam has
a voice room and belongs to at most one alliance; a member is on at most one fireteam per
campaign. Stage mode reads them (a seat's team, the squad debriefs) and moves people between
them (campaigns.stage.services.team_assign); seats in live stages follow every change here.

Services write (`<entity>_<verb>`, keyword-only); the selectors at the end read through the
viewer (outsiders get NotFound). Team changes are not story beats: they append no event, and
the live stages' rosters are re-sent after commit."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from campaigns import selectors, signals
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound
from campaigns.models import (
    Alliance,
    AllianceMember,
    Fireteam,
    FireteamMember,
    Membership,
    PlaySession,
    StageSeat,
)
from gtw_site.text import clean_text


def _require_gm(membership: Membership, what: str) -> None:
    if membership.role != Membership.Role.GM:
        raise Forbidden(f"Only the campaign's game master can {what}.")


def _voice_room_id(campaign_id: int, name: str) -> str:
    return f"gtw-{campaign_id}-{slugify(name)[:40] or 'team'}-{secrets.token_hex(3)}"


def _alliance_for(campaign_id: int, alliance_id: int | None) -> Alliance | None:
    if alliance_id is None:
        return None
    alliance = Alliance.objects.filter(pk=alliance_id, campaign_id=campaign_id).first()
    if alliance is None:
        raise Invalid(f"There is no alliance #{alliance_id} in this campaign.")
    return alliance


def _unique(fn, what: str):
    try:
        with transaction.atomic():
            return fn()
    except IntegrityError:
        raise Conflict(f"This campaign already has {what}.") from None


def fireteam_create(
    *, membership: Membership, name: str, alliance_id: int | None = None, voice_label: str = ""
) -> Fireteam:
    _require_gm(membership, "manage fireteams")
    name = clean_text(name, what="The fireteam name", max_len=60)
    label = clean_text(voice_label, what="The voice label", max_len=80, required=False)
    alliance = _alliance_for(membership.campaign_id, alliance_id)
    return _unique(
        lambda: Fireteam.objects.create(
            campaign_id=membership.campaign_id,
            name=name,
            alliance=alliance,
            voice_room_id=_voice_room_id(membership.campaign_id, name),
            voice_label=label or f"{name} comms",
        ),
        f"a fireteam called '{name}'",
    )


_UNSET: Any = object()


def fireteam_update(
    *,
    membership: Membership,
    fireteam: Fireteam,
    name: str | None = None,
    alliance_id: int | None = _UNSET,
    voice_label: str | None = None,
) -> Fireteam:
    _require_gm(membership, "manage fireteams")
    fields = []
    if name is not None:
        fireteam.name = clean_text(name, what="The fireteam name", max_len=60)
        fields.append("name")
    if alliance_id is not _UNSET:
        fireteam.alliance = _alliance_for(fireteam.campaign_id, alliance_id)
        fields.append("alliance")
    if voice_label is not None:
        fireteam.voice_label = clean_text(voice_label, what="The voice label", max_len=80, required=False)
        fields.append("voice_label")
    if fields:
        _unique(lambda: fireteam.save(update_fields=fields), f"a fireteam called '{fireteam.name}'")
        _rosters_changed(fireteam.campaign_id)
    return fireteam


def fireteam_delete(*, membership: Membership, fireteam: Fireteam) -> None:
    _require_gm(membership, "manage fireteams")
    campaign_id = fireteam.campaign_id
    fireteam.delete()  # seats fall back to no team (SET_NULL); memberships go with it
    _rosters_changed(campaign_id)


def fireteam_member_add(*, membership: Membership, fireteam: Fireteam, target: Membership) -> FireteamMember:
    """Put a member on this fireteam (moving them off any other: one team per campaign)."""
    _require_gm(membership, "manage fireteams")
    if target.campaign_id != fireteam.campaign_id:
        raise Invalid("That member is not in this fireteam's campaign.")
    if target.role == Membership.Role.SPECTATOR:
        raise Invalid("Spectators watch; they can't join a fireteam.")
    with transaction.atomic():
        member, _ = FireteamMember.objects.update_or_create(
            membership=target, defaults={"fireteam": fireteam}
        )
        seats_follow(target=target, team=fireteam)
    return member


def fireteam_member_remove(*, membership: Membership, fireteam: Fireteam, target: Membership) -> None:
    _require_gm(membership, "manage fireteams")
    with transaction.atomic():
        deleted, _ = FireteamMember.objects.filter(fireteam=fireteam, membership=target).delete()
        if not deleted:
            raise Conflict(f"{target.user.username} is not on {fireteam.name}.")
        seats_follow(target=target, team=None)


def fireteam_membership_set(*, target: Membership, team: Fireteam | None) -> None:
    """Put `target` on `team` (off any other), or off every team with None. No checks: callers
    have authorised the move; for stage moderation (campaigns.stage.services.team_assign)."""
    if team is None:
        FireteamMember.objects.filter(membership=target).delete()
    else:
        FireteamMember.objects.update_or_create(membership=target, defaults={"fireteam": team})


def seats_follow(*, target: Membership, team: Fireteam | None, except_session_id: int | None = None) -> None:
    """Seats in live stages follow a campaign-level team change (no event: it is not a story
    beat of any one session). `except_session_id`: a stage whose seat the caller moved itself."""
    seats = StageSeat.objects.filter(membership=target, session__status=PlaySession.Status.ACTIVE)
    if except_session_id is not None:
        seats = seats.exclude(session_id=except_session_id)
    sessions = list(seats.values_list("session_id", flat=True))
    StageSeat.objects.filter(membership=target, session_id__in=sessions).update(team=team)
    for session_id in sessions:
        transaction.on_commit(lambda sid=session_id: _send_roster(sid))


def _rosters_changed(campaign_id: int) -> None:
    for session_id in PlaySession.objects.filter(
        campaign_id=campaign_id, kind=PlaySession.Kind.STAGE, status=PlaySession.Status.ACTIVE
    ).values_list("pk", flat=True):
        transaction.on_commit(lambda sid=session_id: _send_roster(sid))


def _send_roster(session_id: int) -> None:
    """Call after commit: realtime receives signals.roster_changed and sends the roster."""
    signals.roster_changed.send(sender=StageSeat, session_id=session_id)


def alliance_create(*, membership: Membership, name: str, reputation: int = 0) -> Alliance:
    _require_gm(membership, "manage alliances")
    name = clean_text(name, what="The alliance name", max_len=80)
    return _unique(
        lambda: Alliance.objects.create(
            campaign_id=membership.campaign_id, name=name, reputation=_clamp_reputation(reputation)
        ),
        f"an alliance called '{name}'",
    )


def alliance_delete(*, membership: Membership, alliance: Alliance) -> None:
    _require_gm(membership, "manage alliances")
    alliance.delete()


def _clamp_reputation(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid("Reputation is a whole number.")
    return max(Alliance.REPUTATION_MIN, min(Alliance.REPUTATION_MAX, value))


def alliance_reputation_change(
    *, membership: Membership, alliance: Alliance, delta: int | None = None, value: int | None = None
) -> Alliance:
    """Move an alliance's standing by `delta` (or set it to `value`), within -100…100."""
    _require_gm(membership, "change reputation")
    if (delta is None) == (value is None):
        raise Invalid("Give either a change (delta) or a new value for the reputation.")
    with transaction.atomic():
        alliance = Alliance.objects.select_for_update().get(pk=alliance.pk)
        alliance.reputation = _clamp_reputation(value if value is not None else alliance.reputation + delta)
        alliance.save(update_fields=["reputation"])
    return alliance


def alliance_member_add(*, membership: Membership, alliance: Alliance, target: Membership) -> AllianceMember:
    _require_gm(membership, "manage alliances")
    if target.campaign_id != alliance.campaign_id:
        raise Invalid("That member is not in this alliance's campaign.")
    member, _ = AllianceMember.objects.get_or_create(alliance=alliance, membership=target)
    return member


def alliance_member_remove(*, membership: Membership, alliance: Alliance, target: Membership) -> None:
    _require_gm(membership, "manage alliances")
    deleted, _ = AllianceMember.objects.filter(alliance=alliance, membership=target).delete()
    if not deleted:
        raise Conflict(f"{target.user.username} is not in {alliance.name}.")


# ---- selectors ------------------------------------------------------------------------------


def fireteam_list(*, viewer, campaign_id: int) -> list[Fireteam]:
    selectors.membership_get(viewer=viewer, campaign_id=campaign_id)  # NotFound for outsiders
    return list(
        Fireteam.objects.filter(campaign_id=campaign_id)
        .select_related("alliance")
        .prefetch_related("memberships__membership__user")
    )


def fireteam_get(*, viewer, fireteam_id: int) -> tuple[Fireteam, Membership]:
    fireteam = None
    if viewer.is_authenticated:
        fireteam = Fireteam.objects.filter(pk=fireteam_id, campaign__memberships__user=viewer).first()
    if fireteam is None:
        raise NotFound("No such fireteam.")
    return fireteam, selectors.membership_get(viewer=viewer, campaign_id=fireteam.campaign_id)


def alliance_list(*, viewer, campaign_id: int) -> list[Alliance]:
    selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    return list(
        Alliance.objects.filter(campaign_id=campaign_id).prefetch_related(
            "fireteams", "memberships__membership__user"
        )
    )


def alliance_get(*, viewer, alliance_id: int) -> tuple[Alliance, Membership]:
    alliance = None
    if viewer.is_authenticated:
        alliance = Alliance.objects.filter(pk=alliance_id, campaign__memberships__user=viewer).first()
    if alliance is None:
        raise NotFound("No such alliance.")
    return alliance, selectors.membership_get(viewer=viewer, campaign_id=alliance.campaign_id)
