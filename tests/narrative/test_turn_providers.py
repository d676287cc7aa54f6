"""The same game on real provider SDKs, against the local wire-format server; and failures."""

from __future__ import annotations

import pytest

from campaigns.models import Event, PlaySession
from gtw_site.models import ProviderCall
from narrative import turns
from narrative.engine import ENGINE_EVENTS
from tests.fakes.wire_server import Reply, ScriptedCall, WireServer

CHECK = {"skill": "hacking", "attribute": "tech", "dc": 12, "reason": "slice the panel"}


@pytest.fixture
def wire():
    with WireServer() as server:
        yield server


def use(settings, wire, vendor, timeout=2.0):
    conf = {k: dict(v) for k, v in settings.GTW_LLM.items()}
    conf["narrator"] = {"provider": vendor, "timeout": timeout}
    base = wire.anthropic_base_url if vendor == "anthropic" else wire.openai_base_url
    conf[vendor] = {"api_key": "sk-test", "base_url": base, "model": f"{vendor}-test-model"}
    settings.GTW_LLM = conf


def act(session, player, text="I hack the airlock panel", key="p1"):
    result = turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=key)
    turns.run_pending_turns(session.pk)
    return result.events[0].seq


def log(session):
    return list(Event.objects.filter(session=session).order_by("seq"))


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "openai_compatible"])
def test_a_turn_runs_on_a_real_sdk_with_a_tool_call(settings, wire, vendor, session, player):
    use(settings, wire, vendor)
    wire.script(
        Reply(
            text=["You crouch ", "by the panel. "],
            tool_calls=[ScriptedCall.split("call_1", "rules_skill_check", CHECK)],
        ),
        Reply(text=["Sparks fly; ", "the lock ", "yields."]),
    )
    action_seq = act(session, player)
    events = [e for e in log(session) if e.type not in ENGINE_EVENTS]
    assert [e.type for e in events] == ["SessionOpened", "Action", "DiceRolled", "Narration"]
    roll, narration = events[2], events[3]
    assert roll.payload["dc"] == 12 and roll.payload["attribute"] == "tech"
    assert narration.payload["text"] == "You crouch by the panel. Sparks fly; the lock yields."
    assert narration.payload["provider"] == vendor and narration.payload["action_seq"] == action_seq
    # The game's roll went back to the model as the tool result.
    second = wire.requests[1].body
    assert str(roll.payload["total"]) in str(second["messages"])
    assert ProviderCall.objects.filter(provider=vendor, ok=True).count() == 2


def test_invalid_tool_call_is_refused_and_returned_to_the_model(settings, wire, session, player):
    use(settings, wire, "openai")
    wire.script(
        Reply(
            tool_calls=[
                ScriptedCall.split("c1", "rules_skill_check", {"skill": "x", "attribute": "luck", "dc": 99})
            ]
        ),
        Reply(text=["The moment passes."]),
    )
    act(session, player)
    events = log(session)
    assert [e.type for e in events if e.type not in ENGINE_EVENTS] == [
        "SessionOpened",
        "Action",
        "ToolRefused",
        "Narration",
    ]
    assert "invalid arguments" in events[2].payload["error"]
    assert "error" in str(wire.requests[1].body["messages"][-1])
    assert not Event.objects.filter(session=session, type="DiceRolled").exists()


def test_one_retry_for_a_retryable_error(settings, wire, session, player):
    use(settings, wire, "openai")
    wire.script(Reply.error(500), Reply(text=["All ", "good."]))
    act(session, player, text="I look around")
    assert log(session)[-1].payload["text"] == "All good."
    assert ProviderCall.objects.filter(ok=False).count() == 1


@pytest.mark.parametrize(
    "failure",
    [Reply.error(500), Reply(text=["half a sent"], drop_after=2), Reply(text=["slow"], delay=3.0)],
    ids=["http-500", "dies-mid-stream", "timeout"],
)
def test_provider_failure_keeps_the_action_and_offers_retry(settings, wire, session, player, failure):
    use(settings, wire, "openai", timeout=0.5)
    wire.script(failure, failure)
    action_seq = act(session, player, text="I look around")
    events = log(session)
    assert [e.type for e in events if e.type not in ENGINE_EVENTS] == [
        "SessionOpened",
        "Action",
        "TurnFailed",
    ]
    assert events[1].payload["text"] == "I look around"
    assert "Retry" in events[2].payload["error"]
    state = PlaySession.objects.get(pk=session.pk).state
    assert state["pending"] == [] and str(action_seq) in state["failed"]
    # The player presses Retry; the provider is back.
    wire.script(Reply(text=["Back ", "online."]))
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)
    turns.run_pending_turns(session.pk)
    events = log(session)
    assert [e.type for e in events][-2:] == ["TurnRetried", "Narration"]
    assert events[-1].payload["action_seq"] == action_seq
    assert PlaySession.objects.get(pk=session.pk).state["failed"] == {}


def test_non_retryable_error_is_not_retried(settings, wire, session, player):
    use(settings, wire, "anthropic")
    wire.script(Reply.error(401))
    act(session, player, text="I look around")
    assert log(session)[-1].type == "TurnFailed"
    assert "authentication" in log(session)[-1].payload["error"].lower()
    assert len(wire.requests) == 1
