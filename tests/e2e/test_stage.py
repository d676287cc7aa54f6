"""The stage page in a real browser: a moderator (the GM), a speaker and a spectator.

A hand goes up and is approved, the moderator opens a beat window, the speaker acts, the
moderator closes the window, and all three see the GM's ONE summary of the beat. The spectator
watches throughout with no controls and no action box.
"""

from __future__ import annotations

import os
import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 30_000  # a ceiling for any one wait in the browser (a loaded machine), never a pace
# GTW_STAGE_SHOT=/tmp/stage.png saves the moderator's page at the end (and -speaker.png).
SCREENSHOT = os.environ.get("GTW_STAGE_SHOT")


@pytest.fixture
def spectator(db):
    from tests.conftest import _user

    return _user("spectator")


@pytest.fixture
def stage(campaign, characters, gm, spectator):
    from campaigns import selectors, services, teams
    from campaigns.stage import services as stage_services

    gm_membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    invite = services.invite_create(membership=gm_membership, role="spectator")
    services.invite_accept(code=invite.code, user=spectator)
    teams.fireteam_create(membership=gm_membership, name="Red Squad")
    return stage_services.stage_open(membership=gm_membership, title="Town hall")


@pytest.fixture
def pages(browser, daphne, gm, player, spectator, session_cookie):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    made = {}
    for name, user in (("gm", gm), ("player", player), ("spectator", spectator)):
        context = browser.new_context(base_url=daphne, viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": daphne}])
        context.set_default_timeout(TIMEOUT_MS)
        made[name] = context.new_page()
    yield made
    for page in made.values():
        page.context.close()


def test_hand_window_action_and_one_summary_for_everyone(pages, stage, shot):
    from playwright.sync_api import expect

    gm_page, player_page, spectator_page = pages["gm"], pages["player"], pages["spectator"]
    for page in (gm_page, player_page, spectator_page):
        page.goto(f"/sessions/{stage.pk}/stage/")
        expect(page.locator("#conn")).to_have_text("live")
    expect(gm_page.locator("#online-count")).to_have_text("3")

    # The spectator is read-only: no hand to raise, no action box, no moderator controls.
    expect(spectator_page.locator("#me")).to_contain_text("read-only")
    expect(spectator_page.get_by_role("button", name=re.compile("Raise hand"))).to_have_count(0)
    expect(spectator_page.get_by_role("button", name="Open window")).to_have_count(0)

    # The player raises a hand (from the keyboard); the moderator sees it queued and approves.
    raise_hand = player_page.get_by_role("button", name=re.compile("Raise hand"))
    raise_hand.focus()
    player_page.keyboard.press("Enter")
    expect(player_page.locator("#me")).to_contain_text("#1 in the queue")
    queue = gm_page.locator("#roster ol.queue")
    expect(queue).to_contain_text("Kira Vance")
    expect(spectator_page.locator("#roster ol.queue")).to_contain_text("Kira Vance")
    expect(spectator_page.locator("#roster").get_by_role("button")).to_have_count(0)
    gm_page.get_by_role("button", name="Approve Kira Vance").click()
    expect(player_page.locator("#me .badge.role-speaker")).to_be_visible()
    expect(player_page.locator("#my-role")).to_have_text("a speaker")
    expect(spectator_page.locator("#roster ul.speakers")).to_contain_text("Kira Vance")

    # The moderator opens a window (no timer); the speaker's action box appears.
    expect(player_page.locator("#action-text")).to_have_count(0)
    gm_page.get_by_role("button", name="Open window").click()
    expect(player_page.locator("#window-panel")).to_contain_text("beat 1 open")
    action = player_page.get_by_label(re.compile("Your move for beat 1"))
    action.fill("I hack the hangar door panel")
    action.press("Enter")
    expect(gm_page.locator("#log .entry.batched", has_text="I hack the hangar door panel")).to_be_visible()
    expect(player_page.locator("#action-text")).to_have_value("")  # acknowledged: a fresh box
    expect(spectator_page.locator("#action-text")).to_have_count(0)

    # The moderator closes it; everyone gets the one GM summary of the beat, with its roll.
    gm_page.get_by_role("button", name=re.compile("Close window")).click()
    for page in (gm_page, player_page, spectator_page):
        summary = page.locator("#log .entry.batch-summary")
        expect(summary).to_have_count(1)
        expect(summary).to_contain_text("Beat 1")
        expect(summary).to_contain_text("Kira")
        expect(page.locator("#log .entry.streaming")).to_have_count(0)
        expect(page.locator("#log .entry.dice .die-card")).to_have_count(1)
        expect(page.locator("#window-panel")).to_contain_text("Beat 1 is done")
    expect(player_page.locator("#action-box")).to_contain_text("Waiting for a moderator")
    expect(spectator_page.locator("#action-text")).to_have_count(0)
    shot(gm_page, "stage")
    if SCREENSHOT:
        gm_page.screenshot(path=SCREENSHOT, full_page=True)
        player_page.screenshot(path=SCREENSHOT.replace(".png", "-speaker.png"), full_page=True)


def test_a_timed_window_closes_itself_and_a_dropped_network_rejoins(pages, stage):
    """The browser counts a timed window down and asks the server to close it at zero (no
    moderator click); a spectator whose network drops says so and rejoins when it is back,
    missing nothing that happened meanwhile."""
    from playwright.sync_api import expect

    gm_page, spectator_page = pages["gm"], pages["spectator"]
    for page in (gm_page, spectator_page):
        page.goto(f"/sessions/{stage.pk}/stage/")
        expect(page.locator("#conn")).to_have_text("live")

    spectator_page.context.set_offline(True)
    expect(spectator_page.locator("#conn")).to_contain_text("offline")
    gm_page.get_by_label(re.compile("Seconds")).fill("2")
    gm_page.get_by_role("button", name="Open window").click()
    expect(gm_page.locator("#window-countdown")).to_be_visible()
    # Nobody clicks "Close window": the countdown reaches zero and the page asks the server.
    expect(gm_page.locator("#window-panel")).to_contain_text("Beat 1 is done", timeout=TIMEOUT_MS)
    expect(gm_page.locator("#log .entry.batch-summary")).to_have_count(1)

    spectator_page.context.set_offline(False)
    expect(spectator_page.locator("#conn")).to_have_text("live")
    expect(spectator_page.locator("#log .entry.batch-summary")).to_have_count(1)  # caught up, once
    expect(spectator_page.locator("#window-panel")).to_contain_text("Beat 1 is done")
