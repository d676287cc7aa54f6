"""The character sheet in a real browser (issue 13 part 4), at desktop (1280x900) and phone
(390x844) sizes: the player's own sheet open and the others' folded, a level-up arriving live
(log line, level, highlight), the party's stash filling from a reward, a search's finds in the
inventory, and on the phone the action box still on screen."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_play import _act, _wait_narrations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ACTION_BOX_JS = """() => {
  const r = document.getElementById('action-form').getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, innerHeight: window.innerHeight};
}"""


def _characters(session, gm, player):
    from campaigns.models import Character

    return (
        Character.objects.get(campaign=session.campaign, owner=player),
        Character.objects.get(campaign=session.campaign, owner=gm),
    )


def test_the_sheet_follows_a_level_up_and_loot_live(persona_pages, session, gm, player, shot):
    from playwright.sync_api import expect

    from campaigns.models import Character

    kira, ossian = _characters(session, gm, player)
    pages = persona_pages({"gm": gm, "player": player}, height=DESKTOP["height"])
    gm_page, page = pages["gm"], pages["player"]
    for p in (gm_page, page):
        p.goto(f"/sessions/{session.pk}/play/")
        expect(p.locator("#conn")).to_have_text(re.compile("live", re.I))
    mine, theirs = page.locator(f"#sheet-{kira.pk}"), page.locator(f"#sheet-{ossian.pk}")
    expect(mine).to_have_attribute("open", "")
    expect(theirs).not_to_have_attribute("open", "")
    expect(mine.locator(".level-badge")).to_have_text("Level 1")
    expect(gm_page.locator(f"#sheet-{kira.pk}")).to_have_attribute("open", "")  # the GM sees all open

    # The GM completes two objectives: 150 XP, level 2, the rewards' items in the stash.
    for objective in ("dock", "power"):
        gm_page.get_by_text("GM controls").click()
        gm_page.get_by_label("Objective").select_option(objective)
        gm_page.get_by_label("Status").select_option("complete")
        gm_page.get_by_role("button", name="Override").click()
        expect(page.locator("#mission-panel .obj.complete")).to_have_count(1 if objective == "dock" else 2)
    expect(page.locator("#log .entry.level-up").first).to_contain_text("reaches level 2")
    expect(mine.locator(".level-badge")).to_have_text("Level 2")
    # Both reached level 2 in one reward: both sheets are highlighted.
    expect(page.locator(".sheet .level-badge.levelled")).to_have_count(2)
    expect(mine.locator(".xp-text")).to_contain_text("150 / 300 XP")
    expect(mine).to_have_attribute("open", "")  # the live update kept it open …
    expect(theirs).not_to_have_attribute("open", "")  # … and the other folded
    expect(page.locator("#party-stash")).to_contain_text("Medpatch")
    shot(page, "sheet-level-up")

    # A search: whatever the seeded roll found is what the sheet shows.
    _act(page, "I search the crates for supplies")
    _wait_narrations(page, 1)
    expect(page.locator("#log .entry.loot-found")).to_have_count(1)
    held = Character.objects.get(pk=kira.pk).inventory
    gear = [i for i in held if i["item"] != "credits"]
    expect(mine.locator(".sheet-items li")).to_have_count(len(gear))
    credits = sum(i["qty"] for i in held if i["item"] == "credits")
    expect(mine.locator(".credits")).to_contain_text(f"Credits: {credits}")
    page.screenshot(path="/tmp/gtw-sheet-desktop.png", full_page=True)


def test_the_sheet_on_a_phone_keeps_the_action_box_on_screen(
    browser, daphne, session_cookie, session, gm, player
):
    from playwright.sync_api import expect

    from campaigns.models import Character

    kira, ossian = _characters(session, gm, player)
    Character.objects.filter(pk=kira.pk).update(
        xp=120, level=2, inventory=[{"item": "credits", "qty": 43}, {"item": "medpatch", "qty": 1}]
    )
    context = browser.new_context(base_url=daphne, viewport=PHONE)
    context.add_cookies([{"name": "sessionid", "value": session_cookie(player), "url": daphne}])
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"/sessions/{session.pk}/play/")
        expect(page.locator("#conn")).to_have_text(re.compile("live", re.I))
        box = page.evaluate(ACTION_BOX_JS)
        assert box["top"] >= 0 and box["bottom"] <= box["innerHeight"], box
        page.screenshot(path="/tmp/gtw-sheet-phone-top.png")

        sheet = page.locator(f"#sheet-{kira.pk}")
        sheet.scroll_into_view_if_needed()
        expect(sheet).to_be_visible()
        expect(sheet.locator(".level-badge")).to_have_text("Level 2")
        expect(sheet.locator(".sheet-items")).to_contain_text("Medpatch \u00d71")
        expect(sheet.locator(".credits")).to_contain_text("Credits: 43")
        # Nothing on the sheet is wider than the phone.
        width = page.evaluate("() => document.getElementById('sheets').getBoundingClientRect().right")
        assert width <= PHONE["width"], width
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        # The others' sheets open on a tap.
        other = page.locator(f"#sheet-{ossian.pk}")
        expect(other).not_to_have_attribute("open", "")
        other.locator("summary.sheet-head").click()
        expect(other).to_have_attribute("open", "")
        box = page.evaluate(ACTION_BOX_JS)  # still on screen (sticky) after scrolling to the sheet
        assert box["top"] >= 0 and box["bottom"] <= box["innerHeight"], box
        sheet.scroll_into_view_if_needed()
        page.screenshot(path="/tmp/gtw-sheet-phone.png")
    finally:
        context.close()
