"""The campaign calendar in a real browser (issue 16): the GM, in Berlin, sets a schedule on the
campaign page (the zone field comes filled with the browser's own zone, static/calendar.js);
the player, in New York, sees the next session on their dashboard, switches it to their own
time zone with one click, and copies a private feed link that a calendar client can read.

GTW_SHOTS=1 saves shots/calendar-campaign.png and shots/calendar-dashboard.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 30_000  # a ceiling for any one wait in the browser (a loaded machine), never a pace


def _context(browser, daphne, session_cookie, user, zone):
    context = browser.new_context(base_url=daphne, viewport={"width": 1280, "height": 900}, timezone_id=zone)
    context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": daphne}])
    context.set_default_timeout(TIMEOUT_MS)
    return context


def test_gm_schedules_player_sees_it_in_their_zone_and_copies_the_feed(
    browser, daphne, session_cookie, gm, player, campaign, shot
):
    from playwright.sync_api import expect

    from campaigns.scheduling.models import SessionSchedule

    expect.set_options(timeout=TIMEOUT_MS)
    errors: list[str] = []
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    first_day = (datetime.now(UTC) + timedelta(days=3)).astimezone(berlin).date()
    first = datetime.combine(first_day, datetime.min.time()).replace(hour=19, minute=30, tzinfo=berlin)

    gm_context = _context(browser, daphne, session_cookie, gm, "Europe/Berlin")
    player_context = _context(browser, daphne, session_cookie, player, "America/New_York")
    try:
        page = gm_context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"/campaigns/{campaign.pk}/")
        form = page.locator("details.schedule-new form")
        expect(form.get_by_label("Time zone")).to_have_value("Europe/Berlin")  # from the browser
        form.get_by_label("Title").fill("Main story")
        form.get_by_label("First session").fill(first.strftime("%Y-%m-%dT%H:%M"))
        form.get_by_label("Length (minutes)").fill("180")
        form.get_by_label("Repeats", exact=True).select_option("biweekly")
        form.get_by_role("button", name="Save schedule").click()
        expect(page.get_by_text("Schedule saved.")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Every other week on \w+day"))).to_be_visible()
        schedule = SessionSchedule.objects.get(campaign=campaign)
        assert (schedule.time_zone, schedule.rrule, schedule.duration_minutes) == (
            "Europe/Berlin",
            "FREQ=WEEKLY;INTERVAL=2",
            180,
        )
        # The GM moves the second session by an hour.
        second = page.locator("ul.sessions-upcoming > li").nth(1)
        second.locator("summary").click()
        later = (first + timedelta(days=14, hours=1)).strftime("%Y-%m-%dT%H:%M")
        second.locator("input[type=datetime-local]").fill(later)
        second.get_by_role("button", name="Move").click()
        expect(page.get_by_text("Session moved.")).to_be_visible()
        expect(page.locator("ul.sessions-upcoming .badge", has_text="moved")).to_be_visible()
        shot(page, "calendar-campaign")

        player_page = player_context.new_page()
        player_page.on("pageerror", lambda exc: errors.append(str(exc)))
        player_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=daphne)
        player_page.goto("/")
        card = player_page.locator("section.next-sessions")
        utc_text = first.astimezone(UTC).strftime("%H:%M")
        expect(card.locator("li").first).to_contain_text(utc_text)  # UTC until they choose
        expect(card.get_by_label("Your time zone")).to_have_value("America/New_York")
        card.get_by_role("button", name="Use my time zone").click()
        card = player_page.locator("section.next-sessions")
        local = first.astimezone(new_york)
        expect(card.locator("li").first).to_contain_text(local.strftime("%H:%M"))
        expect(card.locator("li").first).to_contain_text(campaign.name)
        expect(card.get_by_text("Times in America/New_York")).to_be_visible()

        card.get_by_role("button", name="Add to calendar: all my campaigns").click()
        https = card.get_by_label("Calendar feed link (https)")
        expect(https).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/calendar/[\w-]+\.ics$"))
        expect(card.get_by_label("Calendar feed link (webcal)")).to_have_value(re.compile(r"^webcal://"))
        url = https.input_value()
        card.locator(".feed-link button", has_text="Copy").first.click()
        expect(card.locator(".feed-link .copy-status").first).to_have_text("Copied")
        assert player_page.evaluate("navigator.clipboard.readText()") == url
        shot(player_page, "calendar-dashboard")

        feed = player_page.request.get(url)
        assert feed.status == 200 and feed.headers["content-type"] == "text/calendar; charset=utf-8"
        assert (
            "RRULE:FREQ=WEEKLY;INTERVAL=2" in feed.text()
            and "RECURRENCE-ID;TZID=Europe/Berlin" in feed.text()
        )
        assert errors == []
    finally:
        gm_context.close()
        player_context.close()


def test_gm_runs_the_warmup_exports_and_archives(browser, daphne, session_cookie, gm, player, campaign, shot):
    """The GM's pre-session warm-up and the campaign file in a real browser: "Run warm-up now"
    lists every check; the export downloads a campaign file; archiving takes the campaign off
    the dashboard into "Archived". The player sees none of the GM's controls."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    gm_context = _context(browser, daphne, session_cookie, gm, "Europe/Berlin")
    player_context = _context(browser, daphne, session_cookie, player, "America/New_York")
    try:
        page = gm_context.new_page()
        page.goto(f"/campaigns/{campaign.pk}/")
        page.locator("details.warmup summary").click()
        # The warm-up loads every local model (speech, embeddings): slow on a busy machine.
        with page.expect_navigation(timeout=120_000):
            page.get_by_role("button", name="Run warm-up now").click()
        expect(
            page.locator("details.warmup .warmup-checks li", has_text="narrator provider")
        ).to_contain_text("ok")
        page.locator("details.warmup summary").click()
        expect(page.locator("details.warmup summary")).to_contain_text(re.compile("all good|problem"))
        shot(page, "calendar-warmup")

        with page.expect_download() as download:
            page.get_by_role("link", name="Export campaign file").click()
        assert download.value.suggested_filename.endswith(".gtw.json")

        player_page = player_context.new_page()
        player_page.goto(f"/campaigns/{campaign.pk}/")
        expect(player_page.get_by_role("heading", name="Schedule")).to_be_visible()
        expect(player_page.locator("details.warmup")).to_have_count(0)
        expect(player_page.get_by_role("button", name="Archive campaign")).to_have_count(0)

        page.get_by_role("button", name="Archive campaign").click()
        expect(page.get_by_text("is archived")).to_be_visible()
        archived = page.locator("ul.archived-campaigns")
        expect(archived).to_contain_text(campaign.name)
        expect(page.locator("section[aria-labelledby=mine]")).not_to_contain_text(campaign.name)
        shot(page, "calendar-archived")
    finally:
        gm_context.close()
        player_context.close()
