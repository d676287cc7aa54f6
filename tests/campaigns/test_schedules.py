"""Session schedules (issue 16, part 1): the GM's form and the API, the members' next sessions
in their own zone, bad input refused with nothing half-saved, and SessionUpcoming notices sent
once per occurrence and lead time. Clocks are fixed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from campaigns import selectors as campaign_selectors
from campaigns.errors import Forbidden, Invalid
from campaigns.scheduling import selectors, services, tasks
from campaigns.scheduling.models import ScheduleOverride, SessionSchedule, UpcomingNotice
from campaigns.scheduling.signals import session_upcoming

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
GOOD = {
    "title": "Main story",
    "start": "2027-01-07T19:30",
    "time_zone": "Europe/Berlin",
    "duration_minutes": 180,
    "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
    "exdates": ["2027-02-18"],
}


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch):
    monkeypatch.setattr(selectors, "utc_now", lambda: NOW)


def _gm(campaign, gm):
    return campaign_selectors.membership_get(viewer=gm, campaign_id=campaign.pk)


def _api(client, method, url, body=None):
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data, content_type="application/json")


# ---- bad input ---------------------------------------------------------------------------

BAD = [
    ({"rrule": "FREQ=FORTNIGHTLY"}, "FREQ"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "BYDAY takes weekdays"),
    ({"rrule": "garbage"}, "NAME=VALUE"),
    ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "never meet"),
    ({"rrule": "FREQ=MONTHLY;BYDAY=TH;BYSETPOS=6", "exdates": []}, "BYSETPOS"),
    ({"rrule": "FREQ=DAILY;INTERVAL=0", "exdates": []}, "INTERVAL"),
    ({"rrule": "FREQ=HOURLY", "exdates": []}, "refused"),
    ({"rrule": "FREQ=WEEKLY;UNTIL=20260101", "exdates": []}, "yields no session"),
    ({"rrule": "FREQ=WEEKLY;COUNT=2;UNTIL=20270401", "exdates": []}, "COUNT or UNTIL"),
    ({"rrule": "FREQ=SECONDLY", "exdates": []}, "refused"),
    ({"rrule": "FREQ=MINUTELY;INTERVAL=30", "exdates": []}, "refused"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=FR", "exdates": []}, "not a day of the repeat rule"),
    ({"rrule": "FREQ=WEEKLY;X-FOO=1"}, "not supported"),
    ({"rrule": "FREQ=WEEKLY;" + "BYMONTH=1;" * 100}, "too long"),
    ({"time_zone": "Mars/Olympus_Mons"}, "Unknown time zone"),
    ({"time_zone": "localtime"}, "Unknown time zone"),
    ({"time_zone": ""}, "Unknown time zone"),
    ({"duration_minutes": 0}, "1 minute to 24 hours"),
    ({"duration_minutes": 60 * 24 * 365 * 3}, "1 minute to 24 hours"),
    ({"duration_minutes": -5}, "1 minute to 24 hours"),
    ({"start": "next thursday"}, "not a date and time"),
    ({"start": "2027-01-07T19:30+01:00"}, "without an offset"),
    ({"start": "1600-01-06T19:30", "rrule": "", "exdates": []}, "between"),
    ({"notes": "x" * 2001}, "at most 2000"),
    ({"title": "t" * 121}, "at most 120"),
    ({"notes": "nul \x00 byte"}, "NUL"),
    ({"exdates": ["2027-02-19"]}, "not a session of this schedule"),
    ({"exdates": ["the 18th"]}, "not a date and time"),
    ({"rrule": "FREQ=WEEKLY;COUNT=2", "exdates": ["2027-01-07", "2027-01-14"]}, "yields nothing"),
]


@pytest.mark.parametrize(("change", "says"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_schedules_are_refused_with_a_clear_message_and_nothing_saved(campaign, gm, change, says):
    with pytest.raises(Invalid) as refused:
        services.schedule_create(membership=_gm(campaign, gm), **{**GOOD, **change})
    assert says.lower() in refused.value.message.lower(), refused.value.message
    assert refused.value.status == 422
    assert not SessionSchedule.objects.exists()


def test_a_rule_without_an_end_is_allowed_and_bounded_where_listed(campaign, gm, player):
    schedule = services.schedule_create(membership=_gm(campaign, gm), **{**GOOD, "rrule": "FREQ=DAILY"})
    found = selectors.occurrences([schedule], start=NOW, end=NOW + timedelta(days=3650), tz=None, limit=500)
    assert len(found) == 500  # listed, but bounded
    assert selectors.viewer_upcoming(viewer=player, now=NOW, limit=8)[0].occurrence.start == datetime(
        2027, 1, 7, 18, 30, tzinfo=UTC
    )


def test_overrides_are_bounded(campaign, gm, settings):
    settings.GTW_CALENDAR = {**settings.GTW_CALENDAR, "max_overrides": 3}
    membership = _gm(campaign, gm)
    schedule = services.schedule_create(
        membership=membership, **{**GOOD, "rrule": "FREQ=WEEKLY", "exdates": []}
    )
    for day in ("07", "14", "21"):
        services.occurrence_cancel(membership=membership, schedule=schedule, original=f"2027-01-{day}")
    with pytest.raises(Invalid) as refused:
        services.occurrence_cancel(membership=membership, schedule=schedule, original="2027-01-28")
    assert "restore some" in refused.value.message
    assert ScheduleOverride.objects.filter(schedule=schedule).count() == 3
    # Changing one already changed is not a new override.
    services.occurrence_move(
        membership=membership, schedule=schedule, original="2027-01-07", start="2027-01-08T19:30"
    )


def test_occurrence_changes_name_a_real_session(campaign, gm):
    membership = _gm(campaign, gm)
    schedule = services.schedule_create(membership=membership, **GOOD)
    for original in ("2027-01-08T19:30", "2027-01-14", "2027-02-18", "tomorrow"):
        with pytest.raises(Invalid):
            services.occurrence_cancel(membership=membership, schedule=schedule, original=original)
    with pytest.raises(Invalid):
        services.occurrence_move(
            membership=membership, schedule=schedule, original="2027-01-21", start="2027-01-22T19:30+02:00"
        )
    assert not ScheduleOverride.objects.exists()
    # Moving a session back where the rule puts it undoes the move.
    services.occurrence_move(
        membership=membership, schedule=schedule, original="2027-01-21", start="2027-01-22T18:00"
    )
    assert ScheduleOverride.objects.count() == 1
    services.occurrence_move(
        membership=membership, schedule=schedule, original="2027-01-21", start="2027-01-21T19:30"
    )
    assert not ScheduleOverride.objects.exists()


def test_a_new_rule_drops_the_changes_of_sessions_it_no_longer_makes(campaign, gm):
    membership = _gm(campaign, gm)
    schedule = services.schedule_create(membership=membership, **GOOD)
    services.occurrence_cancel(membership=membership, schedule=schedule, original="2027-01-21")
    services.occurrence_cancel(membership=membership, schedule=schedule, original="2027-03-04")
    schedule = services.schedule_update(
        membership=membership, schedule=schedule, rrule="FREQ=WEEKLY;BYDAY=TH"
    )
    assert schedule.exdates == ["2027-02-18T19:30:00"]  # still a Thursday of the new rule
    assert ScheduleOverride.objects.count() == 2
    schedule = services.schedule_update(
        membership=membership, schedule=schedule, start="2027-01-08T19:30", rrule="FREQ=WEEKLY;BYDAY=FR"
    )
    assert schedule.exdates == [] and not ScheduleOverride.objects.exists()
    assert schedule.sequence == 2


def test_only_the_gm_writes(campaign, gm, player):
    player_seat = campaign_selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    with pytest.raises(Forbidden):
        services.schedule_create(membership=player_seat, **GOOD)
    schedule = services.schedule_create(membership=_gm(campaign, gm), **GOOD)
    with pytest.raises(Forbidden):
        services.occurrence_cancel(membership=player_seat, schedule=schedule, original="2027-01-21")
    with pytest.raises(Forbidden):
        services.schedule_update(membership=player_seat, schedule=schedule, title="mine now")
    assert SessionSchedule.objects.get().title == "Main story"


# ---- the API -----------------------------------------------------------------------------


def test_api_crud_for_the_gm_read_for_the_player_nothing_for_the_outsider(
    campaign, gm_client, player_client, outsider_client
):
    base = f"/api/campaigns/{campaign.pk}/schedules"
    created = _api(gm_client, "post", base, GOOD)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["rrule"] == GOOD["rrule"] and body["exdates"] == ["2027-02-18T19:30"]
    assert body["upcoming"][0] == {
        "original": "2027-01-07T19:30",
        "start": "2027-01-07T18:30:00Z",
        "end": "2027-01-07T21:30:00Z",
        "moved": False,
        "cancelled": False,
    }
    item = f"{base}/{body['id']}"

    moved = _api(
        gm_client,
        "post",
        f"{item}/occurrences",
        {"action": "move", "original": "2027-01-21T19:30", "start": "2027-01-22T20:00"},
    )
    assert moved.status_code == 200 and moved.json()["overrides"][0]["original"] == "2027-01-21T19:30"
    window = player_client.get(f"{item}/occurrences?start=2027-01-01T00:00&end=2027-02-01T00:00")
    assert [o["start"] for o in window.json()] == ["2027-01-07T18:30:00Z", "2027-01-22T19:00:00Z"]
    assert window.json()[1]["moved"] is True

    patched = _api(gm_client, "patch", item, {"duration_minutes": 150})
    assert patched.status_code == 200 and patched.json()["sequence"] == 1

    listed = player_client.get(base)
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [body["id"]]
    # A player reads but never writes.
    assert _api(player_client, "post", base, GOOD).status_code == 403
    assert _api(player_client, "patch", item, {"title": "x"}).status_code == 403
    assert _api(player_client, "delete", item).status_code == 403
    assert (
        _api(
            player_client, "post", f"{item}/occurrences", {"action": "cancel", "original": "2027-01-07T19:30"}
        ).status_code
        == 403
    )
    # The outsider learns nothing, not even that it exists.
    for method, url, data in (
        ("get", base, None),
        ("post", base, GOOD),
        ("get", item, None),
        ("patch", item, {"title": "x"}),
        ("delete", item, None),
        ("get", f"{item}/occurrences", None),
        ("post", f"{item}/occurrences", {"action": "cancel", "original": "2027-01-07T19:30"}),
    ):
        response = _api(outsider_client, method, url, data)
        assert response.status_code == 404, (method, url)
        assert "Main story" not in response.content.decode()

    assert _api(gm_client, "delete", item).status_code == 204
    assert not SessionSchedule.objects.exists()


def test_api_bad_input_is_a_clear_422(campaign, gm_client):
    base = f"/api/campaigns/{campaign.pk}/schedules"
    for change in ({"rrule": "FREQ=SECONDLY"}, {"time_zone": "Nowhere/Land"}, {"duration_minutes": 0}):
        response = _api(gm_client, "post", base, {**GOOD, **change})
        assert response.status_code == 422, change
        assert response.json()["detail"]
    assert not SessionSchedule.objects.exists()
    created = _api(gm_client, "post", base, GOOD).json()
    bad_window = gm_client.get(
        f"{base}/{created['id']}/occurrences?start=2027-01-01T00:00&end=2030-01-01T00:00"
    )
    assert bad_window.status_code == 422
    bad_move = _api(
        gm_client,
        "post",
        f"{base}/{created['id']}/occurrences",
        {"action": "move", "original": "2027-01-07T19:30"},
    )
    assert bad_move.status_code == 422
    other = _api(gm_client, "get", f"/api/campaigns/{campaign.pk}/schedules/999999")
    assert other.status_code == 404


# ---- pages -------------------------------------------------------------------------------


def test_the_gm_sets_moves_and_cancels_on_the_campaign_page(
    campaign, gm_client, player_client, outsider_client
):
    page = f"/campaigns/{campaign.pk}/"
    assert "Add a schedule" in gm_client.get(page).content.decode()
    response = gm_client.post(
        f"/campaigns/{campaign.pk}/schedule",
        {
            "title": "Main story",
            "start": "2027-01-07T19:30",
            "time_zone": "Europe/Berlin",
            "duration_minutes": "180",
            "repeat": "biweekly",
            "until": "",
            "count": "",
            "exdates": "2027-02-18",
            "notes": "",
        },
    )
    assert response.status_code == 302
    schedule = SessionSchedule.objects.get()
    assert schedule.rrule == "FREQ=WEEKLY;INTERVAL=2" and schedule.exdates == ["2027-02-18T19:30:00"]
    text = gm_client.get(page).content.decode()
    assert "Every other week on Thursday" in text and "Thu 7 Jan 2027, 18:30" in text  # UTC until chosen

    gm_client.post(
        f"/campaigns/{campaign.pk}/schedule/session",
        {
            "schedule": schedule.pk,
            "original": "2027-01-21T19:30",
            "action": "move",
            "start": "2027-01-22T20:00",
        },
    )
    gm_client.post(
        f"/campaigns/{campaign.pk}/schedule/session",
        {"schedule": schedule.pk, "original": "2027-02-04T19:30", "action": "cancel"},
    )
    text = player_client.get(page).content.decode()
    assert "moved" in text and "cancelled" in text
    assert "Add a schedule" not in text and "Change</summary>" not in text  # no GM tools for players

    # A refused form says why and keeps what was there.
    bad = gm_client.post(
        f"/campaigns/{campaign.pk}/schedule",
        {
            "schedule": schedule.pk,
            "start": "2027-01-07T19:30",
            "time_zone": "Mars/Base",
            "duration_minutes": "180",
            "repeat": "weekly",
        },
        follow=True,
    )
    assert "Unknown time zone" in bad.content.decode()
    assert SessionSchedule.objects.get().time_zone == "Europe/Berlin"

    # Players may not write; outsiders get nothing.
    assert (
        player_client.post(f"/campaigns/{campaign.pk}/schedule", {"start": "2027-01-07T19:30"}).status_code
        == 403
    )
    assert (
        player_client.post(
            f"/campaigns/{campaign.pk}/schedule/session",
            {"schedule": schedule.pk, "original": "2027-01-07T19:30", "action": "cancel"},
        ).status_code
        == 403
    )
    for url in (f"/campaigns/{campaign.pk}/schedule", f"/campaigns/{campaign.pk}/schedule/session"):
        assert outsider_client.post(url, {"schedule": schedule.pk, "delete": "1"}).status_code == 404
    assert ScheduleOverride.objects.count() == 2 and SessionSchedule.objects.count() == 1


def test_members_see_the_next_sessions_in_their_own_zone(
    campaign, gm, player, player_client, outsider_client
):
    services.schedule_create(membership=_gm(campaign, gm), **GOOD)
    dashboard = player_client.get("/").content.decode()
    assert "Next sessions" in dashboard
    assert "Thu 7 Jan, 18:30" in dashboard and "Times in UTC." in dashboard  # not chosen yet: UTC, said so
    response = player_client.post(
        "/account/calendar/", {"action": "timezone", "time_zone": "America/New_York", "next": "/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    dashboard = player_client.get("/").content.decode()
    assert "Thu 7 Jan, 13:30" in dashboard and "America/New_York" in dashboard  # 19:30 Berlin
    # After the European DST change but before... New York changed two weeks earlier: 19:30
    # Berlin (CET) on 2027-03-18 is 14:30 in New York (EDT).
    upcoming = selectors.viewer_upcoming(viewer=player, now=datetime(2027, 3, 15, tzinfo=UTC))
    assert upcoming[0].local_start.strftime("%Y-%m-%d %H:%M") == "2027-03-18 14:30"
    bad = player_client.post(
        "/account/calendar/", {"action": "timezone", "time_zone": "Atlantis/Central"}, follow=True
    )
    assert "Unknown time zone" in bad.content.decode()
    assert "Vesper Run" not in outsider_client.get("/").content.decode()


def test_a_campaign_page_without_a_schedule_still_renders_for_every_member(
    campaign, gm_client, player_client
):
    for client in (gm_client, player_client):
        response = client.get(f"/campaigns/{campaign.pk}/")
        assert response.status_code == 200
        assert "No sessions scheduled" in response.content.decode()


def test_admin_checks_a_schedule_like_the_form(campaign, gm, admin_client):
    from django.contrib.admin.sites import site

    from campaigns.scheduling.admin import SessionScheduleForm

    assert SessionSchedule in site._registry
    form = SessionScheduleForm(
        data={
            "campaign": campaign.pk,
            "start_date": "2027-01-07",
            "start_time": "19:30",
            "time_zone": "Europe/Berlin",
            "duration_minutes": 180,
            "rrule": "FREQ=SECONDLY",
            "exdates": "[]",
        }
    )
    assert not form.is_valid() and "refused" in str(form.errors)
    response = admin_client.post(
        "/admin/scheduling/sessionschedule/add/",
        {
            "campaign": campaign.pk,
            "title": "From admin",
            "notes": "",
            "start_date": "2027-01-07",
            "start_time": "19:30",
            "time_zone": "Europe/Berlin",
            "duration_minutes": 180,
            "rrule": "rrule:freq=weekly;until=20270401",
            "exdates": "[]",
            "overrides-TOTAL_FORMS": "0",
            "overrides-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = SessionSchedule.objects.get(title="From admin")
    assert saved.rrule == "FREQ=WEEKLY;UNTIL=20270401T215959Z" and saved.uid


# ---- SessionUpcoming notices -------------------------------------------------------------


@pytest.fixture
def heard():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    session_upcoming.connect(receiver)
    yield calls
    session_upcoming.disconnect(receiver)


def test_notices_once_per_occurrence_and_lead(
    campaign, gm, settings, heard, django_capture_on_commit_callbacks
):
    settings.GTW_CALENDAR = {**settings.GTW_CALENDAR, "lead_minutes": [1440, 60]}
    schedule = services.schedule_create(membership=_gm(campaign, gm), **GOOD)
    first = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.upcoming_scan(now=first - timedelta(days=2)) == 0  # nothing due yet
        assert tasks.upcoming_scan(now=first - timedelta(hours=23)) == 1  # the 24 h notice
        assert tasks.upcoming_scan(now=first - timedelta(hours=22)) == 0  # a second worker, later
        assert tasks.upcoming_scan(now=first - timedelta(minutes=59)) == 1  # the 1 h notice
        assert tasks.upcoming_scan(now=first - timedelta(minutes=30)) == 0  # restart: nothing again
    assert [c["lead_minutes"] for c in heard] == [1440, 60]
    assert heard[0]["campaign_id"] == campaign.pk and heard[0]["starts_at"] == first
    assert UpcomingNotice.objects.filter(schedule=schedule).count() == 2


def test_a_late_scan_sends_only_the_shortest_lead_still_ahead(
    campaign, gm, settings, heard, django_capture_on_commit_callbacks
):
    """Workers down for a day: a session 30 minutes away gets its 1 h notice, not a stale 24 h one."""
    settings.GTW_CALENDAR = {**settings.GTW_CALENDAR, "lead_minutes": [1440, 60]}
    services.schedule_create(membership=_gm(campaign, gm), **GOOD)
    first = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.upcoming_scan(now=first - timedelta(minutes=30)) == 1
    assert [c["lead_minutes"] for c in heard] == [60]


def test_a_notice_another_worker_recorded_is_not_sent_again(
    campaign, gm, heard, django_capture_on_commit_callbacks
):
    schedule = services.schedule_create(membership=_gm(campaign, gm), **GOOD)
    first = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)
    UpcomingNotice.objects.create(schedule=schedule, occurrence=first, starts_at=first, lead_minutes=60)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.upcoming_scan(now=first - timedelta(minutes=10)) == 0
    assert heard == []


def test_moved_and_cancelled_sessions_are_noticed_where_they_now_are(
    campaign, gm, heard, django_capture_on_commit_callbacks
):
    membership = _gm(campaign, gm)
    schedule = services.schedule_create(membership=membership, **GOOD)
    services.occurrence_cancel(membership=membership, schedule=schedule, original="2027-01-07")
    services.occurrence_move(
        membership=membership, schedule=schedule, original="2027-01-21", start="2027-01-22T20:00"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.upcoming_scan(now=datetime(2027, 1, 7, 18, 0, tzinfo=UTC)) == 0  # cancelled
        assert tasks.upcoming_scan(now=datetime(2027, 1, 21, 18, 0, tzinfo=UTC)) == 0  # moved away
        assert tasks.upcoming_scan(now=datetime(2027, 1, 22, 18, 30, tzinfo=UTC)) == 1
    assert heard[0]["starts_at"] == datetime(2027, 1, 22, 19, 0, tzinfo=UTC)
    assert heard[0]["occurrence"] == datetime(2027, 1, 21, 18, 30, tzinfo=UTC)


def test_the_scan_is_a_django_q_schedule_created_once(db):
    from django_q.models import Schedule

    rows = Schedule.objects.filter(func=tasks.UPCOMING_FUNC)
    assert rows.count() == 1
    assert rows.get().name == tasks.UPCOMING_SCAN and rows.get().repeats == -1


def test_a_sent_notice_shows_on_the_members_dashboard(
    campaign, gm, player_client, outsider_client, monkeypatch
):
    services.schedule_create(membership=_gm(campaign, gm), **GOOD)
    first = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)
    monkeypatch.setattr(selectors, "utc_now", lambda: first - timedelta(minutes=50))
    assert "starts in" not in player_client.get("/").content.decode()
    assert tasks.upcoming_scan(now=first - timedelta(minutes=50)) == 1
    assert "starts in" in player_client.get("/").content.decode()
    assert "starts in" not in outsider_client.get("/").content.decode()
