"""The review queue in a real browser (issue 18 part 3): a player's held action shows them "held
for review" live (no categories, no scores); the GM opens the queue from the play page, sees the
text with the reasons, approves it, and the action is narrated on every open page. The
outsider gets the 404 page. Screenshots (GTW_SHOTS=1): the queue, and the player's held notice."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HELD = "Kill yourself, Dave, you ruin every session."


def test_a_held_action_is_reviewed_in_the_queue(persona_pages, session, gm, player, outsider, shot):
    from playwright.sync_api import expect

    pages = persona_pages({"gm": gm, "player": player, "outsider": outsider}, height=900)
    url = f"/sessions/{session.pk}/play/"
    for name in ("gm", "player"):
        pages[name].goto(url)
        expect(pages[name].locator("#conn")).to_have_text("live")

    player_page = pages["player"]
    player_page.locator("#action-text").fill(HELD)
    player_page.locator("#action-text").press("Enter")
    held = player_page.locator("article.held")
    expect(held).to_contain_text("held for review")
    expect(held).to_contain_text("ruin every session")
    assert "harassment" not in player_page.content()
    shot(player_page, "review-queue-player-held")

    gm_page = pages["gm"]
    gm_page.locator("#review-queue-link").click()
    expect(gm_page.locator("#pending-h")).to_contain_text("Waiting for review")
    item = gm_page.locator("li.review-item").first
    expect(item).to_contain_text(HELD)
    expect(item).to_contain_text("harassment")
    expect(gm_page.locator("ol.audit-log")).to_contain_text("Held")
    shot(gm_page, "review-queue-gm")

    item.get_by_role("button", name="Approve").click()
    expect(gm_page.locator(".flash")).to_contain_text("Approved")
    expect(gm_page.locator("ol.decided-items")).to_contain_text("Approved")
    expect(gm_page.locator("li.review-item")).to_have_count(0)
    shot(gm_page, "review-queue-gm-decided")

    # The approved action reaches the table and the offline GM narrates it.
    expect(player_page.locator("article.entry.action")).to_contain_text("ruin every session")
    expect(player_page.locator("article.entry.narration").last).to_be_visible()
    expect(player_page.locator("#log")).to_contain_text("let your held action through")

    outsider_page = pages["outsider"]
    response = outsider_page.goto(f"/campaigns/{session.campaign_id}/safety/")
    assert response.status == 404
