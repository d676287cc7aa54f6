"""Table safety in a real browser (issue 18, part 4): a player adds a private line on the play
page (the GM sees it with its author, another player never sees it), then taps the X-card —
every open page swaps the last narration for "withdrawn" live, the table reads "Someone tapped
the X-card", only the GM reads who. Screenshots (GTW_SHOTS=1) at desktop and phone widths."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NARRATION = "A pale spider the size of a fist crawls out of the vent and waits."
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def other(campaign, gm):
    from campaigns import selectors, services
    from tests.conftest import _user

    user = _user("other")
    invite = services.invite_create(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))
    services.invite_accept(code=invite.code, user=user)
    return user


def _narrated(session, player) -> int:
    """An action and the GM's answer, straight into the event store; the narration's seq."""
    from campaigns import events

    created = events.append(
        session.pk,
        [
            events.NewEvent(
                type="Action",
                actor_id=player.pk,
                payload={"text": "I open the vent.", "character": "Kira Vance"},
            ),
            events.NewEvent(
                type="Narration", build=lambda seq: ({"text": NARRATION, "action_seq": seq - 1}, None)
            ),
        ],
    ).events
    return created[-1].seq


def test_lines_veils_form_and_the_x_card(
    persona_pages, browser, daphne, session_cookie, session, gm, player, other, shot
):
    from playwright.sync_api import expect

    narration_seq = _narrated(session, player)
    pages = persona_pages({"gm": gm, "player": player, "other": other}, height=900)
    url = f"/sessions/{session.pk}/play/"
    for page in pages.values():
        page.goto(url)
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator(f"#ev-{narration_seq}")).to_contain_text("pale spider")

    # The player adds a private line and a public veil through the panel's form.
    me = pages["player"]
    panel = me.locator("#table-safety")
    panel.locator("input[name=text]").fill("spiders")
    panel.locator("input[name=private]").check()
    panel.locator("button", has_text="Add").click()
    expect(me.locator("#table-safety .ts-entries")).to_contain_text("spiders")
    panel = me.locator("#table-safety")
    panel.locator("input[value=veil]").check()
    panel.locator("input[name=text]").fill("torture")
    panel.locator("button", has_text="Add").click()
    expect(me.locator("#table-safety")).to_contain_text("torture")
    expect(me.locator("#table-safety .ts-entry.private")).to_contain_text("GM only")
    expect(me.locator("#conn")).to_have_text("live")
    shot(me, "table_safety_form_desktop")

    pages["gm"].reload()
    expect(pages["gm"].locator("#table-safety")).to_contain_text("spiders")
    expect(pages["gm"].locator("#table-safety")).to_contain_text(player.username)
    pages["other"].reload()
    expect(pages["other"].locator("#table-safety")).to_contain_text("torture")
    expect(pages["other"].locator("#table-safety")).not_to_contain_text("spiders")
    for page in (pages["gm"], pages["other"]):
        expect(page.locator("#conn")).to_have_text("live")

    # The X-card: one tap, withdrawn for everyone, live.
    me.locator("#table-safety button.xcard").click()
    expect(me.locator("#table-safety .xcard-done")).to_be_visible()
    for name, page in pages.items():
        entry = page.locator(f"#ev-{narration_seq}")
        expect(entry).to_contain_text("withdrawn with the X-card")
        expect(entry).not_to_contain_text("pale spider")
        expect(page.locator("#log")).to_contain_text("Someone tapped the X-card")
        assert "pale spider" not in page.content(), name
    expect(pages["gm"].locator("#log")).to_contain_text("The X-card was tapped by")
    expect(pages["other"].locator("#log")).not_to_contain_text("was tapped by")
    shot(me, "table_safety_xcard_desktop")
    shot(pages["gm"], "table_safety_xcard_gm_desktop")

    # A phone: the X-card sits beside the action box, and the panel below the log.
    context = browser.new_context(base_url=daphne, viewport=PHONE)
    context.add_cookies([{"name": "sessionid", "value": session_cookie(other), "url": daphne}])
    phone = context.new_page()
    phone.goto(url)
    expect(phone.locator(".act-area .xcard-quick button")).to_be_visible()
    expect(phone.locator("#table-safety")).to_contain_text("torture")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "table_safety_phone")
    context.close()
