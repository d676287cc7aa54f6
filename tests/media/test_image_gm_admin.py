"""The GM admin's picture pages (/gm/media/image/, /gm/media/bannedword/): the GM's campaigns'
pictures and banned words, hide / show / regenerate / retry; another GM, a player and an outsider
get none of it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.html import escape

from campaigns import services as campaign_services
from campaigns.errors import Invalid
from media.images import services, tasks
from media.models import BannedWord, Image

IMAGES = "/gm/media/image/"
WORDS = "/gm/media/bannedword/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def painted(campaign, session, image_storage, monkeypatch):
    """A ready scene picture of the GM's campaign (the job run here, not on the cluster)."""
    queued: list[int] = []
    monkeypatch.setattr(services, "queue_generate", queued.append)
    image, _ = services.image_request(campaign=campaign, kind="scene", session=session, subject="the dock")
    tasks.generate(image.pk)
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    queued.clear()
    return image, queued


@pytest.fixture
def other_gm(content):
    from tests.conftest import _user

    y = _user("ygm-images")
    campaign_services.campaign_create(user=y, name="Y's own sandbox", pack_slug="starter")
    return y


def test_the_gm_lists_their_pictures_with_thumbnail_prompt_provider_model_seed_and_rights(gm, painted):
    image, _ = painted
    page = _client(gm).get(IMAGES)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'src="/images/{image.pk}/file"' in html  # the thumbnail, members-only URL
    for shown in (image.provider, image.model, str(image.seed), image.rights, "Ready"):
        assert escape(shown) in html, shown
    assert escape(image.prompt[:60]) in html
    change = _client(gm).get(f"{IMAGES}{image.pk}/change/")
    assert change.status_code == 200 and escape(image.negative[:40]) in change.content.decode()


def test_hide_and_show_reach_the_players(
    gm, player_client, painted, sent, django_capture_on_commit_callbacks
):
    image, _ = painted
    client = _client(gm)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(IMAGES, {"action": "hide", "_selected_action": [image.pk]}, follow=True)
    assert response.status_code == 200 and "1 picture hidden" in response.content.decode()
    image.refresh_from_db()
    assert image.hidden
    assert player_client.get(f"/images/{image.pk}/file").status_code == 404
    # The table's sockets hear of it (the scene panel drops the picture).
    assert [g for g, _m in sent] == [f"session.{image.session_id}"]
    client.post(IMAGES, {"action": "show", "_selected_action": [image.pk]})
    image.refresh_from_db()
    assert not image.hidden
    assert player_client.get(f"/images/{image.pk}/file").status_code == 200


def test_the_change_form_edits_only_hidden(gm, painted):
    image, _ = painted
    client = _client(gm)
    response = client.post(
        f"{IMAGES}{image.pk}/change/", {"hidden": "on", "prompt": "something else", "seed": "1"}
    )
    assert response.status_code == 302, response.content[:500]
    image.refresh_from_db()
    assert image.hidden and image.seed != 1 and image.prompt != "something else"


def test_regenerate_queues_a_new_picture_with_a_new_seed_and_keeps_the_old(
    gm, painted, django_capture_on_commit_callbacks
):
    image, queued = painted
    with django_capture_on_commit_callbacks(execute=True):
        _client(gm).post(IMAGES, {"action": "regenerate", "_selected_action": [image.pk]})
    new = Image.objects.exclude(pk=image.pk).get(campaign=image.campaign)
    assert new.prompt == image.prompt and new.seed != image.seed
    assert new.status == Image.Status.QUEUED and queued == [new.pk]
    assert Image.objects.filter(pk=image.pk, status=Image.Status.READY).exists()


