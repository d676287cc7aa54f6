"""Issue 19 in a real browser: the alliance's leader (the GM here) starts research on the play
page and the other member sees the alliance's tree update live; the GM starts the world
simulation on its page and sets the beat, and the player sees the world move in the log, live,
in the game's words, while the GM's page shows the window's telemetry. Screenshots go to
shots/sim/ with GTW_SHOTS=1."""

from __future__ import annotations

import os
import re

import pytest

from tests.e2e.conftest import SHOTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _shot(page, name: str) -> None:
    if os.environ.get("GTW_SHOTS") == "1":
        (SHOTS / "sim").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "sim" / f"{name}.png"), full_page=True)


def test_research_reaches_an_alliance_member_live_and_the_world_moves_at_a_beat(
    persona_pages, session, gm, player
):
    from playwright.sync_api import expect

    from campaigns import selectors, teams
    from campaigns.models import Character, Event

    Character.objects.filter(campaign=session.campaign).update(xp=500)
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    alliance = teams.alliance_create(membership=gm_seat, name="Free Haulers", reputation=20)
    teams.alliance_member_add(
        membership=gm_seat,
        alliance=alliance,
        target=selectors.membership_get(viewer=player, campaign_id=session.campaign_id),
    )
    pages = persona_pages({"gm": gm, "player": player}, height=900)
    gm_page, page = pages["gm"], pages["player"]
    for p in (gm_page, page):
        p.goto(f"/sessions/{session.pk}/play/")
        expect(p.locator("#conn")).to_have_text(re.compile("live", re.I))
    node = page.locator('#alliance-research [data-node="safe-dock"]')
    expect(node).to_have_attribute("data-status", "available")

    # The leader starts research: the member's tree moves without a reload.
    form = gm_page.locator(f'.research-form[data-owner="alliance:{alliance.pk}:compact-works"]')
    form.locator("select").select_option("compact-works/safe-dock")
    form.get_by_role("button", name="Start research").click()
    expect(node).to_have_attribute("data-status", "in_progress")
    expect(page.locator("#log .entry.research")).to_contain_text("begins researching Safe Dock")
    _shot(page, "research-live-member")

    # The GM starts the world on its page …
    gm_page.goto(f"/sessions/{session.pk}/simulation")
    gm_page.get_by_role("button", name="Start the simulation").click()
    expect(gm_page.locator("#simulation-status")).to_contain_text("running")
    expect(page.locator("#log .entry.worldnotice")).to_contain_text("galaxy stirs")

    # … and sets the beat: the window runs, then the beat; the player sees the world move.
    gm_page.goto(f"/sessions/{session.pk}/play/")
    expect(gm_page.locator("#conn")).to_have_text(re.compile("live", re.I))
    gm_page.get_by_text("GM controls").click()
    gm_page.locator("#gm-beat").select_option("rising")
    gm_page.get_by_role("button", name="Set beat").click()
    moved = page.locator("#log .entry.worldchanged")
    expect(moved).to_have_count(1)
    expect(moved).to_contain_text("the world moves")
    expect(page.locator("#log .entry.beat-change").last).to_contain_text("Rising")
    text = moved.inner_text().lower()
    for internal in ("hash", "snapshot", "step", "budget"):
        assert internal not in text
    expect(page.locator("#log .engine-room.simulation")).to_have_count(0)  # the GM's only
    # The research's one beat ran out at the same boundary: the member sees it done, live.
    expect(node).to_have_attribute("data-status", "done")
    _shot(page, "world-moves-player")

    stepped = Event.objects.get(session=session, type="SimulationStepped")
    gm_page.goto(f"/sessions/{session.pk}/simulation")
    expect(gm_page.locator("#simulation-windows")).to_contain_text(stepped.payload["window"]["beat_id"])
    expect(gm_page.locator("#hash-timeline")).to_contain_text(stepped.payload["hash"][:10])
    _shot(gm_page, "gm-simulation-telemetry")
