"""AnthropicChatProvider against a local server speaking Anthropic's Messages wire format."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from gtw_site.providers import ProviderError, Usage
from narrative.llm.anthropic import AnthropicChatProvider
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCall, ToolCallEvent, ToolSpec
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
def provider(wire: WireServer) -> AnthropicChatProvider:
    return AnthropicChatProvider(
        model="claude-test", api_key="sk-ant-test", base_url=wire.anthropic_base_url, timeout=2.0
    )


def ask(**kwargs) -> ChatRequest:
    messages = [Message("system", "You are the game master."), Message("user", "I pick the airlock's lock.")]
    return ChatRequest(messages=messages, **kwargs)


def texts(events) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def calls(events) -> list[ToolCall]:
    return [e.call for e in events if isinstance(e, ToolCallEvent)]


def test_the_module_wraps_the_real_sdk():
    import narrative.llm.anthropic as adapter

    assert adapter.anthropic is sys.modules["anthropic"]
    assert hasattr(adapter.anthropic, "Anthropic")


def test_text_streams_as_ordered_deltas_then_stream_end(wire, provider):
    wire.script(Reply(text=["The lock ", "clicks", " open."], usage=(40, 9)))

    events = list(provider.stream(ask(max_tokens=300)))

    assert texts(events) == ["The lock ", "clicks", " open."]
    assert events[-1] == StreamEnd(stop_reason="stop", usage=Usage(40, 9))
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    received = wire.requests[-1]
    assert received.path == "/v1/messages"
    # This SDK generation sends the key as a bearer token; older ones used x-api-key.
    assert "sk-ant-test" in (received.headers.get("x-api-key"), received.headers.get("authorization", "")[7:])
    sent = received.body
    assert sent["model"] == "claude-test"
    assert sent["stream"] is True
    assert sent["max_tokens"] == 300
    assert sent["system"] == "You are the game master."
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "I pick the airlock's lock."}]}
    ]
    assert "tools" not in sent


def test_tool_call_split_mid_json_is_assembled(wire, provider):
    call = ScriptedCall.split("toolu_abc", "roll_check", {"skill": "lockpicking", "difficulty": 3}, parts=5)
    wire.script(Reply(text=["Let me see."], tool_calls=[call]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert texts(events) == ["Let me see."]
    assert calls(events) == [
        ToolCall(
            id="toolu_abc",
            name="roll_check",
            arguments={"skill": "lockpicking", "difficulty": 3},
            raw_arguments=call.text,
        )
    ]
    assert events[-1].stop_reason == "tool_calls"
    assert wire.last_body["tools"] == [
        {"name": "roll_check", "description": ROLL.description, "input_schema": ROLL.parameters}
    ]


def test_two_tool_calls_in_one_message(wire, provider):
    first = ScriptedCall.split("toolu_1", "roll_check", {"skill": "stealth"}, parts=3)
    second = ScriptedCall.split("toolu_2", "roll_check", {"skill": "hacking", "difficulty": 2}, parts=4)
    wire.script(Reply(tool_calls=[first, second]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert [(c.id, c.arguments) for c in calls(events)] == [
        ("toolu_1", {"skill": "stealth"}),
        ("toolu_2", {"skill": "hacking", "difficulty": 2}),
    ]
    assert events[-1].stop_reason == "tool_calls"


def test_tool_call_without_input_has_empty_arguments(wire, provider):
    wire.script(Reply(tool_calls=[ScriptedCall("toolu_1", "look_around", [])]))

    events = list(provider.stream(ask()))

    assert calls(events) == [ToolCall(id="toolu_1", name="look_around", arguments={}, raw_arguments="{}")]


def test_tool_results_go_back_as_tool_result_blocks(wire, provider):
    wire.script(Reply(text=["You slip inside."]))
    stealth = ToolCall(id="toolu_1", name="roll_check", arguments={"skill": "stealth"})
    hacking = ToolCall(id="toolu_2", name="roll_check", arguments={"skill": "hacking"})
    follow_up = ChatRequest(
        messages=[
            Message("system", "You are the game master."),
            Message("user", "I sneak past and hack the door."),
            Message("assistant", "Rolling.", tool_calls=(stealth, hacking)),
            Message("tool", '{"roll": 17}', tool_call_id="toolu_1", name="roll_check"),
            Message("tool", '{"roll": 4}', tool_call_id="toolu_2", name="roll_check"),
        ],
        tools=[ROLL],
    )

    list(provider.stream(follow_up))

    assert wire.last_body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "I sneak past and hack the door."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Rolling."},
                {"type": "tool_use", "id": "toolu_1", "name": "roll_check", "input": {"skill": "stealth"}},
                {"type": "tool_use", "id": "toolu_2", "name": "roll_check", "input": {"skill": "hacking"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"roll": 17}'},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": '{"roll": 4}'},
            ],
        },
    ]
    assert wire.last_body["system"] == "You are the game master."


def test_max_tokens_stop_maps_to_length(wire, provider):
    wire.script(Reply(text=["And then"], stop="max_tokens"))
    events = list(provider.stream(ask()))
    assert events[-1].stop_reason == "length"


def test_malformed_tool_json_is_kept_raw_not_raised(wire, provider):
    broken = ScriptedCall("toolu_bad", "roll_check", ['{"skill": "lock', "picking", '", difficulty: }'])
    wire.script(Reply(tool_calls=[broken]))

    events = list(provider.stream(ask(tools=[ROLL])))

    assert calls(events) == [
        ToolCall(
            id="toolu_bad",
            name="roll_check",
            arguments={},
            raw_arguments='{"skill": "lockpicking", difficulty: }',
        )
    ]
    assert isinstance(events[-1], StreamEnd)


def test_complete_returns_the_text(wire, provider):
    wire.script(Reply(text=["Session recap: ", "the crew escaped."]))

    assert provider.complete(ask()) == "Session recap: the crew escaped."
    assert "stream" not in wire.last_body


@pytest.mark.parametrize("status", [500, 503, 529, 429])
def test_server_side_statuses_are_retryable(wire, provider, status):
    wire.script(Reply.error(status))

    _, error = drain(provider.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert error.status == status
    assert error.provider == "anthropic"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_side_statuses_are_final(wire, provider, status):
    wire.script(Reply.error(status))

    _, error = drain(provider.stream(ask()))

    assert error is not None
    assert error.retryable is False
    assert error.status == status


def test_401_says_which_key_to_check(wire, provider):
    wire.script(Reply.error(401, "invalid x-api-key"))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask()))
    assert str(caught.value) == "anthropic: authentication failed (401) — check ANTHROPIC_API_KEY"


def test_overloaded_reads_as_such(wire, provider):
    wire.script(Reply.error(529))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask()))
    assert "overloaded (529)" in str(caught.value)


def test_complete_maps_errors_too(wire, provider):
    wire.script(Reply.error(429))
    with pytest.raises(ProviderError) as caught:
        provider.complete(ask())
    assert caught.value.retryable
    assert caught.value.status == 429


def test_slow_server_times_out_as_retryable(wire):
    slow = AnthropicChatProvider(
        model="claude-test", api_key="sk-ant-test", base_url=wire.anthropic_base_url, timeout=0.5
    )
    wire.script(Reply(text=["late"], delay=3.0))

    _, error = drain(slow.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert str(error) == "anthropic: timed out after 0.5s"


def test_stall_mid_stream_times_out_as_retryable(wire):
    slow = AnthropicChatProvider(
        model="claude-test", api_key="sk-ant-test", base_url=wire.anthropic_base_url, timeout=0.5
    )
    # Frames: message_start, block start, ping, then one delta per piece.
    wire.script(Reply(text=["The ", "engine ", "coughs."], stall_after=4, stall_for=3.0))

    events, error = drain(slow.stream(ask()))

    assert texts(events) == ["The "]
    assert error is not None
    assert error.retryable is True
    assert "timed out" in str(error)


def test_dropped_connection_mid_stream_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], drop_after=5))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The ", "hull "]
    assert error is not None
    assert error.retryable is True
    assert not any(isinstance(e, StreamEnd) for e in events)


def test_stream_ending_before_message_stop_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], truncate_after=5))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The ", "hull "]
    assert error is not None
    assert error.retryable is True


def test_error_event_mid_stream_is_retryable(wire, provider):
    wire.script(Reply(text=["The ", "hull ", "breaches."], error_event_after=4))

    events, error = drain(provider.stream(ask()))

    assert texts(events) == ["The "]
    assert error is not None
    assert error.retryable is True
    assert error.status == 529
    assert "Overloaded" in str(error)


def test_unreachable_server_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = AnthropicChatProvider(
        model="claude-test", api_key="sk-ant-test", base_url=f"http://127.0.0.1:{port}", timeout=0.5
    )

    _, error = drain(nowhere.stream(ask()))

    assert error is not None
    assert error.retryable is True
    assert "could not connect" in str(error)


def test_missing_api_key_is_a_clear_final_error():
    with pytest.raises(ProviderError) as caught:
        AnthropicChatProvider(model="claude-test", api_key="")
    assert not caught.value.retryable
    assert "ANTHROPIC_API_KEY" in str(caught.value)


def test_empty_base_url_means_the_vendor_default(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    adapter = AnthropicChatProvider(model="claude-test", api_key="sk-ant-test", base_url="")
    assert adapter._client.base_url.host == "api.anthropic.com"
