"""Session recurrence, pure: parse and check an RRULE, expand a schedule into occurrences.

No Django here (an import-linter contract holds it). Times are *wall-clock* times in the
schedule's IANA zone: "every other Thursday 19:30 Europe/Berlin" stays 19:30 in Berlin across a
DST change, so the rule is expanded on naive local datetimes and each result is then placed in
the zone. A wall time that does not exist (the spring-forward gap) takes the offset before the
gap, as RFC 5545 §3.3.5 says and as calendar clients do; a repeated one (the autumn fold) is
its first instant (fold=0).

`expand` is the one expansion the site, the feed test and the notice job agree on: the ICS feed
publishes the same rule, EXDATEs and overrides, and `recurring-ical-events` expanding the feed
must list exactly what `expand` lists.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import rrule, rrulestr

RRULE_MAX_CHARS = 500
# Sessions, not alarms: a rule that repeats every second, minute or hour is refused.
REFUSED_FREQ = {"SECONDLY", "MINUTELY", "HOURLY"}
FREQS = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY"} | REFUSED_FREQ
# The parts a session schedule needs. BYHOUR/BYMINUTE/BYSECOND (several sessions a day),
# BYYEARDAY and BYWEEKNO are refused: with them a rule can be unsatisfiable in ways only a
# search to the year 9999 finds (seconds of CPU per request).
ALLOWED_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
YEAR_MIN, YEAR_MAX = 1970, 2200


class RecurrenceError(ValueError):
    """A schedule that cannot be kept; the message says what to change."""


@functools.cache
def _zones() -> frozenset[str]:
    """IANA zone names; not the system's aliases for "whatever this machine uses"."""
    odd = {"localtime", "posixrules", "Factory"}
    return frozenset(
        z for z in available_timezones() if z not in odd and not z.startswith(("posix/", "right/"))
    )


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or RecurrenceError. "localtime" and file paths are not zones."""
    name = (name or "").strip()
    if not name or name not in _zones():
        raise RecurrenceError(f"Unknown time zone {name[:64]!r}: use an IANA name such as Europe/Berlin.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"Unknown time zone {name[:64]!r}.") from None


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall time in `tz` as an aware UTC datetime (gap: the offset before it; fold: first)."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    """An aware instant as a naive wall time in `tz`."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


_UNTIL = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")


