"""The reminder webhook (issue 16, part 3): signed (HMAC-SHA256 over timestamp and body), once
per notice, retried with backoff, a hanging receiver times out, a private address is refused
unless the operator allows it — and every outcome is in the GM's log. The receiver is a real
HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns import selectors as campaign_selectors
from campaigns.errors import Forbidden, Invalid
from campaigns.scheduling import services, tasks, webhooks
from campaigns.scheduling.models import CampaignWebhook, ReminderDelivery, UpcomingNotice

FIRST = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)


class Receiver:
    def __init__(self, answers=(200,), delay=0.0):
        self.answers, self.delay, self.calls = list(answers), delay, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls.append((self.headers, body))  # case-insensitive lookups
                time.sleep(outer.delay)
                status = outer.answers.pop(0) if len(outer.answers) > 1 else outer.answers[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def gm_seat(campaign, gm):
    return campaign_selectors.membership_get(viewer=gm, campaign_id=campaign.pk)


@pytest.fixture
def notice(gm_seat):
    schedule = services.schedule_create(
        membership=gm_seat,
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )
    return UpcomingNotice.objects.create(
        schedule=schedule, occurrence=FIRST, starts_at=FIRST, lead_minutes=60
    )


@pytest.fixture
def allow_local(settings):
    settings.GTW_WEBHOOK_ALLOW_PRIVATE = True
    settings.GTW_WEBHOOK_BACKOFF_S = 0.0
    settings.GTW_WEBHOOK_TIMEOUT_S = 0.5
    settings.GTW_WEBHOOK_RETRIES = 2


def test_a_signed_post_once_per_notice(
    allow_local, receiver, gm_seat, notice, campaign, django_capture_on_commit_callbacks
):
    target = receiver()
    hook = webhooks.webhook_set(membership=gm_seat, url=target.url)
    # Through the real path: the scan sends the notice, the reminders listener posts it.
    notice.delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.upcoming_scan(now=FIRST - timedelta(minutes=30)) == 1
    assert len(target.calls) == 1
    headers, body = target.calls[0]
    stamp, signature = (part.split("=", 1)[1] for part in headers["X-GTW-Signature"].split(","))
    expected = hmac.new(hook.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert abs(int(stamp) - time.time()) < 300
    payload = json.loads(body)
    assert payload["type"] == "SessionUpcoming" and payload["campaign"]["id"] == campaign.pk
    assert payload["starts_at"] == "2027-01-07T18:30:00+00:00" and payload["lead_minutes"] == 60
    assert "@example.com" not in body.decode()  # no member addresses
    again = UpcomingNotice.objects.get()
    assert webhooks.webhook_send(again.pk) is None  # once per notice
    assert len(target.calls) == 1
    row = ReminderDelivery.objects.get(channel="webhook")
    assert (row.status, row.attempts) == ("sent", 1)


def test_failures_are_retried_with_backoff_and_logged(allow_local, receiver, gm_seat, notice):
    target = receiver(answers=(500, 502, 200))
    webhooks.webhook_set(membership=gm_seat, url=target.url)
    waits = []
    assert webhooks.webhook_send(notice.pk, sleep=waits.append) == "sent"
    assert len(target.calls) == 3 and waits == [0.0, 0.0]
    row = ReminderDelivery.objects.get(channel="webhook")
    assert (row.status, row.attempts) == ("sent", 3)


def test_backoff_doubles(settings, receiver, gm_seat, notice):
    settings.GTW_WEBHOOK_ALLOW_PRIVATE, settings.GTW_WEBHOOK_BACKOFF_S, settings.GTW_WEBHOOK_RETRIES = (
        True,
        1.5,
        3,
    )
    target = receiver(answers=(503,))
    webhooks.webhook_set(membership=gm_seat, url=target.url)
    waits = []
    assert webhooks.webhook_send(notice.pk, sleep=waits.append) == "failed"
    assert waits == [1.5, 3.0, 6.0] and len(target.calls) == 4
    row = ReminderDelivery.objects.get(channel="webhook")
    assert (row.status, row.attempts, row.error) == ("failed", 4, "HTTP 503")


def test_a_hanging_receiver_times_out(allow_local, receiver, gm_seat, notice, settings):
    settings.GTW_WEBHOOK_RETRIES = 1
    target = receiver(delay=2.0)
    webhooks.webhook_set(membership=gm_seat, url=target.url)
    assert webhooks.webhook_send(notice.pk, sleep=lambda s: None) == "failed"
    row = ReminderDelivery.objects.get(channel="webhook")
    assert row.attempts == 2 and "timed out" in row.error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
        "http://192.168.0.10/",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
        "not a url",
        "http://" + "a" * 600,
    ],
)
def test_private_and_bad_urls_are_refused_and_nothing_saved(gm_seat, url):
    with pytest.raises(Invalid):
        webhooks.webhook_set(membership=gm_seat, url=url)
    assert not CampaignWebhook.objects.exists()


def test_only_the_gm_sets_it(allow_local, campaign, player, gm_client, player_client, outsider_client):
    seat = campaign_selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    with pytest.raises(Forbidden):
        webhooks.webhook_set(membership=seat, url="https://example.com/hook")
    url = f"/campaigns/{campaign.pk}/schedule/webhook"
    assert player_client.post(url, {"url": "https://example.com/hook"}).status_code == 403
    assert outsider_client.post(url, {"url": "https://example.com/hook"}).status_code == 404
    assert gm_client.post(url, {"url": "http://127.0.0.1:1/hook"}).status_code == 302
    hook = CampaignWebhook.objects.get()
    page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert hook.secret in page
    assert hook.secret not in player_client.get(f"/campaigns/{campaign.pk}/").content.decode()
