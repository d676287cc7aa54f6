import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from missions.rules.dice import parse_expression
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCallEvent, ToolSpec
from narrative.llm.offline import OfflineNarrator
from narrative.llm.offline import narrator as offline_narrator
from narrative.llm.offline import phrases as P

CHECK_SCHEMA = {
    "type": "object",
    "properties": {
        "skill": {"type": "string"},
        "attribute": {"type": "string", "enum": ["might", "agility", "wits", "tech", "presence"]},
        "dc": {"type": "integer", "minimum": 5, "maximum": 30},
        "advantage": {"type": "boolean"},
        "disadvantage": {"type": "boolean"},
        "reason": {"type": "string"},
    },
    "required": ["skill", "attribute", "dc", "reason"],
    "additionalProperties": False,
}
ROLL_SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string"}, "reason": {"type": "string"}},
    "required": ["expression"],
    "additionalProperties": False,
}
CHECK_TOOL = ToolSpec("rules_skill_check", "Roll a d20 skill check.", CHECK_SCHEMA)
ROLL_TOOL = ToolSpec("rng_roll", "Roll dice.", ROLL_SCHEMA)
TOOLS = [CHECK_TOOL, ROLL_TOOL]
OUTCOMES = ("critical_success", "success", "failure", "critical_failure")


def make_context(text, *, tone="grim", verbosity=2, turn=7, recent=()):
    return {
        "action": {
            "text": text,
            "actor": "alice",
            "character": {
                "name": "Kira Vance",
                "archetype": "Netrunner",
                "attributes": {"might": 9, "agility": 12, "wits": 14, "tech": 16, "presence": 10},
            },
        },
        "scene": {
            "name": "Docking Ring C",
            "biome": "derelict station",
            "description": "A ring of dead berths, frost on every viewport. The last ship left years ago.",
        },
        "world": {
            "name": "The Vesper Reach",
            "tagline": "Salvage, secrets and slow decay.",
            "factions": [{"name": "Helix Syndicate", "description": "Corporate raiders."}],
            "npcs": [{"name": "Ossian Ward", "role": "smuggler"}],
            "biomes": ["derelict station"],
        },
        "objective": "Restore power to the docking ring",
        "personality": {"id": "noir", "name": "Noir Veteran", "tone": tone, "verbosity": verbosity},
        "recent": [{"type": "Narration", "text": t} for t in recent],
        "turn": turn,
    }


def collect(request, narrator=None):
    events = list((narrator or OfflineNarrator()).stream(request))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    return text, calls, events


def ask(text, *, seed=42, tools=TOOLS, **ctx):
    return ChatRequest(
        messages=[Message("user", text)], tools=list(tools), seed=seed, context=make_context(text, **ctx)
    )


def follow_up(text, call, result, *, seed=42, **ctx):
    messages = [
        Message("user", text),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", json.dumps(result), tool_call_id=call.id, name=call.name),
    ]
    return ChatRequest(messages=messages, tools=list(TOOLS), seed=seed, context=make_context(text, **ctx))


def check_result(outcome, dc=12):
    natural = {"critical_success": 20, "success": 14, "failure": 6, "critical_failure": 1}[outcome]
    return {
        "faces": [natural],
        "kept": natural,
        "natural": natural,
        "modifier": 3,
        "total": natural + 3,
        "dc": dc,
        "outcome": outcome,
        "skill": "hacking",
        "attribute": "tech",
    }


def sentences(text):
    return [s for s in re.split(r"(?:(?<=[.!?])|(?<=[.!?][\"']))\s+", text.replace("\n\n", " ")) if s]


def template_regex(template):
    parts = re.split(r"\{[a-z_0-9]+\}", template)
    return re.compile("(?i)" + ".+?".join(re.escape(p) for p in parts))


def matches_any(text, templates):
    return any(template_regex(t).search(text) for t in templates)


def test_provider_attributes():
    narrator = OfflineNarrator()
    assert narrator.name == "offline"
    assert narrator.model == "procedural-v1"
    assert OfflineNarrator(model="x").model == "x"


