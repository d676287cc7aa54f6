"""Contract tests of the remote moderation adapters, through the official openai SDK against
local servers speaking each wire format: OpenAI's /v1/moderations, and Llama Guard 3 behind an
OpenAI-compatible /v1/chat/completions (vLLM, Ollama)."""

from __future__ import annotations

import pytest

from campaigns.safety.classifiers.remote import LlamaGuardModeration, OpenAIModeration
from gtw_site.providers import ProviderError
from tests.fakes.wire_server import Reply, WireServer
from tests.safety.moderation_server import ModerationServer


@pytest.fixture
def moderations():
    with ModerationServer() as server:
        yield server


@pytest.fixture
def wire():
    with WireServer() as server:
        yield server


def openai_adapter(server: ModerationServer, **kwargs) -> OpenAIModeration:
    return OpenAIModeration(
        model="omni-moderation-latest",
        api_key="sk-test-1234567890",
        base_url=server.base_url,
        timeout=5,
        **kwargs,
    )


def test_openai_flags_map_to_our_categories(moderations):
    moderations.flag(violence=0.97, violence_graphic=0.81, self_harm_intent=0.6)
    verdict = openai_adapter(moderations).classify("He carves the prisoner up.")
    assert verdict.categories == ["graphic_violence", "self_harm", "violence"]
    assert verdict.scores["violence"] == pytest.approx(0.97)
    assert verdict.provider == "openai"
    sent = moderations.requests[-1]
    assert sent == {"model": "omni-moderation-latest", "input": "He carves the prisoner up."}
    assert moderations.headers[-1]["authorization"] == "Bearer sk-test-1234567890"


def test_openai_clean_reply_flags_nothing(moderations):
    moderations.flag()
    assert openai_adapter(moderations).classify("I check the cargo manifest.").categories == []


def test_openai_minors_label_is_ours(moderations):
    moderations.flag(sexual=0.9, sexual_minors=0.9)
    assert openai_adapter(moderations).classify("…").categories == ["minors", "sexual"]


def test_openai_text_is_redacted_before_it_leaves(moderations, settings):
    settings.GTW_REDACT_LOCAL = True  # the fake listens on 127.0.0.1: redact as for a remote one
    moderations.flag()
    openai_adapter(moderations).classify("Mail kira@example.com the codes", redact_kinds=["email"])
    assert moderations.requests[-1]["input"] == "Mail [email] the codes"
    moderations.flag()
    openai_adapter(moderations).classify("Mail kira@example.com, call 555-867-5309", redact_kinds=["phone"])
    assert moderations.requests[-1]["input"] == "Mail kira@example.com, call [phone]"  # the campaign's switch


def test_openai_lines_are_checked_here_not_there(moderations):
    moderations.flag()
    verdict = openai_adapter(moderations).classify("Spiders everywhere!", lines=["spiders"])
    assert verdict.categories == ["lines"]


@pytest.mark.parametrize("status, retryable", [(500, True), (429, True), (401, False), (400, False)])
def test_openai_errors_say_whether_to_retry_and_keep_the_key_out(moderations, status, retryable):
    moderations.fail(status, "bad thing for key sk-test-1234567890")
    with pytest.raises(ProviderError) as caught:
        openai_adapter(moderations).classify("hello")
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert "sk-test-1234567890" not in str(caught.value)


def test_openai_unreachable_server_is_retryable():
    adapter = OpenAIModeration(model="m", api_key="k", base_url="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(ProviderError) as caught:
        adapter.classify("hello")
    assert caught.value.retryable


def guard(wire: WireServer, **kwargs) -> LlamaGuardModeration:
    return LlamaGuardModeration(model="llama-guard3:1b", base_url=wire.openai_base_url, timeout=5, **kwargs)


def test_llama_guard_unsafe_codes_map_to_our_categories(wire):
    wire.script(Reply(text=["unsafe\nS1,S10"]))
    verdict = guard(wire).classify("Kill every one of them, they're animals.")
    assert verdict.categories == ["hate", "violence"]
    body = wire.last_body
    assert wire.requests[-1].path.endswith("/chat/completions")
    assert body["model"] == "llama-guard3:1b"
    assert body["messages"] == [{"role": "user", "content": "Kill every one of them, they're animals."}]
    assert not body.get("stream")


def test_llama_guard_safe_flags_nothing(wire):
    wire.script(Reply(text=["safe"]))
    assert guard(wire).classify("I scan the nebula.").categories == []


def test_llama_guard_judges_narration_as_the_agent_turn(wire):
    wire.script(Reply(text=["safe"]))
    guard(wire).classify("The GM says the door opens.", role="assistant")
    assert [m["role"] for m in wire.last_body["messages"]] == ["user", "assistant"]
    assert wire.last_body["messages"][-1]["content"] == "The GM says the door opens."


def test_llama_guard_full_prompt_carries_the_taxonomy(wire):
    wire.script(Reply(text=["unsafe\nS11"]))
    verdict = guard(wire, prompt="full").classify("I want to end it all.")
    assert verdict.categories == ["self_harm"]
    (message,) = wire.last_body["messages"]
    prompt = message["content"]
    assert "<BEGIN UNSAFE CONTENT CATEGORIES>" in prompt
    assert "S14: Code Interpreter Abuse." in prompt
    assert "User: I want to end it all." in prompt


def test_llama_guard_nonsense_reply_is_a_provider_error(wire):
    wire.script(Reply(text=["I'm sorry, I can't help with that."]))
    with pytest.raises(ProviderError) as caught:
        guard(wire).classify("hello")
    assert not caught.value.retryable


def test_llama_guard_server_error_is_retryable(wire):
    wire.script(Reply.error(500))
    with pytest.raises(ProviderError) as caught:
        guard(wire).classify("hello")
    assert caught.value.retryable


def test_llama_guard_needs_an_address():
    with pytest.raises(ProviderError, match="GTW_MODERATION_BASE_URL"):
        LlamaGuardModeration(model="m", base_url="")


def test_local_server_gets_the_original_text_unless_told(wire):
    wire.script(Reply(text=["safe"]), Reply(text=["safe"]))
    guard(wire).classify("Mail kira@example.com")
    assert "kira@example.com" in wire.last_body["messages"][0]["content"]  # 127.0.0.1: on site
