"""The game engine in a real browser: the mission panel, an NPC's line, the GM's controls, and
every change arriving live on the other player's page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_play import _act, _wait_narrations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_pages(persona_pages, gm, player):
    return persona_pages({"gm": gm, "player": player}, height=900)


def test_the_mission_panel_follows_the_game_live(two_pages, session, shot):
    from playwright.sync_api import expect

    gm, player = two_pages["gm"], two_pages["player"]
    for page in (gm, player):
        page.goto(f"/sessions/{session.pk}/play/")
        expect(page.locator("#conn")).to_have_text(re.compile("live", re.I))
    panel = player.locator("#mission-panel")
    expect(panel.get_by_text("Get aboard Vesper Relay through Docking Ring C")).to_be_visible()
    expect(panel.get_by_role("meter", name="Reactor meltdown")).to_have_attribute("aria-valuenow", "0")
    expect(panel.locator(".beats [aria-current=step]")).to_have_text("Inciting")

    # The offline narrator lets a present NPC speak through the npc_speak tool.
    _act(player, 'I ask Ossian "what is really in that crate?"')
    _wait_narrations(gm, 1)
    expect(gm.locator("#log .entry.npc").first).to_contain_text("Ossian Ward")

    # The GM's controls: complete the first objective, then move the story to the Twist.
    gm.get_by_text("GM controls").click()
    gm.get_by_label("Objective").select_option("dock")
    gm.get_by_label("Status").select_option("complete")
    gm.get_by_role("button", name="Override").click()
    expect(player.locator("#mission-panel .obj.complete")).to_contain_text("Get aboard Vesper Relay")
    expect(player.locator("#log .entry.reward")).to_contain_text("+50 XP")
    gm.get_by_text("GM controls").click()
    gm.get_by_label("Move the story to").select_option("twist")
    gm.get_by_role("button", name="Set beat").click()
    expect(player.locator("#mission-panel .beats [aria-current=step]")).to_have_text("Twist")
    expect(player.locator("#beat")).to_have_text("Twist")
    shot(player, "play-mission")
    shot(gm, "play-mission-gm")