@pytest.mark.parametrize(
    "action", ["I try to hack the airlock panel", "I look around", "I say hello to Ossian"]
)
def test_same_request_same_output_byte_for_byte(action):
    first = collect(ask(action, seed=1234))
    second = collect(ask(action, seed=1234))
    assert first[2] == second[2]


CROSS_PROCESS_SCRIPT = """
import json, sys
from narrative.llm.offline import OfflineNarrator
from narrative.llm.base import ChatRequest, Message, TextDelta
out = []
for action, verbosity, seed, ctx in json.loads(sys.stdin.read()):
    request = ChatRequest(messages=[Message("user", action)], seed=seed, context=ctx)
    out.append("".join(e.text for e in OfflineNarrator().stream(request) if isinstance(e, TextDelta)))
print(json.dumps(out))
"""


def test_output_is_stable_across_processes():
    # String hashing is randomised per process; nothing the narrator emits may depend on it.
    cases = [
        (action, verbosity, seed, make_context(action, verbosity=verbosity, tone=tone))
        for action in ("I look around", "I head deeper into the ring", "I say hello to Ossian")
        for verbosity, tone in ((1, "wry"), (3, "grim"))
        for seed in range(15)
    ]
    root = Path(__file__).resolve().parents[3]
    outputs = [
        subprocess.run(
            [sys.executable, "-c", CROSS_PROCESS_SCRIPT],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(root)},
            check=True,
        ).stdout
        for hashseed in ("1", "2", "3")
    ]
    here = [collect(ChatRequest(messages=[Message("user", a)], seed=s, context=c))[0] for a, _, s, c in cases]
    assert all(json.loads(o) == here for o in outputs)


def test_different_seeds_give_different_text():
    call = collect(ask("I try to hack the airlock panel"))[1][0]
    texts = {
        collect(follow_up("I try to hack the airlock panel", call, check_result("success"), seed=s))[0]
        for s in range(12)
    }
    assert len(texts) >= 10
    plain = {collect(ask("I look around", seed=s))[0] for s in range(12)}
    assert len(plain) >= 8


def test_turn_number_varies_the_text():
    texts = {collect(ask("I open the door", seed=5, turn=t))[0] for t in range(10)}
    assert len(texts) >= 7


def test_hack_action_calls_a_tech_check_with_valid_arguments():
    text, calls, events = collect(ask("I try to hack the airlock panel"))
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "rules_skill_check"
    assert re.fullmatch(r"call_\d+", call.id)
    assert call.arguments["attribute"] == "tech"
    assert 8 <= call.arguments["dc"] <= 20
    jsonschema.validate(call.arguments, CHECK_SCHEMA)
    assert json.loads(call.raw_arguments) == call.arguments
    assert text.strip()
    assert isinstance(events[-2], ToolCallEvent)
    assert events[-1].stop_reason == "tool_calls"


@pytest.mark.parametrize(
    ("action", "attribute"),
    [
        ("I carefully climb up the maintenance shaft", "agility"),
        ("I sneak past the guards", "agility"),
        ("Kira shoots at the drone", "agility"),
        ("I force the jammed hatch open", "might"),
        ("I punch the enforcer", "might"),
        ("I try to persuade Ossian to lend me his ship", "presence"),
        ("I bluff my way past the checkpoint", "presence"),
        ("I scan the wreckage for radiation", "wits"),
        ("I recall what I know about the Helix Syndicate", "wits"),
        ("I reroute power through the auxiliary bus", "tech"),
        ("I'm going to repair the coupling", "tech"),
    ],
)
def test_keyword_table_picks_the_attribute(action, attribute):
    calls = collect(ask(action))[1]
    assert len(calls) == 1
    assert calls[0].arguments["attribute"] == attribute
    jsonschema.validate(calls[0].arguments, CHECK_SCHEMA)


