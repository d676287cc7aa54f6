"""Issue 15 and issue 17: pictures follow the runtime provider selection. A GM's (or staff's) choice
for the `image` role on the providers API applies to the campaign's next picture without a
restart — the campaign's choice, else an active A/B variant, else the site's, else
GTW_IMAGE_PROVIDER — and the job paints with exactly the provider and model the picture was keyed
for (both in its cache key), leaving a telemetry row (kind image) that names them. A choice that
cannot be built is refused with a 422 and the reason; the old one stays.

The remote providers are local servers speaking their wire format (tests/fakes/image_servers.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gtw_site.models import ProviderCall, ProviderChoice
from gtw_site.providers import selection
from gtw_site.providers import services as provider_services
from media.images import comfyui, services, tasks
from media.images.registry import IMAGE
from media.models import Image
from tests.fakes.image_servers import comfy_server, openai_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def vendors(settings, image_storage, monkeypatch):
    """The environment paints procedurally; OpenAI and ComfyUI are set up (local fakes) for a
    choice to pick."""
    monkeypatch.setattr(comfyui, "POLL_S", 0.1)
    monkeypatch.setattr(services, "notify", lambda image_id: None)
    monkeypatch.setattr(tasks, "notify", lambda image_id: None)
    monkeypatch.delenv("GTW_PROVIDER_KEYS", raising=False)
    settings.DATA_DIR = image_storage.parent
    with openai_server() as oa, comfy_server() as comfy:
        conf = dict(settings.GTW_IMAGES)
        conf["image"] = {"provider": "procedural", "timeout": 20.0}
        conf["steps"] = 2
        conf["openai"] = {**conf["openai"], "api_key": "sk-test-123456", "base_url": f"{oa.url}/v1"}
        conf["comfyui"] = {**conf["comfyui"], "base_url": comfy.url, "ws_url": comfy.ws_url}
        conf["diffusers"] = {"path": "", "device": "cpu"}
        settings.GTW_IMAGES = conf
        IMAGE.reset()
        selection.forget()
        yield SimpleNamespace(openai=oa, comfy=comfy)
    IMAGE.reset()
    selection.forget()


@pytest.fixture
def staff_client(db):
    user = get_user_model().objects.create_user(username="ops", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def choose(client, campaign, provider, **options):
    body = {"role": "image", "provider": provider, "options": options}
    if campaign is not None:
        body["campaign"] = campaign.pk
    return post(client, "/api/providers/select", body)


def paint(client, campaign, session, subject="the relay deck"):
    """Ask for a scene picture over the API and run its job; the row and the HTTP status."""
    answer = post(
        client,
        "/api/images/request",
        {"campaign": campaign.pk, "type": "scene", "subject": subject, "session": session.pk},
    )
    assert answer.status_code in (200, 202), answer.content
    image = Image.objects.get(pk=answer.json()["image_id"])
    if answer.status_code == 202:
        assert tasks.generate(image.pk) == Image.Status.READY, Image.objects.get(pk=image.pk).error
        image.refresh_from_db()
    return image, answer.status_code


def last_call(campaign):
    return ProviderCall.objects.filter(kind="image", campaign_id=campaign.pk).order_by("-pk").first()


def test_the_gms_choice_for_their_campaign_paints_the_next_picture(vendors, campaign, session, gm_client):
    first, _ = paint(gm_client, campaign, session)
    assert first.provider == "procedural" and last_call(campaign).provider == "procedural"

    assert choose(gm_client, campaign, "comfyui").status_code == 200
    image, status = paint(gm_client, campaign, session)
    assert status == 202 and (image.provider, image.model) == ("comfyui", "sd_xl_base_1.0.safetensors")
    assert any(path == "/prompt" for _, path, _ in vendors.comfy.requests)
    call = last_call(campaign)
    assert (call.provider, call.model, call.ok, call.session_id) == ("comfyui", image.model, True, session.pk)
    assert call.images == 1  # priced per picture

    provider_services.price_set(model="dall-e-3", per_image="0.04")
    answer = choose(gm_client, campaign, "openai", model="dall-e-3")
    assert answer.status_code == 200, answer.content
    image, status = paint(gm_client, campaign, session)
    assert status == 202 and (image.provider, image.model) == ("openai", "dall-e-3")
    sent = [body for method, path, body in vendors.openai.requests if path == "/v1/images/generations"]
    assert sent[-1]["model"] == "dall-e-3"  # the choice's model reached the vendor
    call = last_call(campaign)
    assert (call.provider, call.model, call.images, call.cost_usd) == (
        "openai",
        "dall-e-3",
        1,
        Decimal("0.04"),
    )

    # Back to the painter: the same request is the picture it painted before (the provider and
    # model are part of the cache key, so each provider's picture is its own).
    assert choose(gm_client, campaign, "procedural").status_code == 200
    again, status = paint(gm_client, campaign, session)
    assert status == 200 and again.pk == first.pk
    assert len({first.hash, image.hash}) == 2


def test_precedence_campaign_then_ab_variant_then_site_then_environment(
    vendors, campaign, session, gm_client, staff_client
):
    assert choose(staff_client, None, "comfyui").status_code == 200
    image, _ = paint(gm_client, campaign, session, subject="one")
    assert image.provider == "comfyui"  # the site's choice

    plan = provider_services.experiment_set(
        name="painters",
        role="image",
        variants=[{"name": "paint", "provider": "procedural"}, {"name": "oai", "provider": "openai"}],
    )
    assert plan.active
    variant = selection.current("image", campaign.pk)
    image, _ = paint(gm_client, campaign, session, subject="two")
    assert image.provider == variant.provider  # the experiment beats the site
    assert last_call(campaign).variant == variant.variant

    assert choose(gm_client, campaign, "openai", model="gpt-image-1").status_code == 200
    image, _ = paint(gm_client, campaign, session, subject="three")
    assert (image.provider, image.model) == ("openai", "gpt-image-1")  # the campaign beats both

    for body in ({"role": "image", "campaign": campaign.pk}, {"role": "image"}):
        client = gm_client if "campaign" in body else staff_client
        assert post(client, "/api/providers/clear", body).status_code == 200
    plan.active = False
    plan.save()
    selection.bump()
    image, _ = paint(gm_client, campaign, session, subject="four")
    assert image.provider == "procedural"  # nothing chosen: GTW_IMAGE_PROVIDER


def test_a_choice_that_cannot_start_is_refused_and_the_old_one_stays(
    vendors, campaign, session, gm_client, player_client, outsider_client
):
    assert choose(gm_client, campaign, "comfyui").status_code == 200

    refused = choose(gm_client, campaign, "diffusers")  # no GTW_DIFFUSERS_PATH on this site
    assert refused.status_code == 422 and "GTW_DIFFUSERS_PATH" in refused.json()["detail"]
    unknown = choose(gm_client, campaign, "dalle")
    assert unknown.status_code == 422 and "unknown provider 'dalle'" in unknown.json()["detail"]

    assert choose(player_client, campaign, "openai").status_code == 403
    assert choose(outsider_client, campaign, "openai").status_code == 404

    assert ProviderChoice.objects.get(role="image", campaign_id=campaign.pk).provider == "comfyui"
    image, _ = paint(gm_client, campaign, session)
    assert image.provider == "comfyui"


def test_a_picture_keeps_the_provider_and_model_it_was_asked_with(vendors, campaign, session, gm_client):
    """The choice changes between the request and its job: the job paints what the row says."""
    assert choose(gm_client, campaign, "openai", model="dall-e-3").status_code == 200
    answer = post(
        gm_client, "/api/images/request", {"campaign": campaign.pk, "type": "scene", "session": session.pk}
    )
    assert answer.status_code == 202
    assert choose(gm_client, campaign, "procedural").status_code == 200
    image = Image.objects.get(pk=answer.json()["image_id"])
    assert tasks.generate(image.pk) == Image.Status.READY
    sent = [body for method, path, body in vendors.openai.requests if path == "/v1/images/generations"]
    assert sent[-1]["model"] == "dall-e-3"
    call = last_call(campaign)
    assert (call.provider, call.model, call.variant) == ("openai", "dall-e-3", "")
