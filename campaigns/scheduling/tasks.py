"""SessionUpcoming notices: a django-q2 Schedule (made after every `migrate` by apps.py, name
`UPCOMING_SCAN`) runs `upcoming_scan` every minute on whichever cluster picks it up.

Once per occurrence and lead time, with any number of workers and across restarts: the
UpcomingNotice row is inserted under a unique (schedule, occurrence, lead) constraint, and only
the transaction that inserted it sends `signals.session_upcoming` (after its commit). A scan
that runs late (workers down for an hour) catches up, but only with the shortest lead still
ahead: a session 30 minutes away gets its 60-minute notice, never a stale 24-hour one too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from campaigns.scheduling import recurrence, services
from campaigns.scheduling.models import SessionSchedule, UpcomingNotice
from campaigns.scheduling.selectors import _with_overrides, utc_now
from campaigns.scheduling.signals import session_upcoming

log = logging.getLogger(__name__)
UPCOMING_SCAN = "gtw: SessionUpcoming notices"
UPCOMING_FUNC = "campaigns.scheduling.tasks.upcoming_scan"


def lead_minutes() -> list[int]:
    leads = services._calendar_settings().get("lead_minutes") or [1440, 60]
    return sorted({int(x) for x in leads if int(x) > 0}, reverse=True)


def lead_for(until_start: timedelta, leads: list[int]) -> int | None:
    """The lead whose window (next shorter lead, this lead] holds `until_start`, else None."""
    if until_start <= timedelta(0):
        return None
    for i, lead in enumerate(leads):
        shorter = leads[i + 1] if i + 1 < len(leads) else 0
        if timedelta(minutes=shorter) < until_start <= timedelta(minutes=lead):
            return lead
    return None


def upcoming_scan(now: datetime | None = None) -> int:
    """Record and announce the notices now due; returns how many this call sent."""
    now = now or utc_now()
    leads = lead_minutes()
    if not leads:
        return 0
    horizon = now + timedelta(minutes=leads[0])
    sent = 0
    schedules = _with_overrides(SessionSchedule.objects.filter(campaign__archived=False)).order_by("pk")
    for schedule in schedules.iterator(chunk_size=200):
        try:
            spec = schedule.spec()
        except recurrence.RecurrenceError:
            log.warning("schedule %s has an unknown time zone; skipped", schedule.pk)
            continue
        for occ in recurrence.expand(spec, now, horizon + timedelta(seconds=1), limit=50):
            lead = lead_for(occ.start - now, leads)
            if lead is not None and _record(schedule, occ, lead):
                sent += 1
    return sent


def _record(schedule: SessionSchedule, occ: recurrence.Occurrence, lead: int) -> bool:
    tz = recurrence.zone(schedule.time_zone)
    occurrence = recurrence.to_utc(occ.original, tz)
    try:
        with transaction.atomic():
            notice, created = UpcomingNotice.objects.get_or_create(
                schedule=schedule,
                occurrence=occurrence,
                lead_minutes=lead,
                defaults={"starts_at": occ.start},
            )
    except IntegrityError:  # another worker inserted it between our look and our insert
        return False
    if not created:
        return False
    payload = {
        "notice_id": notice.pk,
        "schedule_id": schedule.pk,
        "campaign_id": schedule.campaign_id,
        "occurrence": occurrence,
        "starts_at": occ.start,
        "lead_minutes": lead,
    }
    transaction.on_commit(lambda: session_upcoming.send(sender=UpcomingNotice, **payload))
    return True
