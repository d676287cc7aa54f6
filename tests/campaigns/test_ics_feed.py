"""Private ICS feeds (issue 16, part 2): what a calendar client reads matches the site exactly,
and a feed token opens nothing it shouldn't.

The schedule under test is the issue's own: every other Thursday 19:30 Europe/Berlin, 3 hours,
from 2027-01-07, skipping 2027-02-18 — its window crosses the spring DST change (2027-03-28),
with one session moved and one cancelled. Clocks are fixed (`now` is passed in or patched)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from django.test import Client

from campaigns import selectors as campaign_selectors
from campaigns import services as campaign_services
from campaigns.scheduling import selectors, services
from campaigns.scheduling.models import CalendarFeed

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC))


def _gm(campaign, gm):
    return campaign_selectors.membership_get(viewer=gm, campaign_id=campaign.pk)


@pytest.fixture
def schedule(campaign, gm):
    membership = _gm(campaign, gm)
    schedule = services.schedule_create(
        membership=membership,
        title="Main story",
        notes="Bring dice; Kira's player hosts.",
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
        exdates=["2027-02-18"],
    )
    # Moved: 2027-03-04 19:30 -> Friday 2027-03-05 20:00, 4 hours.
    services.occurrence_move(
        membership=membership,
        schedule=schedule,
        original="2027-03-04T19:30",
        start="2027-03-05T20:00",
        duration_minutes=240,
    )
    # Cancelled: the first session after the DST change.
    services.occurrence_cancel(membership=membership, schedule=schedule, original="2027-04-01T19:30")
    return schedule


def _feed_url(user, campaign_id=None) -> str:
    _feed, token = services.feed_create(user=user, campaign_id=campaign_id)
    return f"/calendar/{token}.ics"


def _site(campaign, viewer, *, include_cancelled=False, window=WINDOW):
    schedules = selectors.schedule_list(viewer=viewer, campaign_id=campaign.pk)
    found = selectors.occurrences(
        schedules, start=window[0], end=window[1], tz=None, include_cancelled=include_cancelled, limit=500
    )
    return [
        (u.occurrence.start, u.occurrence.end) for u in found if u.occurrence.cancelled == include_cancelled
    ]


def _client_view(body: bytes, *, cancelled: bool, window=WINDOW):
    cal = icalendar.Calendar.from_ical(body)
    out = []
    for event in recurring_ical_events.of(cal).between(*window):
        is_cancelled = str(event.get("STATUS", "")).upper() == "CANCELLED"
        if is_cancelled == cancelled:
            out.append((event.decoded("DTSTART").astimezone(UTC), event.decoded("DTEND").astimezone(UTC)))
    return sorted(out)


def test_a_client_expands_the_feed_to_exactly_the_sessions_the_site_shows(schedule, campaign, player):
    """DST change, an EXDATE, a moved and a cancelled session: recurring-ical-events (what
    calendar clients do) and the site's own expansion agree to the minute."""
    response = Client().get(_feed_url(player, campaign.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    site = _site(campaign, player)
    assert _client_view(response.content, cancelled=False) == site
    assert _client_view(response.content, cancelled=True) == _site(campaign, player, include_cancelled=True)

    starts = [s for s, _ in site]
    # 19:30 in Berlin is 18:30 UTC in winter and 17:30 UTC in summer: the wall time holds.
    assert datetime(2027, 1, 7, 18, 30, tzinfo=UTC) in starts
    assert datetime(2027, 4, 15, 17, 30, tzinfo=UTC) in starts
    assert datetime(2027, 2, 18, 18, 30, tzinfo=UTC) not in starts  # the EXDATE
    assert datetime(2027, 3, 4, 18, 30, tzinfo=UTC) not in starts  # moved away...
    moved = datetime(2027, 3, 5, 19, 0, tzinfo=UTC)
    assert (moved, moved + timedelta(hours=4)) in site  # ...to Friday 20:00 for 4 hours
    assert datetime(2027, 4, 1, 17, 30, tzinfo=UTC) not in starts  # cancelled
    assert all(start.astimezone(BERLIN).strftime("%H:%M") == "19:30" for start in starts if start != moved)


def test_the_feed_has_what_strict_clients_need(schedule, campaign, player):
    body = Client().get(_feed_url(player, campaign.pk)).content
    cal = icalendar.Calendar.from_ical(body)
    assert str(cal["VERSION"]) == "2.0"
    assert "Galactic Tale Weaver" in str(cal["PRODID"])
    assert "Vesper Run" in str(cal["X-WR-CALNAME"]) and "Vesper Run" in str(cal["NAME"])
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in body
    assert b"X-PUBLISHED-TTL:PT1H" in body
    # Every TZID used is declared (Outlook refuses undeclared zones); nothing floats.
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    events = cal.walk("VEVENT")
    assert len(events) == 3  # the series, the moved and the cancelled session
    assert {str(e["UID"]) for e in events} == {schedule.uid}
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    assert master["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert b"DTSTART;TZID=Europe/Berlin:20270107T193000" in body
    assert b"RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TH" in body
    # EXDATE in the DTSTART's type and TZID.
    assert b"EXDATE;TZID=Europe/Berlin:20270218T193000" in body
    for name in ("DTSTAMP", "SEQUENCE", "LAST-MODIFIED", "SUMMARY", "DESCRIPTION", "URL"):
        assert name in master, name
    assert "Bring dice" in str(master["DESCRIPTION"])
    cancelled = next(e for e in events if str(e.get("STATUS")) == "CANCELLED")
    assert b"RECURRENCE-ID;TZID=Europe/Berlin:20270401T193000" in body
    assert cancelled["SEQUENCE"] >= master["SEQUENCE"]
    for line in body.split(b"\r\n"):
        assert len(line) <= 75  # folded at 75 octets


def test_until_is_published_in_utc(campaign, gm, player):
    services.schedule_create(
        membership=_gm(campaign, gm),
        start="2027-01-07T19:30",
        time_zone="America/New_York",
        duration_minutes=120,
        rrule="FREQ=WEEKLY;UNTIL=20270325",
    )
    body = Client().get(_feed_url(player, campaign.pk)).content
    # The last day, 23:59:59 in New York (EDT from 2027-03-14), is 03:59:59 UTC the next day.
    assert b"UNTIL=20270326T035959Z" in body
    cal = icalendar.Calendar.from_ical(body)
    found = recurring_ical_events.of(cal).between(*WINDOW)
    assert found[-1].decoded("DTSTART").date().isoformat() == "2027-03-25"
    assert len(found) == len(_site(campaign, player)) == 12


def test_sequence_and_uid_when_the_gm_changes_the_schedule(schedule, campaign, gm, player):
    """A material change bumps SEQUENCE (Google ignores an update that keeps it); the UID
    never changes; an unchanged save changes nothing."""
    url = _feed_url(player, campaign.pk)

    def master():
        cal = icalendar.Calendar.from_ical(Client().get(url).content)
        return next(e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e)

    before = master()
    membership = _gm(campaign, gm)
    services.schedule_update(membership=membership, schedule=schedule, title="Main story")
    assert master()["SEQUENCE"] == before["SEQUENCE"]
    services.schedule_update(membership=membership, schedule=schedule, duration_minutes=150)
    after = master()
    assert after["SEQUENCE"] == before["SEQUENCE"] + 1
    assert str(after["UID"]) == str(before["UID"]) == schedule.uid
    assert after.decoded("DTEND") - after.decoded("DTSTART") == timedelta(minutes=150)
    services.occurrence_restore(membership=membership, schedule=schedule, original="2027-04-01T19:30")
    assert master()["SEQUENCE"] == after["SEQUENCE"] + 1


def test_etag_and_304(schedule, campaign, player, gm):
    client = Client()
    url = _feed_url(player, campaign.pk)
    first = client.get(url)
    etag = first["ETag"]
    assert etag and first.content
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    services.occurrence_cancel(membership=_gm(campaign, gm), schedule=schedule, original="2027-01-21T19:30")
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_the_all_campaigns_feed_lists_every_campaign_and_drops_one_the_user_left(
    schedule, campaign, gm, player, content
):
    other = campaign_services.campaign_create(user=player, name="Side Quest", pack_slug="starter")
    services.schedule_create(
        membership=campaign_selectors.membership_get(viewer=player, campaign_id=other.pk),
        start="2027-01-09T10:00",
        time_zone="Asia/Tokyo",
        duration_minutes=60,
        rrule="FREQ=MONTHLY",
    )
    url = _feed_url(player)
    cal = icalendar.Calendar.from_ical(Client().get(url).content)
    assert {str(e["SUMMARY"]).split(":")[0] for e in cal.walk("VEVENT")} == {"Vesper Run", "Side Quest"}
    assert sorted(str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")) == ["Asia/Tokyo", "Europe/Berlin"]

    campaign.memberships.filter(user=player).delete()  # the player leaves Vesper Run
    body = Client().get(url).content.decode()
    assert "Vesper Run" not in body and "Bring dice" not in body and schedule.uid not in body
    assert "Side Quest" in body


def _assert_nothing(response, schedule):
    assert response.status_code == 404
    text = response.content.decode()
    assert "Vesper Run" not in text and schedule.uid not in text and "BEGIN:VCALENDAR" not in text


def test_revoked_rotated_unknown_and_left_feeds_are_404(schedule, campaign, player, caplog):
    client = Client()
    feed, token = services.feed_create(user=player, campaign_id=campaign.pk)
    url = f"/calendar/{token}.ics"
    assert client.get(url).status_code == 200
    new_feed, new_token = services.feed_rotate(user=player, feed_id=feed.pk)
    with caplog.at_level(logging.DEBUG):
        _assert_nothing(client.get(url), schedule)  # the rotated-away token
    # Never logged, not even as a 404's path (Django logs every 4xx with its path).
    assert token not in caplog.text
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert client.get(f"/calendar/{new_token}.ics").status_code == 200
    services.feed_revoke(user=player, feed_id=new_feed.pk)
    _assert_nothing(client.get(f"/calendar/{new_token}.ics"), schedule)
    for junk in ("x" * 43, "not-a-token", "a" * 500, "%00" * 30):
        _assert_nothing(client.get(f"/calendar/{junk}.ics"), schedule)
    # Only the hash is stored.
    assert not CalendarFeed.objects.filter(token_hash=new_token).exists()
    assert CalendarFeed.objects.filter(token_hash=CalendarFeed.hash(new_token)).exists()

    _feed, live = services.feed_create(user=player, campaign_id=campaign.pk)
    campaign.memberships.filter(user=player).delete()  # a former member
    _assert_nothing(client.get(f"/calendar/{live}.ics"), schedule)


def test_tokens_belong_to_their_owner(schedule, campaign, gm, player, outsider):
    """An outsider cannot make a feed of someone else's campaign, nor rotate or revoke someone
    else's feed; a GM's token shows the GM's feed, never anything of the outsider."""
    from campaigns.errors import NotFound

    with pytest.raises(NotFound):
        services.feed_create(user=outsider, campaign_id=campaign.pk)
    feed, token = services.feed_create(user=player, campaign_id=campaign.pk)
    for act in (services.feed_revoke, services.feed_rotate):
        with pytest.raises(NotFound):
            act(user=outsider, feed_id=feed.pk)
    assert Client().get(f"/calendar/{token}.ics").status_code == 200  # still live

    outsider_client = Client()
    outsider_client.force_login(outsider)
    for action in ("create", "rotate", "revoke"):
        response = outsider_client.post(
            "/account/calendar/", {"action": action, "campaign": campaign.pk, "feed": feed.pk}
        )
        assert response.status_code == 404, action
        assert "Vesper Run" not in response.content.decode()
    assert CalendarFeed.objects.filter(user=outsider).count() == 0


def test_the_feed_page_shows_a_new_link_once_and_rotate_revoke_work(schedule, campaign, player):
    client = Client()
    client.force_login(player)
    response = client.post(
        "/account/calendar/", {"action": "create", "campaign": campaign.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    text = response.content.decode()
    feed = CalendarFeed.objects.get(user=player)
    https = next(v for v in text.split('value="')[1:] if v.startswith("http")).split('"')[0]
    webcal = next(v for v in text.split('value="')[1:] if v.startswith("webcal://")).split('"')[0]
    assert https.startswith("http://testserver/calendar/") and https.endswith(".ics")
    assert webcal == "webcal://" + https.split("://", 1)[1]
    assert Client().get(https.replace("http://testserver", "")).status_code == 200
    page = client.get("/account/calendar/").content.decode()
    assert https not in page and f"…{feed.hint}" in page  # shown once
    client.post("/account/calendar/", {"action": "revoke", "feed": feed.pk})
    assert Client().get(https.replace("http://testserver", "")).status_code == 404


@pytest.mark.parametrize(
    ("zone_name", "start", "rule"),
    [
        ("Europe/Berlin", "2027-03-25T02:30", "FREQ=DAILY;COUNT=6"),  # through the spring gap
        ("Europe/Berlin", "2027-10-28T02:30", "FREQ=DAILY;COUNT=6"),  # through the autumn fold
        ("America/New_York", "2027-01-31T23:30", "FREQ=MONTHLY;BYDAY=-1SU"),
        ("Australia/Lord_Howe", "2027-03-01T01:45", "FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,FR"),  # 30-minute DST
    ],
)
def test_clients_and_site_agree_at_the_edges_of_dst(campaign, gm, player, zone_name, start, rule):
    """Starts agree everywhere, the gap and the fold included. Ends agree too, except for a
    session that spans the clock change itself: RFC 5545 §3.8.5.3 gives every instance the
    same *exact* duration (DTEND - DTSTART), which the site keeps (90 real minutes), while
    recurring-ical-events adds it to the wall clock (Python's aware arithmetic), from a wall
    time that may not exist (the gap)."""
    services.schedule_create(
        membership=_gm(campaign, gm), start=start, time_zone=zone_name, duration_minutes=90, rrule=rule
    )
    window = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    body = Client().get(_feed_url(player, campaign.pk)).content
    site = _site(campaign, player, window=window)
    client = _client_view(body, cancelled=False, window=window)
    assert site and [s for s, _ in client] == [s for s, _ in site]
    zone = ZoneInfo(zone_name)
    for (start_at, site_end), (_, client_end) in zip(site, client, strict=True):
        assert site_end - start_at == timedelta(minutes=90)
        spans_change = start_at.astimezone(zone).utcoffset() != site_end.astimezone(zone).utcoffset()
        in_gap = start_at.astimezone(zone).strftime("%H:%M") != start[11:]  # 02:30 didn't exist
        assert client_end == site_end or spans_change or in_gap


def test_the_feed_reads_a_fixed_number_of_queries_however_many_campaigns(content, player):
    """No N+1: a user in 2 or in 8 campaigns, each with a schedule and a change, costs the same
    queries (the feed is what calendar clients poll)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _feed, token = services.feed_create(user=player)
    counts = []
    for total in (2, 8):
        while player.memberships.count() < total:
            n = player.memberships.count()
            created = campaign_services.campaign_create(user=player, name=f"Arc {n}", pack_slug="starter")
            membership = campaign_selectors.membership_get(viewer=player, campaign_id=created.pk)
            schedule = services.schedule_create(
                membership=membership,
                start="2027-01-07T19:30",
                time_zone="Europe/Berlin",
                duration_minutes=60,
                rrule="FREQ=WEEKLY",
            )
            services.occurrence_cancel(membership=membership, schedule=schedule, original="2027-01-14")
        with CaptureQueriesContext(connection) as queries:
            response = Client().get(f"/calendar/{token}.ics")
        assert response.status_code == 200 and response.content.count(b"BEGIN:VEVENT") == 2 * total
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_published_vtimezones_give_the_real_offsets(campaign, gm, player):
    """A client without its own zone database (or Outlook, which trusts the VTIMEZONE) must get
    the same offsets as the IANA database for every month the schedule can reach."""
    for zone_name in ("Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe"):
        services.schedule_create(
            membership=_gm(campaign, gm), start="2027-01-07T19:30", time_zone=zone_name, duration_minutes=60
        )
    cal = icalendar.Calendar.from_ical(Client().get(_feed_url(player, campaign.pk)).content)
    published = {str(tz["TZID"]): tz.to_tz() for tz in cal.walk("VTIMEZONE")}
    assert set(published) == {"Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe"}
    for zone_name, tz in published.items():
        real = ZoneInfo(zone_name)
        for year in range(2026, 2038):
            for month in range(1, 13):
                for day in (1, 15):
                    moment = datetime(year, month, day, 12, 0)
                    assert moment.replace(tzinfo=tz).utcoffset() == moment.replace(tzinfo=real).utcoffset(), (
                        zone_name,
                        moment,
                    )
