"""Issue 17 in a real browser: staff see every role on the providers page, a refused choice
shows its reason and changes nothing, a preset is chosen with a key that shows only its last
four characters; the GM steers their campaign and reads what a session cost.

GTW_SHOTS=1 saves shots/providers-site.png, providers-campaign.png and costs-session.png."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "xai-e2e-SECRET-0123456789-LAST"


@pytest.fixture(autouse=True)
def _keyring(monkeypatch):
    """The server process seals keys with this keyring (it inherits the environment)."""
    monkeypatch.setenv("GTW_PROVIDER_KEYS", f"e2e:{Fernet.generate_key().decode()}")
    from gtw_site.providers import selection

    selection.forget()


def test_providers_page_and_cost_view(persona_pages, gm, session, player, shot):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from gtw_site.models import ProviderChoice
    from narrative import turns

    staff = get_user_model().objects.create_user(username="ops-e2e", password="x", is_staff=True)
    pages = persona_pages({"staff": staff, "gm": gm, "player": player}, height=1000)
    errors: list[str] = []
    for page in pages.values():
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    site = pages["staff"]
    site.goto("/providers/")
    narrator = site.locator("#role-narrator")
    expect(narrator).to_contain_text("offline")
    expect(narrator).to_contain_text("environment")

    # Grok without a key cannot start: the reason shows, nothing changes.
    narrator.get_by_text("Change").click()
    narrator.get_by_label("Adapter").select_option("preset:grok")
    narrator.get_by_role("button", name="Use").click()
    expect(site.locator("#provider-error")).to_contain_text("needs an API key")
    assert not ProviderChoice.objects.exists()

    # With a key it starts; only the key's last four characters are ever on the page.
    narrator = site.locator("#role-narrator")
    expect(narrator.get_by_label("Adapter")).to_be_visible()  # kept open after the refusal
    narrator.get_by_label("Adapter").select_option("preset:grok")
    narrator.get_by_label("API key").fill(SECRET)
    narrator.get_by_role("button", name="Use").click()
    narrator = site.locator("#role-narrator")
    expect(narrator).to_contain_text("grok-3-mini")
    expect(narrator).to_contain_text("…LAST")
    assert SECRET not in site.content()
    shot(site, "providers-site")

    # The GM puts their campaign back on the offline narrator, then plays a turn.
    gm_page = pages["gm"]
    gm_page.goto(f"/providers/?campaign={session.campaign_id}")
    row = gm_page.locator("#role-narrator")
    expect(row).to_contain_text("site")
    row.get_by_text("Change").click()
    row.get_by_label("Adapter").select_option("provider:offline")
    row.get_by_role("button", name="Use").click()
    expect(gm_page.locator("#role-narrator")).to_contain_text("campaign")
    assert "Stored keys" not in gm_page.content()
    shot(gm_page, "providers-campaign")

    turns.submit_action(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="e2e-1"
    )
    from gtw_site import telemetry

    assert telemetry.flush(timeout=10)  # the turn's rows go through the background writer
    gm_page.goto(f"/sessions/{session.pk}/costs/")
    expect(gm_page.locator("#cost-mix")).to_contain_text("offline")
    expect(gm_page.locator("#cost-total")).to_contain_text("$0.000000")
    shot(gm_page, "costs-session")

    # The player is refused both pages.
    player_page = pages["player"]
    assert player_page.goto(f"/providers/?campaign={session.campaign_id}").status == 403
    assert player_page.goto(f"/sessions/{session.pk}/costs/").status == 403
    assert errors == []


def test_the_replay_timeline_shows_the_gm_the_prompts_sent(persona_pages, gm, session, player, shot):
    """Issue 17 part 6 in a browser: the GM opens a turn's prompts on the replay timeline (the
    system prompt, the player's action, the tools offered); the player gets a 404 there."""
    from playwright.sync_api import expect

    from narrative import turns

    turns.submit_action(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="e2e-r1"
    )
    turns.submit_action(
        session_id=session.pk, user=player, text="I look around the bay", idempotency_key="e2e-r2"
    )
    pages = persona_pages({"gm": gm, "player": player}, height=1000)
    gm_page = pages["gm"]
    gm_page.goto(f"/sessions/{session.pk}/replay/")
    expect(gm_page.locator("#replay-timeline")).to_contain_text("Narration")
    shot(gm_page, "prov/replay-timeline")
    gm_page.locator(".prompt-link").first.click()
    prompts = gm_page.locator(".prompts")
    expect(prompts).to_contain_text("code owns the mechanics")
    expect(prompts).to_contain_text("I hack the airlock panel")
    expect(prompts).to_contain_text("rules_skill_check")
    shot(gm_page, "prov/replay-prompts")
    assert pages["player"].goto(f"/sessions/{session.pk}/replay/").status == 404
