"""A mission's end in a real browser (issue 13, fair stakes): the end panel reaches every open page
live, the GM alone gets the choices, and "Free play" reaches the player's header at once."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_pages(persona_pages, gm, player):
    return persona_pages({"gm": gm, "player": player}, height=900)


def _override(gm_page, objective: str) -> None:
    gm_page.get_by_text("GM controls").click()
    gm_page.get_by_label("Objective").select_option(objective)
    gm_page.get_by_label("Status").select_option("complete")
    gm_page.get_by_role("button", name="Override").click()


def test_the_mission_end_panel_and_the_gms_choices_reach_every_page(two_pages, session, shot):
    from playwright.sync_api import expect

    gm, player = two_pages["gm"], two_pages["player"]
    for page in (gm, player):
        page.goto(f"/sessions/{session.pk}/play/")
        expect(page.locator("#conn")).to_have_text(re.compile("live", re.I))
    expect(gm.locator("#mission-end-choices")).to_be_hidden()  # nothing has ended yet

    _override(gm, "dock")
    expect(player.locator("#objective")).to_have_text("Restore power to the relay core")
    _override(gm, "power")
    _override(gm, "crate")

    end = player.locator("#mission-panel .mission-end-panel")
    expect(end).to_be_visible()
    expect(end).to_contain_text("Mission complete")
    expect(end).to_contain_text("XP")
    expect(player.locator("#mission-end-choices")).to_have_count(0)  # the choices are the GM's
    expect(player.locator("#objective")).to_have_text(
        "none: the mission is complete, the GM chooses what's next"
    )
    gm.reload()
    choices = gm.locator("#mission-end-choices")
    expect(choices).to_be_visible()
    expect(choices.get_by_role("button", name="Retry the mission")).to_be_visible()
    expect(choices.get_by_label("Next mission")).to_be_visible()
    shot(player, "mission-end-player")
    shot(gm, "mission-end-gm")

    choices.get_by_role("button", name="Free play").click()
    expect(player.locator("#objective")).to_have_text("Free play")
    expect(player.locator("#mission-panel")).to_contain_text("Free play")
    expect(player.locator("#mission-panel .mission-end-panel")).to_have_count(0)
    expect(gm.locator("#mission-end-choices")).to_be_hidden()
