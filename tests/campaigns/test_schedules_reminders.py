"""Email reminders before a session (issue 16, part 3, the email slice): one per occurrence,
lead time and member, with a "Previously…" recap that never carries a whisper; members can
turn them off; the GM reads the delivery log, failures included. Clocks are fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from campaigns import selectors as campaign_selectors
from campaigns.models import Event
from campaigns.scheduling import reminders, services, tasks
from campaigns.scheduling.models import ReminderDelivery, UpcomingNotice

FIRST = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)  # 19:30 in Berlin


@pytest.fixture
def schedule(campaign, gm):
    return services.schedule_create(
        membership=campaign_selectors.membership_get(viewer=gm, campaign_id=campaign.pk),
        title="Main story",
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )


def _scan(django_capture_on_commit_callbacks, minutes_before=50) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return tasks.upcoming_scan(now=FIRST - timedelta(minutes=minutes_before))


def test_each_member_gets_one_reminder_with_the_recap(
    schedule, session, gm, player, django_capture_on_commit_callbacks
):
    Event.objects.create(session=session, seq=900, type="Narration", payload={"text": "The relay went dark."})
    Event.objects.create(
        session=session,
        seq=901,
        type="Narration",
        payload={"text": "A secret for Kira only."},
        audience=[player.pk],
    )
    assert _scan(django_capture_on_commit_callbacks) == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted([gm.email, player.email])
    message = next(m for m in mail.outbox if m.to == [player.email])
    assert "Vesper Run" in message.subject and "19:30 (Europe/Berlin)" in message.subject
    assert "Previously…" in message.body and "The relay went dark." in message.body
    assert "secret" not in message.body  # a whisper is nobody else's recap
    # A second worker, a retry, a restart: nothing more.
    notice = UpcomingNotice.objects.get()
    assert reminders.reminders_send(notice.pk) == 0
    assert _scan(django_capture_on_commit_callbacks, minutes_before=40) == 0
    assert len(mail.outbox) == 2
    assert ReminderDelivery.objects.filter(status="sent").count() == 2


def test_a_member_who_turned_them_off_gets_none(
    schedule, campaign, player, player_client, outsider_client, django_capture_on_commit_callbacks
):
    response = player_client.post(f"/campaigns/{campaign.pk}/schedule/reminders", {})  # unchecked
    assert response.status_code == 302
    assert (
        outsider_client.post(f"/campaigns/{campaign.pk}/schedule/reminders", {"email": "on"}).status_code
        == 404
    )
    _scan(django_capture_on_commit_callbacks)
    assert player.email not in [m.to[0] for m in mail.outbox] and len(mail.outbox) == 1
    page = player_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'name="email" checked' not in page


def test_the_gm_reads_the_delivery_log_failures_included(
    schedule, campaign, gm_client, player_client, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.campaigns.test_schedules_reminders.BrokenBackend"
    _scan(django_capture_on_commit_callbacks)
    rows = list(ReminderDelivery.objects.all())
    assert len(rows) == 2 and {r.status for r in rows} == {"failed"}
    assert "SMTP server unreachable" in rows[0].error
    gm_page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Reminder log" in gm_page and "SMTP server unreachable" in gm_page
    assert "Reminder log" not in player_client.get(f"/campaigns/{campaign.pk}/").content.decode()


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server unreachable")
