"""What a question says about time — pure, no Django.

`parse(query, now=…)` reads the question's time words and returns a `TimeHint`:

- **order**: "last time", "most recently", "latest", "still", "now", "currently" ask for the newest
  matching memory (`"latest"`); "first time", "originally", "at first", "initially" for the
  oldest (`"earliest"`);
- **a window** [start, end): absolute dates ("on 3 March", "March 2026", "2026-03-03"), relative
  ones ("yesterday", "three days ago", "last week", "this month"), and "before"/"after"/"since"/
  "until" a date (an open window on one side);
- **an anchor**: "before the twist", "after we left Vashti Ring" — an event, not a date: the
  caller finds the anchor's own memory and uses its date as the window's edge.

Nothing here touches the database; the caller (memory/recall/search.py) turns the hint into a
filter or a boost. Dates in a question are read with python-dateutil (non-fuzzy, on short
date-looking spans only, so "May" in "May I…" or "March" as a name is not a date unless a day
or year sits beside it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil import parser as dateparser
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta

LATEST = "latest"
EARLIEST = "earliest"

_LATEST = re.compile(
    r"\b(last time|the last|most recent(?:ly)?|latest|recently|lately|still|currently|current|"
    r"right now|now|these days|(?:we|i|you|they|he|she|it) last|"
    r"last (?:see|saw|seen|meet|met|hear|heard|speak|spoke|talk|talked|visit|visited|went|had|did))\b",
    re.I,
)
_EARLIEST = re.compile(
    r"\b(first time|the first|(?:we|i|you|they|he|she|it) first|earliest|"
    r"first (?:see|saw|seen|meet|met|hear|heard|visit|visited|learned|learnt|arrive|arrived|came|docked?)|"
    r"first (?:encounter|meeting|contact)|originally|at first|initially|to begin with|in the beginning)\b",
    re.I,
)
_WHEN = re.compile(r"\b(when|what (?:day|date|time|session)|how long ago|which session)\b", re.I)
# Ways to say "before" / "after" an event or a date (a held-out wording says them other ways).
_BEFORE_WORDS = r"before|prior to|ahead of|in advance of|preceding|leading up to|earlier than|until|till"
_AFTER_WORDS = (
    r"after|following|since|later than|subsequent to|"
    r"(?:once|when|after) (?:we|i|they) (?:were|was|got|had got) past|"
    r"(?:once|when) (?:we|i|they) (?:were|was|had) (?:done with|through with|finished with|out of)|"
    r"in the wake of|on the heels of"
)
_RELATION = re.compile(rf"\b({_AFTER_WORDS}|{_BEFORE_WORDS})\s+(.{{2,80}}?)(?=[?.!,;]|$)", re.I)
_AFTER = re.compile(rf"^(?:{_AFTER_WORDS})$", re.I)
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
# Date-looking spans: ISO dates, "3 March (2026)", "March 3(rd)(, 2026)", "March 2026".
_DATE_SPANS = re.compile(
    rf"\b(\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}(?:,?\s+\d{{4}})?|"
    rf"{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|{_MONTHS}\s+\d{{4}})\b",
    re.I,
)
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "a couple of": 2, "a couple": 2, "couple of": 2, "a pair of": 2,
    "a few": 3, "several": 4,
}  # fmt: skip
# Longest first, so "a couple of" wins over "a"; "twenty-one" / "twenty one" are read by `_number`.
_NUMBER_WORDS = r"(?:twenty|thirty)[- ](?:one|two|three|four|five|six|seven|eight|nine)|" + "|".join(
    sorted(_NUMBERS, key=len, reverse=True)
)
_AGO = re.compile(
    rf"\b(\d+|{_NUMBER_WORDS})\s+(day|week|month|year)s?\s+ago\b",
    re.I,
)
_UNITS = {"day": timedelta(days=1), "week": timedelta(weeks=1)}
_WEEKDAYS = {"mon": MO, "tue": TU, "wed": WE, "thu": TH, "fri": FR, "sat": SA, "sun": SU}
_LAST_WEEKDAY = re.compile(
    r"\b(?:last|this past|(?:on )?(?=\w+day (?:just gone|gone)))\s*"
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)(?: just gone| gone)?\b"
)


@dataclass(frozen=True)
class TimeHint:
    order: str | None = None  # LATEST | EARLIEST
    start: datetime | None = None  # a real-date window, inclusive
    end: datetime | None = None  # exclusive
    # A named day: (month, day), its year if said, and which calendar it is on: "game" (the
    # campaign's in-game dates, memory.metadata["game_date"]), "real" (when it was said), or
    # None (either: "3 March" could be both).
    day: tuple[int, int] | None = None
    year: int | None = None
    calendar: str | None = None
    session: int | None = None  # "in session 5", "our fifth session", "game 5"
    anchor: str | None = None  # an event to find: "the twist"
    relation: str | None = None  # "before" | "after" the anchor (or the window's edge)
    offset_days: int | None = None  # "three days before the raid": the anchor's day - 3
    asks_when: bool = False  # "when did…": the answer is the memory itself, with its date

    @property
    def temporal(self) -> bool:
        return bool(
            self.order or self.start or self.end or self.day or self.session or self.anchor or self.asks_when
        )

    @property
    def window(self) -> bool:
        """Whether the hint names a span a memory is inside or outside of."""
        return bool(self.start or self.end or self.day or self.session)

    def contains(self, when: datetime, *, game_date: str | None = None, session: int | None = None) -> bool:
        """Whether a memory said at `when` (in-game `game_date`, ISO; in session number
        `session`) is inside the hint's window (True when there is none)."""
        if (self.start and when < self.start) or (self.end and when >= self.end):
            return False
        if self.session is not None and session != self.session:
            return False
        if self.day is not None:
            real = (when.month, when.day) == self.day and self.year in (None, when.year)
            game = False
            if game_date and len(game_date) >= 10:
                try:
                    y, m, d = int(game_date[:4]), int(game_date[5:7]), int(game_date[8:10])
                except ValueError:
                    y = m = d = 0
                game = (m, d) == self.day and self.year in (None, y)
            return {"game": game, "real": real}.get(self.calendar or "", game or real)
        return True


