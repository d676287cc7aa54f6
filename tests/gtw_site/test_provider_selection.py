"""Issue 17 part 1: runtime provider selection. Choices per site and per campaign, layered over
the environment inside the one Registry, applied at the next call without a restart (another
process's change is seen through the revision row), refused with a 422 and the reason when the
adapter does not exist or cannot start (the old choice stays), and the API and page for staff,
GMs, players and outsiders."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from gtw_site.models import ProviderChoice, ProviderKey, ProviderRevision
from gtw_site.providers import selection, services
from gtw_site.providers.registry import registry_for
from gtw_site.telemetry import scope
from narrative.llm import registry as chat


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("GTW_PROVIDER_KEYS", raising=False)
    settings.DATA_DIR = tmp_path
    selection.forget()
    yield
    selection.forget()


@pytest.fixture
def staff_client(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="ops", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def role_of(body, role):
    return next(r for r in body["roles"] if r["role"] == role)


@pytest.mark.django_db
def test_without_choices_the_environment_decides():
    assert chat.build("narrator").name == "offline"
    assert chat.CHAT.selection("narrator", None) is None


@pytest.mark.django_db
def test_a_site_choice_applies_to_the_next_build_and_a_campaign_choice_beats_it():
    services.choice_set(role="narrator", preset="ollama")
    services.choice_set(role="narrator", provider="offline", campaign_id=7)

    site = chat.CHAT.build("narrator")
    assert (site.name, site.model, site.base_url) == (
        "openai_compatible",
        "llama3.1",
        "http://localhost:11434/v1",
    )
    assert chat.CHAT.build("narrator", campaign_id=7).name == "offline"
    assert chat.CHAT.build("narrator", campaign_id=8).name == "openai_compatible"  # no choice: the site's
    # A turn names its campaign through the telemetry scope; `registry.get(role)` stays as it was.
    with scope(campaign_id=7):
        assert chat.get("narrator").name == "offline"
    with scope(campaign_id=8):
        assert chat.get("narrator").name == "openai_compatible"


@pytest.mark.django_db
def test_an_explicit_conf_is_not_overridden():
    """Callers passing their own settings (doctor, tests) get exactly those."""
    services.choice_set(role="narrator", preset="ollama")
    conf = {**chat.CHAT.settings(), "narrator": {"provider": "offline", "timeout": 3.0}}
    assert chat.build("narrator", conf).name == "offline"


@pytest.mark.django_db
def test_another_processs_change_is_seen_at_the_next_call():
    """A second process writes the row and bumps the revision; this one loaded the old state."""
    assert chat.build("narrator").name == "offline"  # this process has loaded "no choices"
    ProviderChoice.objects.create(
        role="narrator",
        provider="openai_compatible",
        options={"base_url": "http://127.0.0.1:9/v1", "model": "m-2"},
    )
    selection.bump()

    adapter = chat.build("narrator")
    assert (adapter.name, adapter.model) == ("openai_compatible", "m-2")

    ProviderChoice.objects.all().delete()
    selection.bump()
    assert chat.build("narrator").name == "offline"


@pytest.mark.django_db
def test_a_revision_read_is_one_query_and_choices_are_reloaded_only_on_change(django_assert_num_queries):
    services.choice_set(role="narrator", provider="offline")
    chat.build("narrator")
    with django_assert_num_queries(1):
        chat.build("narrator")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"provider": "nope"}, "unknown provider 'nope'"),
        ({"provider": "openai_compatible"}, "no server address configured"),
        ({"preset": "hal9000"}, "no preset 'hal9000'"),
        ({"preset": "gemini"}, "needs an API key"),
        ({"provider": "offline", "options": {"colour": "red"}}, "unknown option colour"),
        ({"provider": "offline", "options": {"base_url": "http://x/v1"}}, "takes no base_url option"),
        ({"provider": "openai_compatible", "options": {"base_url": "ftp://x"}}, "must start with http"),
    ],
)
def test_an_adapter_that_does_not_exist_or_cannot_start_is_refused_and_the_old_one_stays(
    staff_client, data, reason
):
    assert (
        post(staff_client, "/api/providers/select", {"role": "narrator", "preset": "ollama"}).status_code
        == 200
    )

    response = post(staff_client, "/api/providers/select", {"role": "narrator", **data})

    assert response.status_code == 422
    assert reason in response.json()["detail"]
    row = ProviderChoice.objects.get(role="narrator")
    assert (row.provider, row.preset) == ("openai_compatible", "ollama")
    assert chat.build("narrator").base_url == "http://localhost:11434/v1"


@pytest.mark.django_db
def test_a_role_with_no_adapters_installed_is_a_clear_422(staff_client, monkeypatch):
    monkeypatch.setattr(services, "discover", lambda: {})
    monkeypatch.setattr(services, "registry_for", lambda role: None)
    response = post(staff_client, "/api/providers/select", {"role": "simulation", "provider": "x"})
    assert response.status_code == 422 and "no adapters for the simulation role" in response.json()["detail"]
    response = post(staff_client, "/api/providers/select", {"role": "astrology", "provider": "x"})
    assert response.status_code == 404


@pytest.mark.django_db
def test_presets_cover_the_seeds_vendors():
    names = set(selection.PRESETS)
    assert {"gemini", "grok", "openai", "anthropic", "ollama", "vllm", "llamacpp"} <= names
    assert selection.PRESETS["gemini"].base_url.startswith("https://generativelanguage.googleapis.com/")
    assert selection.PRESETS["grok"].base_url == "https://api.x.ai/v1"
    assert all(p.provider == "openai_compatible" for p in selection.PRESETS.values())


@pytest.mark.django_db
def test_a_preset_with_a_stored_key_builds_with_that_key_and_the_preset_model(staff_client):
    response = post(
        staff_client,
        "/api/providers/select",
        {
            "role": "narrator",
            "preset": "grok",
            "key": "xai-TESTKEY-1234567890wxyz",
            "options": {"model": "grok-4"},
        },
    )
    assert response.status_code == 200, response.content
    active = role_of(response.json(), "narrator")["active"]
    assert active == {
        **active,
        "provider": "openai_compatible",
        "model": "grok-4",
        "preset": "grok",
        "key": "…wxyz",
    }
    assert "xai-TESTKEY" not in response.content.decode()
    adapter = chat.build("narrator")
    assert adapter.base_url == "https://api.x.ai/v1"
    assert adapter._client.api_key == "xai-TESTKEY-1234567890wxyz"


@pytest.mark.django_db
def test_a_gms_own_server_never_receives_the_operators_env_key(settings, campaign, gm_client):
    settings.GTW_LLM = {
        **settings.GTW_LLM,
        "openai_compatible": {**settings.GTW_LLM["openai_compatible"], "api_key": "sk-operator-secret-9999"},
    }
    response = post(
        gm_client,
        "/api/providers/select",
        {
            "role": "narrator",
            "provider": "openai_compatible",
            "campaign": campaign.pk,
            "options": {"base_url": "http://93.184.215.14/v1", "model": "m"},  # a public address
        },
    )
    assert response.status_code == 200, response.content
    adapter = chat.CHAT.build("narrator", campaign_id=campaign.pk)
    assert adapter._client.api_key != "sk-operator-secret-9999"


# ---- who may see and change what -------------------------------------------------------------


@pytest.mark.django_db
def test_staff_list_every_role_with_its_kind_adapters_source_and_health(staff_client):
    body = staff_client.get("/api/providers").json()
    roles = {r["role"]: r for r in body["roles"]}
    assert set(selection.ROLES) <= set(roles)
    narrator = roles["narrator"]
    assert narrator["kind"] == "chat" and {"offline", "openai", "local_llm"} <= set(narrator["providers"])
    assert narrator["active"]["source"] == "environment" and narrator["health"]["ok"] is True
    assert roles["embedder"]["kind"] == "embedder"
    assert {p["name"] for p in body["presets"]} >= {"gemini", "grok"}


@pytest.mark.django_db
def test_health_says_why_a_role_cannot_start(staff_client, settings):
    settings.GTW_LLM = {
        **settings.GTW_LLM,
        "summarizer": {"provider": "openai_compatible", "timeout": 3.0},
        "openai_compatible": {**settings.GTW_LLM["openai_compatible"], "base_url": None},
    }
    summarizer = role_of(staff_client.get("/api/providers").json(), "summarizer")
    assert summarizer["health"]["ok"] is False and "no server address" in summarizer["health"]["error"]


@pytest.mark.django_db
def test_the_gm_steers_their_campaign_only(campaign, gm_client):
    url = "/api/providers/select"
    assert (
        post(gm_client, url, {"role": "narrator", "provider": "offline", "campaign": campaign.pk}).status_code
        == 200
    )
    assert ProviderChoice.objects.get().campaign_id == campaign.pk
    # Not the site's.
    assert post(gm_client, url, {"role": "narrator", "provider": "offline"}).status_code == 403
    assert gm_client.get("/api/providers").status_code == 403
    listing = gm_client.get(f"/api/providers?campaign={campaign.pk}").json()
    assert role_of(listing, "narrator")["active"]["source"] == "campaign"
    assert "keys" not in listing


@pytest.mark.django_db
def test_a_player_is_refused_and_an_outsider_cannot_tell_the_campaign_exists(
    campaign, player_client, outsider_client
):
    for client, status in ((player_client, 403), (outsider_client, 404)):
        assert client.get(f"/api/providers?campaign={campaign.pk}").status_code == status
        data = {"role": "narrator", "provider": "offline", "campaign": campaign.pk}
        assert post(client, "/api/providers/select", data).status_code == status
        assert (
            post(client, "/api/providers/clear", {"role": "narrator", "campaign": campaign.pk}).status_code
            == status
        )
        assert client.get(f"/providers/?campaign={campaign.pk}").status_code == status
    assert not ProviderChoice.objects.exists()
    assert Client().get("/api/providers").status_code == 401


@pytest.mark.django_db
def test_clearing_returns_to_the_site_then_the_environment(staff_client, campaign, gm_client):
    post(staff_client, "/api/providers/select", {"role": "narrator", "preset": "ollama"})
    post(
        gm_client,
        "/api/providers/select",
        {"role": "narrator", "provider": "offline", "campaign": campaign.pk},
    )
    assert chat.CHAT.build("narrator", campaign_id=campaign.pk).name == "offline"

    post(gm_client, "/api/providers/clear", {"role": "narrator", "campaign": campaign.pk})
    assert chat.CHAT.build("narrator", campaign_id=campaign.pk).name == "openai_compatible"
    post(staff_client, "/api/providers/clear", {"role": "narrator"})
    assert chat.CHAT.build("narrator", campaign_id=campaign.pk).name == "offline"
    assert ProviderRevision.objects.get().number > 0


@pytest.mark.django_db
def test_the_providers_page_for_staff_and_the_gm(staff_client, campaign, gm_client):
    page = staff_client.get("/providers/")
    assert (
        page.status_code == 200 and b'id="role-narrator"' in page.content and b"Stored keys" in page.content
    )
    response = staff_client.post(
        "/providers/", {"action": "select", "role": "narrator", "choice": "provider:nope"}
    )
    assert response.status_code == 422 and b"unknown provider" in response.content
    response = staff_client.post(
        "/providers/", {"action": "select", "role": "narrator", "choice": "preset:ollama", "model": "qwen2.5"}
    )
    assert response.status_code == 200 and b"qwen2.5" in response.content

    gm_page = gm_client.get(f"/providers/?campaign={campaign.pk}")
    assert gm_page.status_code == 200 and b"Stored keys" not in gm_page.content
    assert gm_client.get("/providers/").status_code == 403
    assert Client().get("/providers/").status_code == 302  # to sign in


@pytest.mark.django_db
def test_a_key_entered_with_a_refused_choice_is_not_kept(staff_client):
    response = post(
        staff_client,
        "/api/providers/select",
        {"role": "narrator", "provider": "nope", "key": "sk-abcdefghijklmnop"},
    )
    assert response.status_code == 422
    assert not ProviderKey.objects.exists()


@pytest.mark.django_db
def test_other_kinds_get_selection_for_free():
    """The embedder kind (declared before selection existed) follows a site choice too."""
    registry = registry_for("embedder")
    assert registry is not None
    services.choice_set(role="embedder", provider="local")
    assert registry.selection("embedder", None).provider == "local"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:11434/v1",  # the host itself
        "http://169.254.169.254/latest",  # a cloud's metadata service
        "http://10.0.0.7:8000/v1",  # the host's private network
        "http://[::1]:8000/v1",
        "http://no-such-host.invalid/v1",
    ],
)
def test_a_gms_own_server_must_be_public_unless_the_operator_allows(settings, campaign, gm_client, base_url):
    """SSRF: a GM who is not staff would otherwise make the site call into its own network."""
    data = {
        "role": "narrator",
        "provider": "openai_compatible",
        "campaign": campaign.pk,
        "options": {"base_url": base_url, "model": "m"},
    }
    response = post(gm_client, "/api/providers/select", data)
    assert response.status_code == 422 and "GTW_PROVIDER_ALLOW_PRIVATE" in response.content.decode()
    assert not ProviderChoice.objects.exists()
    if "invalid" not in base_url:
        settings.GTW_PROVIDER_ALLOW_PRIVATE = True
        assert post(gm_client, "/api/providers/select", data).status_code == 200


@pytest.mark.django_db
def test_staff_may_point_a_campaign_at_a_local_server(staff_client, campaign):
    data = {
        "role": "narrator",
        "provider": "openai_compatible",
        "campaign": campaign.pk,
        "options": {"base_url": "http://127.0.0.1:11434/v1", "model": "m"},
    }
    assert post(staff_client, "/api/providers/select", data).status_code == 200
