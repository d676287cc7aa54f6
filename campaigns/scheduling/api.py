"""`/api/campaigns/{campaign_id}/schedules`: members read, the GM writes (mounted on
campaigns.api's router). Non-members get 404, players and spectators 403 on writes."""

from datetime import datetime, timedelta

from ninja import Router, Schema, Status
from pydantic import Field

from campaigns.errors import Invalid
from campaigns.scheduling import reminders, selectors, services, warmup
from campaigns.scheduling.models import ReminderPreference
from campaigns.scheduling.recurrence import RecurrenceError, parse_local, to_utc, zone
from campaigns.scheduling.schemas import OccurrenceIn, OccurrenceOut, ScheduleIn, ScheduleOut, SchedulePatch
from campaigns.selectors import membership_get

router = Router(tags=["calendar"])
WINDOW_DAYS_MAX = 366


def _occurrence(o) -> dict:
    return {
        "original": o.original.strftime("%Y-%m-%dT%H:%M"),
        "start": o.start,
        "end": o.end,
        "moved": o.moved,
        "cancelled": o.cancelled,
    }


def _out(schedule, *, upcoming: int = 5) -> dict:
    now = selectors.utc_now()
    found = selectors.occurrences(
        [schedule], start=now, end=now + timedelta(days=366), tz=None, limit=upcoming
    )
    return {
        "id": schedule.pk,
        "uid": schedule.uid,
        "title": schedule.title,
        "notes": schedule.notes,
        "start": schedule.dtstart.strftime("%Y-%m-%dT%H:%M"),
        "time_zone": schedule.time_zone,
        "duration_minutes": schedule.duration_minutes,
        "rrule": schedule.rrule,
        "exdates": [x[:16] for x in schedule.exdates],
        "sequence": schedule.sequence,
        "updated_at": schedule.updated_at,
        "overrides": [
            {
                "original": o.original[:16],
                "cancelled": o.cancelled,
                "start": o.start,
                "duration_minutes": o.duration_minutes,
                "sequence": o.sequence,
            }
            for o in schedule.overrides.all()
        ],
        "upcoming": [_occurrence(u.occurrence) for u in found],
    }


def _reload(request, campaign_id, schedule_id):
    return selectors.schedule_get(viewer=request.user, campaign_id=campaign_id, schedule_id=schedule_id)[0]


@router.get("/campaigns/{campaign_id}/schedules", response=list[ScheduleOut])
def schedule_list(request, campaign_id: int):
    return [_out(s) for s in selectors.schedule_list(viewer=request.user, campaign_id=campaign_id)]


@router.post("/campaigns/{campaign_id}/schedules", response={201: ScheduleOut})
def schedule_create(request, campaign_id: int, data: ScheduleIn):
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    schedule = services.schedule_create(membership=membership, **data.dict())
    return Status(201, _out(_reload(request, campaign_id, schedule.pk)))


@router.get("/campaigns/{campaign_id}/schedules/{schedule_id}", response=ScheduleOut)
def schedule_get(request, campaign_id: int, schedule_id: int):
    return _out(_reload(request, campaign_id, schedule_id))


@router.patch("/campaigns/{campaign_id}/schedules/{schedule_id}", response=ScheduleOut)
def schedule_update(request, campaign_id: int, schedule_id: int, data: SchedulePatch):
    schedule, membership = selectors.schedule_get(
        viewer=request.user, campaign_id=campaign_id, schedule_id=schedule_id
    )
    services.schedule_update(membership=membership, schedule=schedule, **data.dict(exclude_unset=True))
    return _out(_reload(request, campaign_id, schedule_id))


@router.delete("/campaigns/{campaign_id}/schedules/{schedule_id}", response={204: None})
def schedule_delete(request, campaign_id: int, schedule_id: int):
    schedule, membership = selectors.schedule_get(
        viewer=request.user, campaign_id=campaign_id, schedule_id=schedule_id
    )
    services.schedule_delete(membership=membership, schedule=schedule)
    return Status(204, None)


