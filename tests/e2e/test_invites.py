"""The invite flows in a real browser (issue 13, part 6): the GM copies a fresh invite link with
the Copy button (site.js, no inline script); a visitor who is not signed in opens it, sees the
campaign and the GM, creates an account from the invite page, lands back on the invite and
accepts; a made-up code gets its own page without an Accept button.

GTW_SHOTS=1 saves shots/invite-signed-out.png, invite-after-signup.png and invite-unknown.png."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 30_000  # a ceiling for any one wait in the browser (a loaded machine), never a pace


def test_invite_copy_sign_up_and_accept(browser, daphne, persona_pages, gm, campaign, shot):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from campaigns.models import Membership

    errors: list[str] = []
    gm_page = persona_pages({"gm": gm})["gm"]
    gm_page.on("pageerror", lambda exc: errors.append(str(exc)))
    gm_page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=daphne)

    # The GM makes a link and copies it with the button.
    gm_page.goto(f"/campaigns/{campaign.pk}/")
    gm_page.get_by_role("button", name="Create invite link").click()
    link = gm_page.get_by_label("Invite link")
    expect(link).to_have_value(re.compile(r"/invite/"))
    url = link.input_value()
    gm_page.get_by_role("button", name="Copy").click()
    expect(gm_page.locator(".copy-status")).to_have_text("Copied")
    assert gm_page.evaluate("navigator.clipboard.readText()") == url

    # A visitor who is not signed in opens it.
    visitor = browser.new_context(base_url=daphne, viewport={"width": 390, "height": 844})
    visitor.set_default_timeout(TIMEOUT_MS)
    try:
        page = visitor.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        expect(page.get_by_role("heading", name=f"You're invited to {campaign.name}")).to_be_visible()
        expect(page.get_by_text(gm.username)).to_be_visible()
        shot(page, "invite-signed-out")

        page.get_by_role("link", name="Create an account").click()
        page.locator("#id_email").fill("newcomer@example.com")
        page.locator("#id_username").fill("newcomer")
        page.locator("#id_password1").fill("a long new passphrase 42")
        page.locator("#id_password2").fill("a long new passphrase 42")
        page.locator("form").filter(has=page.locator("#id_email")).locator("button[type=submit]").click()

        # Back on the invite, now signed in: Accept.
        expect(page).to_have_url(url)
        expect(page.get_by_role("button", name="Accept invite")).to_be_visible()
        shot(page, "invite-after-signup")
        page.get_by_role("button", name="Accept invite").click()
        expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
        newcomer = get_user_model().objects.get(username="newcomer")
        assert Membership.objects.filter(campaign=campaign, user=newcomer).exists()

        # The used link now says so, before any click.
        response = page.goto(url)
        assert response.status == 200  # the newcomer is a member now: "already in"
        expect(page.get_by_role("heading", name=f"You're already in {campaign.name}")).to_be_visible()

        # A made-up code: its own page, no campaign named, no Accept.
        response = page.goto("/invite/not-a-real-code/")
        assert response.status == 404
        expect(page.get_by_role("heading", name="This invite link doesn't work")).to_be_visible()
        expect(page.get_by_role("button", name="Accept invite")).to_have_count(0)
        assert campaign.name not in page.content()
        shot(page, "invite-unknown")
    finally:
        visitor.close()
    assert errors == []