def _day(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0, microsecond=0)


_ORDINALS = (  # noqa: SIM905
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()
_ORDINAL_WORDS = (
    r"(?:twenty|thirty)[- ](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|"
    + "|".join(sorted(_ORDINALS[1:], key=len, reverse=True))
    + r"|\d{1,3}(?:st|nd|rd|th)"
)
# "session 5", "session #5", "session number five", "game night 5", "game 5", "episode 5";
# "our fifth session", "the 5th game", "fifth session"; "session the fifth" is rare and not read.
# ("the first night" alone is an in-game night, not a session; "game a while ago" is no game 1.)
_SESSION_NOUN = r"(?:session|game(?:\s+night)?|sitting|episode)"
_COUNT_WORDS = r"(?:twenty|thirty)[- ](?:one|two|three|four|five|six|seven|eight|nine)|" + "|".join(
    sorted((w for w in _NUMBERS if " " not in w and w not in ("a", "an", "several")), key=len, reverse=True)
)
_SESSION = re.compile(
    rf"\b(?:session|game\s+night|game|episode|sitting)\s+(?:number\s+|no\.?\s*|#\s*)?"
    rf"(\d{{1,3}}|{_COUNT_WORDS})\b"
    rf"|\b(?:(?:the|our|my|in|during|at)\s+)?({_ORDINAL_WORDS})\s+{_SESSION_NOUN}\b",
    re.I,
)
# "three days before the raid", "a couple of days after we docked", "the day before", "a week
# after", "two weeks prior to": a day counted from an event.
_OFFSET = re.compile(
    rf"\b(?:(\d+|{_NUMBER_WORDS})\s+(day|week|night)s?|the\s+(day|week|night)|the\s+very\s+(day|night))"
    rf"\s+(?:(?:just|right)\s+)?({_AFTER_WORDS}|{_BEFORE_WORDS})\s+",
    re.I,
)
_OFFSET_UNITS = {"day": 1, "night": 1, "week": 7}
# A day named as the evening a session was played is on the real calendar.
_PLAYED = re.compile(
    r"\b(?:(?:our|the)\s+(?:session|game(?:\s+night)?)\s+(?:on|of)|(?:we|i)\s+played\s+(?:on|of)|"
    r"(?:session|game)\s+(?:night\s+)?(?:we\s+)?(?:held|ran|had)\s+on)\b",
    re.I,
)
# Years further than this from now are the campaign's in-game calendar (the 2180s), not ours.
REAL_YEARS = 5


def _number(word: str) -> int | None:
    word = re.sub(r"[\s-]+", " ", word.lower().strip())
    if word.isdigit():
        return int(word)
    if word in _NUMBERS:
        return _NUMBERS[word]
    if word in _ORDINALS:
        return _ORDINALS.index(word)
    tens, _, unit = word.partition(" ")
    if tens in ("twenty", "thirty") and unit:
        rest = _NUMBERS.get(unit) or (_ORDINALS.index(unit) if unit in _ORDINALS else None)
        return _NUMBERS[tens] + rest if rest and rest < 10 else None
    digits = re.match(r"\d+", word)
    return int(digits.group(0)) if digits else None


def _named_day(span: str, now: datetime) -> dict | None:
    """What a date-looking span names: {"day", "year", "calendar"} for a day, or {"start", "end"}
    for a month of a year; None if it names nothing."""
    try:
        parsed = dateparser.parse(span, default=_day(now).replace(day=1, tzinfo=None), fuzzy=False)
    except (ValueError, OverflowError):
        return None
    said_year = re.search(r"\d{4}", span) is not None
    year = parsed.year if said_year else None
    calendar = None if year is None else ("real" if abs(year - now.year) <= REAL_YEARS else "game")
    has_day = re.search(r"\d{4}-\d{2}-\d{2}", span) or re.search(
        r"(?<![\d-])\d{1,2}(?:st|nd|rd|th)?(?![\d-])", span
    )
    if not has_day:
        if calendar != "real":
            return None  # a month of the in-game calendar: no window we can use
        start = _day(parsed).replace(day=1, tzinfo=now.tzinfo)
        return {"start": start, "end": start + relativedelta(months=1)}
    return {"day": (parsed.month, parsed.day), "year": year, "calendar": calendar}


def _relative_window(text: str, now: datetime) -> tuple[datetime, datetime] | None:
    today = _day(now)
    low = text.lower()
    if re.search(r"\byesterday\b", low):
        return today - timedelta(days=1), today
    if re.search(r"\b(today|earlier today|this morning|tonight)\b", low):
        return today, today + timedelta(days=1)
    if m := _AGO.search(low):
        n = _number(m.group(1)) or 1
        unit = m.group(2)
        if unit in _UNITS:
            centre = today - n * _UNITS[unit]
            slack = _UNITS[unit] if unit == "week" else timedelta(days=max(1, n // 3))
        else:
            centre = today - relativedelta(**{f"{unit}s": n})
            slack = timedelta(days=15 if unit == "month" else 120)
        return centre - slack, centre + slack + timedelta(days=1)
    if m := _LAST_WEEKDAY.search(low):  # "last Monday", "on Monday just gone": the latest before today
        day = today + relativedelta(days=-1, weekday=_WEEKDAYS[m.group(1)[:3]](-1))
        return day, day + timedelta(days=1)
    if re.search(r"\blast week\b", low):
        return today - timedelta(days=today.weekday() + 7), today - timedelta(days=today.weekday())
    if re.search(r"\bthis week\b", low):
        return today - timedelta(days=today.weekday()), today + timedelta(days=1)
    if re.search(r"\blast month\b", low):
        first = today.replace(day=1)
        return first - relativedelta(months=1), first
    if re.search(r"\bthis month\b", low):
        return today.replace(day=1), today + timedelta(days=1)
    return None


def _when(text: str, now: datetime) -> dict:
    """The window `text` names, as TimeHint fields ({} for none)."""
    if (span := _DATE_SPANS.search(text)) and (named := _named_day(span.group(0), now)):
        return named
    if window := _relative_window(text, now):
        return {"start": window[0], "end": window[1]}
    if m := _SESSION.search(text):
        n = _number(m.group(1) or m.group(2))
        if n:
            return {"session": n}
    return {}


def parse(query: str, *, now: datetime) -> TimeHint:
    """The time words of `query` as a hint (see the module docstring). Never raises."""
    fields: dict = {"asks_when": bool(_WHEN.search(query))}
    if _LATEST.search(query):
        fields["order"] = LATEST
    elif _EARLIEST.search(query):
        fields["order"] = EARLIEST
    offset = _OFFSET.search(query)
    relation = _RELATION.search(query)
    if offset:  # "three days before the raid on Tallow Yard": a day relative to an event
        count, unit = offset.group(1), offset.group(2) or offset.group(3) or offset.group(4)
        n = (_number(count) or 1) if count else 1
        after = _AFTER.match(offset.group(5)) is not None
        rest = _RELATION.search(query, offset.start(5))
        anchor = rest.group(2).strip() if rest else query[offset.end() :].strip(" ?.!,")
        days = n * _OFFSET_UNITS[unit.lower()]
        fields.update(
            offset_days=days if after else -days, anchor=anchor, relation="after" if after else "before"
        )
    elif relation:
        word, rest = relation.group(1).lower(), relation.group(2).strip()
        fields["relation"] = "after" if _AFTER.match(word) else "before"
        named = _when(rest, now)
        if "start" in named:
            fields["start" if fields["relation"] == "after" else "end"] = (
                named["end"] if fields["relation"] == "after" and word != "since" else named["start"]
            )
        elif "day" in named and named["calendar"] != "game":  # "after 2 November": a real date
            (month, day), year = named["day"], named["year"] or now.year
            edge = datetime(year, month, day, tzinfo=now.tzinfo)
            fields["start" if fields["relation"] == "after" else "end"] = (
                edge + timedelta(days=1) if fields["relation"] == "after" and word != "since" else edge
            )
        elif named:
            fields.update(named)  # an in-game "before 3 March 2183": that day is the best we read
        else:
            fields["anchor"] = rest
            # "before the twist" asks for the last thing before it; "after" for the first after.
            fields.setdefault("order", LATEST if fields["relation"] == "before" else EARLIEST)
    else:
        fields.update(_when(query, now))
    if "day" in fields and fields.get("calendar") is None and _PLAYED.search(query):
        fields["calendar"] = "real"  # "in our session on 5 January": the evening we played
    return TimeHint(**fields)


def time_fit(hint: TimeHint, when: datetime, *, oldest: datetime, newest: datetime) -> float:
    """Where a memory dated `when` sits among the candidates for "last time" (1: the newest) or
    "first time" (1: the oldest), linearly; 1.0 when the hint has no order. Relative to the
    candidates, not an absolute age that means nothing across campaigns."""
    if not hint.order or newest <= oldest:
        return 1.0
    pos = (when - oldest) / (newest - oldest)
    return pos if hint.order == LATEST else 1.0 - pos


_ASKS = re.compile(
    r"\?|\b(?:remember|recall|recollect|remind me|who (?:was|were|is|did|gave|sold)|what (?:was|were|did)|"
    r"where (?:was|were|did|is)|when (?:was|were|did)|how much did|last time|first time)\b",
    re.I,
)


def asks_about_past(text: str) -> bool:
    """Whether an action asks what the characters remember ("Do I remember who sold us the
    crate?", "What did Hale say about the relay?"): then recall that finds nothing sure enough
    means the characters don't recall it (narrative.turns.context)."""
    return _ASKS.search(text) is not None
