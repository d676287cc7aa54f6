"""A time limit on the whole provider call: a trickling stream or keepalives time out, complete is
bounded too, a slow but timely reply still arrives, and a trickling narrator fails the turn with a
retry."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError
from narrative import turns
from narrative.llm.anthropic import AnthropicChatProvider
from narrative.llm.base import TextDelta
from tests.fakes.wire_server import Reply, drain
from tests.narrative.llm.adapters import ask, openai_like

# ---- GTW_LLM_TIMEOUT bounds the whole call, not each socket read --------------------------------


@pytest.mark.parametrize("kind", ["openai", "openai_compatible"])
def test_a_trickling_stream_times_out(wire, kind):
    # Every gap is under the per-read timeout; the whole reply would take ~4s, so an error after
    # some words (not all ten) is the whole-call deadline at work.
    wire.script(Reply(text=[f"w{i} " for i in range(10)], gap=0.4))
    provider = openai_like(kind, wire.openai_base_url, timeout=1.0)

    events, error = drain(provider.stream(ask()))

    assert error is not None and error.retryable is True
    assert str(error) == f"{kind}: timed out after 1.0s"
    assert 0 < len(events) < 10


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_keepalives_do_not_keep_a_call_alive(wire, vendor):
    # SSE comments (OpenAI-style proxies) and Anthropic's `ping` events never reach the loop.
    wire.script(Reply(text=["late"], keepalives=20, gap=0.3))
    if vendor == "anthropic":
        provider = AnthropicChatProvider(
            model="c", api_key="sk-ant-test", base_url=wire.anthropic_base_url, timeout=1.0
        )
    else:
        provider = openai_like("openai", wire.openai_base_url, timeout=1.0)

    events, error = drain(provider.stream(ask()))

    assert events == []
    assert error is not None and error.retryable is True
    assert str(error) == f"{vendor}: timed out after 1.0s"


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_complete_is_bounded_too(wire, vendor):
    # Whitespace ahead of a JSON body, as some proxies send to keep a connection open.
    wire.script(Reply(text=["late"], keepalives=20, gap=0.3))
    if vendor == "anthropic":
        provider = AnthropicChatProvider(
            model="c", api_key="sk-ant-test", base_url=wire.anthropic_base_url, timeout=1.0
        )
    else:
        provider = openai_like("openai", wire.openai_base_url, timeout=1.0)

    def call():
        with pytest.raises(ProviderError) as caught:
            provider.complete(ask())
        return caught.value

    error = call()

    assert error.retryable is True
    assert str(error) == f"{vendor}: timed out after 1.0s"


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_a_slow_but_timely_reply_still_arrives(wire, vendor):
    wire.script(
        Reply(text=["a ", "b ", "c"], keepalives=2, gap=0.1), Reply(text=["done"], keepalives=2, gap=0.1)
    )
    if vendor == "anthropic":
        provider = AnthropicChatProvider(
            model="c", api_key="sk-ant-test", base_url=wire.anthropic_base_url, timeout=3.0
        )
    else:
        provider = openai_like("openai", wire.openai_base_url, timeout=3.0)

    events = list(provider.stream(ask()))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a ", "b ", "c"]
    # The deadline is per call: a second call on the same adapter gets a fresh one.
    assert provider.complete(ask()) == "done"


@pytest.mark.django_db
def test_a_trickling_narrator_fails_the_turn_with_a_retry(settings, wire, session, player):
    conf = {k: dict(v) for k, v in settings.GTW_LLM.items()}
    conf["narrator"] = {"provider": "openai", "timeout": 1.0}
    conf["openai"] = {"api_key": "sk-test", "base_url": wire.openai_base_url, "model": "gpt-test"}
    settings.GTW_LLM = conf
    slow = Reply(text=[f"w{i} " for i in range(10)], gap=0.4)
    wire.script(slow, slow)

    result = turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="k1")
    turns.run_pending_turns(session.pk)

    failed = Event.objects.filter(session=session, type="TurnFailed").get()
    assert failed.payload["action_seq"] == result.events[0].seq
    assert "timed out after 1.0s" in failed.payload["error"]
    # The turn's query embedding (before the narrator) is recorded too, as a success.
    assert list(ProviderCall.objects.order_by("id").values_list("role", "ok")) == [
        ("embedder", True),
        ("narrator", False),
        ("narrator", False),
    ]
