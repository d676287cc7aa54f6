"""The campaign lifecycle's buttons: clone, archive/restore and export on the campaign page (the
GM's), import on the dashboard. Personas: GM, player, outsider; bad files lose nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Campaign, Membership

pytestmark = pytest.mark.django_db


def test_the_gm_sees_the_buttons_and_the_player_does_not(campaign, gm_client, player_client):
    gm_page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    for needle in ("Clone", "Export campaign file", "Archive campaign"):
        assert needle in gm_page
    player_page = player_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    for needle in ("Export campaign file", "Archive campaign", f"/campaigns/{campaign.pk}/clone"):
        assert needle not in player_page
    assert "Import a campaign" in player_client.get("/").content.decode()


def test_clone_button(campaign, gm, gm_client, player_client, outsider_client):
    response = gm_client.post(f"/campaigns/{campaign.pk}/clone", {"name": "Second table"})
    clone = Campaign.objects.get(name="Second table")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{clone.pk}/"
    assert Membership.objects.get(campaign=clone, user=gm).role == "gm"
    before = Campaign.objects.count()
    assert player_client.post(f"/campaigns/{campaign.pk}/clone", {"name": "Mine now"}).status_code == 302
    assert outsider_client.post(f"/campaigns/{campaign.pk}/clone", {"name": "Mine now"}).status_code == 404
    assert Campaign.objects.count() == before


def test_archive_and_restore_buttons(session, campaign, gm_client, player_client, outsider_client):
    assert player_client.post(f"/campaigns/{campaign.pk}/archive", {"action": "archive"}).status_code == 302
    assert outsider_client.post(f"/campaigns/{campaign.pk}/archive", {"action": "archive"}).status_code == 404
    campaign.refresh_from_db()
    assert campaign.archived is False

    response = gm_client.post(f"/campaigns/{campaign.pk}/archive", {"action": "archive"})
    assert response.status_code == 302 and response["Location"] == "/"
    campaign.refresh_from_db()
    assert campaign.archived is True
    page = player_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "This campaign is archived" in page
    assert "Open a session" not in gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    gm_client.post(f"/campaigns/{campaign.pk}/archive", {"action": "unarchive"})
    campaign.refresh_from_db()
    assert campaign.archived is False


def test_export_link_and_import_form(session, campaign, gm, gm_client, player_client, outsider_client):
    export = gm_client.get(f"/campaigns/{campaign.pk}/export")
    assert export.status_code == 200
    assert export["Content-Disposition"].endswith('.gtw.json"')
    assert player_client.get(f"/campaigns/{campaign.pk}/export").status_code == 403
    assert outsider_client.get(f"/campaigns/{campaign.pk}/export").status_code == 404

    response = gm_client.post(
        "/campaigns/import", {"file": SimpleUploadedFile("save.gtw.json", export.content), "name": "Restored"}
    )
    restored = Campaign.objects.get(name="Restored")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{restored.pk}/"

    before = Campaign.objects.count()
    bad = gm_client.post(
        "/campaigns/import", {"file": SimpleUploadedFile("x.json", b"not a campaign")}, follow=True
    )
    assert "Nothing was imported" in bad.content.decode()
    missing = gm_client.post("/campaigns/import", {}, follow=True)
    assert "Choose a campaign file" in missing.content.decode()
    assert Campaign.objects.count() == before
