"""The pure recurrence core (no database): wall times across DST, the gap and the fold,
EXDATEs and overrides, bounds, and rule parsing that only ever raises its own error."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.scheduling import recurrence
from campaigns.scheduling.recurrence import Override, RecurrenceError, Spec, expand, normalize_rule, zone

BERLIN = zone("Europe/Berlin")


def _spec(rule="FREQ=WEEKLY;BYDAY=TH", start=datetime(2027, 1, 7, 19, 30), **kw) -> Spec:
    return Spec(dtstart=start, tz=BERLIN, duration=timedelta(hours=3), rule=rule, **kw)


def test_wall_time_holds_across_the_dst_change():
    found = expand(_spec(), datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 30, tzinfo=UTC))
    assert {o.start.astimezone(BERLIN).strftime("%H:%M") for o in found} == {"19:30"}
    utc_hours = [o.start.hour for o in found]
    assert utc_hours[:4] == [18, 18, 18, 18] and utc_hours[4:] == [17] * (len(found) - 4)  # 28 March


def test_a_time_in_the_spring_gap_takes_the_offset_before_it():
    spec = _spec(rule="FREQ=DAILY;COUNT=3", start=datetime(2027, 3, 27, 2, 30))
    found = expand(spec, datetime(2027, 3, 26, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
    # 02:30 on 28 March does not exist in Berlin: RFC 5545 reads it with the offset before (+01:00).
    assert [o.start for o in found] == [
        datetime(2027, 3, 27, 1, 30, tzinfo=UTC),
        datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2027, 3, 29, 0, 30, tzinfo=UTC),
    ]


def test_a_time_in_the_autumn_fold_is_its_first_instant():
    spec = _spec(rule="", start=datetime(2027, 10, 31, 2, 30))
    (only,) = expand(spec, datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 11, 30, tzinfo=UTC))
    assert only.start == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


def test_exdates_and_overrides():
    spec = _spec(
        exdates=(datetime(2027, 1, 14, 19, 30),),
        overrides=(
            Override(datetime(2027, 1, 21, 19, 30), cancelled=True),
            Override(
                datetime(2027, 1, 28, 19, 30), start=datetime(2027, 2, 12, 20, 0), duration=timedelta(hours=1)
            ),
        ),
    )
    window = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 15, tzinfo=UTC))
    shown = [(o.start.astimezone(BERLIN).strftime("%m-%d %H:%M"), o.moved) for o in expand(spec, *window)]
    assert shown == [
        ("01-07 19:30", False),
        ("02-04 19:30", False),
        ("02-11 19:30", False),
        ("02-12 20:00", True),
    ]
    with_cancelled = expand(spec, *window, include_cancelled=True)
    assert [o.original.day for o in with_cancelled if o.cancelled] == [21]
    # A moved session counts where it now is: out of a window that holds only its original.
    assert all(
        not o.moved
        for o in expand(spec, datetime(2027, 1, 27, tzinfo=UTC), datetime(2027, 1, 30, tzinfo=UTC))
    )


def test_an_endless_rule_is_listed_only_as_far_as_asked():
    spec = _spec(rule="FREQ=DAILY")
    found = expand(spec, datetime(2150, 1, 1, tzinfo=UTC), datetime(2150, 1, 11, tzinfo=UTC))
    assert len(found) == 10
    assert (
        len(expand(spec, datetime(2027, 1, 1, tzinfo=UTC), datetime(2037, 1, 1, tzinfo=UTC), limit=25)) == 25
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("rrule:freq=weekly;byday=th", "FREQ=WEEKLY;BYDAY=TH"),
        ("FREQ=WEEKLY;UNTIL=20270401", "FREQ=WEEKLY;UNTIL=20270401T215959Z"),  # end of day, Berlin summer
        ("FREQ=WEEKLY;UNTIL=20270301T120000", "FREQ=WEEKLY;UNTIL=20270301T110000Z"),  # local, winter
        ("FREQ=WEEKLY;UNTIL=20270301T120000Z", "FREQ=WEEKLY;UNTIL=20270301T120000Z"),
        ("", ""),
    ],
)
def test_rules_are_normalized_with_until_in_utc(rule, expected):
    assert normalize_rule(rule, dtstart=datetime(2027, 1, 7, 19, 30), tz=BERLIN) == expected


def test_unknown_zones_are_refused():
    for name in ("Mars/Olympus", "localtime", "posixrules", "../../etc/passwd", "", "Europe/Berlin\x00"):
        with pytest.raises(RecurrenceError):
            zone(name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_rule_parsing_only_ever_raises_its_own_error(text):
    with contextlib.suppress(RecurrenceError):
        normalize_rule(text, dtstart=datetime(2027, 1, 7, 19, 30), tz=BERLIN)


PARTS = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY",
        "FREQ=MONTHLY",
        "FREQ=YEARLY",
        "INTERVAL=2",
        "INTERVAL=0",
        "COUNT=3",
        "BYDAY=TH",
        "BYDAY=MO,TH",
        "BYDAY=-1TH",
        "BYMONTHDAY=7",
        "BYMONTHDAY=31",
        "BYMONTH=2",
        "BYSETPOS=1",
        "UNTIL=20280101",
        "UNTIL=2028",
        "WKST=SU",
        "BYHOUR=19",
        "BYMINUTE=30",
        "FREQ=SECONDLY",
        "COUNT=-1",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PARTS, max_size=5))
def test_any_accepted_rule_starts_on_its_first_session_and_expands_in_order(parts):
    start = datetime(2027, 1, 7, 19, 30)
    try:
        rule = normalize_rule(";".join(parts), dtstart=start, tz=BERLIN)
    except RecurrenceError:
        return
    found = expand(
        _spec(rule=rule, start=start), datetime(2027, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)
    )
    if rule:
        assert found and found[0].original == start
    starts = [o.start for o in found]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(o.end - o.start == timedelta(hours=3) for o in found)
    assert all(recurrence.is_occurrence(_spec(rule=rule, start=start), o.original) for o in found)