def normalize_rule(value: str, *, dtstart: datetime, tz: ZoneInfo) -> str:
    """The rule as we store and publish it: upper case, no "RRULE:" prefix, known parts only,
    and UNTIL in UTC (RFC 5545: with a zoned DTSTART, UNTIL must be UTC). A DATE or a local
    UNTIL counts in the schedule's zone (a date means the end of that day). "" stays "" (one
    session, no repeats). Raises RecurrenceError with a message a GM can act on."""
    text = (value or "").strip()
    if not text:
        return ""
    if len(text) > RRULE_MAX_CHARS:
        raise RecurrenceError(f"The repeat rule is too long (at most {RRULE_MAX_CHARS} characters).")
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if "\n" in text or "\r" in text:
        raise RecurrenceError("The repeat rule is one line (e.g. FREQ=WEEKLY;INTERVAL=2;BYDAY=TH).")
    parts: dict[str, str] = {}
    for raw in text.split(";"):
        if not raw.strip():
            continue
        key, sep, val = raw.partition("=")
        key, val = key.strip().upper(), val.strip().upper()
        if not sep or not val:
            raise RecurrenceError(f"Bad repeat rule part {raw[:40]!r}: expected NAME=VALUE.")
        if key not in ALLOWED_PARTS:
            raise RecurrenceError(f"The repeat rule part {key[:20]} is not supported.")
        if key in parts:
            raise RecurrenceError(f"The repeat rule names {key} twice.")
        parts[key] = val
    freq = parts.get("FREQ")
    if freq not in FREQS:
        raise RecurrenceError("The repeat rule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY.")
    if freq in REFUSED_FREQ:
        raise RecurrenceError(f"FREQ={freq} is refused: sessions repeat at most daily.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("Give COUNT or UNTIL, not both.")
    _check_parts(freq, parts)
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_utc(parts["UNTIL"], tz)
    normalized = ";".join(f"{k}={v}" for k, v in parts.items())
    rule = _parse(normalized, dtstart, tz)
    first = rule.after(dtstart, inc=True)
    if first is None:
        raise RecurrenceError("The repeat rule yields no session at all: check its days and its end.")
    if first != dtstart:
        raise RecurrenceError(
            f"The first session ({dtstart:%Y-%m-%d %H:%M}, a {dtstart:%A}) is not a day of the repeat "
            f"rule; the first one that is falls on {first:%Y-%m-%d %H:%M} ({first:%A}). "
            f"Start on that day, or change the rule."
        )
    return normalized


def _ints(parts: dict[str, str], key: str, lo: int, hi: int, *, signed: bool = False) -> list[int]:
    if key not in parts:
        return []
    out = []
    for raw in parts[key].split(","):
        try:
            value = int(raw)
        except ValueError:
            raise RecurrenceError(f"{key} takes whole numbers, got {raw[:10]!r}.") from None
        if not (lo <= abs(value) <= hi if signed else lo <= value <= hi) or (signed and value == 0):
            span = f"±{lo} to ±{hi}" if signed else f"{lo} to {hi}"
            raise RecurrenceError(f"{key} values are {span}, got {value}.")
        out.append(value)
    return out


def _check_parts(freq: str, parts: dict[str, str]) -> None:
    """Values in range, and no combination that can never happen (found without a search)."""
    _ints(parts, "INTERVAL", 1, 1000)
    _ints(parts, "COUNT", 1, 100_000)
    months = _ints(parts, "BYMONTH", 1, 12) or list(range(1, 13))
    monthdays = _ints(parts, "BYMONTHDAY", 1, 31, signed=True)
    positions = _ints(parts, "BYSETPOS", 1, 366, signed=True)
    if "BYSETPOS" in parts and freq not in ("MONTHLY", "YEARLY"):
        raise RecurrenceError("BYSETPOS works with FREQ=MONTHLY or YEARLY only.")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise RecurrenceError("BYMONTHDAY does not go with FREQ=WEEKLY (RFC 5545).")
    if "WKST" in parts and parts["WKST"] not in WEEKDAYS:
        raise RecurrenceError("WKST is a weekday: MO, TU, WE, TH, FR, SA or SU.")
    for raw in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []:
        match = _BYDAY.match(raw)
        if not match:
            raise RecurrenceError(f"BYDAY takes weekdays like TH, 1SA or -1FR, got {raw[:10]!r}.")
        if match.group(1):
            nth = abs(int(match.group(1)))
            limit = 5 if freq == "MONTHLY" or "BYMONTH" in parts else 53
            if freq not in ("MONTHLY", "YEARLY") or not 1 <= nth <= limit:
                raise RecurrenceError(
                    f"BYDAY {raw}: a numbered weekday (1..{limit}) needs FREQ=MONTHLY or YEARLY."
                )
    if monthdays and not any(abs(d) <= DAYS_IN_MONTH[m - 1] for m in months for d in monthdays):
        raise RecurrenceError("No month has those days (BYMONTH and BYMONTHDAY never meet).")
    if positions:
        # The most days one period can hold: a position past it never matches, and finding
        # that out takes dateutil a search to the year 9999.
        weekdays = len(parts["BYDAY"].split(",")) if "BYDAY" in parts else 0
        per_month = len(monthdays) if monthdays else (5 * weekdays if weekdays else 1)
        if monthdays and weekdays and all(d > 0 for d in monthdays):
            # One weekday falls on month days of one residue mod 7: at most that many of them.
            by_residue = max(sum(1 for d in monthdays if d % 7 == r) for r in range(7))
            per_month = min(per_month, weekdays * by_residue)
        per_period = min(31, per_month) * (len(months) if freq == "YEARLY" else 1)
        if freq == "YEARLY" and "BYMONTH" not in parts and weekdays and not monthdays:
            per_period = 53 * weekdays
        if any(abs(p) > per_period for p in positions):
            raise RecurrenceError(f"BYSETPOS picks from at most {per_period} days a period here.")


def _until_utc(value: str, tz: ZoneInfo) -> str:
    match = _UNTIL.match(value)
    if not match:
        raise RecurrenceError("UNTIL must be a date (20270630) or a date and time (20270630T180000Z).")
    day, clock, utc = match.groups()
    try:
        if clock is None:
            # Wall times on purpose: the schedule's zone gives them meaning on the next line.
            local = datetime.combine(datetime.strptime(day, "%Y%m%d").date(), time(23, 59, 59))  # noqa: DTZ007
            instant = to_utc(local, tz)
        else:
            moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S")  # noqa: DTZ007 - zoned below
            instant = moment.replace(tzinfo=UTC) if utc else to_utc(moment, tz)
    except (ValueError, OverflowError):
        raise RecurrenceError(f"UNTIL {value[:20]} is not a real date.") from None
    return instant.strftime("%Y%m%dT%H%M%SZ")


@functools.lru_cache(maxsize=1024)
def _parse(normalized: str, dtstart: datetime, tz: ZoneInfo) -> rrule:
    """dateutil's rule over naive local wall times (UNTIL, stored in UTC, becomes local).
    Cached: with cache=False a rule is immutable."""
    text = normalized
    match = re.search(r"UNTIL=(\d{8}T\d{6})Z", text)
    if match:
        instant = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        text = text.replace(match.group(0), f"UNTIL={to_local(instant, tz):%Y%m%dT%H%M%S}")
    try:
        rule = rrulestr(text, dtstart=dtstart, cache=False)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise RecurrenceError(f"The repeat rule is not valid: {str(exc)[:120]}") from None
    if not isinstance(rule, rrule):
        raise RecurrenceError("The repeat rule is not valid.")
    return rule


def check_start(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise RecurrenceError("The start is a wall-clock time in the schedule's zone, without an offset.")
    if not YEAR_MIN <= value.year <= YEAR_MAX:
        raise RecurrenceError(f"The first session must fall between {YEAR_MIN} and {YEAR_MAX}.")
    return value.replace(second=0, microsecond=0)


def parse_local(value: str, *, what: str, default_time: time | None = None) -> datetime:
    """ "2027-01-07T19:30" (or "2027-01-07 19:30", or a date when `default_time` is given) as a
    naive wall time. Offsets are refused: the schedule's zone says what the wall time means."""
    text = (value or "").strip()
    if not text or len(text) > 40:
        raise RecurrenceError(f"{what} is missing: give a date and time like 2027-01-07T19:30.")
    try:
        if len(text) == 10 and default_time is not None:
            return datetime.combine(date.fromisoformat(text), default_time)
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise RecurrenceError(f"{what} {text!r} is not a date and time like 2027-01-07T19:30.") from None
    if parsed.tzinfo is not None:
        raise RecurrenceError(f"{what} is a wall-clock time in the schedule's zone, without an offset.")
    return parsed.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Override:
    """One occurrence changed: moved (`start`, `duration`) or cancelled. `original` is the
    occurrence's recurrence id: its naive local start as the rule made it."""

    original: datetime
    cancelled: bool = False
    start: datetime | None = None  # naive local, in the schedule's zone
    duration: timedelta | None = None


@dataclass(frozen=True)
class Spec:
    """What a schedule is, as plain values."""

    dtstart: datetime  # naive local wall time
    tz: ZoneInfo
    duration: timedelta
    rule: str = ""  # normalized (normalize_rule), "" for a single session
    exdates: tuple[datetime, ...] = ()  # naive local recurrence ids
    overrides: tuple[Override, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Occurrence:
    """One session on the calendar. `original` is the recurrence id (naive local) the feed's
    RECURRENCE-ID carries; `start`/`end` are aware UTC instants."""

    original: datetime
    start: datetime
    end: datetime
    moved: bool = False
    cancelled: bool = False


def originals(spec: Spec, after_local: datetime, before_local: datetime, *, limit: int = 10_000):
    """Naive local recurrence ids in [after_local, before_local), EXDATEs removed, at most `limit`."""
    excluded = set(spec.exdates)
    if not spec.rule:
        candidates = iter([spec.dtstart] if after_local <= spec.dtstart < before_local else [])
    else:
        # Lazily: a rule with no end is walked only as far as the window.
        candidates = _parse(spec.rule, spec.dtstart, spec.tz).xafter(after_local, inc=True)
    out: list[datetime] = []
    for moment in candidates:
        if moment >= before_local:
            break
        if moment not in excluded:
            out.append(moment)
            if len(out) >= limit:
                break
    return out


def expand(
    spec: Spec, start: datetime, end: datetime, *, include_cancelled: bool = False, limit: int = 1000
) -> list[Occurrence]:
    """The occurrences that overlap nothing but are *starting* in [start, end) (aware instants),
    sorted by start, overrides applied; cancelled ones only if asked. A moved occurrence counts
    where it now starts, whatever window its original fell in."""
    tz = spec.tz
    duration = spec.duration
    by_original = {o.original: o for o in spec.overrides}
    # The rule runs on wall time: widen by a day each side so a window edge in another offset
    # loses nothing, then filter on the real instants.
    lo = to_local(start, tz) - timedelta(days=1)
    hi = to_local(end, tz) + timedelta(days=1)
    found: dict[datetime, Occurrence] = {}
    for original in originals(spec, lo, hi, limit=limit * 4 + 64):
        override = by_original.get(original)
        if override is not None:
            continue  # placed below, where it now starts
        begin = to_utc(original, tz)
        if start <= begin < end:
            found[original] = Occurrence(original, begin, begin + duration)
    excluded = set(spec.exdates)
    for override in spec.overrides:
        if override.original in excluded or not is_occurrence(spec, override.original):
            continue
        if override.cancelled:
            if include_cancelled:
                begin = to_utc(override.original, tz)
                if start <= begin < end:
                    found[override.original] = Occurrence(
                        override.original, begin, begin + duration, cancelled=True
                    )
            continue
        begin = to_utc(override.start or override.original, tz)
        if start <= begin < end:
            length = override.duration or duration
            found[override.original] = Occurrence(override.original, begin, begin + length, moved=True)
    return sorted(found.values(), key=lambda o: (o.start, o.original))[:limit]


def is_occurrence(spec: Spec, moment: datetime) -> bool:
    """Whether the naive local `moment` is a start the rule makes (EXDATEs not considered)."""
    if not spec.rule:
        return moment == spec.dtstart
    rule = _parse(spec.rule, spec.dtstart, spec.tz)
    return rule.after(moment, inc=True) == moment


def next_original(spec: Spec, after: datetime) -> datetime | None:
    """The first recurrence id at or after the naive local `after` (for error messages)."""
    if not spec.rule:
        return spec.dtstart if spec.dtstart >= after else None
    return _parse(spec.rule, spec.dtstart, spec.tz).after(after, inc=True)
