"""The GM's world-simulation page in a real browser (Playwright + Debian chromium): it reads like
the other GM pages (a page head, cards, readable tables that scroll inside their card rather than
widening the page, on a laptop and on a phone), and a player who follows a link to it gets the
404 page. Screenshots go to shots/sim/ with GTW_SHOTS=1."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import SHOTS, browser, daphne, persona_pages, session_cookie  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _shot(page, name: str) -> None:
    if os.environ.get("GTW_SHOTS") == "1":
        (SHOTS / "sim").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "sim" / f"{name}.png"), full_page=True)


def _history(session, gm) -> None:
    """A world that ran a few windows, drifted once (a tampered hash found by the GM's replay),
    and was started again."""
    from campaigns.models import Event
    from missions import simulation_services as sim
    from narrative import engine

    sim.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=150)
    for beat in ("rising", "twist"):
        session.refresh_from_db()
        engine.beat_set(session=session, beat=beat, actor_id=gm.pk)
    sim.simulation_step(viewer=gm, campaign_id=session.campaign_id, budget=30)
    last = Event.objects.filter(session=session, type="SimulationStepped").order_by("-seq").first()
    last.payload = {**last.payload, "hash": "0" * 64}
    last.save(update_fields=["payload"])
    sim.simulation_verify(viewer=gm, campaign_id=session.campaign_id)
    sim.simulation_start(viewer=gm, campaign_id=session.campaign_id)
    session.refresh_from_db()
    engine.beat_set(session=session, beat="climax", actor_id=gm.pk)


def _overflow(page) -> int:
    """How far the page is wider than its viewport (0: nothing sticks out sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_the_gm_page_reads_like_a_gm_page_on_a_laptop_and_a_phone(persona_pages, session, gm, player):  # noqa: F811
    from playwright.sync_api import expect

    _history(session, gm)
    pages = persona_pages({"gm": gm, "player": player}, height=900)
    page = pages["gm"]
    page.goto(f"/sessions/{session.pk}/simulation")

    expect(page.locator("header.page-head h1")).to_contain_text("World simulation")
    expect(page.locator("#simulation-status")).to_contain_text("running")
    expect(page.locator("#drift-alerts")).to_contain_text("fell back to plain narration")
    for card in ("#simulation-state", "#simulation-controls", "#simulation-timeline", "#simulation-log"):
        assert "card" in (page.locator(card).get_attribute("class") or ""), card
    # Numbers line up: budget and actual are right-aligned numeric cells.
    cell = page.locator("#simulation-windows tbody td.num").first
    assert cell.evaluate("e => getComputedStyle(e).textAlign") in ("right", "end")
    assert _overflow(page) == 0
    _shot(page, "gm-simulation-page")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert _overflow(page) == 0  # the wide tables scroll inside their cards
    _shot(page, "gm-simulation-page-phone")

    mine = pages["player"]
    response = mine.goto(f"/sessions/{session.pk}/simulation")
    assert response is not None and response.status == 404
    assert "hash" not in mine.content().lower()
