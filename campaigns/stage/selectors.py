"""Reading a stage: the guard every stage read and write starts with, who moderates, the member
a form or frame names, the open beat window, and the roster everyone sees."""

from __future__ import annotations

from typing import Any

from campaigns import selectors
from campaigns.errors import Invalid, NotFound
from campaigns.models import Character, Fireteam, FireteamMember, Membership, PlaySession, StageSeat
from gtw_site.text import check_storable

STAGE_EVENTS = frozenset(
    {
        "HandRaised",
        "HandLowered",
        "HandApproved",
        "HandDenied",
        "SpeakerMuted",
        "SpeakerUnmuted",
        "SpeakerRemoved",
        "TeamAssigned",
        "ModeratorPromoted",
        "ModeratorDemoted",
        "BatchWindowOpened",
        "BatchWindowClosed",
        "SquadSummary",
    }
)


def stage_get(*, viewer, session_id: int) -> tuple[PlaySession, Membership]:
    """The stage session and the viewer's membership; NotFound for non-members (no existence
    leak) and for a party session."""
    session, membership = selectors.session_membership_get(viewer=viewer, session_id=session_id)
    if session.kind != PlaySession.Kind.STAGE:
        raise NotFound(f"Session {session_id} is a party session, not a stage.")
    return session, membership


def is_moderator(session: PlaySession, membership: Membership) -> bool:
    if membership.role == Membership.Role.GM:
        return True
    if membership.role == Membership.Role.SPECTATOR:
        return False  # spectators watch, whatever their seat says
    return StageSeat.objects.filter(
        session=session, membership=membership, role=StageSeat.Role.MODERATOR
    ).exists()


def target_get(*, campaign_id: int, username: str | None = None, membership_id: int | None = None):
    """A member of the campaign named by username or membership id (API and form input)."""
    qs = Membership.objects.select_related("user").filter(campaign_id=campaign_id)
    if membership_id is not None:
        target = qs.filter(pk=membership_id).first()
        label = f"#{membership_id}"
    elif username:
        check_storable(username, what="The username")
        target = qs.filter(user__username=username).first()
        label = f"'{username}'"
    else:
        raise Invalid("Say who: a username or a membership id.")
    if target is None:
        raise Invalid(f"There is no member {label} in this campaign.")
    return target


def current_window(session: PlaySession) -> dict | None:
    """The open beat window; none once the session has ended (nobody can act or close it then)."""
    if session.status != PlaySession.Status.ACTIVE:
        return None
    return ((session.state or {}).get("stage") or {}).get("window")


def stage_roster(session: PlaySession) -> dict[str, Any]:
    """The stage as everyone sees it: moderators, speakers, the queue of raised hands in order,
    the audience, fireteams, and the beat window. Plain JSON (it crosses the channel layer).
    Callers have checked that the viewer is a member."""
    seats = list(
        StageSeat.objects.filter(session=session).select_related("membership__user", "team").order_by("pk")
    )
    names = dict(Character.objects.filter(campaign_id=session.campaign_id).values_list("owner_id", "name"))
    teams = list(Fireteam.objects.filter(campaign_id=session.campaign_id).select_related("alliance"))
    team_members: dict[int, list[str]] = {}
    for fireteam_id, username in FireteamMember.objects.filter(
        fireteam__campaign_id=session.campaign_id
    ).values_list("fireteam_id", "membership__user__username"):
        team_members.setdefault(fireteam_id, []).append(username)
    team_names = {t.pk: t.name for t in teams}

    def entry(seat: StageSeat) -> dict[str, Any]:
        user = seat.membership.user
        return {
            "user_id": user.pk,
            "membership_id": seat.membership_id,
            "username": user.username,
            "name": names.get(user.pk) or user.username,
            "role": seat.role,
            "spectator": seat.membership.role == Membership.Role.SPECTATOR,
            "gm": seat.membership.role == Membership.Role.GM,
            "muted": seat.muted,
            "hand_raised_at": seat.hand_raised_at.isoformat() if seat.hand_raised_at else None,
            "team": seat.team_id,
            "team_name": team_names.get(seat.team_id),
        }

    everyone = [entry(s) for s in seats]
    state = session.state or {}
    stage = state.get("stage") or {}
    window = current_window(session)
    return {
        "session": session.pk,
        # Rosters are snapshots; a socket drops one older than what it has (seat changes always
        # append an event, so the log's version orders them).
        "version": session.version,
        "status": session.status,
        "moderators": [e for e in everyone if e["role"] == StageSeat.Role.MODERATOR],
        "speakers": [e for e in everyone if e["role"] == StageSeat.Role.SPEAKER],
        "queue": sorted(
            (e for e in everyone if e["hand_raised_at"] and e["role"] == StageSeat.Role.AUDIENCE),
            key=lambda e: e["hand_raised_at"],
        ),
        "audience": [e for e in everyone if e["role"] == StageSeat.Role.AUDIENCE],
        "audience_count": sum(1 for e in everyone if e["role"] == StageSeat.Role.AUDIENCE),
        "seats": {e["username"]: e for e in everyone},
        "teams": [
            {
                "id": t.pk,
                "name": t.name,
                "voice_room_id": t.voice_room_id,
                "voice_label": t.voice_label,
                "alliance": t.alliance.name if t.alliance else None,
                "members": sorted(team_members.get(t.pk, [])),
            }
            for t in teams
        ],
        "window": (
            {
                "n": window["n"],
                "seconds": window.get("seconds"),
                "closes_at": window.get("closes_at"),
                "actions": len(window.get("actions") or []),
            }
            if window
            else None
        ),
        "windows": stage.get("windows", 0),
        "summarising": [w["n"] for w in stage.get("unsummarised") or []],
    }


def can_act_now(roster: dict[str, Any], username: str) -> bool:
    """Whether this member may submit an action right now (the page's action box)."""
    seat = roster["seats"].get(username)
    if roster["window"] is None or roster["status"] != "active" or seat is None:
        return False
    if seat["spectator"] or seat["muted"]:
        return False
    return seat["role"] in (StageSeat.Role.SPEAKER, StageSeat.Role.MODERATOR) or seat["team"] is not None


def me_context(roster: dict[str, Any], username: str) -> dict[str, Any]:
    """What the "you" panel shows: seat, fireteam (with its voice room), place in the queue."""
    me = roster["seats"].get(username) or {}
    team = next((t for t in roster["teams"] if t["id"] == me.get("team")), None)
    position = next((i for i, q in enumerate(roster["queue"], 1) if q["username"] == username), None)
    return {
        "me": me,
        "team": team,
        "position": position,
        "window": roster["window"],
        "can_act": can_act_now(roster, username),
        "active": roster["status"] == "active",
    }


def box_key(roster: dict[str, Any], username: str) -> str:
    """Identifies the action box a member should see; re-rendered only when it changes (the
    page and the stage socket compare it)."""
    window = roster["window"]
    return f"{int(can_act_now(roster, username))}:{window['n'] if window else 0}"
