"""Writes: schedules (the GM's), single-occurrence changes, feed tokens, a user's time zone.

Every service checks everything before it writes (a refused change saves nothing) and runs in one
transaction. Inputs arrive as the forms and the API send them (strings and numbers); the checks
raise `Invalid` (422) with a message a GM can act on, `Forbidden` (403) for a member who is not
the GM, `NotFound` for anything outside the viewer's campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.errors import Forbidden, Invalid, NotFound
from campaigns.models import Membership
from campaigns.scheduling import recurrence
from campaigns.scheduling.models import CalendarFeed, CalendarProfile, ScheduleOverride, SessionSchedule
from gtw_site.text import clean_text

TITLE_MAX = 120
NOTES_MAX = 2000
DURATION_MAX_MINUTES = 24 * 60  # a session, not a season
EXDATES_MAX = 500
# The fields whose change is a material change of the series (SEQUENCE goes up).
MATERIAL = ("title", "notes", "start_date", "start_time", "time_zone", "duration_minutes", "rrule", "exdates")


def _calendar_settings() -> dict:
    return getattr(settings, "GTW_CALENDAR", {}) or {}


def max_overrides() -> int:
    return int(_calendar_settings().get("max_overrides", 500))


def require_gm(membership: Membership) -> None:
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can change the campaign's schedule.")


def _invalid(exc: recurrence.RecurrenceError) -> Invalid:
    return Invalid(str(exc), code="invalid_schedule")


@dataclass(frozen=True)
class ScheduleFields:
    title: str
    notes: str
    start_date: object
    start_time: object
    time_zone: str
    duration_minutes: int
    rrule: str
    exdates: list[str]


def duration_check(value) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise Invalid(
            "The length is a whole number of minutes (e.g. 180).", code="invalid_schedule"
        ) from None
    if not 1 <= minutes <= DURATION_MAX_MINUTES:
        raise Invalid(
            f"A session lasts 1 minute to {DURATION_MAX_MINUTES // 60} hours; got {minutes} minutes.",
            code="invalid_schedule",
        )
    return minutes


def _exdates(values, *, spec: recurrence.Spec) -> list[str]:
    """Skipped sessions: dates ("2027-02-18", at the schedule's start time) or wall times. Each
    must be a session of the rule, or the skip would silently do nothing."""
    if isinstance(values, str):
        values = [v for v in values.replace("\n", ",").split(",") if v.strip()]
    values = list(values or [])
    if len(values) > EXDATES_MAX:
        raise Invalid(f"At most {EXDATES_MAX} skipped dates per schedule.", code="invalid_schedule")
    out: set[datetime] = set()
    for raw in values:
        if not isinstance(raw, str):
            raise Invalid("Skipped dates are text like 2027-02-18.", code="invalid_schedule")
        try:
            moment = recurrence.parse_local(raw, what="A skipped date", default_time=spec.dtstart.time())
        except recurrence.RecurrenceError as exc:
            raise _invalid(exc) from None
        if not recurrence.is_occurrence(spec, moment):
            raise Invalid(
                f"{moment:%Y-%m-%d %H:%M} is not a session of this schedule, so it cannot be skipped.",
                code="invalid_schedule",
            )
        out.add(moment)
    return [m.isoformat() for m in sorted(out)]


def schedule_clean(
    *, title="", notes="", start, time_zone, duration_minutes, rrule="", exdates=()
) -> ScheduleFields:
    """Every check of a schedule, before anything is written (also the admin form's clean)."""
    title = clean_text(title, what="The title", max_len=TITLE_MAX, required=False)
    notes = clean_text(notes, what="The notes", max_len=NOTES_MAX, required=False)
    minutes = duration_check(duration_minutes)
    try:
        tz = recurrence.zone(time_zone if isinstance(time_zone, str) else "")
        dtstart = recurrence.check_start(
            start if isinstance(start, datetime) else recurrence.parse_local(start, what="The first session")
        )
        rule = recurrence.normalize_rule(rrule if isinstance(rrule, str) else "", dtstart=dtstart, tz=tz)
    except recurrence.RecurrenceError as exc:
        raise _invalid(exc) from None
    spec = recurrence.Spec(dtstart=dtstart, tz=tz, duration=timedelta(minutes=minutes), rule=rule)
    skipped = _exdates(exdates, spec=spec)
    bounded = "COUNT=" in rule or "UNTIL=" in rule
    if (
        bounded
        and skipped
        and not recurrence.originals(
            recurrence.Spec(
                **{**spec.__dict__, "exdates": tuple(datetime.fromisoformat(x) for x in skipped)}
            ),
            dtstart,
            datetime(recurrence.YEAR_MAX + 1, 1, 1),  # noqa: DTZ001 - a wall time, like dtstart
            limit=1,
        )
    ):
        raise Invalid(
            "Every session of this schedule is skipped: it yields nothing.", code="invalid_schedule"
        )
    if not rule and skipped:
        raise Invalid(
            "A single session cannot be skipped: delete the schedule instead.", code="invalid_schedule"
        )
    return ScheduleFields(
        title=title,
        notes=notes,
        start_date=dtstart.date(),
        start_time=dtstart.time(),
        time_zone=tz.key,
        duration_minutes=minutes,
        rrule=rule,
        exdates=skipped,
    )


@transaction.atomic
def schedule_create(*, membership: Membership, **fields) -> SessionSchedule:
    require_gm(membership)
    clean = schedule_clean(**fields)
    return SessionSchedule.objects.create(
        campaign_id=membership.campaign_id, created_by_id=membership.user_id, **clean.__dict__
    )


def _current(schedule: SessionSchedule) -> dict:
    return {
        "title": schedule.title,
        "notes": schedule.notes,
        "start": schedule.dtstart,
        "time_zone": schedule.time_zone,
        "duration_minutes": schedule.duration_minutes,
        "rrule": schedule.rrule,
        "exdates": list(schedule.exdates),
    }


@transaction.atomic
def schedule_update(*, membership: Membership, schedule: SessionSchedule, **changes) -> SessionSchedule:
    """Change some fields (the others stay). A material change bumps SEQUENCE; changes of the
    occurrences that no longer exist (a new rule, start or zone) are dropped with them."""
    require_gm(membership)
    schedule = SessionSchedule.objects.select_for_update().get(
        pk=schedule.pk, campaign_id=membership.campaign_id
    )
    wanted = {**_current(schedule), **{k: v for k, v in changes.items() if v is not None}}
    moved = any(changes.get(k) is not None for k in ("rrule", "start", "time_zone"))
    if moved and changes.get("exdates") is None:
        # A new rule, start or zone with the old skips: keep those that are still sessions of it.
        wanted["exdates"] = _still_sessions(wanted, schedule.exdates)
    clean = schedule_clean(**wanted)
    if all(getattr(schedule, k) == v for k, v in clean.__dict__.items()):
        return schedule
    for key, value in clean.__dict__.items():
        setattr(schedule, key, value)
    schedule.sequence += 1
    schedule.save()
    _drop_stale_overrides(schedule)
    return schedule


def _still_sessions(wanted: dict, exdates: list[str]) -> list[str]:
    try:
        tz = recurrence.zone(wanted["time_zone"])
        start = wanted["start"]
        dtstart = start if isinstance(start, datetime) else recurrence.parse_local(start, what="The start")
        rule = recurrence.normalize_rule(wanted["rrule"] or "", dtstart=dtstart, tz=tz)
    except recurrence.RecurrenceError:
        return exdates  # the full check reports the real problem
    spec = recurrence.Spec(dtstart=dtstart, tz=tz, duration=timedelta(minutes=1), rule=rule)
    return [x for x in exdates if rule and recurrence.is_occurrence(spec, datetime.fromisoformat(x))]


def _drop_stale_overrides(schedule: SessionSchedule) -> None:
    spec = schedule.spec(overrides=())
    skipped = set(schedule.exdates)
    stale = [
        o.pk
        for o in schedule.overrides.all()
        if o.original in skipped or not recurrence.is_occurrence(spec, o.original_local)
    ]
    if stale:
        ScheduleOverride.objects.filter(pk__in=stale).delete()


@transaction.atomic
def schedule_delete(*, membership: Membership, schedule: SessionSchedule) -> None:
    require_gm(membership)
    SessionSchedule.objects.filter(pk=schedule.pk, campaign_id=membership.campaign_id).delete()


# ---- one occurrence ---------------------------------------------------------------------


def _original(schedule: SessionSchedule, value) -> datetime:
    """The occurrence a GM names (its original wall time in the schedule's zone, or its date)."""
    spec = schedule.spec(overrides=())
    try:
        moment = (
            value
            if isinstance(value, datetime)
            else recurrence.parse_local(value, what="The session", default_time=spec.dtstart.time())
        )
    except recurrence.RecurrenceError as exc:
        raise _invalid(exc) from None
    if not recurrence.is_occurrence(spec, moment):
        raise Invalid(f"{moment:%Y-%m-%d %H:%M} is not a session of this schedule.", code="invalid_schedule")
    if moment.isoformat() in schedule.exdates:
        raise Invalid(f"The session of {moment:%Y-%m-%d} is skipped already.", code="invalid_schedule")
    return moment


def _locked(membership: Membership, schedule: SessionSchedule) -> SessionSchedule:
    require_gm(membership)
    found = (
        SessionSchedule.objects.select_for_update()
        .filter(pk=schedule.pk, campaign_id=membership.campaign_id)
        .first()
    )
    if found is None:
        raise NotFound("No such schedule.")
    return found


def _override_put(schedule: SessionSchedule, original: datetime, **values) -> ScheduleOverride:
    row = ScheduleOverride.objects.filter(schedule=schedule, original=original.isoformat()).first()
    if row is None:
        if schedule.overrides.count() >= max_overrides():
            raise Invalid(
                f"This schedule has {max_overrides()} changed sessions already: restore some, or "
                f"start a new schedule.",
                code="too_many_overrides",
            )
        return ScheduleOverride.objects.create(schedule=schedule, original=original.isoformat(), **values)
    changed = any(getattr(row, k) != v for k, v in values.items())
    if changed:
        for key, value in values.items():
            setattr(row, key, value)
        row.sequence += 1
        row.save()
    return row


@transaction.atomic
def occurrence_move(
    *, membership: Membership, schedule: SessionSchedule, original, start, duration_minutes=None
) -> ScheduleOverride:
    """Move one session to `start` (a wall time in the schedule's zone), optionally with its
    own length. Moving it back to where the rule puts it (and its length) undoes the change."""
    schedule = _locked(membership, schedule)
    moment = _original(schedule, original)
    tz = recurrence.zone(schedule.time_zone)
    try:
        new_local = recurrence.check_start(
            start if isinstance(start, datetime) else recurrence.parse_local(start, what="The new start")
        )
    except recurrence.RecurrenceError as exc:
        raise _invalid(exc) from None
    minutes = duration_check(duration_minutes) if duration_minutes not in (None, "") else None
    if minutes == schedule.duration_minutes:
        minutes = None
    if new_local == moment and minutes is None:
        occurrence_restore(membership=membership, schedule=schedule, original=moment)
        return ScheduleOverride(schedule=schedule, original=moment.isoformat())
    return _override_put(
        schedule, moment, cancelled=False, start=recurrence.to_utc(new_local, tz), duration_minutes=minutes
    )


@transaction.atomic
def occurrence_cancel(*, membership: Membership, schedule: SessionSchedule, original) -> ScheduleOverride:
    schedule = _locked(membership, schedule)
    moment = _original(schedule, original)
    return _override_put(schedule, moment, cancelled=True, start=None, duration_minutes=None)


@transaction.atomic
def occurrence_restore(*, membership: Membership, schedule: SessionSchedule, original) -> bool:
    """Undo a move or a cancellation. The series' SEQUENCE goes up: a client that kept the
    changed instance must see a newer series to drop it."""
    schedule = _locked(membership, schedule)
    moment = _original(schedule, original)
    deleted, _ = ScheduleOverride.objects.filter(schedule=schedule, original=moment.isoformat()).delete()
    if deleted:
        SessionSchedule.objects.filter(pk=schedule.pk).update(
            sequence=schedule.sequence + 1, updated_at=timezone.now()
        )
    return bool(deleted)


# ---- feeds and the viewer's zone ---------------------------------------------------------


def _feed_campaign(user, campaign_id) -> int | None:
    if campaign_id in (None, "", "all"):
        return None
    try:
        pk = int(campaign_id)
    except (TypeError, ValueError):
        raise NotFound("No such campaign.") from None
    if not Membership.objects.filter(campaign_id=pk, user=user).exists():
        raise NotFound("No such campaign.")
    return pk


@transaction.atomic
def feed_create(*, user, campaign_id=None) -> tuple[CalendarFeed, str]:
    """A new private feed and its token (shown once: only its hash is kept). `campaign_id` None
    is every campaign the user is in at the time the feed is read."""
    if not user.is_authenticated:
        raise NotFound("No such campaign.")
    pk = _feed_campaign(user, campaign_id)
    token = CalendarFeed.new_token()
    feed = CalendarFeed.objects.create(
        user=user, campaign_id=pk, token_hash=CalendarFeed.hash(token), hint=token[-4:]
    )
    return feed, token


def _own_feed(user, feed_id) -> CalendarFeed:
    try:
        pk = int(feed_id)
    except (TypeError, ValueError):
        raise NotFound("No such feed.") from None
    feed = (
        CalendarFeed.objects.select_for_update().filter(pk=pk, user=user, revoked_at__isnull=True).first()
        if user.is_authenticated
        else None
    )
    if feed is None:
        raise NotFound("No such feed.")
    return feed


@transaction.atomic
def feed_revoke(*, user, feed_id) -> CalendarFeed:
    feed = _own_feed(user, feed_id)
    feed.revoked_at = timezone.now()
    feed.save(update_fields=["revoked_at"])
    return feed


@transaction.atomic
def feed_rotate(*, user, feed_id) -> tuple[CalendarFeed, str]:
    """Revoke a feed and make a new one for the same scope: the old URL is 404 from now on."""
    old = feed_revoke(user=user, feed_id=feed_id)
    if (
        old.campaign_id is not None
        and not Membership.objects.filter(campaign_id=old.campaign_id, user=user).exists()
    ):
        raise NotFound("No such campaign.")
    return feed_create(user=user, campaign_id=old.campaign_id)


def profile_set_time_zone(*, user, time_zone: str) -> CalendarProfile:
    if not user.is_authenticated:
        raise NotFound("Sign in first.")
    name = (time_zone or "").strip() if isinstance(time_zone, str) else ""
    if name:
        try:
            name = recurrence.zone(name).key
        except recurrence.RecurrenceError as exc:
            raise _invalid(exc) from None
    profile, _ = CalendarProfile.objects.update_or_create(user=user, defaults={"time_zone": name})
    return profile


def default_start(now: datetime | None = None) -> datetime:
    """A suggestion for the GM's form: next week, 19:30."""
    base = (now or timezone.now()).date() + timedelta(days=7)
    return datetime.combine(base, time(19, 30))
