"""Who may ask for and fetch a picture (GM, player, outsider) and what bad input gets."""

from __future__ import annotations

import json

import pytest

from media.images import services, tasks
from media.models import Image


@pytest.fixture
def ready_image(campaign, session, image_storage, monkeypatch):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    image, _ = services.image_request(campaign=campaign, kind="scene", session=session)
    tasks.generate(image.pk)
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    return image


def _post(client, body):
    return client.post("/api/images/request", data=json.dumps(body), content_type="application/json")


def test_a_member_asks_and_gets_202_then_200_from_the_cache(
    campaign, session, player_client, image_storage, monkeypatch
):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    first = _post(
        player_client,
        {"campaign": campaign.pk, "type": "item", "subject": "a relay key", "session": session.pk},
    )
    assert first.status_code == 202, first.content
    body = first.json()
    assert body["status"] == "queued" and body["image_id"]
    tasks.generate(body["image_id"])
    again = _post(
        player_client,
        {"campaign": campaign.pk, "type": "item", "subject": "a relay key", "session": session.pk},
    )
    assert again.status_code == 200
    meta = again.json()
    assert meta["image_id"] == body["image_id"] and meta["status"] == "ready"
    assert meta["url"] == f"/images/{body['image_id']}/file"
    assert meta["provider"] == "procedural" and meta["seed"] >= 0 and meta["rights"]
    assert "error" not in meta or meta["error"] is None  # players never see a failure's reason


def test_an_outsider_can_neither_ask_nor_see(campaign, ready_image, outsider_client, client):
    assert _post(outsider_client, {"campaign": campaign.pk, "type": "scene"}).status_code == 404
    assert outsider_client.get(f"/api/images/{ready_image.pk}").status_code == 404
    assert outsider_client.get(f"/images/{ready_image.pk}/file").status_code == 404
    assert outsider_client.get(f"/campaigns/{campaign.pk}/images/").status_code == 404
    assert outsider_client.post(f"/images/{ready_image.pk}/hide").status_code == 404
    # Signed out: the file is no public URL either.
    assert client.get(f"/images/{ready_image.pk}/file").status_code in (302, 404)


def test_members_fetch_the_bytes_with_an_etag_and_private_caching(ready_image, player_client, gm_client):
    for c in (player_client, gm_client):
        response = c.get(f"/images/{ready_image.pk}/file")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["ETag"] == f'"{ready_image.hash}"'
        assert "private" in response["Cache-Control"] and "max-age=31536000" in response["Cache-Control"]
        assert b"".join(response).startswith(b"\x89PNG")
    again = player_client.get(f"/images/{ready_image.pk}/file", HTTP_IF_NONE_MATCH=f'"{ready_image.hash}"')
    assert again.status_code == 304


def test_the_gm_hides_a_picture_and_players_lose_it(ready_image, player_client, gm_client):
    response = gm_client.post(f"/api/images/{ready_image.pk}/hide")
    assert response.status_code == 200 and response.json()["hidden"] is True
    assert player_client.get(f"/images/{ready_image.pk}/file").status_code == 404
    assert player_client.get(f"/api/images/{ready_image.pk}").status_code == 404
    assert gm_client.get(f"/images/{ready_image.pk}/file").status_code == 200
    page = gm_client.get(f"/campaigns/{ready_image.campaign_id}/images/")
    assert page.status_code == 200 and b"hidden" in page.content
    player_page = player_client.get(f"/campaigns/{ready_image.campaign_id}/images/").content.decode()
    assert f'id="gallery-{ready_image.pk}"' not in player_page
    assert f'id="gallery-{ready_image.pk}"' in page.content.decode()


def test_players_may_not_hide_regenerate_or_retry(ready_image, player_client):
    assert player_client.post(f"/api/images/{ready_image.pk}/hide").status_code == 403
    assert player_client.post(f"/api/images/{ready_image.pk}/regenerate").status_code == 403
    assert player_client.post(f"/images/{ready_image.pk}/hide").status_code == 403


def test_the_gallery_lists_prompt_provider_model_seed_and_rights(ready_image, player_client):
    page = player_client.get(f"/campaigns/{ready_image.campaign_id}/images/")
    assert page.status_code == 200
    text = page.content.decode()
    for value in (
        ready_image.provider,
        ready_image.model,
        str(ready_image.seed),
        "Rights",
        f"/images/{ready_image.pk}/file",
    ):
        assert value in text


