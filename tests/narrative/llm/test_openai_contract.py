"""OpenAIChatProvider against a local server speaking OpenAI's Chat Completions wire format."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from gtw_site.providers import ProviderError, Usage
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCall, ToolCallEvent, ToolSpec
from narrative.llm.openai import OpenAIChatProvider
from tests.fakes.wire_server import Reply, ScriptedCall, WireServer, drain

ROLL = ToolSpec(
    name="roll_check",
    description="Roll a skill check for the acting character.",
    parameters={
        "type": "object",
        "properties": {"skill": {"type": "string"}, "difficulty": {"type": "integer"}},
        "required": ["skill"],
    },
)


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def provider(wire: WireServer) -> OpenAIChatProvider:
    return OpenAIChatProvider(model="gpt-test", api_key="sk-test", base_url=wire.openai_base_url, timeout=2.0)


def ask(**kwargs) -> ChatRequest:
    messages = [Message("system", "You are the game master."), Message("user", "I pick the airlock's lock.")]
    return ChatRequest(messages=messages, **kwargs)


def texts(events) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def calls(events) -> list[ToolCall]:
    return [e.call for e in events if isinstance(e, ToolCallEvent)]


def test_the_module_wraps_the_real_sdk():
    import narrative.llm.openai as adapter

    assert adapter.openai is sys.modules["openai"]
    assert hasattr(adapter.openai, "OpenAI")


def test_text_streams_as_ordered_deltas_then_stream_end(wire, provider):
    wire.script(Reply(text=["The lock ", "clicks", " open."], usage=(40, 9)))

    events = list(provider.stream(ask(max_tokens=300, temperature=0.4)))

    assert texts(events) == ["The lock ", "clicks", " open."]
    assert events[-1] == StreamEnd(stop_reason="stop", usage=Usage(40, 9))
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    sent = wire.last_body
    assert wire.requests[-1].path == "/v1/chat/completions"
    assert sent["model"] == "gpt-test"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_completion_tokens"] == 300
    assert sent["temperature"] == 0.4
    assert sent["messages"] == [
        {"role": "system", "content": "You are the game master."},
        {"role": "user", "content": "I pick the airlock's lock."},
    ]
    assert "tools" not in sent
    assert "seed" not in sent
    assert wire.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_tool_call_split_mid_json_is_assembled(wire, provider):
    call = ScriptedCall.split("call_abc", "roll_check", {"skill": "lockpicking", "difficulty": 3}, parts=5)
    assert len(call.pieces) == 5
    wire.script(Reply(text=["Let me see."], tool_calls=[call]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert calls(events) == [
        ToolCall(
            id="call_abc",
            name="roll_check",
            arguments={"skill": "lockpicking", "difficulty": 3},
            raw_arguments=call.text,
        )
    ]
    assert events[-1].stop_reason == "tool_calls"
    assert wire.last_body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "roll_check",
                "description": ROLL.description,
                "parameters": ROLL.parameters,
            },
        }
    ]


@pytest.mark.parametrize("interleave", [False, True])
def test_two_tool_calls_in_one_message(wire, provider, interleave):
    first = ScriptedCall.split("call_1", "roll_check", {"skill": "stealth"}, parts=3)
    second = ScriptedCall.split("call_2", "roll_check", {"skill": "hacking", "difficulty": 2}, parts=4)
    wire.script(Reply(tool_calls=[first, second], interleave_calls=interleave))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert [(c.id, c.arguments) for c in calls(events)] == [
        ("call_1", {"skill": "stealth"}),
        ("call_2", {"skill": "hacking", "difficulty": 2}),
    ]
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].stop_reason == "tool_calls"


def test_tool_results_go_back_as_tool_messages(wire, provider):
    wire.script(Reply(text=["You slip inside."]))
    call = ToolCall(
        id="call_1", name="roll_check", arguments={"skill": "stealth"}, raw_arguments='{"skill":"stealth"}'
    )
    follow_up = ChatRequest(
        messages=[
            Message("system", "You are the game master."),
            Message("user", "I sneak past."),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", '{"roll": 17, "success": true}', tool_call_id="call_1", name="roll_check"),
        ],
        tools=[ROLL],
    )

    list(provider.stream(follow_up))

    assert wire.last_body["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "roll_check", "arguments": '{"skill": "stealth"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"roll": 17, "success": true}'},
    ]


def test_seed_is_sent_when_set(wire, provider):
    wire.script(Reply(text=["ok"]))
    list(provider.stream(ask(seed=1234)))
    assert wire.last_body["seed"] == 1234


def test_length_stop_reason(wire, provider):
    wire.script(Reply(text=["And then"], stop="length"))
    events = list(provider.stream(ask()))
    assert events[-1].stop_reason == "length"


def test_malformed_tool_json_is_kept_raw_not_raised(wire, provider):
    broken = ScriptedCall("call_bad", "roll_check", ['{"skill": "lock', "picking", '", difficulty: }'])
    wire.script(Reply(tool_calls=[broken]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert calls(events) == [
        ToolCall(
            id="call_bad",
            name="roll_check",
            arguments={},
            raw_arguments='{"skill": "lockpicking", difficulty: }',
        )
    ]
    assert isinstance(events[-1], StreamEnd)


def test_complete_returns_the_text(wire, provider):
    wire.script(Reply(text=["Session recap: ", "the crew escaped."]))

    assert provider.complete(ask(seed=7)) == "Session recap: the crew escaped."
    assert "stream" not in wire.last_body
    assert wire.last_body["seed"] == 7


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_server_side_statuses_are_retryable(wire, provider, status):
    wire.script(Reply.error(status))

    _, error = drain(provider.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert error.status == status
    assert error.provider == "openai"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_side_statuses_are_final(wire, provider, status):
    wire.script(Reply.error(status))

    _, error = drain(provider.stream(ask()))

    assert error is not None
    assert error.retryable is False
    assert error.status == status


def test_401_says_which_key_to_check(wire, provider):
    wire.script(Reply.error(401))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask()))
    assert str(caught.value) == "openai: authentication failed (401) — check OPENAI_API_KEY"


def test_429_carries_the_vendor_message(wire, provider):
    wire.script(Reply.error(429, "Rate limit reached for gpt-test"))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask()))
    assert caught.value.retryable
    assert "Rate limit reached for gpt-test" in str(caught.value)


def test_429_out_of_credit_is_final(wire, provider):
    wire.script(
        Reply(status=429, error_message="You exceeded your current quota", error_code="insufficient_quota")
    )
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask()))
    assert not caught.value.retryable
    assert caught.value.status == 429
    assert "billing" in str(caught.value)


def test_complete_maps_errors_too(wire, provider):
    wire.script(Reply.error(401))
    with pytest.raises(ProviderError) as caught:
        provider.complete(ask())
    assert not caught.value.retryable
    assert caught.value.status == 401


def test_slow_server_times_out_as_retryable(wire):
    slow = OpenAIChatProvider(model="gpt-test", api_key="sk-test", base_url=wire.openai_base_url, timeout=0.5)
    wire.script(Reply(text=["late"], delay=3.0))

    _, error = drain(slow.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert str(error) == "openai: timed out after 0.5s"


def test_stall_mid_stream_times_out_as_retryable(wire):
    slow = OpenAIChatProvider(model="gpt-test", api_key="sk-test", base_url=wire.openai_base_url, timeout=0.5)
    wire.script(Reply(text=["The ", "engine ", "coughs."], stall_after=2, stall_for=3.0))

    events, error = drain(slow.stream(ask()))

    assert texts(events) == ["The "]
    assert error is not None
    assert error.retryable is True
    assert "timed out" in str(error)


def test_dropped_connection_mid_stream_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], drop_after=3))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The ", "hull "]
    assert error is not None
    assert error.retryable is True
    assert not any(isinstance(e, StreamEnd) for e in events)


def test_stream_ending_early_without_finish_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], truncate_after=3))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The ", "hull "]
    assert error is not None
    assert error.retryable is True


def test_error_event_mid_stream_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], error_event_after=2))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The "]
    assert error is not None
    assert error.retryable is True
    assert "The server had an error" in str(error)


def test_unreachable_server_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = OpenAIChatProvider(
        model="gpt-test", api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1", timeout=0.5
    )

    _, error = drain(nowhere.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert "could not connect" in str(error)


def test_missing_api_key_is_a_clear_final_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderError) as caught:
        OpenAIChatProvider(model="gpt-test", api_key="")
    assert not caught.value.retryable
    assert "OPENAI_API_KEY" in str(caught.value)


def test_empty_base_url_means_the_vendor_default(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    adapter = OpenAIChatProvider(model="gpt-test", api_key="sk-test", base_url="")
    assert adapter._client.base_url.host == "api.openai.com"