def test_retry_refuses_a_ready_picture_and_queues_a_failed_one(
    gm, painted, django_capture_on_commit_callbacks
):
    image, queued = painted
    client = _client(gm)
    page = client.post(IMAGES, {"action": "retry", "_selected_action": [image.pk]}, follow=True)
    assert "Only a failed picture can be retried" in page.content.decode()
    Image.objects.filter(pk=image.pk).update(status=Image.Status.FAILED, error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(IMAGES, {"action": "retry", "_selected_action": [image.pk]})
    image.refresh_from_db()
    assert image.status == Image.Status.QUEUED and queued == [image.pk]


def test_another_gm_sees_and_changes_nothing_of_this_campaigns_pictures(
    other_gm, painted, django_capture_on_commit_callbacks
):
    image, queued = painted
    client = _client(other_gm)
    listing = client.get(IMAGES)
    assert listing.status_code == 200
    assert f"/images/{image.pk}/file" not in listing.content.decode()
    assert listing.context["cl"].result_count == 0
    for url in (f"{IMAGES}{image.pk}/change/", f"{IMAGES}{image.pk}/history/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{IMAGES}{image.pk}/change/", {"hidden": "on"}).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        for action in ("hide", "regenerate", "retry"):
            client.post(IMAGES, {"action": action, "_selected_action": [image.pk]})
    image.refresh_from_db()
    assert not image.hidden and queued == []
    assert Image.objects.filter(campaign=image.campaign).count() == 1
    # Nor may they fetch its bytes.
    assert client.get(f"/images/{image.pk}/file").status_code == 404


def test_players_and_outsiders_get_no_picture_pages(player, outsider, painted):
    image, _ = painted
    for user in (player, outsider):
        client = _client(user)
        for url in (IMAGES, f"{IMAGES}{image.pk}/change/", WORDS, f"{WORDS}add/"):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"] == "/", (user, url)
    assert Client().get(IMAGES).status_code == 302  # to the sign-in page


def test_the_gm_bans_a_word_for_their_campaign_and_requests_with_it_are_refused(
    gm, campaign, session, image_storage, monkeypatch
):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    client = _client(gm)
    response = client.post(f"{WORDS}add/", {"campaign": campaign.pk, "word": "  Kraken  "})
    assert response.status_code == 302, response.content[:800]
    word = BannedWord.objects.get(campaign=campaign)
    assert word.word == "Kraken"
    with pytest.raises(Invalid, match="Kraken"):
        services.image_request(campaign=campaign, kind="scene", session=session, subject="a k.r.a.k.e.n")
    # The same word twice is refused with a message, not an error page.
    again = client.post(f"{WORDS}add/", {"campaign": campaign.pk, "word": "kraken"})
    assert again.status_code == 200 and "already banned" in again.content.decode()
    assert client.get(WORDS).status_code == 200
    client.post(f"{WORDS}{word.pk}/delete/", {"post": "yes"})
    assert not BannedWord.objects.filter(pk=word.pk).exists()


def test_banned_words_are_per_campaign_and_site_wide_ones_stay_with_staff(gm, campaign, other_gm):
    site_wide = BannedWord.objects.create(word="sitewideword", campaign=None)
    mine = BannedWord.objects.create(word="ourword", campaign=campaign)
    y = _client(other_gm)
    listing = y.get(WORDS).content.decode()
    assert "ourword" not in listing and "sitewideword" not in listing
    assert y.get(f"{WORDS}{mine.pk}/change/").status_code == 404
    assert y.post(f"{WORDS}{mine.pk}/delete/", {"post": "yes"}).status_code == 404
    # Y cannot add a word to this campaign (not among the choices) nor a site-wide one.
    for data in ({"campaign": campaign.pk, "word": "hijack"}, {"campaign": "", "word": "hijack"}):
        assert y.post(f"{WORDS}add/", data).status_code == 200  # the form again, with its error
    assert not BannedWord.objects.filter(word="hijack").exists()
    mine_page = _client(gm).get(WORDS).content.decode()
    assert "ourword" in mine_page and "sitewideword" not in mine_page
    assert _client(gm).get(f"{WORDS}{site_wide.pk}/change/").status_code == 404
