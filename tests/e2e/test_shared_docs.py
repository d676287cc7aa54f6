"""Shared docs in a real browser: the GM and a player edit notes, inventory and map at once, and
the player's offline edits merge when they reconnect — also after closing the page offline."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TO_END_JS = "el => { el.focus(); el.setSelectionRange(el.value.length, el.value.length); }"
TO_START_JS = "el => { el.focus(); el.setSelectionRange(0, 0); }"


@pytest.fixture
def tables(persona_pages, gm, player):
    """A logged-in page for the GM and one for the player, each in its own browser context."""
    return persona_pages({"gm": gm, "player": player}, height=1000)


def _open(page, session) -> None:
    page.goto(f"/sessions/{session.pk}/play/")
    _synced(page)


def _synced(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#shared-docs")).to_have_attribute("data-state", "synced")


def _has_all(*parts: str) -> re.Pattern:
    return re.compile("".join(f"(?=.*{re.escape(p)})" for p in parts), re.DOTALL)


def _add_item(page, name: str, qty: int) -> None:
    page.get_by_label("Item", exact=True).fill(name)
    page.get_by_label("Qty", exact=True).fill(str(qty))
    page.get_by_role("button", name="Add item").click()


def _items(page) -> list[str]:
    return page.locator("#inventory-list li .inv-name").all_inner_texts()


def test_gm_and_player_share_notes_inventory_and_map(tables, session, shot):
    from playwright.sync_api import expect

    gm_page, player_page = tables["gm"], tables["player"]
    for page in (gm_page, player_page):
        _open(page, session)
    gm_notes, player_notes = gm_page.locator("#notes-text"), player_page.locator("#notes-text")
    expect(gm_notes).to_be_editable()

    # Both type at once: keystrokes interleave, each side's words stay whole, both converge.
    gm_notes.evaluate(TO_START_JS)
    player_notes.evaluate(TO_START_JS)
    for a, b in zip("Dock seven at dawn. ", "Bring the red keys! ", strict=True):
        gm_notes.press_sequentially(a)
        player_notes.press_sequentially(b)
    both = _has_all("Dock seven at dawn. ", "Bring the red keys! ")
    expect(gm_notes).to_have_value(both)
    expect(player_notes).to_have_value(both)
    _synced(gm_page)
    _synced(player_page)
    expect(player_notes).to_have_value(gm_notes.input_value())

    # The player drops off the network and keeps working; the GM writes meanwhile.
    player_page.context.set_offline(True)
    expect(player_page.locator("#shared-docs")).to_have_attribute("data-state", "offline")
    player_notes.evaluate(TO_END_JS)
    player_notes.press_sequentially("Offline clue.")
    _add_item(player_page, "Medkit", 2)
    expect(player_page.locator("#shared-docs-status")).to_contain_text("kept on this device")
    gm_notes.evaluate(TO_START_JS)
    gm_notes.press_sequentially("GM online. ")
    _add_item(gm_page, "Plasma cutter", 1)
    gm_page.wait_for_timeout(500)
    assert "Offline clue." not in gm_notes.input_value()
    assert _items(gm_page) == ["Plasma cutter"]
    shot(player_page, "shared-docs-offline")

    # Back online: both sides hold the merged result.
    player_page.context.set_offline(False)
    _synced(player_page)
    merged = _has_all("GM online. ", "Dock seven at dawn. ", "Bring the red keys! ", "Offline clue.")
    expect(gm_notes).to_have_value(merged)
    expect(player_notes).to_have_value(merged)
    for page in (gm_page, player_page):
        expect(page.locator("#inventory-list li .inv-name")).to_have_count(2)
        assert sorted(_items(page)) == ["Medkit", "Plasma cutter"]
    expect(player_notes).to_have_value(gm_notes.input_value())

    # Quantities merge per item.
    gm_page.get_by_label("Quantity of Medkit").fill("5")
    gm_page.get_by_label("Quantity of Medkit").press("Tab")
    expect(player_page.get_by_label("Quantity of Medkit")).to_have_value("5")

    # A marker the GM places shows for the player; the player moves it; the GM sees the move.
    gm_page.get_by_label("Marker", exact=True).fill("Shuttle")
    gm_page.get_by_label("Kind").select_option("ally")
    gm_page.get_by_role("button", name="C4: empty").click()
    expect(player_page.locator("#map-grid [aria-label='C4: Shuttle (ally)']")).to_be_visible()
    player_page.get_by_role("button", name="Select Shuttle to move it").click()
    expect(player_page.get_by_label("Marker", exact=True)).to_have_value("Shuttle")
    player_page.keyboard.press("ArrowRight")
    player_page.keyboard.press("ArrowRight")
    player_page.keyboard.press("ArrowDown")
    player_page.keyboard.press("Enter")  # the focused cell, E5
    expect(gm_page.locator("#map-grid [aria-label='E5: Shuttle (ally)']")).to_be_visible()
    expect(gm_page.locator("#map-grid [aria-label='C4: empty']")).to_be_visible()
    expect(gm_page.locator("#map-markers li")).to_have_count(1)
    shot(gm_page, "play-shared-docs")


def test_offline_edits_survive_closing_the_page(tables, session):
    """Edits made offline live in the browser's storage: a page closed before the network came
    back still delivers them the next time the play page opens."""
    from playwright.sync_api import expect

    gm_page, player_page = tables["gm"], tables["player"]
    _open(gm_page, session)
    _open(player_page, session)
    player_page.context.set_offline(True)
    expect(player_page.locator("#shared-docs")).to_have_attribute("data-state", "offline")
    _add_item(player_page, "Grapple line", 3)
    player_page.locator("#notes-text").press_sequentially("Written in the dark.")
    context = player_page.context
    player_page.close()  # still offline: nothing reached the server
    gm_page.wait_for_timeout(300)
    assert _items(gm_page) == []

    context.set_offline(False)
    page = context.new_page()
    _open(page, session)
    expect(gm_page.locator("#inventory-list li .inv-name")).to_have_text(["Grapple line"])
    expect(gm_page.get_by_label("Quantity of Grapple line")).to_have_value("3")
    expect(gm_page.locator("#notes-text")).to_have_value("Written in the dark.")
