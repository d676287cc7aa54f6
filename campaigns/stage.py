"""Stage mode: one session for 50+ people — moderators, speakers, a queue of raised hands, an
audience — plus the campaign's fireteams and alliances, and actions batched per beat window.

Services write (`<entity>_<verb>`, keyword-only, one transaction each); the selectors at the end
read through the viewer. Every stage change is an Event (HandRaised, HandApproved, SpeakerMuted,
TeamAssigned, BatchWindowOpened, BatchWindowClosed, …) so late joiners and replays see it; the
StageSeat table is the fast projection the roster reads, written in the same transaction.
Broadcasts go out after commit, through realtime.broadcast.

Who may do what:
- non-members get NotFound (404) everywhere, like every other campaign read;
- moderators (the campaign's GM always, and members the GM promotes) approve or deny raised
  hands, mute and remove speakers, move people between fireteams, open and close beat windows;
- players raise a hand, and act during an open window once on stage or on a fireteam;
- spectators watch: every write is Forbidden, with a message that says so.

A beat window collects actions (Action events flagged `batched`, which never enter the per-action
turn queue). It closes when a moderator closes it, or when its time is up: a django-q2 Schedule
runs `window_close_due` at `closes_at` (the scheduler wakes about every 30 s), and every stage read
and write — including each client's countdown reaching zero — checks lazily, so a timed window
closes on time while anyone is watching. Closing queues the batch turn
(narrative.stage_turns): per-action dice, then ONE GM summary, then per-squad debriefs.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from campaigns import events, selectors, signals
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited  # noqa: F401 — RateLimited: re-exported
from campaigns.models import (
    Alliance,
    AllianceMember,
    Campaign,
    Character,
    Fireteam,
    FireteamMember,
    Membership,
    PlaySession,
    StageSeat,
)
from campaigns.services import _opening_payload, check_storable, clean_text
from gtw_site import ratelimit

WINDOW_SECONDS_MAX = 3600
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


def now() -> datetime:
    return timezone.now()  # one seam for tests that move the clock


# ---- guards ---------------------------------------------------------------------------------


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


def _require_moderator(session: PlaySession, membership: Membership) -> None:
    if not is_moderator(session, membership):
        raise Forbidden("Only a stage moderator can do that.")


def _require_gm(membership: Membership, what: str = "do that") -> None:
    if membership.role != Membership.Role.GM:
        raise Forbidden(f"Only the campaign's game master can {what}.")


def _require_active(session: PlaySession) -> None:
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
            transaction.on_commit(lambda sid=session.pk: _send_roster(sid))
    except IntegrityError:
        pass  # created by a concurrent request
    return qs.get(session=session, membership=membership)


def _who(membership: Membership) -> dict[str, Any]:
    name = (
        Character.objects.filter(campaign_id=membership.campaign_id, owner_id=membership.user_id)
        .values_list("name", flat=True)
        .first()
    )
    username = membership.user.username
    return {"user_id": membership.user_id, "username": username, "name": name or username}


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


def _record(session: PlaySession, type: str, payload: dict, *, actor_id: int | None) -> list:
    """Append one stage event; after commit, send it and the new roster. Caller holds a transaction."""
    result = events.append(session.pk, [events.NewEvent(type=type, payload=payload, actor_id=actor_id)])
    created = result.events
    transaction.on_commit(lambda: _after_commit(session.pk, created))
    return created


def _after_commit(session_id: int, created: list) -> None:
    from realtime import broadcast
    from realtime import stage as realtime_stage

    broadcast.events_committed(session_id, created)
    realtime_stage.send_roster(session_id)


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
    _require_active(session)
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
        _record(session, "HandRaised", _who(membership), actor_id=membership.user_id)
    return seat


def hand_lower(*, session: PlaySession, membership: Membership) -> StageSeat:
    _require_active(session)
    _refuse_spectator(membership)
    with transaction.atomic():
        seat = seat_ensure(session=session, membership=membership, lock=True)
        if seat.hand_raised_at is None:
            return seat
        seat.hand_raised_at = None
        seat.save(update_fields=["hand_raised_at", "updated_at"])
        _record(session, "HandLowered", _who(membership), actor_id=membership.user_id)
    return seat


def _moderated(session, membership, target) -> tuple[StageSeat, dict]:
    """Checks for a moderator acting on `target`; returns the target's locked seat and names."""
    _require_active(session)
    _require_moderator(session, membership)
    seat = seat_ensure(session=session, membership=target, lock=True)
    return seat, {**_who(target), "by": membership.user.username}


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
        _set_fireteam(target, team)
        seat.team = team
        seat.save(update_fields=["team", "updated_at"])
        _sync_seats(target, team, except_session_id=session.pk)  # the same member in other stages
        payload |= {"fireteam_id": team.pk if team else None, "fireteam": team.name if team else None}
        _record(session, "TeamAssigned", payload | {"previous": previous}, actor_id=membership.user_id)
    return seat


