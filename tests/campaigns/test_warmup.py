"""The pre-session warm-up (issue 16 part 4): once per occurrence GTW_WARMUP_MINUTES before, every
provider role checked with a tiny real call, the recap's recall prefetched, the image hook
asked (a fake receiver here), and the result shown to the GM only — or exactly what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns import selectors
from campaigns.scheduling import services as scheduling
from campaigns.scheduling.models import WarmupRun
from campaigns.scheduling.signals import warmup_requested
from campaigns.scheduling.warmup import warmup_scan
from memory import services as memory_services

pytestmark = pytest.mark.django_db

# 2027-01-07 19:30 in Berlin is 18:30 UTC.
START = datetime(2027, 1, 7, 18, 30, tzinfo=UTC)


def _m(campaign, user):
    return selectors.membership_get(viewer=user, campaign_id=campaign.pk)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (the queued warm-up job, inline in tests) as a commit would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def schedule(campaign, gm):
    return scheduling.schedule_create(
        membership=_m(campaign, gm),
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )


@pytest.fixture
def scene_hook():
    """A stand-in for the images app: it prefetches "the likely scene" and says so."""
    calls = []

    def receiver(sender, *, campaign_id, run_id, starts_at, **kwargs):
        calls.append((campaign_id, run_id, starts_at))
        return [{"check": "scene image", "ok": True, "detail": "prefetched the docking bay", "ms": 4.0}]

    warmup_requested.connect(receiver, dispatch_uid="test-scene-hook")
    yield calls
    warmup_requested.disconnect(dispatch_uid="test-scene-hook")


def _checks(run):
    return {c["check"]: c for c in run.checks}


def test_the_warmup_runs_once_per_occurrence_ten_minutes_before(
    schedule, campaign, gm, scene_hook, committed
):
    memory_services.memory_record(membership=_m(campaign, gm), text="The relay on Vesper was sabotaged.")

    assert committed(warmup_scan, now=datetime(2027, 1, 7, 18, 15, tzinfo=UTC)) == 0  # too early
    assert committed(warmup_scan, now=datetime(2027, 1, 7, 18, 21, tzinfo=UTC)) == 1
    # A second worker, a later tick, a restart: the same occurrence is never warmed twice.
    assert committed(warmup_scan, now=datetime(2027, 1, 7, 18, 21, tzinfo=UTC)) == 0
    assert committed(warmup_scan, now=datetime(2027, 1, 7, 18, 29, tzinfo=UTC)) == 0

    run = WarmupRun.objects.get()
    assert (run.campaign_id, run.schedule_id, run.starts_at) == (campaign.pk, schedule.pk, START)
    assert run.status == WarmupRun.Status.OK, run.checks
    checks = _checks(run)
    assert checks["narrator provider"]["ok"] and "offline" in checks["narrator provider"]["detail"]
    assert "answered" in checks["narrator provider"]["detail"]
    assert checks["embedder provider"]["ok"] and "dimensions" in checks["embedder provider"]["detail"]
    assert checks["recap recall"]["ok"] and "1 memory ready" in checks["recap recall"]["detail"]
    assert checks["scene image"] == {
        "check": "scene image",
        "ok": True,
        "detail": "prefetched the docking bay",
        "ms": 4.0,
    }
    assert scene_hook == [(campaign.pk, run.pk, START)]
    # The next week's session gets its own warm-up.
    assert committed(warmup_scan, now=datetime(2027, 1, 14, 18, 25, tzinfo=UTC)) == 1


def test_no_warmup_for_an_archived_campaign_or_when_turned_off(schedule, campaign, settings):
    settings.GTW_WARMUP_MINUTES = 0
    assert warmup_scan(now=datetime(2027, 1, 7, 18, 25, tzinfo=UTC)) == 0
    settings.GTW_WARMUP_MINUTES = 10
    type(campaign).objects.filter(pk=campaign.pk).update(archived=True)
    assert warmup_scan(now=datetime(2027, 1, 7, 18, 25, tzinfo=UTC)) == 0
    assert not WarmupRun.objects.exists()


def test_a_broken_provider_and_a_failing_hook_are_shown_as_what_is_wrong(
    campaign, gm, settings, scene_hook, committed
):
    settings.GTW_LLM = {
        **settings.GTW_LLM,
        "narrator": {**settings.GTW_LLM["narrator"], "provider": "nosuchvendor"},
    }

    def broken(sender, **kwargs):
        raise RuntimeError("image cache unreachable")

    warmup_requested.connect(broken, dispatch_uid="test-broken-hook")
    try:
        run = committed(scheduling_warmup_now, campaign, gm)
    finally:
        warmup_requested.disconnect(dispatch_uid="test-broken-hook")

    run.refresh_from_db()
    assert run.status == WarmupRun.Status.PROBLEMS
    checks = _checks(run)
    narrator = checks["narrator provider"]
    assert narrator["ok"] is False
    assert "nosuchvendor" in narrator["detail"]
    failed = [c for c in run.checks if not c["ok"]]
    assert any("image cache unreachable" in c["detail"] for c in failed)
    # The other checks still ran.
    assert checks["summarizer provider"]["ok"] is True
    assert checks["scene image"]["ok"] is True


def scheduling_warmup_now(campaign, gm):
    from campaigns.scheduling.warmup import warmup_request

    return warmup_request(membership=_m(campaign, gm))


def test_warmup_api_is_the_gms(campaign, gm_client, player_client, outsider_client, committed):
    url = f"/api/campaigns/{campaign.pk}/warmup"
    assert gm_client.get(url).status_code == 204  # none yet
    response = committed(gm_client.post, url, {}, content_type="application/json")
    assert response.status_code == 202, response.content
    body = gm_client.get(url).json()
    assert body["id"] == response.json()["id"]
    assert body["status"] in ("ok", "problems")
    assert any(c["check"] == "narrator provider" for c in body["checks"])
    # Provider names and errors are engine internals: players are refused, outsiders see nothing.
    assert player_client.get(url).status_code == 403
    assert player_client.post(url, {}, content_type="application/json").status_code == 403
    assert outsider_client.get(url).status_code == 404
    assert outsider_client.post(url, {}, content_type="application/json").status_code == 404
    assert WarmupRun.objects.count() == 1


def test_warmup_panel_and_button_on_the_campaign_page(
    campaign, gm_client, player_client, outsider_client, committed
):
    page = f"/campaigns/{campaign.pk}/"
    button = f"/campaigns/{campaign.pk}/schedule/warmup"
    assert "Run warm-up now" in gm_client.get(page).content.decode()
    assert committed(gm_client.post, button).status_code == 302
    html = gm_client.get(page).content.decode()
    assert "narrator provider" in html and "warmup-checks" in html
    # The player's page has no warm-up, and their button press runs nothing.
    player_html = player_client.get(page).content.decode()
    assert "Warm-up" not in player_html and "narrator provider" not in player_html
    assert player_client.post(button).status_code == 302
    assert outsider_client.post(button).status_code == 404
    assert WarmupRun.objects.count() == 1


def test_the_warmup_scan_is_a_django_q_schedule_created_once(db):
    from django_q.models import Schedule

    from campaigns.scheduling.apps import ensure_upcoming_scan
    from campaigns.scheduling.warmup import WARMUP_FUNC, WARMUP_SCAN

    ensure_upcoming_scan()  # again, as every `migrate` does: still one
    rows = Schedule.objects.filter(func=WARMUP_FUNC)
    assert rows.count() == 1
    assert (rows.get().name, rows.get().minutes, rows.get().repeats) == (WARMUP_SCAN, 1, -1)
