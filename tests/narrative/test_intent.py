"""narrative.intent: the pure rule that reads what an action sets out to do, and whether a stage
action is risky enough to roll for (issue 12: the stage's batch turn no longer borrows the offline
narrator's private heuristics; both use this module)."""

from __future__ import annotations

import random

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from narrative import intent
from narrative.llm.base import ChatRequest, Message, ToolCallEvent
from narrative.llm.offline import OfflineNarrator
from narrative.tools import SKILL_CHECK

SCHEMA = SKILL_CHECK.parameters
RISKY = (
    "I hack the airlock panel",
    "I try to pick the lock on the vault door",
    "Kira carefully climbs the reactor shaft",
    "I persuade the captain to let us through",
    "I sneak past the sentries with help",
    "I repair the engine while injured",
)
SAFE = (
    "I look around the hangar",
    "What is behind the door?",
    "I rest for a while",
    "I walk to the ship",
    "",
)


def plan(text, *, scene=None, seed=1, name="Kira Vance"):
    return intent.plan_check(text=text, name=name, actor="kira", scene=scene, schema=SCHEMA, seed=seed)


def test_a_risky_action_plans_a_check_and_a_safe_one_does_not():
    args = plan("I hack the airlock panel")
    assert args is not None
    assert (args["skill"], args["attribute"]) == ("hacking", "tech")
    assert args["reason"] == "Kira Vance tries to hack the airlock panel"
    jsonschema.validate(args, SCHEMA)
    for text in RISKY:
        assert plan(text) is not None, text
    for text in SAFE:
        assert plan(text) is None, text


def test_the_plan_is_a_pure_function_of_the_seed():
    """The same beat replayed rolls against the same difficulty; another action's seed may not."""
    assert plan("I hack the airlock panel", seed=42) == plan("I hack the airlock panel", seed=42)
    difficulties = {plan("I hack the airlock panel", seed=seed)["dc"] for seed in range(40)}
    assert len(difficulties) > 1


def test_a_hazardous_scene_makes_the_check_harder():
    storm = {"name": "Derelict hangar", "biome": "ice", "description": "A storm howls through the breach."}
    for seed in range(20):
        plain, hard = (
            plan("I hack the airlock panel", seed=seed),
            plan("I hack the airlock panel", scene=storm, seed=seed),
        )
        assert hard["dc"] == min(20, plain["dc"] + 2)  # at most two scene hazards count


def test_a_leading_name_or_filler_does_not_hide_the_verb():
    assert intent.analyse("Kira carefully hacks the panel", name="Kira Vance", actor="kira").kind == "check"
    assert intent.analyse("I try to hack the panel", name="Kira Vance").task == "hack the panel"
    assert intent.analyse("I ask Ameline about the relay", name="Bo", npcs=[("Ameline", "broker")]).npc == (
        "Ameline",
        "broker",
    )


def test_the_stage_and_the_offline_narrator_agree_on_what_is_risky():
    """A solo action the offline narrator rolls for is one the stage plans a check for, with the
    same skill, attribute and reason (only the difficulty's die differs: their seeds differ)."""
    narrator = OfflineNarrator()
    for n, text in enumerate(RISKY + SAFE):
        context = {"action": {"text": text, "actor": "kira", "character": {"name": "Kira Vance"}}, "turn": n}
        request = ChatRequest(
            messages=[Message(role="user", content=text)], tools=[SKILL_CHECK], context=context, seed=n
        )
        calls = [e.call for e in narrator.stream(request) if isinstance(e, ToolCallEvent)]
        planned = plan(text, seed=n)
        if calls:
            call = calls[0]
            assert call.name == SKILL_CHECK.name and planned is not None, text
            assert {k: call.arguments[k] for k in ("skill", "attribute", "reason")} == {
                k: planned[k] for k in ("skill", "attribute", "reason")
            }
        else:
            assert planned is None, text


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), name=st.text(max_size=40), seed=st.integers(0, 2**63))
def test_any_text_reads_without_error_and_plans_within_the_schema(text, name, seed):
    args = plan(text, name=name, seed=seed)
    if args is not None:
        jsonschema.validate(args, SCHEMA)
        assert 8 <= args["dc"] <= 20
    assert intent.analyse(" ".join(text.split()), name=name).kind in intent.KINDS


def test_check_arguments_fit_the_advertised_schema():
    read = intent.analyse("I hack the airlock panel", name="Kira")
    narrow = {
        "type": "object",
        "properties": {"skill": {"type": "string"}, "dc": {"minimum": 15, "maximum": 16}},
    }
    args = intent.check_arguments(
        action="I hack the airlock panel",
        name="Kira",
        scene="",
        intent=read,
        rng=random.Random(0),
        schema=narrow,
    )
    assert set(args) == {"skill", "dc"} and 15 <= args["dc"] <= 16