def _set_fireteam(target: Membership, team: Fireteam | None) -> None:
    if team is None:
        FireteamMember.objects.filter(membership=target).delete()
    else:
        FireteamMember.objects.update_or_create(membership=target, defaults={"fireteam": team})


def moderator_set(
    *, session: PlaySession, membership: Membership, target: Membership, moderator: bool = True
) -> StageSeat:
    """The GM promotes a member to moderator of this stage (or demotes them to the audience)."""
    _require_active(session)
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
        payload = {**_who(target), "by": membership.user.username}
        _record(
            session,
            "ModeratorPromoted" if moderator else "ModeratorDemoted",
            payload,
            actor_id=membership.user_id,
        )
    return seat


# ---- beat windows ---------------------------------------------------------------------------


def current_window(session: PlaySession) -> dict | None:
    """The open beat window; none once the session has ended (nobody can act or close it then)."""
    if session.status != PlaySession.Status.ACTIVE:
        return None
    return ((session.state or {}).get("stage") or {}).get("window")


def _due(window: dict | None, at: datetime) -> bool:
    return bool(window and window.get("closes_at") and datetime.fromisoformat(window["closes_at"]) <= at)


def _schedule_name(session_id: int, n: int) -> str:
    return f"stage-{session_id}-window-{n}"


def window_open(*, session: PlaySession, membership: Membership, seconds: int | None = None) -> list:
    """Open the next beat window: until a moderator closes it, or for `seconds`."""
    _require_active(session)
    _require_moderator(session, membership)
    if seconds is not None and (
        not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= WINDOW_SECONDS_MAX
    ):
        raise Invalid(f"A timed window lasts 1 to {WINDOW_SECONDS_MAX} seconds (or leave it open-ended).")
    closes_at = now() + timedelta(seconds=seconds) if seconds else None

    def derive(state, next_seq):
        stage = state.get("stage") or {}
        if stage.get("window"):
            raise Conflict(f"Beat window {stage['window']['n']} is already open.")
        payload = {
            "window": stage.get("windows", 0) + 1,
            "seconds": seconds,
            "closes_at": closes_at.isoformat() if closes_at else None,
            "by": membership.user.username,
        }
        return [events.NewEvent(type="BatchWindowOpened", payload=payload, actor_id=membership.user_id)]

    with transaction.atomic():
        result = events.append(session.pk, derive=derive)
        created = result.events
        if closes_at is not None:
            from django_q.models import Schedule

            n = created[0].payload["window"]
            Schedule.objects.create(
                name=_schedule_name(session.pk, n),
                func="campaigns.stage.window_close_due",
                args=f"{session.pk},{n}",
                schedule_type=Schedule.ONCE,
                next_run=closes_at,
            )
        transaction.on_commit(lambda: _after_commit(session.pk, created))
        if _behind(session.pk):
            from narrative import stage_turns

            # A beat whose summary never landed (a crashed worker): answer it before this one ends.
            transaction.on_commit(lambda: stage_turns.schedule_batches(session.pk))
    return created


def _behind(session_id: int) -> bool:
    state = PlaySession.objects.values_list("state", flat=True).get(pk=session_id) or {}
    return bool((state.get("stage") or {}).get("unsummarised"))


def window_close(
    *, session: PlaySession, membership: Membership | None = None, due_only: bool = False
) -> list:
    """Close the open window and queue its batch turn. A moderator's close (membership given)
    refuses when nothing is open; the timer's (`due_only`) closes only a window whose time is up,
    and quietly does nothing otherwise — two closers racing append one BatchWindowClosed."""
    if membership is not None:
        _require_active(session)
        _require_moderator(session, membership)
    return _close(
        session, membership=membership, due_only=due_only, reason="timer" if due_only else "moderator"
    )


def window_close_on_end(*, session: PlaySession, membership: Membership) -> list:
    """Close the open window (if any) as the session ends, so its actions still get their batch
    turn and no timer is left behind. For services.session_end to call in its transaction, before
    it appends SessionEnded; nothing open appends nothing."""
    if session.kind != PlaySession.Kind.STAGE:
        return []
    return _close(session, membership=membership, quiet=True, reason="session ended")


