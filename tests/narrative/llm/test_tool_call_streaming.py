"""Tool calls streamed by servers that do not number them like OpenAI (one index or none, ids
renumbered mid-call, a call in pieces) arrive as the calls they are, through the real SDKs."""

from __future__ import annotations

import pytest

from narrative.llm.base import ToolCallEvent, ToolSpec
from tests.fakes.wire_server import Reply, ScriptedCall
from tests.narrative.llm.adapters import ask, openai_like

ROLL = ToolSpec(name="roll", description="Roll dice.", parameters={"type": "object"})


def calls(events):
    return [e.call for e in events if isinstance(e, ToolCallEvent)]


# ---- Tool calls from servers that do not number them like OpenAI ------------------------------


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
