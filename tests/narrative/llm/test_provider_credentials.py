"""Credentials never leave an adapter: a base URL's userinfo, query and fragment are stripped from
errors, key hints and telemetry rows, a server echoing the key has it blanked, and the embedder
keeps them out of its errors too."""

from __future__ import annotations

import pytest

from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError, safe_url
from narrative.llm.anthropic import AnthropicChatProvider
from narrative.llm.registry import Recorded
from tests.fakes.wire_server import Reply, drain
from tests.narrative.llm.adapters import ask, closed_port, openai_like

# ---- Credentials in base URLs never reach an error message ---------------------------------------

SECRETS = ("s3cr3t-token", "SECRETQ123", "admin:")


def test_safe_url_strips_userinfo_query_and_fragment():
    assert safe_url("http://admin:s3cr3t@host:8080/v1?api_key=k#f") == "http://host:8080/v1"
    assert safe_url("https://api.example.com/v1") == "https://api.example.com/v1"
    assert "s3cr3t" not in safe_url("admin:s3cr3t@host/v1")


@pytest.mark.parametrize("kind", ["openai", "openai_compatible", "anthropic"])
def test_unreachable_server_error_hides_base_url_credentials(kind):
    port = closed_port()
    base = f"http://admin:s3cr3t-token@127.0.0.1:{port}/v1?api_key=SECRETQ123"
    if kind == "anthropic":
        provider = AnthropicChatProvider(model="c", api_key="sk-ant-test", base_url=base, timeout=0.5)
    else:
        provider = openai_like(kind, base, timeout=0.5)

    _, error = drain(provider.stream(ask()))

    assert error is not None and "could not connect" in str(error)
    assert f"http://127.0.0.1:{port}/v1" in str(error)
    assert not any(secret in str(error) for secret in SECRETS)


def test_401_key_hint_hides_base_url_credentials(wire):
    base = wire.openai_base_url.replace("http://", "http://admin:s3cr3t-token@")
    wire.script(Reply.error(401))

    _, error = drain(openai_like("openai_compatible", base).stream(ask()))

    assert error is not None
    assert str(error) == (
        f"openai_compatible: authentication failed (401) — check the API key configured for "
        f"{wire.openai_base_url}"
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_server_echoing_the_key_has_it_blanked(wire, kind):
    key = "sk-live-ABCDEF123456"
    wire.script(Reply.error(400, f"Invalid key '{key}' for model"))
    if kind == "anthropic":
        provider = AnthropicChatProvider(model="c", api_key=key, base_url=wire.anthropic_base_url)
    else:
        provider = openai_like(kind, wire.openai_base_url, api_key=key)

    _, error = drain(provider.stream(ask()))

    assert error is not None
    assert key not in str(error) and "Invalid key '***'" in str(error)


@pytest.mark.django_db
def test_telemetry_row_hides_base_url_credentials():
    base = f"http://u:hunter2-secret@127.0.0.1:{closed_port()}/v1"
    recorded = Recorded("narrator", openai_like("openai_compatible", base, timeout=0.5))

    with pytest.raises(ProviderError):
        list(recorded.stream(ask()))

    assert "hunter2" not in ProviderCall.objects.get().error


def test_the_embedder_keeps_credentials_out_of_its_errors_too():
    from gtw_site.providers import ProviderError
    from memory.embeddings.openai import OpenAIEmbedder

    embedder = OpenAIEmbedder(
        api_key="sk-test", base_url="http://u:hunter2@127.0.0.1:1/v1?api_key=k", timeout=2
    )
    with pytest.raises(ProviderError) as caught:
        embedder.embed(["hello"])
    message = str(caught.value)
    assert "could not connect to http://127.0.0.1:1/v1" in message
    assert "hunter2" not in message and "api_key" not in message