def _close(
    session: PlaySession,
    *,
    membership: Membership | None,
    reason: str,
    due_only: bool = False,
    quiet: bool = False,
) -> list:
    at = now()

    def derive(state, next_seq):
        window = (state.get("stage") or {}).get("window")
        if window is None:
            if due_only or quiet:
                return []
            raise Conflict("No beat window is open.")
        if due_only and not _due(window, at):
            return []
        payload = {
            "window": window["n"],
            "reason": reason,
            "by": membership.user.username if membership else None,
            "actions": list(window["actions"]),
        }
        return [
            events.NewEvent(
                type="BatchWindowClosed", payload=payload, actor_id=membership.user_id if membership else None
            )
        ]

    with transaction.atomic():
        result = events.append(session.pk, derive=derive)
        created = result.events
        if created:
            from django_q.models import Schedule

            from narrative import stage_turns  # the batch turn needs the narrative app

            Schedule.objects.filter(name=_schedule_name(session.pk, created[0].payload["window"])).delete()
            # The batch turn first: it is what everyone waits for (as in turns.submit_action).
            transaction.on_commit(lambda: stage_turns.schedule_batches(session.pk))
            transaction.on_commit(lambda: _after_commit(session.pk, created))
    return created


def window_close_due(session_id: int, n: int | None = None) -> bool:
    """The timer: close the open window if its time is up (a django-q2 Schedule runs this at
    `closes_at`; the lazy checks call it too). True when this call closed it."""
    session = PlaySession.objects.filter(pk=session_id, status=PlaySession.Status.ACTIVE).first()
    if session is None:
        return False
    window = current_window(session)
    if window is None or (n is not None and window["n"] != n) or not _due(window, now()):
        return False
    return bool(window_close(session=session, due_only=True))


def window_check(session: PlaySession) -> bool:
    """Lazy close: cheap when nothing is due (reads the session already loaded)."""
    if session.status == PlaySession.Status.ACTIVE and _due(current_window(session), now()):
        closed = window_close_due(session.pk)
        session.refresh_from_db(fields=["state", "version"])
        return closed
    return False


# ---- actions during a window ----------------------------------------------------------------


def stage_action_submit(*, session: PlaySession, membership: Membership, text: str, idempotency_key: str):
    """Record a stage action into the open beat window (narrative.turns.submit_action routes
    here for stage sessions after validating the text, the key and the member). The action is
    `batched`: it waits for its window's batch turn instead of starting a turn of its own."""
    key = f"action:{membership.user_id}:{idempotency_key}"
    replay = events.find_replay(session.pk, key)
    if replay is not None:
        return replay  # a client retrying an accepted action gets it back, uncharged
    rate_check(scope="action", user_id=membership.user_id)
    if window_check(session):
        raise Conflict("That beat window has just closed; wait for the next one.")
    seat = seat_ensure(session=session, membership=membership)
    if seat.muted:
        raise Forbidden("A moderator has muted you for now; you can't act until they unmute you.")
    on_stage = seat.role in (StageSeat.Role.SPEAKER, StageSeat.Role.MODERATOR)
    if not on_stage and seat.team_id is None:
        raise Forbidden(
            "You're in the audience: raise your hand and wait for a moderator to bring you on stage "
            "(or to put you on a fireteam) before you act."
        )
    who = _who(membership)
    base = {
        "text": text,
        "character": who["name"] if who["name"] != who["username"] else None,
        "username": who["username"],
        "batched": True,
        "team": {"id": seat.team.pk, "name": seat.team.name} if seat.team else None,
        "role": seat.role,
    }

    def derive(state, next_seq):
        window = (state.get("stage") or {}).get("window")
        if window is None:
            raise Conflict("No beat window is open; wait for the moderator to open one.")
        return [
            events.NewEvent(
                type="Action", payload={**base, "window": window["n"]}, actor_id=membership.user_id
            )
        ]

    with transaction.atomic():
        result = events.append(session.pk, derive=derive, idempotency_key=key)
        if not result.replayed:
            from realtime import broadcast

            created = result.events
            transaction.on_commit(lambda: broadcast.events_committed(session.pk, created))
    return result


# ---- fireteams and alliances (campaign-wide; the GM manages them) ----------------------------


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
        _sync_seats(target, fireteam)
    return member


def fireteam_member_remove(*, membership: Membership, fireteam: Fireteam, target: Membership) -> None:
    _require_gm(membership, "manage fireteams")
    with transaction.atomic():
        deleted, _ = FireteamMember.objects.filter(fireteam=fireteam, membership=target).delete()
        if not deleted:
            raise Conflict(f"{target.user.username} is not on {fireteam.name}.")
        _sync_seats(target, None)


def _sync_seats(target: Membership, team: Fireteam | None, except_session_id: int | None = None) -> None:
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
    from realtime import stage as realtime_stage

    realtime_stage.send_roster(session_id)


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
