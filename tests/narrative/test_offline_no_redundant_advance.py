"""The offline GM asks to advance an objective only while it is still open (issue 13, the engine
room): a check that already completed the objective says so in its result's `consequences`, and a
second `mission_advance` would only be refused — noise in the GM's log and a gap in every
player's event stream."""

from __future__ import annotations

import json

from narrative.llm.base import ChatRequest, Message, ToolCall, ToolCallEvent, ToolSpec
from narrative.llm.offline import OfflineNarrator

ACTION = "I slice into the airlock panel to get the door open"
TOOLS = [
    ToolSpec("rules_skill_check", "check", {"type": "object", "properties": {"skill": {}, "dc": {}}}),
    ToolSpec("mission_advance", "advance", {"type": "object", "properties": {"objective": {}}}),
]


def after_check(consequences):
    call = ToolCall(id="call_1", name="rules_skill_check", arguments={"skill": "hacking"}, raw_arguments="{}")
    result = {"outcome": "success", "total": 18, "dc": 12, "skill": "hacking", "attribute": "tech"}
    if consequences is not None:
        result["consequences"] = consequences
    context = {
        "action": {"text": ACTION, "actor": "alice", "character": {"name": "Kira Vance"}},
        "mission": {"objectives": [{"id": "dock", "text": "Get the airlock door open", "status": "active"}]},
    }
    messages = [
        Message("user", ACTION),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", json.dumps(result), tool_call_id="call_1", name="rules_skill_check"),
    ]
    request = ChatRequest(messages=messages, tools=TOOLS, seed=7, context=context)
    return [e.call.name for e in OfflineNarrator().stream(request) if isinstance(e, ToolCallEvent)]


def test_a_success_on_an_open_objective_asks_to_advance_it():
    assert after_check(None) == ["mission_advance"]
    assert after_check([{"type": "ClockTicked", "clock": "alarm", "value": 1}]) == ["mission_advance"]


def test_no_advance_for_an_objective_the_check_already_completed():
    assert after_check([{"type": "ObjectiveCompleted", "objective": "dock", "text": "…"}]) == []


def test_no_advance_once_the_mission_is_over():
    assert after_check([{"type": "MissionFailed", "text": "The relay goes dark."}]) == []


def test_malformed_consequences_change_nothing():
    assert after_check("not a list") == ["mission_advance"]
    assert after_check([None, 3, {"type": "ObjectiveCompleted", "objective": "other"}]) == ["mission_advance"]