def test_gm_sets_style_and_banned_words_in_the_gallery(campaign, gm_client, player_client, image_storage):
    url = f"/campaigns/{campaign.pk}/images/"
    assert player_client.post(url, {"style": "x", "banned_words": "kraken"}).status_code == 403
    assert gm_client.post(url, {"style": "ink wash", "banned_words": "Kraken, leviathan"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.settings["images"] == {"style": "ink wash", "banned_words": ["Kraken", "leviathan"]}
    refused = _post(gm_client, {"campaign": campaign.pk, "type": "scene", "subject": "the K.r.a.k.e.n rises"})
    assert refused.status_code == 422
    assert "Kraken" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"type": "scene", "subject": "x" * 100_000}, "too long"),
        ({"type": "hologram"}, "Unknown picture type"),
        ({"type": "scene", "seed": -1}, "seed"),
        ({"type": "scene", "seed": 2**32}, "seed"),
        ({"type": "scene", "subject": "g o r e everywhere"}, "gore"),
        ({"type": "scene", "subject": "a nud3 pinup"}, "nude"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(campaign, gm_client, body, needle):
    response = _post(gm_client, {"campaign": campaign.pk, **body})
    assert 400 <= response.status_code < 500
    assert needle in json.dumps(response.json())
    assert not Image.objects.filter(campaign=campaign).exists()


def test_the_gm_image_command_on_the_play_page(
    campaign, session, gm_client, player_client, image_storage, monkeypatch
):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    url = f"/sessions/{session.pk}/image"
    ok = gm_client.post(url, {"command": "/image portrait Kira Vance in her rig"}, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and b"Painting" in ok.content
    portrait = Image.objects.get(campaign=campaign, kind="portrait")
    assert portrait.parts["archetype"] == "netrunner" and portrait.ref.startswith("character:")
    assert portrait.session_id == session.pk
    bad = gm_client.post(url, {"command": "/image hologram of a ship"}, HTTP_HX_REQUEST="true")
    assert b"Unknown picture type" in bad.content
    assert player_client.post(url, {"command": "/image scene a ship"}).status_code == 403
    assert Image.objects.filter(campaign=campaign).count() == 1


def test_the_play_page_shows_the_scene_panel_to_the_table(
    campaign, session, gm_client, player_client, image_storage, monkeypatch
):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    image, _ = services.image_request(campaign=campaign, kind="scene", session=session)
    player_page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    gm_page = gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    for page in (player_page, gm_page):
        assert 'id="scene-panel"' in page and f'data-image="{image.pk}"' in page
        assert 'class="image-progress"' in page  # the placeholder while it is painted
        assert "images.js" in page
    assert 'name="command"' in gm_page and 'data-gm="1"' in gm_page
    assert 'name="command"' not in player_page and 'data-gm="1"' not in player_page
    tasks.generate(image.pk)
    player_page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert f'src="/images/{image.pk}/file"' in player_page


def test_the_stage_page_shows_the_scene_panel_without_controls(
    campaign, characters, gm, gm_client, image_storage, monkeypatch
):
    from campaigns import selectors
    from campaigns.stage import services as stage_services

    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    stage = stage_services.stage_open(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))
    image, _ = services.image_request(campaign=campaign, kind="scene", session=stage)
    tasks.generate(image.pk)
    page = gm_client.get(f"/sessions/{stage.pk}/stage/").content.decode()
    assert 'id="scene-panel"' in page and f'src="/images/{image.pk}/file"' in page
    assert 'name="command"' not in page and "images.js" in page


def test_a_spectator_watches_but_does_not_ask(campaign, gm, image_storage):
    from django.test import Client

    from campaigns import selectors
    from campaigns import services as campaign_services
    from tests.conftest import _user

    spectator = _user("spectator")
    gm_membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    invite = campaign_services.invite_create(membership=gm_membership, role="spectator")
    campaign_services.invite_accept(code=invite.code, user=spectator)
    client = Client()
    client.force_login(spectator)
    response = _post(client, {"campaign": campaign.pk, "type": "scene"})
    assert response.status_code == 403
    assert client.get(f"/campaigns/{campaign.pk}/images/").status_code == 200
