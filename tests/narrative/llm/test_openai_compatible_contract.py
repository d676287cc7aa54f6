"""OpenAICompatibleProvider against a local server playing Ollama / vLLM / llama.cpp."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from gtw_site.providers import ProviderError, Usage
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCall, ToolCallEvent, ToolSpec
from narrative.llm.openai_compatible import OpenAICompatibleProvider
from tests.fakes.wire_server import Reply, ScriptedCall, WireServer, drain

ROLL = ToolSpec(
    name="roll_check",
    description="Roll a skill check for the acting character.",
    parameters={"type": "object", "properties": {"skill": {"type": "string"}}, "required": ["skill"]},
)


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def provider(wire: WireServer) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(model="llama3.1:8b", base_url=wire.openai_base_url, timeout=2.0)


def ask(**kwargs) -> ChatRequest:
    messages = [Message("system", "You are the game master."), Message("user", "I pick the airlock's lock.")]
    return ChatRequest(messages=messages, **kwargs)


def texts(events) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def calls(events) -> list[ToolCall]:
    return [e.call for e in events if isinstance(e, ToolCallEvent)]


def test_streams_without_stream_options_and_tolerates_missing_usage(wire, provider):
    wire.script(Reply(text=["The lock ", "clicks", " open."]))

    events = list(provider.stream(ask(max_tokens=300, seed=42)))

    assert texts(events) == ["The lock ", "clicks", " open."]
    assert events[-1] == StreamEnd(stop_reason="stop", usage=Usage(0, 0))
    sent = wire.last_body
    assert "stream_options" not in sent
    assert sent["stream"] is True
    assert sent["model"] == "llama3.1:8b"
    assert sent["max_tokens"] == 300
    assert "max_completion_tokens" not in sent
    assert sent["seed"] == 42


def test_usage_is_taken_when_the_server_volunteers_it(wire, provider):
    wire.script(Reply(text=["ok"], usage=(30, 4), usage_with_finish=True))

    events = list(provider.stream(ask()))

    assert events[-1].usage == Usage(30, 4)


def test_empty_api_key_becomes_a_placeholder(wire, provider):
    wire.script(Reply(text=["ok"]))
    list(provider.stream(ask()))
    assert wire.requests[-1].headers["authorization"] == "Bearer not-needed"


def test_a_real_key_is_passed_through(wire):
    xai = OpenAICompatibleProvider(model="grok-test", base_url=wire.openai_base_url, api_key="xai-123")
    wire.script(Reply(text=["ok"]))
    list(xai.stream(ask()))
    assert wire.requests[-1].headers["authorization"] == "Bearer xai-123"


def test_tool_call_split_mid_json_is_assembled(wire, provider):
    call = ScriptedCall.split("call_1", "roll_check", {"skill": "lockpicking"}, parts=4)
    wire.script(Reply(tool_calls=[call]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert calls(events) == [
        ToolCall(id="call_1", name="roll_check", arguments={"skill": "lockpicking"}, raw_arguments=call.text)
    ]
    assert events[-1].stop_reason == "tool_calls"
    assert wire.last_body["tools"][0]["function"]["name"] == "roll_check"


def test_two_tool_calls_without_ids_and_a_stop_finish(wire, provider):
    # Older Ollama: no call ids, and finish_reason "stop" even when tools were called.
    first = ScriptedCall.split("", "roll_check", {"skill": "stealth"}, parts=2)
    second = ScriptedCall.split("", "roll_check", {"skill": "hacking"}, parts=2)
    wire.script(Reply(tool_calls=[first, second], stop="stop"))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert [(c.id, c.arguments) for c in calls(events)] == [
        ("call_0", {"skill": "stealth"}),
        ("call_1", {"skill": "hacking"}),
    ]
    assert events[-1].stop_reason == "tool_calls"


def test_tool_results_go_back_as_tool_messages(wire, provider):
    wire.script(Reply(text=["You slip inside."]))
    call = ToolCall(id="call_1", name="roll_check", arguments={"skill": "stealth"})
    follow_up = ChatRequest(
        messages=[
            Message("user", "I sneak past."),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", '{"roll": 17}', tool_call_id="call_1"),
        ],
        tools=[ROLL],
    )

    list(provider.stream(follow_up))

    assert wire.last_body["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert wire.last_body["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"roll": 17}',
    }


def test_malformed_tool_json_is_kept_raw_not_raised(wire, provider):
    wire.script(Reply(tool_calls=[ScriptedCall("call_1", "roll_check", ["{'skill': ", "'stealth'}"])]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert calls(events) == [
        ToolCall(id="call_1", name="roll_check", arguments={}, raw_arguments="{'skill': 'stealth'}")
    ]


def test_complete_returns_the_text(wire, provider):
    wire.script(Reply(text=["A quiet ", "night."]))
    assert provider.complete(ask()) == "A quiet night."


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (401, False), (404, False)])
def test_statuses_map_to_retryable(wire, provider, status, retryable):
    wire.script(Reply.error(status))

    _, error = drain(provider.stream(ask()))

    assert error is not None
    assert error.retryable is retryable
    assert error.status == status
    assert error.provider == "openai_compatible"


def test_401_names_the_server(wire, provider):
    wire.script(Reply.error(401))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask()))
    assert str(caught.value) == (
        "openai_compatible: authentication failed (401) — "
        f"check the API key configured for {wire.openai_base_url}"
    )


def test_slow_server_times_out_as_retryable(wire):
    slow = OpenAICompatibleProvider(model="llama3.1:8b", base_url=wire.openai_base_url, timeout=0.5)
    wire.script(Reply(text=["late"], delay=3.0))

    _, error = drain(slow.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert str(error) == "openai_compatible: timed out after 0.5s"


def test_dropped_connection_mid_stream_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], drop_after=2))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The "]
    assert error is not None
    assert error.retryable is True


def test_server_not_running_says_so():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    nowhere = OpenAICompatibleProvider(model="llama3.1:8b", base_url=base_url, timeout=0.5)

    _, error = drain(nowhere.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert str(error) == f"openai_compatible: could not connect to {base_url} — is the server running?"


def test_base_url_is_required():
    with pytest.raises(ProviderError) as caught:
        OpenAICompatibleProvider(model="llama3.1:8b", base_url="")
    assert not caught.value.retryable
    assert caught.value.provider == "openai_compatible"
