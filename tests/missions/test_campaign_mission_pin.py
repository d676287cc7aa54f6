"""A campaign plays the mission version it pinned: at creation (the pack's mission as installed
then) and whenever its GM starts a mission. A later upload of the same slug — by anyone — does
not change the campaign's next session."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from django.apps import apps

from campaigns import selectors, services
from campaigns.models import Campaign
from missions.models import Mission
from missions.services import mission_install

STARTER = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter"
VESPER = (STARTER / "missions" / "vesper-relay.mission").read_text()
TITLE = '"The Silence at Vesper Relay"'


def version(title: str) -> Mission:
    mission, created = mission_install(source=VESPER.replace(TITLE, f'"{title}"'))
    assert created
    return mission


def open_session(campaign, gm):
    return services.session_open(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))


def test_a_new_campaign_pins_its_packs_mission_as_installed_now(campaign):
    pinned = Mission.objects.get(slug="vesper-relay")
    campaign.refresh_from_db()
    assert (campaign.mission_slug, campaign.mission_hash) == ("vesper-relay", pinned.content_hash)


def test_a_later_upload_does_not_change_the_campaigns_next_session(campaign, characters, gm):
    """issue 11 hole 1: a new session ran the newest upload of the slug, so whoever uploaded last
    decided what every campaign on the server played (and what went into its prompts)."""
    original = Mission.objects.get(slug="vesper-relay")
    version("Vesper Relay (hijacked)")

    session = open_session(campaign, gm)

    assert session.state["mission"]["hash"] == original.content_hash
    opened = session.events.get(type="SessionOpened").payload
    assert opened["mission_ref"]["title"] == "The Silence at Vesper Relay"
    assert "hijacked" not in json.dumps(opened)


def test_a_campaign_created_after_an_operators_update_plays_the_update(content, campaign, gm):
    update = version("The Silence at Vesper Relay (revised)")
    fresh = services.campaign_create(user=gm, name="Second run", pack_slug="starter")
    assert fresh.mission_hash == update.content_hash
    campaign.refresh_from_db()
    assert campaign.mission_hash != update.content_hash  # the older campaign keeps its version


def test_starting_a_mission_pins_it_for_the_next_sessions(session, gm, gm_client):
    r = gm_client.post(
        f"/api/sessions/{session.pk}/mission", {"slug": "thule-descent"}, content_type="application/json"
    )
    assert r.status_code == 200
    thule = Mission.objects.get(slug="thule-descent")
    campaign = Campaign.objects.get(pk=session.campaign_id)
    assert (campaign.mission_slug, campaign.mission_hash) == ("thule-descent", thule.content_hash)

    version("The Silence at Vesper Relay (revised)")
    services.session_end(
        session=session, membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    nxt = open_session(campaign, gm)
    assert nxt.state["mission"]["slug"] == "thule-descent"
    assert nxt.state["mission"]["hash"] == thule.content_hash


def test_restarting_the_pinned_mission_keeps_its_version_unless_the_gm_asks_for_another(session, gm_client):
    url = f"/api/sessions/{session.pk}/mission"
    original = Mission.objects.get(slug="vesper-relay")
    update = version("The Silence at Vesper Relay (revised)")

    restarted = gm_client.post(url, {"slug": "vesper-relay"}, content_type="application/json")
    assert restarted.status_code == 200
    session.refresh_from_db()
    assert session.state["mission"]["hash"] == original.content_hash

    chosen = gm_client.post(
        url, {"slug": "vesper-relay", "content_hash": update.content_hash}, content_type="application/json"
    )
    assert chosen.status_code == 200
    session.refresh_from_db()
    assert session.state["mission"]["hash"] == update.content_hash
    assert Campaign.objects.get(pk=session.campaign_id).mission_hash == update.content_hash


def test_the_play_page_form_starts_and_pins_a_mission(session, gm_client, player_client):
    assert player_client.post(f"/sessions/{session.pk}/mission", {"slug": "thule-descent"}).status_code == 403
    assert gm_client.post(f"/sessions/{session.pk}/mission", {"slug": "thule-descent"}).status_code == 302
    assert Campaign.objects.get(pk=session.campaign_id).mission_slug == "thule-descent"
    page = gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert 'value="thule-descent" selected' in page


def test_a_branch_keeps_the_parents_pinned_version(session, gm):
    from campaigns.branching import campaign_branch

    original = Mission.objects.get(slug="vesper-relay")
    version("Vesper Relay (hijacked)")
    seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    branched = campaign_branch(membership=seat, session=session, at_seq=session.version)
    assert branched.campaign.mission_hash == original.content_hash
    nxt = open_session(branched.campaign, gm)
    assert nxt.state["mission"]["hash"] == original.content_hash


def test_a_campaign_created_before_its_mission_was_installed_pins_on_its_first_session(
    content, characters, campaign, gm
):
    Mission.objects.all().delete()
    Campaign.objects.filter(pk=campaign.pk).update(mission_slug="", mission_hash="")
    assert "mission_ref" not in open_session(campaign, gm).events.get(type="SessionOpened").payload

    installed = version("The Silence at Vesper Relay")
    campaign.refresh_from_db()
    second = open_session(campaign, gm)
    assert second.state["mission"]["hash"] == installed.content_hash
    campaign.refresh_from_db()
    assert campaign.mission_hash == installed.content_hash


def test_the_migration_pins_existing_campaigns_to_an_operators_version(campaign, gm):
    """Before pinning any GM could upload; the data migration doesn't trust those uploads."""
    migration = importlib.import_module("campaigns.migrations.0005_campaign_mission_pin")
    operators = Mission.objects.get(slug="vesper-relay")  # from the pack (gtw content load)
    hijack = version("Vesper Relay (hijacked)")
    Mission.objects.filter(pk=hijack.pk).update(installed_by=gm)
    Campaign.objects.filter(pk=campaign.pk).update(mission_slug="", mission_hash="")

    migration.pin_existing(apps, None)

    campaign.refresh_from_db()
    assert (campaign.mission_slug, campaign.mission_hash) == ("vesper-relay", operators.content_hash)