@router.get("/campaigns/{campaign_id}/schedules/{schedule_id}/occurrences", response=list[OccurrenceOut])
def occurrence_list(
    request, campaign_id: int, schedule_id: int, start: str = "", end: str = "", cancelled: bool = True
):
    """Sessions starting in [start, end) (wall times in the schedule's zone; default: the next
    90 days), at most 366 days and 500 sessions."""
    schedule = _reload(request, campaign_id, schedule_id)
    tz = zone(schedule.time_zone)
    try:
        lo = to_utc(parse_local(start, what="start"), tz) if start else selectors.utc_now()
        hi = to_utc(parse_local(end, what="end"), tz) if end else lo + timedelta(days=90)
    except RecurrenceError as exc:
        raise Invalid(str(exc)) from None
    if not lo < hi <= lo + timedelta(days=WINDOW_DAYS_MAX):
        raise Invalid(f"end must be after start, at most {WINDOW_DAYS_MAX} days later.")
    found = selectors.occurrences(
        [schedule], start=lo, end=hi, tz=None, include_cancelled=cancelled, limit=500
    )
    return [_occurrence(u.occurrence) for u in found]


@router.post("/campaigns/{campaign_id}/schedules/{schedule_id}/occurrences", response=ScheduleOut)
def occurrence_change(request, campaign_id: int, schedule_id: int, data: OccurrenceIn):
    """Move (`start`, optional `duration_minutes`), cancel or restore one session."""
    schedule, membership = selectors.schedule_get(
        viewer=request.user, campaign_id=campaign_id, schedule_id=schedule_id
    )
    if data.action == "move":
        if not data.start:
            services.require_gm(membership)
            raise Invalid("Moving a session needs its new start.")
        services.occurrence_move(
            membership=membership,
            schedule=schedule,
            original=data.original,
            start=data.start,
            duration_minutes=data.duration_minutes,
        )
    elif data.action == "cancel":
        services.occurrence_cancel(membership=membership, schedule=schedule, original=data.original)
    else:
        services.occurrence_restore(membership=membership, schedule=schedule, original=data.original)
    return _out(_reload(request, campaign_id, schedule_id))


# ---- the pre-session warm-up (the GM's) and a member's reminders -------------------------------


class WarmupCheckOut(Schema):
    check: str
    ok: bool
    detail: str
    ms: float


class WarmupOut(Schema):
    id: int
    status: str
    starts_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    checks: list[WarmupCheckOut]


class ReminderIn(Schema):
    email: bool = True
    notice: bool | None = None
    lead_minutes: list[int] | None = Field(default=None, max_length=20)


class ReminderOut(Schema):
    email: bool
    notice: bool
    lead_minutes: list[int]
    site_lead_minutes: list[int]


@router.get("/campaigns/{campaign_id}/warmup", response={200: WarmupOut, 204: None})
def warmup_latest(request, campaign_id: int):
    """The campaign's last warm-up (GM only; 204 before the first)."""
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    services.require_gm(membership)
    run = warmup.latest_for(membership=membership)
    return run if run is not None else Status(204, None)


@router.post("/campaigns/{campaign_id}/warmup", response={202: WarmupOut})
def warmup_now(request, campaign_id: int):
    """Run the warm-up now (queued; inline where tasks run inline). GM only."""
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    run = warmup.warmup_request(membership=membership)
    run.refresh_from_db()
    return Status(202, run)


def _reminders_out(membership) -> dict:
    pref = ReminderPreference.objects.filter(membership=membership).first()
    leads = reminders.site_leads()
    return {
        "email": pref is None or pref.email,
        "notice": pref is None or pref.notice,
        "lead_minutes": (pref.lead_minutes if pref and pref.lead_minutes else leads),
        "site_lead_minutes": leads,
    }


@router.get("/campaigns/{campaign_id}/reminders", response=ReminderOut)
def reminders_get(request, campaign_id: int):
    """The viewer's own reminders for this campaign."""
    return _reminders_out(membership_get(viewer=request.user, campaign_id=campaign_id))


@router.put("/campaigns/{campaign_id}/reminders", response=ReminderOut)
def reminders_put(request, campaign_id: int, data: ReminderIn):
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    reminders.reminder_set(
        membership=membership, email=data.email, notice=data.notice, lead_minutes=data.lead_minutes
    )
    return _reminders_out(membership)
