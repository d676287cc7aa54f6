"""Reads. Every selector takes the viewer and filters by membership in SQL (tenancy in the query)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from campaigns.errors import Forbidden, NotFound
from campaigns.models import Campaign, Character, Event, Invite, Membership, PlaySession


def campaign_list(*, viewer, archived: bool | None = None) -> list[Campaign]:
    """The viewer's campaigns; `archived` False/True: only the live/archived ones (None: all)."""
    if not viewer.is_authenticated:
        return []
    queryset = Campaign.objects.filter(memberships__user=viewer)
    if archived is not None:
        queryset = queryset.filter(archived=archived)
    return list(queryset.select_related("pack", "personality").order_by("-created_at"))


def membership_get(*, viewer, campaign_id: int) -> Membership:
    """The viewer's membership, or NotFound — a non-member cannot tell the campaign exists."""
    if not viewer.is_authenticated:
        raise NotFound("No such campaign.")
    membership = (
        Membership.objects.select_related("campaign", "campaign__pack", "campaign__personality")
        .filter(campaign_id=campaign_id, user=viewer)
        .first()
    )
    if membership is None:
        raise NotFound("No such campaign.")
    return membership


def session_membership_get(*, viewer, session_id: int) -> tuple[PlaySession, Membership]:
    if not viewer.is_authenticated:
        raise NotFound("No such session.")
    session = (
        PlaySession.objects.select_related("campaign", "campaign__pack", "campaign__personality")
        .filter(pk=session_id, campaign__memberships__user=viewer)
        .first()
    )
    if session is None:
        raise NotFound("No such session.")
    membership = Membership.objects.get(campaign_id=session.campaign_id, user=viewer)
    return session, membership


def session_gm_get(*, viewer, session_id: int) -> PlaySession:
    """The session, if the viewer is its campaign's GM (NotFound for outsiders, Forbidden for
    players and spectators)."""
    session, membership = session_membership_get(viewer=viewer, session_id=session_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can change the mission or the story beat.")
    return session


def session_actor_get(*, viewer, session_id: int) -> PlaySession:
    """The session as a player acting in it needs it, in one query: the bare session row plus
    `actor_role` (the viewer's role) and `actor_character` (their character's name or None).
    NotFound for non-members, as in `session_membership_get`."""
    if not viewer.is_authenticated:
        raise NotFound("No such session.")
    character = Character.objects.filter(campaign_id=OuterRef("campaign_id"), owner=viewer).order_by("pk")
    session = (
        PlaySession.objects.filter(pk=session_id, campaign__memberships__user=viewer)
        .annotate(
            actor_role=F("campaign__memberships__role"),
            actor_character=Subquery(character.values("name")[:1]),
        )
        .first()
    )
    if session is None:
        raise NotFound("No such session.")
    return session


def visible_to(queryset, membership: Membership):
    """Events the member may see: everything for the GM; for others, events without an
    audience plus those addressed to them (whispers)."""
    if membership.role == Membership.Role.GM:
        return queryset
    return queryset.filter(Q(audience__isnull=True) | Q(audience__contains=[membership.user_id]))


def may_see(event_audience, membership: Membership) -> bool:
    return (
        event_audience is None
        or membership.role == Membership.Role.GM
        or membership.user_id in event_audience
    )


def session_events(*, viewer, session_id: int, after: int = 0, limit: int = 500) -> list[Event]:
    return session_events_page(viewer=viewer, session_id=session_id, after=after, limit=limit)[1]


def session_events_page(
    *, viewer, session_id: int, after: int = 0, limit: int = 500
) -> tuple[PlaySession, list[Event]]:
    """The session and the events after `after` that the viewer may see (at most `limit`; page
    on the last one's seq). The session is read first, so its version is never ahead of an
    event appended while we read (a version above the last seq: more may follow, or events
    addressed to others)."""
    session, membership = session_membership_get(viewer=viewer, session_id=session_id)
    events = Event.objects.filter(session=session, seq__gt=after).select_related("actor").order_by("seq")
    return session, list(visible_to(events, membership)[:limit])


def campaign_members(*, campaign_id: int) -> list[Membership]:
    return list(
        Membership.objects.filter(campaign_id=campaign_id).select_related("user").order_by("joined_at")
    )


def party_context(session_id: int, online: list[str]) -> dict:
    """The play page's party panel (members, their characters, who is online), out of band.
    For a caller that has already checked the viewer's membership (the play page, the socket)."""
    session = PlaySession.objects.select_related("campaign").get(pk=session_id)
    members = campaign_members(campaign_id=session.campaign_id)
    characters = {c.owner_id: c for c in session.campaign.characters.all()}
    online = set(online)  # a list made this quadratic: 11 ms a render at 1,000 members
    return {
        "party": [
            {
                "user": m.user,
                "role": m.get_role_display(),
                "character": characters.get(m.user_id),
                "online": m.user.username in online,
            }
            for m in members
        ],
        "oob": True,
    }


# The longest code invite_create makes is 22 characters; the column holds 40. A longer one (or one
# with a NUL, which PostgreSQL cannot even compare) is not looked up: it is simply unknown.
INVITE_CODE_MAX = 40


@dataclass(frozen=True)
class InvitePreview:
    """What the invite page may say before anyone clicks Accept. `state` is one of "unknown",
    "used", "expired", "member" (the viewer already belongs to the campaign) or "open". An
    unknown code carries nothing about any campaign."""

    state: str
    campaign_id: int | None = None
    campaign_name: str = ""
    gm_name: str = ""
    role: str = ""
    expires_at: datetime | None = None


def invite_preview(*, code: str, viewer) -> InvitePreview:
    if not code or len(code) > INVITE_CODE_MAX or "\x00" in code:
        return InvitePreview(state="unknown")
    try:
        code.encode("utf-8")
    except UnicodeEncodeError:
        return InvitePreview(state="unknown")
    invite = Invite.objects.select_related("campaign", "created_by").filter(code=code).first()
    if invite is None:
        return InvitePreview(state="unknown")
    members = Membership.objects.filter(campaign_id=invite.campaign_id)
    if viewer.is_authenticated and members.filter(user=viewer).exists():
        state = "member"
    elif invite.used_at is not None:
        state = "used"
    elif invite.expires_at <= timezone.now():
        state = "expired"
    else:
        state = "open"
    return InvitePreview(
        state=state,
        campaign_id=invite.campaign_id,
        campaign_name=invite.campaign.name,
        gm_name=invite.created_by.username,
        role=invite.get_role_display(),
        expires_at=invite.expires_at,
    )
