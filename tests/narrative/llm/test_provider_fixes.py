"""Regression tests for the adapter fixes: tool calls without distinct indexes, credentials in
base URLs, telemetry for every call, and a time limit on the whole call — all against the
local wire-format server, through the real SDKs."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from campaigns.models import Event
from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError, Usage, safe_url
from narrative import turns
from narrative.llm.anthropic import AnthropicChatProvider
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCallEvent, ToolSpec
from narrative.llm.openai import OpenAIChatProvider
from narrative.llm.openai_compatible import OpenAICompatibleProvider
from narrative.llm.registry import Recorded
from tests.fakes.wire_server import Reply, ScriptedCall, WireServer, drain

ROLL = ToolSpec(name="roll", description="Roll dice.", parameters={"type": "object"})


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


def ask(**kwargs) -> ChatRequest:
    messages = [Message("system", "You are the game master."), Message("user", "I pick the lock.")]
    return ChatRequest(messages=messages, **kwargs)


def calls(events):
    return [e.call for e in events if isinstance(e, ToolCallEvent)]


def openai_like(kind: str, base_url: str, timeout: float = 2.0, api_key: str = "sk-test-key"):
    if kind == "openai":
        return OpenAIChatProvider(model="gpt-test", api_key=api_key, base_url=base_url, timeout=timeout)
    return OpenAICompatibleProvider(model="llama", api_key=api_key, base_url=base_url, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# 1. Tool calls from servers that do not number them like OpenAI ------------------------------


@pytest.mark.parametrize("kind", ["openai", "openai_compatible"])
@pytest.mark.parametrize("call_index", ["zero", "absent"], ids=["ollama-index-0", "gemini-no-index"])
def test_calls_with_one_index_or_none_stay_apart(wire, kind, call_index):
    wire.script(
        Reply(
            tool_calls=[
                ScriptedCall.split("a", "roll", {"x": 1}, parts=1),
                ScriptedCall.split("b", "other", {"y": 2}, parts=1),
            ],
            call_index=call_index,
        )
    )

    events = list(openai_like(kind, wire.openai_base_url).stream(ask(tools=[ROLL])))

    got = [(c.id, c.name, c.arguments, c.raw_arguments) for c in calls(events)]
    assert got == [("a", "roll", {"x": 1}, '{"x": 1}'), ("b", "other", {"y": 2}, '{"y": 2}')]
    assert events[-1].stop_reason == "tool_calls"


def test_unindexed_calls_streamed_in_pieces_follow_the_current_call(wire):
    # Gemini-style: no index; the id only on each call's first delta.
    wire.script(
        Reply(
            tool_calls=[
                ScriptedCall.split("a", "roll", {"skill": "hacking", "dc": 12}, parts=3),
                ScriptedCall.split("b", "roll", {"skill": "piloting", "dc": 9}, parts=3),
            ],
            call_index="absent",
        )
    )

    events = list(openai_like("openai_compatible", wire.openai_base_url).stream(ask(tools=[ROLL])))

    assert [(c.id, c.arguments) for c in calls(events)] == [
        ("a", {"skill": "hacking", "dc": 12}),
        ("b", {"skill": "piloting", "dc": 9}),
    ]


@pytest.mark.parametrize("second", ["roll", "other"])
def test_unindexed_calls_without_ids_are_told_apart(wire, second):
    wire.script(
        Reply(
            tool_calls=[
                ScriptedCall.split("", "roll", {"x": 1}, parts=1),
                ScriptedCall.split("", second, {"y": 2}, parts=1),
            ],
            call_index="absent",
        )
    )

    events = list(openai_like("openai_compatible", wire.openai_base_url).stream(ask(tools=[ROLL])))

    assert [(c.id, c.name, c.arguments) for c in calls(events)] == [
        ("call_0", "roll", {"x": 1}),
        ("call_1", second, {"y": 2}),
    ]


@pytest.mark.parametrize("call_index", ["distinct", "zero"])
def test_a_server_renumbering_ids_mid_call_keeps_one_call_per_index(wire, call_index):
    wire.script(
        Reply(
            tool_calls=[ScriptedCall.split("a", "roll", {"skill": "hacking", "dc": 12}, parts=3)],
            call_index=call_index,
            renumber_ids=True,
        )
    )

    events = list(openai_like("openai_compatible", wire.openai_base_url).stream(ask(tools=[ROLL])))

    assert [(c.id, c.name, c.arguments) for c in calls(events)] == [
        ("a", "roll", {"skill": "hacking", "dc": 12})
    ]


def test_one_unindexed_call_in_pieces_stays_one_call(wire):
    wire.script(
        Reply(tool_calls=[ScriptedCall.split("a", "roll", {"skill": "hacking"}, parts=4)], call_index="zero")
    )

    events = list(openai_like("openai_compatible", wire.openai_base_url).stream(ask(tools=[ROLL])))

    assert [(c.id, c.arguments) for c in calls(events)] == [("a", {"skill": "hacking"})]


# 2. Credentials in base URLs never reach an error message ---------------------------------------

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


# 3. Telemetry: usage of complete(), and rows for streams that end any way ---------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["openai", "openai_compatible", "anthropic"])
def test_complete_records_the_vendors_usage(wire, kind):
    wire.script(Reply(text=["A summary."], usage=(1234, 56)))
    if kind == "anthropic":
        inner = AnthropicChatProvider(model="c", api_key="sk-ant-test", base_url=wire.anthropic_base_url)
    else:
        inner = openai_like(kind, wire.openai_base_url)

    assert Recorded("summarizer", inner).complete(ask()) == "A summary."

    assert inner.last_usage == Usage(1234, 56)
    row = ProviderCall.objects.get()
    assert (row.role, row.tokens_in, row.tokens_out, row.ok) == ("summarizer", 1234, 56, True)


@pytest.mark.django_db
def test_a_stream_the_caller_stops_reading_leaves_a_failed_row(wire):
    wire.script(Reply(text=["a ", "b ", "c"]))
    recorded = Recorded("narrator", openai_like("openai", wire.openai_base_url))

    events = recorded.stream(ask())
    next(events)
    events.close()

    row = ProviderCall.objects.get()
    assert row.ok is False and "stopped" in row.error


@pytest.mark.django_db
def test_a_stream_closed_after_its_end_is_a_success(wire):
    wire.script(Reply(text=["a ", "b"], usage=(7, 3)))
    recorded = Recorded("narrator", openai_like("openai", wire.openai_base_url))

    events = recorded.stream(ask())
    for event in events:
        if isinstance(event, StreamEnd):
            break
    events.close()

    row = ProviderCall.objects.get()
    assert (row.ok, row.error, row.tokens_in, row.tokens_out) == (True, "", 7, 3)


class Exploding:
    name = "exploding"
    model = "boom-1"

    def __init__(self) -> None:
        self.closed = False

    def stream(self, request):
        try:
            yield TextDelta("Half a ")
            raise RuntimeError("boom")
        finally:
            self.closed = True

    def complete(self, request):
        raise KeyError("missing")


@pytest.mark.django_db
def test_unexpected_exceptions_are_recorded_and_raised():
    recorded = Recorded("narrator", Exploding())

    with pytest.raises(RuntimeError):
        list(recorded.stream(ask()))
    with pytest.raises(KeyError):
        recorded.complete(ask())

    rows = list(ProviderCall.objects.order_by("id").values_list("ok", "error"))
    assert rows == [(False, "unexpected RuntimeError: boom"), (False, "unexpected KeyError: 'missing'")]


@pytest.mark.django_db
def test_abandoning_the_recorded_stream_closes_the_adapters():
    inner = Exploding()
    events = Recorded("narrator", inner).stream(ask())
    next(events)
    events.close()
    assert inner.closed is True
    assert ProviderCall.objects.get().ok is False


# 4. GTW_LLM_TIMEOUT bounds the whole call, not each socket read --------------------------------


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
    assert list(ProviderCall.objects.values_list("ok", flat=True)) == [False, False]


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
