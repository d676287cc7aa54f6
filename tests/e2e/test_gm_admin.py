"""The GM admin in a real browser (issue 22): a GM who is not staff goes from the campaign page to
/gm/, creates an invite, edits a character, installs a private mission with an error (shown
inline as file:line:col) then fixes it and pins it to the campaign, and opens a session — all in
/gm/ — while a player who tries /gm/ is sent back to the site with a message.

GTW_SHOTS=1 saves shots/gm-admin-*.png."""

from __future__ import annotations

import re

import pytest

from tests.gtw_site.gm_admin_helpers import BROKEN, private_mission_source

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_gm_runs_their_campaign_from_the_gm_admin(persona_pages, gm, player, campaign, characters, shot):
    from playwright.sync_api import expect

    from campaigns.models import Campaign, Character, Invite, PlaySession
    from missions.models import Mission

    assert not gm.is_staff
    errors: list[str] = []
    pages = persona_pages({"gm": gm, "player": player}, height=900)
    page = pages["gm"]
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # From the campaign page (and the navigation) to the GM admin.
    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.get_by_role("link", name="GM admin", exact=True)).to_be_visible()
    page.get_by_role("link", name="Manage in the GM admin").click()
    expect(page).to_have_url(re.compile(rf"/gm/campaigns/campaign/{campaign.pk}/change/"))
    expect(page.locator("#id_name")).to_have_value(campaign.name)
    shot(page, "gm-admin-campaign")

    # An invite.
    page.goto("/gm/campaigns/invite/add/")
    page.locator("#id_campaign").select_option(str(campaign.pk))
    page.locator("#id_role").select_option("player")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    invite = Invite.objects.filter(campaign=campaign, used_at__isnull=True).latest("created_at")
    page.goto("/gm/campaigns/invite/")
    expect(page.locator("#result_list")).to_contain_text(f"/invite/{invite.code}/")
    shot(page, "gm-admin-invites")

    # A character.
    kira = Character.objects.get(campaign=campaign, owner=player)
    page.goto("/gm/campaigns/character/")
    page.get_by_role("link", name=kira.name).click()
    page.locator("#id_name").fill("Kira the Bold")
    page.locator("#id_xp").fill("120")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator("#result_list")).to_contain_text("Kira the Bold")
    kira.refresh_from_db()
    assert (kira.name, kira.xp) == ("Kira the Bold", 120)

    # A private mission: an error first, shown inline with its line and column; then fixed,
    # installed and pinned to the campaign in the same form.
    page.goto("/gm/missions/mission/add/")
    page.locator("#id_source").fill(BROKEN)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text("mission.mission:3:1:")
    shot(page, "gm-admin-mission-error")
    assert not Mission.objects.filter(slug="broken-op").exists()
    page.locator("#id_source").fill(private_mission_source("kira-private-op", "Kira's Private Op"))
    page.locator("#id_pin_to").select_option(str(campaign.pk))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("now plays Kira's Private Op")
    mission = Mission.objects.get(slug="kira-private-op")
    assert (mission.owner_id, mission.public) == (gm.pk, False)
    campaign.refresh_from_db()
    assert campaign.mission_hash == mission.content_hash
    page.goto(f"/gm/campaigns/campaign/{campaign.pk}/change/")
    expect(page.locator(".field-pinned_mission")).to_contain_text(
        f"kira-private-op @ {mission.content_hash[:12]}"
    )
    shot(page, "gm-admin-mission-pinned")

    # A session, opened by the admin action; it plays the pinned private mission.
    page.goto("/gm/campaigns/campaign/")
    page.locator(f"input[name=_selected_action][value='{campaign.pk}']").check()
    page.locator("select[name=action]").select_option("open_session")
    page.locator("button[name=index]").first.click()  # the admin's "Go"
    expect(page.locator(".messagelist")).to_contain_text(f"Opened Session 1 of {campaign.name}")
    shot(page, "gm-admin-session-opened")
    session = PlaySession.objects.get(campaign=campaign)
    assert session.status == PlaySession.Status.ACTIVE
    assert session.state["mission"]["hash"] == mission.content_hash
    page.goto(f"/gm/campaigns/playsession/{session.pk}/change/")
    expect(page.get_by_role("button", name="End session")).to_be_visible()
    shot(page, "gm-admin-session")

    # The player has no GM admin: back to the site, with a message.
    other = pages["player"]
    other.goto(f"/campaigns/{campaign.pk}/")
    expect(other.get_by_role("link", name="GM admin", exact=True)).to_have_count(0)
    other.goto("/gm/")
    expect(other).to_have_url(re.compile(r"/$"))
    expect(other.locator(".messages")).to_contain_text("for game masters")
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert errors == []