def test_difficulty_words_move_the_dc():
    def dc(action, seed):
        return collect(ask(action, seed=seed))[1][0].arguments["dc"]

    for seed in range(10):
        assert dc("I carefully hack the panel", seed) < dc("I desperately hack the panel under fire", seed)
    assert (
        max(dc("It's impossible but I desperately hack the military panel quickly", s) for s in range(5))
        == 20
    )


def test_help_gives_advantage_and_wounds_disadvantage():
    assert collect(ask("Together with Ossian I force the door"))[1][0].arguments["advantage"] is True
    args = collect(ask("Though injured, I climb the ladder"))[1][0].arguments
    assert args["disadvantage"] is True
    assert args["advantage"] is False


@pytest.mark.parametrize(
    "action",
    [
        "I look around",
        "I say hello to Ossian",
        "What is this place?",
        "Can I hack the panel?",
        "I wait",
        "",
        "   ",
    ],
)
def test_talky_or_trivial_actions_make_no_tool_call(action):
    text, calls, events = collect(ask(action))
    assert calls == []
    assert text.strip()
    assert events[-1].stop_reason == "stop"


def test_greeting_gets_an_npc_reply():
    text = collect(ask("I say hello to Ossian"))[0]
    assert "Ossian" in text
    assert '"' in text


