"""Redaction where text leaves (issue 18 part 5): the remote chat adapters and the remote
embedder send no PII over the wire, a local server gets the original text unless
GTW_REDACT_LOCAL, and provider errors and telemetry rows carry no PII either.

Each adapter talks, through its real SDK, to the fake vendor server in tests/fakes/, and the
test reads what arrived there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError
from gtw_site.telemetry import record_call
from memory.embeddings.openai import OpenAIEmbedder
from narrative.llm.anthropic import AnthropicChatProvider
from narrative.llm.base import ChatRequest, Message, ToolCall
from narrative.llm.openai import OpenAIChatProvider
from narrative.llm.openai_compatible import OpenAICompatibleProvider
from tests.fakes.embed_server import EmbedReply, EmbedServer
from tests.fakes.wire_server import Reply, WireServer

EMAIL, PHONE, CARD = "kira.vance@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"
PII = (EMAIL, PHONE, CARD)


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def embed_server() -> Iterator[EmbedServer]:
    with EmbedServer() as server:
        yield server


def request_with_pii() -> ChatRequest:
    call = ToolCall(
        id="c1", name="world_update", arguments={"flag": "contact", "value": EMAIL}, raw_arguments=""
    )
    return ChatRequest(
        messages=[
            Message("system", f"You are the GM. The host's phone is {PHONE}."),
            Message("user", f"Kira: mail me at {EMAIL}, my card is {CARD}"),
            Message("assistant", "", tool_calls=(call,)),
            # A tool result the game wrote: its seed must reach the model as the number it is.
            Message(
                "tool",
                json.dumps({"ok": True, "seed": 4111111111111111, "note": f"call {PHONE}"}),
                tool_call_id="c1",
            ),
        ]
    )


def leaked(body: dict) -> list[str]:
    raw = json.dumps(body, ensure_ascii=False)
    return [pii for pii in PII if pii in raw]


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_a_remote_vendor_receives_placeholders_not_pii(wire, vendor):
    if vendor == "openai":
        provider = OpenAIChatProvider(
            model="m", api_key="sk-test", base_url=wire.openai_base_url, timeout=2.0
        )
    else:
        provider = AnthropicChatProvider(
            model="m", api_key="sk-test", base_url=wire.anthropic_base_url, timeout=2.0
        )
    wire.script(Reply(text=["ok"]), Reply(text=["ok"]))
    list(provider.stream(request_with_pii()))
    provider.complete(request_with_pii())
    for received in wire.requests:
        assert leaked(received.body) == []
        raw = json.dumps(received.body)
        assert "[email]" in raw and "[phone]" in raw and "[card number]" in raw
        # The tool result's numbers are data, not PII: the seed arrives whole.
        assert "4111111111111111" in raw


def test_a_local_server_gets_the_original_text(wire, settings):
    settings.GTW_REDACT_LOCAL = False
    provider = OpenAICompatibleProvider(model="llama", base_url=wire.openai_base_url, timeout=2.0)
    wire.script(Reply(text=["ok"]))
    list(provider.stream(request_with_pii()))
    assert sorted(leaked(wire.last_body)) == sorted(PII)


def test_gtw_redact_local_redacts_for_a_local_server_too(wire, settings):
    settings.GTW_REDACT_LOCAL = True
    provider = OpenAICompatibleProvider(model="llama", base_url=wire.openai_base_url, timeout=2.0)
    wire.script(Reply(text=["ok"]))
    list(provider.stream(request_with_pii()))
    assert leaked(wire.last_body) == []


def test_a_remote_compatible_server_is_redacted(settings):
    provider = OpenAICompatibleProvider(
        model="grok", base_url="https://api.x.ai/v1", api_key="k", timeout=2.0
    )
    params = provider._params(request_with_pii())
    assert leaked(params) == []


def test_gtw_redact_chooses_the_kinds(wire, settings):
    settings.GTW_REDACT = ["email"]
    provider = OpenAIChatProvider(model="m", api_key="sk-test", base_url=wire.openai_base_url, timeout=2.0)
    wire.script(Reply(text=["ok"]))
    list(provider.stream(request_with_pii()))
    assert sorted(leaked(wire.last_body)) == sorted([PHONE, CARD])


def test_gtw_redact_none_sends_everything(wire, settings):
    settings.GTW_REDACT = []
    provider = OpenAIChatProvider(model="m", api_key="sk-test", base_url=wire.openai_base_url, timeout=2.0)
    wire.script(Reply(text=["ok"]))
    list(provider.stream(request_with_pii()))
    assert sorted(leaked(wire.last_body)) == sorted(PII)


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_an_error_that_quotes_the_prompt_back_is_redacted(wire, vendor):
    """A vendor's 400 often quotes the offending input; that text reaches players and telemetry."""
    if vendor == "openai":
        provider = OpenAIChatProvider(
            model="m", api_key="sk-test", base_url=wire.openai_base_url, timeout=2.0
        )
    else:
        provider = AnthropicChatProvider(
            model="m", api_key="sk-test", base_url=wire.anthropic_base_url, timeout=2.0
        )
    wire.script(Reply.error(400, f"invalid content near 'mail me at {EMAIL}, call {PHONE}'"))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(request_with_pii()))
    message = str(caught.value)
    assert EMAIL not in message and PHONE not in message
    assert "[email]" in message


def test_the_remote_embedder_sends_placeholders(embed_server):
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=embed_server.base_url, timeout=2.0)
    embedder.embed([f"Kira's contact: {EMAIL}", "the airlock hisses", f"call {PHONE}"])
    sent = embed_server.last_body["input"]
    assert sent == ["Kira's contact: [email]", "the airlock hisses", "call [phone]"]


def test_the_embedder_error_is_redacted(embed_server):
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=embed_server.base_url, timeout=2.0)
    embed_server.script(EmbedReply.error(400, f"bad input: {EMAIL}"))
    with pytest.raises(ProviderError) as caught:
        embedder.embed(["hello"])
    assert EMAIL not in str(caught.value) and "[email]" in str(caught.value)


@pytest.mark.django_db
def test_telemetry_rows_carry_no_pii():
    record_call(
        role="narrator", provider="openai", model="m", latency_ms=1.0, ok=False, error=f"boom for {EMAIL}"
    )
    row = ProviderCall.objects.get()
    assert row.error == "boom for [email]"
