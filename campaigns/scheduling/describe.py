"""Words for a schedule on a page: "Every other week on Thursday · 19:30 to 22:30 Europe/Berlin",
and the values the GM's edit form starts from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.scheduling import recurrence
from campaigns.scheduling.models import SessionSchedule

PRESETS = {
    "FREQ=WEEKLY": ("weekly", "Every week"),
    "FREQ=WEEKLY;INTERVAL=2": ("biweekly", "Every other week"),
    "FREQ=MONTHLY": ("monthly", "Every month"),
}


def _split(rule: str) -> tuple[str, str, str]:
    """(the rule without its end, UNTIL value, COUNT value)."""
    keep, until, count = [], "", ""
    for part in rule.split(";") if rule else []:
        if part.startswith("UNTIL="):
            until = part[6:]
        elif part.startswith("COUNT="):
            count = part[6:]
        else:
            keep.append(part)
    return ";".join(keep), until, count


def schedule_form(schedule: SessionSchedule) -> dict:
    core, until_utc, count = _split(schedule.rrule)
    until = ""
    if until_utc:
        instant = datetime.strptime(until_utc, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        until = recurrence.to_local(instant, recurrence.zone(schedule.time_zone)).strftime("%Y%m%d")
    preset = PRESETS.get(core)
    end = datetime.combine(schedule.start_date, schedule.start_time) + timedelta(
        minutes=schedule.duration_minutes
    )
    if not schedule.rrule:
        words = "Once"
    elif preset:
        words = (
            f"{preset[1]} on {schedule.start_date:%A}"
            if core != "FREQ=MONTHLY"
            else f"{preset[1]} on day {schedule.start_date.day}"
        )
    else:
        words = f"Repeats ({schedule.rrule})"
    if until:
        words += f", until {until[:4]}-{until[4:6]}-{until[6:8]}"
    elif count:
        words += f", {count} sessions"
    return {
        "repeat": "none" if not schedule.rrule else (preset[0] if preset else "custom"),
        "until": f"{until[:4]}-{until[4:6]}-{until[6:8]}" if until and preset else "",
        "count": count if preset else "",
        "start_value": schedule.dtstart.strftime("%Y-%m-%dT%H:%M"),
        "exdates_value": ", ".join(x[:10] for x in schedule.exdates),
        "words": f"{words} · {schedule.start_time:%H:%M} to {end:%H:%M} {schedule.time_zone}",
    }