@pytest.mark.parametrize("tone", ["grim", "wry", "heroic", "whimsical"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_follow_up_narrates_the_outcome(outcome, tone):
    action = "I try to hack the airlock panel"
    call = collect(ask(action, tone=tone))[1][0]
    text, calls, events = collect(follow_up(action, call, check_result(outcome), tone=tone))
    assert calls == []
    assert events[-1].stop_reason == "stop"
    assert "Kira" in text
    assert matches_any(text, P.CORE[outcome])
    for other in OUTCOMES:
        if other != outcome:
            assert not any(template_regex(t).fullmatch(s) for t in P.CORE[other] for s in sentences(text))
    polarity = "good" if "success" in outcome else "bad"
    assert matches_any(text, P.DETAIL[("tech", polarity)])


def test_outcome_families_read_differently():
    action = "I try to hack the airlock panel"
    call = collect(ask(action))[1][0]
    texts = {o: collect(follow_up(action, call, check_result(o)))[0] for o in OUTCOMES}
    assert len(set(texts.values())) == 4


def test_outcome_families_are_large_enough():
    for outcome in OUTCOMES:
        assert len(P.CORE[outcome]) >= 15
        assert len(set(P.CORE[outcome])) == len(P.CORE[outcome])


@pytest.mark.parametrize(("verbosity", "low", "high"), [(1, 2, 3), (2, 3, 5), (3, 5, 7)])
def test_verbosity_sets_the_length(verbosity, low, high):
    action = "I try to hack the airlock panel"
    call = collect(ask(action))[1][0]
    for seed in range(25):
        for outcome in OUTCOMES:
            request = follow_up(action, call, check_result(outcome), seed=seed, verbosity=verbosity)
            count = len(sentences(collect(request)[0]))
            assert low <= count <= high, (seed, outcome, count)


@pytest.mark.parametrize(("verbosity", "low", "high"), [(1, 2, 3), (2, 3, 5), (3, 5, 7)])
@pytest.mark.parametrize("action", ["I look around", "I say hello to Ossian", "I open the door", "I wait"])
def test_verbosity_sets_the_length_of_plain_turns(action, verbosity, low, high):
    for seed in range(25):
        count = len(sentences(collect(ask(action, seed=seed, verbosity=verbosity))[0]))
        assert low <= count <= high, (seed, count)


def test_refusal_narrates_without_a_roll():
    action = "I try to hack the airlock panel"
    call = collect(ask(action))[1][0]
    text, calls, events = collect(follow_up(action, call, {"error": "dc out of range"}))
    assert calls == []
    assert events[-1].stop_reason == "stop"
    assert text.strip()
    assert not any(matches_any(text, P.CORE[o]) for o in OUTCOMES)


def test_unreadable_tool_result_does_not_crash():
    action = "I try to hack the airlock panel"
    call = collect(ask(action))[1][0]
    request = follow_up(action, call, {})
    request.messages[-1] = Message("tool", "not json {", tool_call_id=call.id, name=call.name)
    text, calls, _ = collect(request)
    assert text.strip()
    assert calls == []


def test_no_check_tool_means_direct_narration():
    text, calls, events = collect(ask("I try to hack the airlock panel", tools=[]))
    assert calls == []
    assert events[-1].stop_reason == "stop"
    assert text.strip()


def test_scavenging_uses_rng_roll_and_narrates_only_what_was_found():
    """Regression (issue 13): the narration named loot no rule granted ("a pristine plasma
    cutter") while the inventory stayed empty. It names the roll's LootFound, or nothing."""
    from narrative.tools.schema import RNG_ROLL

    action = "I search the crates for supplies"
    calls = collect(ask(action, tools=[RNG_ROLL]))[1]
    assert [c.name for c in calls] == ["rng_roll"]
    assert calls[0].arguments.get("loot") == "any"  # the game draws the finds
    jsonschema.validate(calls[0].arguments, RNG_ROLL.parameters)
    expression = parse_expression(calls[0].arguments["expression"])
    found = {
        "type": "LootFound",
        "text": "a medpatch and 43 credits",
        "items": [{"item": "medpatch", "qty": 1}, {"item": "credits", "qty": 43}],
    }
    best = {
        "expression": str(expression),
        "faces": [6, 6],
        "modifier": 0,
        "total": 12,
        "consequences": [found],
    }
    worst = {"expression": str(expression), "faces": [1, 1], "modifier": 0, "total": 2}
    great = collect(follow_up(action, calls[0], best))[0]
    poor = collect(follow_up(action, calls[0], worst))[0]
    assert "a medpatch and 43 credits" in great
    junk = [item for tier in P.LOOT.values() for item in tier]
    assert not any(item in text for item in junk for text in (great, poor))
    assert "medpatch" not in poor and "credits" not in poor


def test_recent_sentences_are_not_repeated_next_turn():
    action = "I try to hack the airlock panel"
    call = collect(ask(action))[1][0]
    for seed in range(20):
        previous = collect(follow_up(action, call, check_result("success"), seed=seed, turn=3))[0]
        request = follow_up(action, call, check_result("success"), seed=seed, turn=4, recent=[previous])
        current = collect(request)[0]
        assert not set(sentences(previous)) & set(sentences(current)), seed


def test_text_streams_word_by_word():
    events = collect(ask("I look around", verbosity=3))[2]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 10
    assert all(re.fullmatch(r"\S+\s*", d) for d in deltas)
    assert all(d.endswith((" ", "\n")) for d in deltas[:-1])


def test_zero_delay_never_sleeps_and_delay_paces_the_stream(monkeypatch):
    sleeps = []
    monkeypatch.setattr(offline_narrator.time, "sleep", sleeps.append)
    for seed in range(50):
        collect(ask("I try to hack the airlock panel", seed=seed))
    assert sleeps == []

    events = collect(ask("I look around"), OfflineNarrator(word_delay_s=0.05))[2]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert sleeps == [0.05] * (len(deltas) - 1)


def test_usage_counts_words():
    end = collect(ask("I look around"))[2][-1]
    assert end.usage.tokens_out > 0
    assert end.usage.tokens_in > 0


def test_complete_summarises_deterministically():
    text = (
        "The crew reached Docking Ring C. Kira hacked the airlock while Ossian kept watch. "
        "The Helix Syndicate drones arrived late. Kira rerouted power to the docking ring. "
        "Ossian complained about the coffee. The docking ring lights came back on."
    )
    request = ChatRequest(messages=[Message("system", "Summarise."), Message("user", text)])
    summary = OfflineNarrator().complete(request)
    assert summary == OfflineNarrator().complete(request)
    assert summary.startswith("The crew reached Docking Ring C.")
    assert len(summary) < len(text)
    assert all(s in text for s in sentences(summary))
    assert OfflineNarrator().complete(ChatRequest(messages=[])) == ""


def strings_in(value):
    """Every string a caller supplied, as given and whitespace-collapsed (the narrator collapses it)."""
    if isinstance(value, str):
        return {value, " ".join(value.split())} - {""}
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    return set().union(*map(strings_in, value)) if isinstance(value, list) else set()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def maybe(strategy):
    return st.one_of(strategy, json_values)


@st.composite
def sparse_contexts(draw):
    full = {
        "action": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "text": maybe(
                        st.sampled_from(["I hack the door", "I look around", "Hi Ossian?", "I search"])
                    ),
                    "actor": maybe(st.text(max_size=10)),
                    "character": maybe(
                        st.fixed_dictionaries(
                            {}, optional={"name": maybe(st.text(max_size=12)), "archetype": json_values}
                        )
                    ),
                },
            )
        ),
        "scene": maybe(
            st.fixed_dictionaries(
                {}, optional={"name": json_values, "biome": json_values, "description": json_values}
            )
        ),
        "world": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": json_values,
                    "factions": maybe(
                        st.lists(maybe(st.fixed_dictionaries({"name": json_values})), max_size=2)
                    ),
                    "npcs": maybe(
                        st.lists(
                            maybe(st.fixed_dictionaries({"name": json_values, "role": json_values})),
                            max_size=2,
                        )
                    ),
                },
            )
        ),
        "objective": json_values,
        "personality": maybe(
            st.fixed_dictionaries(
                {}, optional={"tone": maybe(st.sampled_from(["grim", "wry"])), "verbosity": json_values}
            )
        ),
        "recent": maybe(st.lists(maybe(st.fixed_dictionaries({"text": json_values})), max_size=3)),
        "turn": json_values,
    }
    keys = draw(st.lists(st.sampled_from(sorted(full)), unique=True))
    return {k: draw(full[k]) for k in keys}


