"""Issue 19 in a real browser: the alliance's leader (the GM here) starts research on the play
page and the other member sees the alliance's tree update live; the GM starts the world
simulation on its page and sets the beat, and the player sees the world move in the log, live,
in the game's words, while the GM's page shows the window's telemetry. After a drift and a
restart the GM's page still reads like the other GM pages (a page head, cards, readable tables
that scroll inside their card rather than widening the page, on a laptop and on a phone), and a
player who follows a link to it gets the 404 page. One test, so one Daphne and one chromium
serve it all. Screenshots go to shots/sim/ with GTW_SHOTS=1."""

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


def _overflow(page) -> int:
    """How far the page is wider than its viewport (0: nothing sticks out sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_research_reaches_an_alliance_member_live_and_the_world_moves_at_a_beat(
    persona_pages, session, gm, player
):
    from playwright.sync_api import expect

    from campaigns import selectors, teams
    from campaigns.models import Character, Event
    from missions import simulation_services as sim
    from narrative import engine

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

    # More windows, a drift the GM's replay finds (a tampered hash), a restart and a beat later,
    # the GM's page reads like a GM page, on a laptop and on a phone.
    session.refresh_from_db()
    engine.beat_set(session=session, beat="twist", actor_id=gm.pk)
    sim.simulation_step(viewer=gm, campaign_id=session.campaign_id, budget=30)
    last = Event.objects.filter(session=session, type="SimulationStepped").order_by("-seq").first()
    last.payload = {**last.payload, "hash": "0" * 64}
    last.save(update_fields=["payload"])
    sim.simulation_verify(viewer=gm, campaign_id=session.campaign_id)
    sim.simulation_start(viewer=gm, campaign_id=session.campaign_id)
    session.refresh_from_db()
    engine.beat_set(session=session, beat="climax", actor_id=gm.pk)

    gm_page.goto(f"/sessions/{session.pk}/simulation")
    expect(gm_page.locator("header.page-head h1")).to_contain_text("World simulation")
    expect(gm_page.locator("#simulation-status")).to_contain_text("running")
    expect(gm_page.locator("#drift-alerts")).to_contain_text("fell back to plain narration")
    for card in ("#simulation-state", "#simulation-controls", "#simulation-timeline", "#simulation-log"):
        assert "card" in (gm_page.locator(card).get_attribute("class") or ""), card
    # Numbers line up: budget and actual are right-aligned numeric cells.
    cell = gm_page.locator("#simulation-windows tbody td.num").first
    assert cell.evaluate("e => getComputedStyle(e).textAlign") in ("right", "end")
    assert _overflow(gm_page) == 0
    _shot(gm_page, "gm-simulation-page")

    gm_page.set_viewport_size({"width": 390, "height": 844})
    gm_page.reload()
    assert _overflow(gm_page) == 0  # the wide tables scroll inside their cards
    _shot(gm_page, "gm-simulation-page-phone")

    # A player who follows a link to the GM's page gets the 404 page, with nothing of the engine.
    response = page.goto(f"/sessions/{session.pk}/simulation")
    assert response is not None and response.status == 404
    assert "hash" not in page.content().lower()
