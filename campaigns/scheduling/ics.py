"""The ICS feed, built with the icalendar library (RFC 5545 + RFC 7986).

What calendar clients need, and why each is here:
- one VEVENT per schedule with a UID that never changes, RRULE (UNTIL in UTC), EXDATEs in the
  DTSTART's type and TZID; each moved or cancelled occurrence is a VEVENT with the same UID and a
  RECURRENCE-ID (cancelled: STATUS:CANCELLED) — clients match instances on UID + RECURRENCE-ID;
- SEQUENCE goes up on every material change (clients such as Google ignore an update that keeps
  it), with DTSTAMP/LAST-MODIFIED the time of the change, so an unchanged feed is byte-identical
  (and its ETag stable);
- every TZID has its VTIMEZONE (icalendar's `Timezone.from_tzid`, which `add_missing_timezones`
  calls, cached per zone; a test checks its offsets against the IANA database): Outlook refuses
  undeclared zones, and a zone-less ("floating") time would be shifted by the client's offset;
- REFRESH-INTERVAL and X-PUBLISHED-TTL say how often to poll; NAME/X-WR-CALNAME name it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from datetime import UTC, date, datetime, timedelta

from django.core.cache import cache
from icalendar import Calendar, Event, Timezone, vDuration, vRecur

from campaigns.scheduling import recurrence
from campaigns.scheduling.models import SessionSchedule

PRODID = "-//Galactic Tale Weaver//Campaign calendar//EN"
TZ_YEARS_AHEAD = 5  # VTIMEZONE transitions published this far past the latest start
EVENT_CACHE_S = 7 * 24 * 3600  # a schedule's serialized events, keyed by all they are made of


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _summary(schedule: SessionSchedule) -> str:
    name = schedule.campaign.name
    return f"{name}: {schedule.title}" if schedule.title else name


def _description(schedule: SessionSchedule, url: str) -> str:
    parts = [schedule.notes] if schedule.notes else []
    if url:
        parts.append(f"Campaign page: {url}")
    return "\n\n".join(parts)


def _base_event(schedule: SessionSchedule, url: str) -> Event:
    event = Event()
    event.add("uid", schedule.uid)
    event.add("summary", _summary(schedule))
    description = _description(schedule, url)
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
    event.add("transp", "OPAQUE")
    return event


def schedule_events(schedule: SessionSchedule, *, url: str = "") -> list[Event]:
    tz = recurrence.zone(schedule.time_zone)
    length = timedelta(minutes=schedule.duration_minutes)
    start = schedule.dtstart.replace(tzinfo=tz)
    master = _base_event(schedule, url)
    master.add("dtstamp", _utc(schedule.updated_at))
    master.add("created", _utc(schedule.created_at))
    master.add("last-modified", _utc(schedule.updated_at))
    master.add("sequence", schedule.sequence)
    master.add("status", "CONFIRMED")
    master.add("dtstart", start)
    master.add("dtend", (schedule.dtstart + length).replace(tzinfo=tz))
    if schedule.rrule:
        master.add("rrule", vRecur.from_ical(schedule.rrule))
        if schedule.exdates:
            master.add("exdate", [datetime.fromisoformat(x).replace(tzinfo=tz) for x in schedule.exdates])
    events = [master]
    if not schedule.rrule:
        return events
    spec = schedule.spec(overrides=())
    skipped = set(schedule.exdates)
    for override in schedule.overrides.all():
        original = override.original_local
        if override.original in skipped or not recurrence.is_occurrence(spec, original):
            continue  # a change of a session the rule no longer makes: nothing to publish
        instance = _base_event(schedule, url)
        changed = max(override.updated_at, schedule.updated_at)
        instance.add("dtstamp", _utc(changed))
        instance.add("last-modified", _utc(override.updated_at))
        instance.add("sequence", schedule.sequence + override.sequence)
        instance.add("recurrence-id", original.replace(tzinfo=tz))
        if override.cancelled:
            instance.add("status", "CANCELLED")
            instance.add("dtstart", original.replace(tzinfo=tz))
            instance.add("dtend", (original + length).replace(tzinfo=tz))
        else:
            begin = override.start.astimezone(tz)
            minutes = override.duration_minutes or schedule.duration_minutes
            instance.add("status", "CONFIRMED")
            instance.add("dtstart", begin)
            instance.add("dtend", (begin + timedelta(minutes=minutes)).astimezone(tz))
        events.append(instance)
    return events


def feed_calendar(
    schedules: list[SessionSchedule],
    *,
    name: str,
    refresh_minutes: int = 60,
    urls: dict[int, str] | None = None,
) -> bytes:
    """The whole feed as bytes (CRLF line endings, folded at 75 octets by icalendar).

    icalendar takes ~3 ms per schedule and ~20 ms per VTIMEZONE; calendar clients poll often
    and schedules rarely change. So each schedule's VEVENTs are serialized once per version
    (the cache key holds everything they are made of) and each zone's VTIMEZONE once per
    process and date range, and the feed is put together from those texts."""
    urls = urls or {}
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    refresh = timedelta(minutes=refresh_minutes)
    cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    # An X- property has no known type: give it the duration's text, or it prints "1:00:00".
    cal.add("x-published-ttl", vDuration(refresh).to_ical().decode())
    head = cal.to_ical()
    end = b"END:VCALENDAR\r\n"
    assert head.endswith(end)  # icalendar always ends the calendar so
    parts = [head[: -len(end)]]
    if schedules:
        first = date(min(s.start_date for s in schedules).year - 1, 1, 1)
        last = max(max(s.start_date for s in schedules), _latest_override(schedules)) + timedelta(
            days=366 * TZ_YEARS_AHEAD
        )
        last = date(max(last.year + 1, 2038), 1, 1)
        for tzid in sorted({s.time_zone for s in schedules}):
            parts.append(_vtimezone(tzid, first, last))
    parts.extend(_events_text(schedules, urls))
    parts.append(end)
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def _vtimezone(tzid: str, first: date, last: date) -> bytes:
    return Timezone.from_tzid(tzid, first_date=first, last_date=last).to_ical()


def _fingerprint(schedule: SessionSchedule, url: str) -> str:
    made_of = (
        schedule.uid,
        schedule.sequence,
        schedule.updated_at.isoformat(),
        schedule.created_at.isoformat(),
        schedule.campaign.name,
        url,
        [(o.pk, o.sequence, o.updated_at.isoformat()) for o in schedule.overrides.all()],
    )
    return "gtw:ics:v1:" + hashlib.sha256(repr(made_of).encode()).hexdigest()


def _events_text(schedules: list[SessionSchedule], urls: dict[int, str]) -> list[bytes]:
    keys = [_fingerprint(s, urls.get(s.campaign_id, "")) for s in schedules]
    try:
        found = cache.get_many(keys)
    except Exception:  # noqa: BLE001 - a cache outage costs time, never the feed
        found = {}
    out, fresh = [], {}
    for key, schedule in zip(keys, schedules, strict=True):
        text = found.get(key)
        if text is None:
            text = b"".join(
                e.to_ical() for e in schedule_events(schedule, url=urls.get(schedule.campaign_id, ""))
            )
            fresh[key] = text
        out.append(text)
    if fresh:
        with contextlib.suppress(Exception):
            cache.set_many(fresh, timeout=EVENT_CACHE_S)
    return out


def _latest_override(schedules: list[SessionSchedule]) -> date:
    latest = date(1970, 1, 1)
    for schedule in schedules:
        for override in schedule.overrides.all():
            if override.start is not None:
                latest = max(latest, override.start.date())
    return latest