tool_contents = st.one_of(
    st.text(max_size=20),
    st.builds(json.dumps, json_values),
    st.builds(
        json.dumps,
        st.fixed_dictionaries(
            {},
            optional={"outcome": maybe(st.sampled_from(OUTCOMES)), "total": json_values, "dc": json_values},
        ),
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    context=st.one_of(sparse_contexts(), json_values),
    seed=st.none() | st.integers(-(2**70), 2**70),
    tool_content=st.none() | tool_contents,
    tool_name=st.sampled_from(["rules_skill_check", "rng_roll", None]),
    tools=st.sampled_from([[], [CHECK_TOOL], [ROLL_TOOL], TOOLS]),
    user_text=st.text(max_size=40),
)
def test_sparse_context_never_crashes(context, seed, tool_content, tool_name, tools, user_text):
    messages = [Message("user", user_text)]
    if tool_content is not None:
        messages.append(Message("tool", tool_content, tool_call_id="call_1", name=tool_name))
    request = ChatRequest(messages=messages, tools=tools, seed=seed, context=context)
    events = list(OfflineNarrator().stream(request))
    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert len(ends) == 1
    assert events[-1] is ends[0]
    assert all(isinstance(e, TextDelta | ToolCallEvent | StreamEnd) for e in events)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) <= 1
    assert ends[0].stop_reason == ("tool_calls" if calls else "stop")
    if calls:
        assert calls[0].name in {t.name for t in tools}
        jsonschema.validate(
            calls[0].arguments, CHECK_SCHEMA if calls[0].name == "rules_skill_check" else ROLL_SCHEMA
        )
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip()
    for supplied in sorted(strings_in([context, user_text]), key=len, reverse=True):
        text = text.replace(supplied, "")
    assert not re.search(r"\{[a-z_0-9]+\}", text), "a template field was left unrendered"
    assert list(OfflineNarrator().stream(request)) == events
