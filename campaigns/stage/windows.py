"""Beat windows: a moderator opens one, members on stage or on a fireteam act into it, and it
closes when a moderator closes it or its time is up. The narrative layer hears the close
(an event-store listener) and runs the window's batch turn."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from campaigns import events
from campaigns.errors import Conflict, Forbidden, Invalid
from campaigns.models import Membership, PlaySession, StageSeat
from campaigns.stage import services
from campaigns.stage.selectors import current_window

WINDOW_SECONDS_MAX = 3600


def _due(window: dict | None, at: datetime) -> bool:
    return bool(window and window.get("closes_at") and datetime.fromisoformat(window["closes_at"]) <= at)


def _schedule_name(session_id: int, n: int) -> str:
    return f"stage-{session_id}-window-{n}"


def window_open(*, session: PlaySession, membership: Membership, seconds: int | None = None) -> list:
    """Open the next beat window: until a moderator closes it, or for `seconds`."""
    services.require_active(session)
    services.require_moderator(session, membership)
    if seconds is not None and (
        not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= WINDOW_SECONDS_MAX
    ):
        raise Invalid(f"A timed window lasts 1 to {WINDOW_SECONDS_MAX} seconds (or leave it open-ended).")
    closes_at = services.now() + timedelta(seconds=seconds) if seconds else None

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
                func="campaigns.stage.windows.window_close_due",
                args=f"{session.pk},{n}",
                schedule_type=Schedule.ONCE,
                next_run=closes_at,
            )
        # The listeners broadcast it (and answer a beat whose summary never landed first); then
        # the roster shows the open window.
        transaction.on_commit(lambda: services.roster_changed(session.pk))
    return created


def window_close(
    *, session: PlaySession, membership: Membership | None = None, due_only: bool = False
) -> list:
    """Close the open window and queue its batch turn. A moderator's close (membership given)
    refuses when nothing is open; the timer's (`due_only`) closes only a window whose time is up,
    and quietly does nothing otherwise — two closers racing append one BatchWindowClosed."""
    if membership is not None:
        services.require_active(session)
        services.require_moderator(session, membership)
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
    at = services.now()

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

            Schedule.objects.filter(name=_schedule_name(session.pk, created[0].payload["window"])).delete()
            # The listeners schedule the batch turn first (what everyone waits for), then
            # broadcast; then the roster shows the window closed.
            transaction.on_commit(lambda: services.roster_changed(session.pk))
    return created


def window_close_due(session_id: int, n: int | None = None) -> bool:
    """The timer: close the open window if its time is up (a django-q2 Schedule runs this at
    `closes_at`; the lazy checks call it too). True when this call closed it."""
    session = PlaySession.objects.filter(pk=session_id, status=PlaySession.Status.ACTIVE).first()
    if session is None:
        return False
    window = current_window(session)
    if window is None or (n is not None and window["n"] != n) or not _due(window, services.now()):
        return False
    return bool(window_close(session=session, due_only=True))


def window_check(session: PlaySession) -> bool:
    """Lazy close: cheap when nothing is due (reads the session already loaded)."""
    if session.status == PlaySession.Status.ACTIVE and _due(current_window(session), services.now()):
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
    services.rate_check(scope="action", user_id=membership.user_id)
    if window_check(session):
        raise Conflict("That beat window has just closed; wait for the next one.")
    seat = services.seat_ensure(session=session, membership=membership)
    if seat.muted:
        raise Forbidden("A moderator has muted you for now; you can't act until they unmute you.")
    on_stage = seat.role in (StageSeat.Role.SPEAKER, StageSeat.Role.MODERATOR)
    if not on_stage and seat.team_id is None:
        raise Forbidden(
            "You're in the audience: raise your hand and wait for a moderator to bring you on stage "
            "(or to put you on a fireteam) before you act."
        )
    who = services.who(membership)
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

    return events.append(session.pk, derive=derive, idempotency_key=key)  # broadcast on commit
