"""Writes. `<entity>_<verb>`, keyword-only, one transaction each. Callers have already
authenticated the user; services check authorisation that depends on campaign data."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import events, signals
from campaigns.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from campaigns.models import (
    Campaign,
    Character,
    ContentPack,
    Invite,
    Membership,
    PersonalityPreset,
    PlaySession,
)
from gtw_site import ratelimit
from gtw_site.text import check_storable, clean_text

NAME_MAX = 120


def _require_gm(membership: Membership) -> None:
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the campaign's game master can do that.")


def _require_unarchived(campaign: Campaign) -> None:
    """An archived campaign is read-only (campaigns.lifecycle; the event store refuses appends)."""
    if campaign.archived:
        raise Conflict(events.ARCHIVED_MESSAGE, code="archived")


@transaction.atomic
def campaign_create(*, user, name: str, pack_slug: str, personality_slug: str | None = None) -> Campaign:
    name = clean_text(name, what="The campaign name", max_len=NAME_MAX)
    pack = ContentPack.objects.filter(slug=check_storable(pack_slug, what="The pack")).first()
    if pack is None:
        available = ", ".join(ContentPack.objects.values_list("slug", flat=True)) or "none installed"
        raise Invalid(f"There is no content pack called '{pack_slug}' (available: {available}).")
    personality = None
    if personality_slug:
        slug = check_storable(personality_slug, what="The personality")
        personality = PersonalityPreset.objects.filter(slug=slug).first()
        if personality is None:
            raise Invalid(f"There is no GM personality called '{personality_slug}'.")
    else:
        personality = PersonalityPreset.objects.order_by("name").first()
    campaign = Campaign.objects.create(name=name, pack=pack, personality=personality, created_by=user)
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.GM)
    # The engine pins the pack's mission as installed right now (a later upload of the slug
    # won't change it), inside this transaction.
    signals.campaign_created.send(sender=Campaign, campaign=campaign)
    return campaign


@transaction.atomic
def campaign_set_personality(*, membership: Membership, personality_slug: str) -> Campaign:
    _require_gm(membership)
    slug = check_storable(personality_slug, what="The personality")
    preset = PersonalityPreset.objects.filter(slug=slug).first()
    if preset is None:
        raise Invalid(f"There is no GM personality called '{personality_slug}'.")
    campaign = membership.campaign
    campaign.personality = preset
    campaign.save(update_fields=["personality"])
    return campaign


def invite_create(*, membership: Membership, role: str = Membership.Role.PLAYER) -> Invite:
    _require_gm(membership)
    _require_unarchived(membership.campaign)
    if role not in (Membership.Role.PLAYER, Membership.Role.SPECTATOR):
        raise Invalid("Invites are for players or spectators.")
    return Invite.objects.create(
        campaign=membership.campaign,
        code=secrets.token_urlsafe(16),
        role=role,
        created_by=membership.user,
        expires_at=timezone.now() + timedelta(hours=settings.GTW_INVITE_TTL_HOURS),
    )


@transaction.atomic
def invite_accept(*, code: str, user) -> Membership:
    check_storable(code, what="The invite code")
    invite = Invite.objects.select_for_update().select_related("campaign").filter(code=code).first()
    if invite is None:
        raise NotFound("That invite link is not valid.")
    existing = Membership.objects.filter(campaign=invite.campaign, user=user).first()
    if existing is not None:
        if invite.used_by_id == user.pk:
            return existing  # the same person clicking their link twice
        raise Conflict("You are already a member of this campaign.")
    if invite.used_at is not None:
        raise Gone("That invite has already been used. Ask your GM for a new link.")
    if invite.expires_at <= timezone.now():
        raise Gone("That invite has expired. Ask your GM for a new link.")
    invite.used_by, invite.used_at = user, timezone.now()
    invite.save(update_fields=["used_by", "used_at"])
    return Membership.objects.create(campaign=invite.campaign, user=user, role=invite.role)


def _validate_attributes(pack: ContentPack, archetype: dict, attributes: dict | None) -> dict:
    rules = pack.data.get("attribute_rules", {})
    names = rules.get("names") or list(archetype["attributes"])
    if not attributes:
        return dict(archetype["attributes"])
    unknown = set(attributes) - set(names)
    if unknown:
        raise Invalid(f"Unknown attributes: {', '.join(sorted(unknown))}.")
    lo, hi = rules.get("min", 6), rules.get("max", 18)
    result = {}
    for name in names:
        value = attributes.get(name, archetype["attributes"].get(name, 10))
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise Invalid(f"{name} must be a whole number from {lo} to {hi}.")
        result[name] = value
    budget = rules.get("point_budget")
    if budget is not None and sum(result.values()) > budget:
        raise Invalid(f"Attributes add up to {sum(result.values())}; the budget is {budget}.")
    return result


def character_create(
    *, membership: Membership, name: str, archetype: str, attributes: dict | None = None
) -> Character:
    if membership.role == Membership.Role.SPECTATOR:
        raise Forbidden("Spectators watch; they don't have characters.")
    _require_unarchived(membership.campaign)
    name = clean_text(name, what="The character name", max_len=60)
    pack = membership.campaign.pack
    arch = pack.archetype(archetype)
    if arch is None:
        choices = ", ".join(a["slug"] for a in pack.archetypes)
        raise Invalid(f"Unknown archetype '{archetype}' (choose one of: {choices}).")
    values = _validate_attributes(pack, arch, attributes)
    try:
        with transaction.atomic():
            return Character.objects.create(
                campaign=membership.campaign,
                owner=membership.user,
                name=name,
                archetype=archetype,
                attributes=values,
            )
    except IntegrityError:
        raise Conflict("You already have a character in this campaign.") from None


def _opening_payload(campaign: Campaign) -> dict:
    mission = campaign.pack.data.get("mission") or {}
    scenes = mission.get("scenes") or [{}]
    objectives = mission.get("objectives") or [{}]
    payload = {
        "scene": scenes[0] or None,
        "objective": (objectives[0] or {}).get("text"),
        "mission": mission.get("name"),
    }
    # The engine adds the campaign's pinned version of its mission, which starts with the session
    # when it is installed (the GM can switch); never simply the newest upload (issue 11).
    for _receiver, fields in signals.session_opening.send(sender=Campaign, campaign=campaign):
        payload.update(fields or {})
    return payload


def session_open(*, membership: Membership, title: str = "") -> PlaySession:
    _require_gm(membership)
    campaign = membership.campaign
    _require_unarchived(campaign)
    with transaction.atomic():
        # Row lock on the campaign serialises session numbering.
        Campaign.objects.select_for_update().get(pk=campaign.pk)
        number = (campaign.sessions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        session = PlaySession.objects.create(
            campaign=campaign,
            number=number,
            title=clean_text(title, what="The session title", max_len=120, required=False),
            opened_by=membership.user,
        )
        events.append(
            session,
            [
                # Its payload gains the dice commitment (campaigns.signals.session_lifecycle).
                signals.lifecycle_event(
                    "SessionOpened",
                    session_id=session.pk,
                    payload=_opening_payload(campaign),
                    actor_id=membership.user_id,
                )
            ],
        )
    session.refresh_from_db()
    return session


def session_resume(*, session: PlaySession, membership: Membership) -> PlaySession:
    """Re-activate an ended session, and re-run any GM turns left pending by a crash."""
    if not membership.can_act:
        raise Forbidden("Spectators can't resume a session.")
    if session.status == PlaySession.Status.ENDED:
        _require_gm(membership)
        with transaction.atomic():
            # Re-read under the lock: two resumes racing append one SessionResumed.
            locked = PlaySession.objects.select_for_update().values_list("status", flat=True)
            if locked.get(pk=session.pk) == PlaySession.Status.ENDED:
                resumed = signals.lifecycle_event(
                    "SessionResumed", session_id=session.pk, actor_id=membership.user_id
                )  # a new dice commitment: the old secret was revealed at the end
                events.append(session, [resumed])  # its listeners re-run pending turns
                PlaySession.objects.filter(pk=session.pk).update(status=PlaySession.Status.ACTIVE)
                session.refresh_from_db()
                return session
    # Already active: no event, but resuming is also how a table re-runs turns a crash left
    # pending (the turn layer receives this after commit).
    transaction.on_commit(
        lambda: signals.session_resume_requested.send(sender=PlaySession, session_id=session.pk)
    )
    session.refresh_from_db()
    return session


def session_whisper(*, session: PlaySession, membership: Membership, to_user_id: int, text: str):
    """The GM tells one player something only their character learns. The event is visible to
    that player (and the GM) only, and becomes a memory in that player's private namespace."""
    _require_gm(membership)
    if session.status != PlaySession.Status.ACTIVE:
        raise Conflict("This session has ended; resume it to whisper.")
    text = clean_text(text, what="The whisper", max_len=2000)
    # Anyone can be a GM (of a campaign of their own), and every whisper is a memory to embed on
    # the memory cluster all campaigns share: a whisper flood must not stall theirs.
    ratelimit.rate_check(scope="whisper", ident=membership.user_id)
    target = (
        Membership.objects.select_related("user")
        .filter(campaign_id=session.campaign_id, user_id=to_user_id)
        .first()
    )
    if target is None:
        raise Invalid("You can only whisper to a member of this campaign.")
    if target.user_id == membership.user_id:
        raise Invalid("Whisper to someone else.")
    character = Character.objects.filter(campaign_id=session.campaign_id, owner_id=to_user_id).first()
    with transaction.atomic():
        result = events.append(
            session,
            [
                events.NewEvent(
                    type="Whisper",
                    actor_id=membership.user_id,
                    audience=[to_user_id],
                    payload={
                        "text": text,
                        "to_user_id": to_user_id,
                        "to_name": character.name if character else target.user.username,
                        "from_name": "The GM",
                    },
                )
            ],
        )
    return result


def session_end(*, session: PlaySession, membership: Membership) -> PlaySession:
    _require_gm(membership)
    with transaction.atomic():
        # Locked and re-read: a double click or a second tab must not end it twice.
        status = PlaySession.objects.select_for_update().values_list("status", flat=True).get(pk=session.pk)
        if status != PlaySession.Status.ACTIVE:
            raise Conflict("This session has already ended.")
        if session.kind == PlaySession.Kind.STAGE:
            from campaigns.stage import windows  # stage imports this module

            # An open beat window closes with the session: its actions still get their summary.
            windows.window_close_on_end(session=session, membership=membership)
        # SessionEnded reveals the dice secret (campaigns.signals.session_lifecycle).
        ended = signals.lifecycle_event("SessionEnded", session_id=session.pk, actor_id=membership.user_id)
        events.append(session, [ended])
        PlaySession.objects.filter(pk=session.pk).update(status=PlaySession.Status.ENDED)
    session.refresh_from_db()
    return session
