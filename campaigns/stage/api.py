"""The stage API: a stage session's roster, hands, moderation, beat windows and batched actions;
the campaign's fireteams and alliances. Handlers check (through the selectors) and call the same
services as the stage socket; domain errors map to HTTP once, in gtw_site/api.py (outsiders 404,
non-moderators 403, floods 429)."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Router, Schema, Status
from pydantic import Field, model_validator

from campaigns import selectors, teams
from campaigns.errors import Invalid
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import services, windows

router = Router(tags=["stage"])


# ---- schemas ----------------------------------------------------------------------------------


class StageIn(Schema):
    campaign: int
    title: str = Field(default="", max_length=500)


class StageOut(Schema):
    id: int
    number: int
    status: str
    kind: str
    version: int


class TargetIn(Schema):
    """Who: a username or a membership id."""

    username: str | None = Field(default=None, max_length=150)
    membership: int | None = None

    @model_validator(mode="after")
    def one_of(self):
        if not self.username and self.membership is None:
            raise ValueError("give a username or a membership id")
        return self


class MuteIn(TargetIn):
    muted: bool = True


class AssignIn(TargetIn):
    fireteam: int | None = None


class PromoteIn(TargetIn):
    moderator: bool = True


class WindowIn(Schema):
    action: Literal["open", "close"]
    seconds: int | None = Field(default=None, ge=1, le=windows.WINDOW_SECONDS_MAX)


class SeatOut(Schema):
    username: str
    role: str
    muted: bool
    hand_raised: bool
    team: int | None


class FireteamIn(Schema):
    campaign: int
    name: str = Field(max_length=500)
    alliance: int | None = None
    voice_label: str = Field(default="", max_length=500)


class FireteamPatch(Schema):
    name: str | None = Field(default=None, max_length=500)
    alliance: int | None = None
    voice_label: str | None = Field(default=None, max_length=500)


class FireteamOut(Schema):
    id: int
    campaign: int
    name: str
    alliance: int | None
    voice_room_id: str
    voice_label: str
    members: list[str]


class AllianceIn(Schema):
    campaign: int
    name: str = Field(max_length=500)
    reputation: int = 0


class ReputationIn(Schema):
    delta: int | None = None
    value: int | None = None


class AllianceOut(Schema):
    id: int
    campaign: int
    name: str
    reputation: int
    fireteams: list[int]
    members: list[str]


# ---- stage --------------------------------------------------------------------------------------


def _stage(request, session_id: int):
    session, membership = stage_selectors.stage_get(viewer=request.user, session_id=session_id)
    windows.window_check(session)  # lazily close a window whose time is up
    return session, membership


def _target(session, data: TargetIn):
    return stage_selectors.target_get(
        campaign_id=session.campaign_id, username=data.username, membership_id=data.membership
    )


def _seat(seat) -> dict[str, Any]:
    return {
        "username": seat.membership.user.username,
        "role": seat.role,
        "muted": seat.muted,
        "hand_raised": seat.hand_raised_at is not None,
        "team": seat.team_id,
    }


@router.post("/stage", response={201: StageOut})
def stage_open(request, data: StageIn):
    membership = selectors.membership_get(viewer=request.user, campaign_id=data.campaign)
    return Status(201, services.stage_open(membership=membership, title=data.title))


@router.get("/stage/{session_id}/roster", response=dict[str, Any])
def stage_roster(request, session_id: int):
    session, _ = _stage(request, session_id)
    return stage_selectors.stage_roster(session)


@router.post("/stage/{session_id}/raise-hand", response=SeatOut)
def hand_raise(request, session_id: int):
    session, membership = _stage(request, session_id)
    return _seat(services.hand_raise(session=session, membership=membership))


@router.post("/stage/{session_id}/lower-hand", response=SeatOut)
def hand_lower(request, session_id: int):
    session, membership = _stage(request, session_id)
    return _seat(services.hand_lower(session=session, membership=membership))


@router.post("/stage/{session_id}/approve", response=SeatOut)
def hand_approve(request, session_id: int, data: TargetIn):
    session, membership = _stage(request, session_id)
    return _seat(services.hand_approve(session=session, membership=membership, target=_target(session, data)))


@router.post("/stage/{session_id}/deny", response=SeatOut)
def hand_deny(request, session_id: int, data: TargetIn):
    session, membership = _stage(request, session_id)
    return _seat(services.hand_deny(session=session, membership=membership, target=_target(session, data)))


@router.post("/stage/{session_id}/mute", response=SeatOut)
def speaker_mute(request, session_id: int, data: MuteIn):
    session, membership = _stage(request, session_id)
    target = _target(session, data)
    return _seat(
        services.speaker_mute(session=session, membership=membership, target=target, muted=data.muted)
    )


@router.post("/stage/{session_id}/remove", response=SeatOut)
def speaker_remove(request, session_id: int, data: TargetIn):
    session, membership = _stage(request, session_id)
    return _seat(
        services.speaker_remove(session=session, membership=membership, target=_target(session, data))
    )


@router.post("/stage/{session_id}/assign-team", response=SeatOut)
def team_assign(request, session_id: int, data: AssignIn):
    session, membership = _stage(request, session_id)
    seat = services.team_assign(
        session=session, membership=membership, target=_target(session, data), fireteam_id=data.fireteam
    )
    return _seat(seat)


@router.post("/stage/{session_id}/promote", response=SeatOut)
def moderator_set(request, session_id: int, data: PromoteIn):
    session, membership = _stage(request, session_id)
    target = _target(session, data)
    return _seat(
        services.moderator_set(
            session=session, membership=membership, target=target, moderator=data.moderator
        )
    )


@router.post("/stage/{session_id}/window", response=dict[str, Any])
def window(request, session_id: int, data: WindowIn):
    session, membership = _stage(request, session_id)
    if data.action == "open":
        created = windows.window_open(session=session, membership=membership, seconds=data.seconds)
    else:
        if data.seconds is not None:
            raise Invalid("seconds only goes with action 'open'.")
        created = windows.window_close(session=session, membership=membership)
    event = created[0]
    return {"seq": event.seq, "type": event.type, **event.payload}


# ---- fireteams ------------------------------------------------------------------------------


def _fireteam(fireteam) -> dict[str, Any]:
    return {
        "id": fireteam.pk,
        "campaign": fireteam.campaign_id,
        "name": fireteam.name,
        "alliance": fireteam.alliance_id,
        "voice_room_id": fireteam.voice_room_id,
        "voice_label": fireteam.voice_label,
        "members": sorted(m.membership.user.username for m in fireteam.memberships.all()),
    }


@router.get("/fireteams", response=list[FireteamOut])
def fireteam_list(request, campaign: int):
    return [_fireteam(f) for f in teams.fireteam_list(viewer=request.user, campaign_id=campaign)]


@router.post("/fireteams", response={201: FireteamOut})
def fireteam_create(request, data: FireteamIn):
    membership = selectors.membership_get(viewer=request.user, campaign_id=data.campaign)
    fireteam = teams.fireteam_create(
        membership=membership, name=data.name, alliance_id=data.alliance, voice_label=data.voice_label
    )
    return Status(201, _fireteam(fireteam))


@router.patch("/fireteams/{fireteam_id}", response=FireteamOut)
def fireteam_update(request, fireteam_id: int, data: FireteamPatch):
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    changes: dict[str, Any] = {"name": data.name, "voice_label": data.voice_label}
    if "alliance" in data.model_fields_set:  # an explicit null takes the team out of its alliance
        changes["alliance_id"] = data.alliance
    return _fireteam(teams.fireteam_update(membership=membership, fireteam=fireteam, **changes))


@router.delete("/fireteams/{fireteam_id}", response={204: None})
def fireteam_delete(request, fireteam_id: int):
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    teams.fireteam_delete(membership=membership, fireteam=fireteam)
    return Status(204, None)


@router.post("/fireteams/{fireteam_id}/members", response={201: FireteamOut})
def fireteam_member_add(request, fireteam_id: int, data: TargetIn):
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    target = stage_selectors.target_get(
        campaign_id=fireteam.campaign_id, username=data.username, membership_id=data.membership
    )
    teams.fireteam_member_add(membership=membership, fireteam=fireteam, target=target)
    fireteam, _ = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    return Status(201, _fireteam(fireteam))


@router.delete("/fireteams/{fireteam_id}/members/{username}", response=FireteamOut)
def fireteam_member_remove(request, fireteam_id: int, username: str):
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    target = stage_selectors.target_get(campaign_id=fireteam.campaign_id, username=username)
    teams.fireteam_member_remove(membership=membership, fireteam=fireteam, target=target)
    fireteam, _ = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    return _fireteam(fireteam)


# ---- alliances ------------------------------------------------------------------------------


def _alliance(alliance) -> dict[str, Any]:
    return {
        "id": alliance.pk,
        "campaign": alliance.campaign_id,
        "name": alliance.name,
        "reputation": alliance.reputation,
        "fireteams": sorted(f.pk for f in alliance.fireteams.all()),
        "members": sorted(m.membership.user.username for m in alliance.memberships.all()),
    }


@router.get("/alliances", response=list[AllianceOut])
def alliance_list(request, campaign: int):
    return [_alliance(a) for a in teams.alliance_list(viewer=request.user, campaign_id=campaign)]


@router.post("/alliances", response={201: AllianceOut})
def alliance_create(request, data: AllianceIn):
    membership = selectors.membership_get(viewer=request.user, campaign_id=data.campaign)
    alliance = teams.alliance_create(membership=membership, name=data.name, reputation=data.reputation)
    return Status(201, _alliance(alliance))


@router.post("/alliances/{alliance_id}/reputation", response=AllianceOut)
def alliance_reputation(request, alliance_id: int, data: ReputationIn):
    alliance, membership = teams.alliance_get(viewer=request.user, alliance_id=alliance_id)
    alliance = teams.alliance_reputation_change(
        membership=membership, alliance=alliance, delta=data.delta, value=data.value
    )
    return _alliance(alliance)


@router.post("/alliances/{alliance_id}/members", response={201: AllianceOut})
def alliance_member_add(request, alliance_id: int, data: TargetIn):
    alliance, membership = teams.alliance_get(viewer=request.user, alliance_id=alliance_id)
    target = stage_selectors.target_get(
        campaign_id=alliance.campaign_id, username=data.username, membership_id=data.membership
    )
    teams.alliance_member_add(membership=membership, alliance=alliance, target=target)
    return Status(201, _alliance(alliance))


@router.delete("/alliances/{alliance_id}/members/{username}", response=AllianceOut)
def alliance_member_remove(request, alliance_id: int, username: str):
    alliance, membership = teams.alliance_get(viewer=request.user, alliance_id=alliance_id)
    target = stage_selectors.target_get(campaign_id=alliance.campaign_id, username=username)
    teams.alliance_member_remove(membership=membership, alliance=alliance, target=target)
    return _alliance(alliance)


@router.delete("/alliances/{alliance_id}", response={204: None})
def alliance_delete(request, alliance_id: int):
    alliance, membership = teams.alliance_get(viewer=request.user, alliance_id=alliance_id)
    teams.alliance_delete(membership=membership, alliance=alliance)
    return Status(204, None)
