"""Per-member reminder preferences (issue 16 part 3, completed): email on/off and at which of the
site's lead times, the dashboard notice on/off — each member's own, through the API and the
campaign page; bad input is refused and changes nothing. Clocks are fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from campaigns import selectors as campaign_selectors
from campaigns.scheduling import selectors, services, tasks
from campaigns.scheduling.models import ReminderPreference

pytestmark = pytest.mark.django_db
FIRST = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)  # 19:30 in Berlin


@pytest.fixture
def schedule(campaign, gm):
    return services.schedule_create(
        membership=campaign_selectors.membership_get(viewer=gm, campaign_id=campaign.pk),
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )


def _scan(capture, minutes_before) -> int:
    with capture(execute=True):
        return tasks.upcoming_scan(now=FIRST - timedelta(minutes=minutes_before))


def _put(client, campaign, body):
    return client.put(f"/api/campaigns/{campaign.pk}/reminders", body, content_type="application/json")


def test_a_member_chooses_the_lead_times_of_their_email(
    schedule, campaign, gm, player, player_client, django_capture_on_commit_callbacks
):
    assert player_client.get(f"/api/campaigns/{campaign.pk}/reminders").json() == {
        "email": True,
        "notice": True,
        "lead_minutes": [1440, 60],
        "site_lead_minutes": [1440, 60],
    }
    assert _put(player_client, campaign, {"email": True, "lead_minutes": [60]}).json()["lead_minutes"] == [60]

    _scan(django_capture_on_commit_callbacks, minutes_before=23 * 60)  # the day-before notice
    assert [m.to[0] for m in mail.outbox] == [gm.email]
    _scan(django_capture_on_commit_callbacks, minutes_before=50)  # the hour-before notice
    assert sorted(m.to[0] for m in mail.outbox[1:]) == sorted([gm.email, player.email])


def test_bad_lead_times_are_refused_and_change_nothing(schedule, campaign, player, player_client):
    _put(player_client, campaign, {"email": True, "lead_minutes": [60]})
    for body in (
        {"email": True, "lead_minutes": [30]},
        {"email": True, "lead_minutes": []},
        {"email": True, "lead_minutes": "soon"},
    ):
        response = _put(player_client, campaign, body)
        assert response.status_code in (400, 422), body
    pref = ReminderPreference.objects.get(membership__user=player)
    assert (pref.email, pref.lead_minutes) == (True, [60])


def test_choosing_every_lead_time_is_stored_as_all_of_them(campaign, player, player_client):
    assert _put(player_client, campaign, {"email": True, "lead_minutes": [60, 1440]}).status_code == 200
    assert ReminderPreference.objects.get(membership__user=player).lead_minutes == []


def test_the_dashboard_notice_can_be_turned_off_for_one_member_only(
    schedule, campaign, gm, player, player_client, django_capture_on_commit_callbacks
):
    _put(player_client, campaign, {"email": True, "notice": False})
    _scan(django_capture_on_commit_callbacks, minutes_before=50)
    now = FIRST - timedelta(minutes=40)
    assert [u.noticed for u in selectors.viewer_upcoming(viewer=gm, now=now)][:1] == [True]
    assert [u.noticed for u in selectors.viewer_upcoming(viewer=player, now=now)][:1] == [False]


def test_the_campaign_page_form_sets_all_three(schedule, campaign, player, player_client, outsider_client):
    url = f"/campaigns/{campaign.pk}/schedule/reminders"
    page = player_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'name="lead" value="1440"' in page and 'name="notice"' in page
    response = player_client.post(url, {"leads": "1", "email": "on", "lead": ["1440"]})
    assert response.status_code == 302
    pref = ReminderPreference.objects.get(membership__user=player)
    assert (pref.email, pref.notice, pref.lead_minutes) == (True, False, [1440])
    # A lead the site doesn't offer: refused with a message, nothing changed.
    player_client.post(url, {"leads": "1", "email": "on", "notice": "on", "lead": ["5"]})
    pref.refresh_from_db()
    assert (pref.notice, pref.lead_minutes) == (False, [1440])
    assert outsider_client.post(url, {"leads": "1", "email": "on"}).status_code == 404
    assert (
        outsider_client.put(
            f"/api/campaigns/{campaign.pk}/reminders", {"email": False}, content_type="application/json"
        ).status_code
        == 404
    )
    assert outsider_client.get(f"/api/campaigns/{campaign.pk}/reminders").status_code == 404
