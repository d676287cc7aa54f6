"""The offline GM answers questions and NPCs answer in character, from the game (issue 13).

Pure: the starter missions compiled from their files, the narrator streamed directly. Regressions
named in the issue: "I crouch by the scored deck plates — what made these marks, and how fresh
are they?" got a room description; "Sister Ameline, who are you, and what happened to the crew?"
got "Trust is a luxury. I can't afford it this week." (a stock line).
"""

from __future__ import annotations

import json

import pytest

from narrative.llm.base import ChatRequest, Message, ToolCall
from narrative.llm.offline import answers
from narrative.llm.offline import phrases as P
from narrative.llm.offline.context import read_context
from narrative.tools import schema

from .offline_corpus import ask, context, mission, run, scenes

TOOLS = [schema.SKILL_CHECK, schema.RNG_ROLL, schema.NPC_SPEAK, schema.MISSION_ADVANCE, schema.DECK_DRAW]
# The agenda lines NPCs used to give whatever they were asked (before issue 13's answers).
OLD_AGENDA_LINES = (
    "Listen. All I want is to {agenda}. Help me, or stay out of my way.",
    "You want to know what I'm after? To {agenda}. That's all.",
    "I'll be plain with you: I mean to {agenda}, and I'm running out of time.",
    "Everyone here wants something. Me? I need to {agenda}.",
)
STOCK = {line for lines in P.NPC_REPLIES.values() for line in lines} | set(OLD_AGENDA_LINES)


def npc_line(calls) -> str:
    [call] = [c for c in calls if c.name == "npc_speak"]
    return call.arguments["line"]


def knows(slug: str, npc: str) -> list[dict]:
    return next(n for n in mission(slug)["npcs"] if n["id"] == npc)["knows"]


# ---- the GM answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("tone", ["grim", "wry", "heroic", "whimsical"])
def test_what_made_these_marks_is_answered_from_the_scene_details(seed, tone):
    text, calls = ask(
        "I crouch by the scored deck plates — what made these marks, and how fresh are they?",
        "vesper-relay",
        "docking-ring",
        tools=TOOLS,
        seed=seed,
        tone=tone,
    )
    assert calls == []  # a question, not a roll
    assert "mag-clamp treads" in text  # what made them
    assert "hours old" in text  # how fresh


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What caused the scratches on the floor?", "mag-clamp treads"),
        ("How old are those gouges?", "hours old"),
        ("Is there any power on this ring?", "portable cell"),
        ("What happened to the crew?", "lifeboat cradle"),
    ],
)
def test_other_phrasings_find_the_right_detail(question, expected):
    text, calls = ask(question, "vesper-relay", "docking-ring", tools=TOOLS)
    assert calls == []
    assert expected in text


def test_what_are_our_objectives_names_the_open_ones_and_a_running_clock():
    text, calls = ask(
        "What are our objectives right now?", "vesper-relay", "relay-core", tools=TOOLS, clocks={"reactor": 3}
    )
    assert calls == []
    assert "restore power to the relay core" in text.lower()
    assert "Reactor meltdown: 3 of" in text
    # The finished objective and the hidden ones are not offered as things to do.
    assert "Docking Ring C" not in text and "sealed crate" not in text


@pytest.mark.parametrize(
    "question", ["What should we do next?", "What's the plan?", "What is our mission here?"]
)
def test_other_ways_to_ask_what_to_do(question):
    text, _ = ask(question, "thule-descent", "landing-field", tools=TOOLS)
    assert "reach the survey beacon before the storm closes in" in text.lower()


def test_how_long_do_we_have_reads_the_clocks():
    size = next(k["size"] for k in mission("thule-descent")["clocks"] if k["id"] == "storm")
    text, _ = ask(
        "How long until the storm hits?", "thule-descent", "landing-field", clocks={"storm": size - 1}
    )
    assert f"Whiteout is one step from the end: {size - 1} of {size}." in text


def test_who_is_here_names_the_present_npcs_and_only_them():
    text, _ = ask("Who is here?", "vesper-relay", "relay-core")
    for name in ("Ossian Ward", "Captain Idris Hale", "Sister Ameline"):
        assert name in text
    text, _ = ask("Is anyone here?", "vesper-relay", "docking-ring")
    assert "Ossian Ward" in text and "Sister Ameline" not in text


def test_asking_the_gm_about_an_npc_tells_who_they_are_and_what_they_seem_to_want():
    text, calls = ask("Who is Captain Hale?", "vesper-relay", "relay-core", tools=TOOLS)
    assert calls == []
    assert "warden officer of the Warden Compact" in text
    assert "find out who is stripping the relay for parts" in text


def test_the_gm_never_tells_what_an_npc_knows_but_points_to_them():
    """`knows` lines are the NPC's to tell: a GM answer names who may know, never the fact."""
    for slug, scene in scenes():
        secrets = [k["text"] for n in mission(slug)["npcs"] for k in n.get("knows", [])]
        for question in (
            "What happened here?",
            "What is in the crate?",
            "Who is behind this?",
            "Where is the team?",
        ):
            text, _ = ask(question, slug, scene, tools=TOOLS)
            for secret in secrets:
                assert secret[:40] not in text, (slug, scene, question)
    text, _ = ask("What is in the crate?", "vesper-relay", "relay-core", tools=TOOLS)
    assert "Ossian Ward" in text  # he is the one who knows


def test_memories_answer_questions_about_the_past():
    memory = "Kira gave the dockmaster's access code, 4471, to Ossian."
    text, _ = ask("Do I remember the dockmaster's code?", "vesper-relay", "docking-ring", memories=(memory,))
    assert memory in text


def test_an_unanswerable_question_gets_no_invented_fact():
    text, calls = ask("What is the weather like on Mars?", "vesper-relay", "docking-ring", tools=TOOLS)
    assert calls == []
    for detail in mission("vesper-relay")["scenes"][0]["details"]:
        assert detail not in text
    assert "not yet" in text or "no answer" in text or "keeps it to itself" in text


def test_a_fact_the_table_just_read_is_not_repeated_as_the_answer():
    detail = mission("vesper-relay")["scenes"][0]["details"][0]
    text, _ = ask("What made these marks?", "vesper-relay", "docking-ring", recent=(("Narration", detail),))
    assert detail not in text


# ---- NPCs answer in character --------------------------------------------------------------------


def test_who_are_you_and_what_happened_to_the_crew_is_answered_in_character():
    text, calls = ask(
        "Sister Ameline, who are you, and what happened to the crew?",
        "vesper-relay",
        "relay-core",
        tools=TOOLS,
    )
    line = npc_line(calls)
    assert [c.arguments["npc"] for c in calls] == ["ameline"]
    assert line not in STOCK
    assert "Sister Ameline" in line and "choir cantor" in line and "Quiet Choir" in line  # who
    assert "lifeboat" in line  # the crew
    assert "keep the relay's last song playing" in line  # what she wants
    assert len(line) <= 300
    assert "Sister Ameline" in text  # the lead-in says who was asked


@pytest.mark.parametrize(
    ("action", "npc", "expected"),
    [
        ("I ask Hale what happened to the crew.", "hale", "Kestrel Station"),
        ("Hale, what do you want?", "hale", "find out who is stripping the relay for parts"),
        ("Ameline, how do we restart the reactor?", "ameline", "coolant pumps up before the rods"),
        ("Ossian, when did you get here?", "ossian", "three days ago"),
        ("Ossian, who made the marks on the ring?", "ossian", "A loader"),
    ],
)
def test_npcs_answer_the_question_they_were_asked(action, npc, expected):
    _, calls = ask(action, "vesper-relay", "relay-core", tools=TOOLS)
    assert calls[0].arguments["npc"] == npc
    assert expected in npc_line(calls)


def test_an_npc_keeps_a_pressed_fact_until_pressed():
    secret = next(k["text"] for k in knows("vesper-relay", "ossian") if k["pressed"])
    for seed in range(5):
        _, calls = ask("Ossian, what's in the crate?", "vesper-relay", "relay-core", tools=TOOLS, seed=seed)
        assert "relay key" not in npc_line(calls)
    # pushing for it ...
    _, calls = ask(
        "Ossian, tell me the truth: what's in the crate?", "vesper-relay", "relay-core", tools=TOOLS
    )
    assert secret[:30] in npc_line(calls)
    # ... or asking again
    again = (("Action", "Ossian, what's in the crate?"), ("Narration", "Ossian says nothing more, for now."))
    _, calls = ask("Ossian, what's in that crate?", "vesper-relay", "relay-core", tools=TOOLS, recent=again)
    assert secret[:30] in npc_line(calls)


def test_an_npc_who_does_not_know_says_so_and_invents_nothing():
    _, calls = ask("Hale, what is the weather like on Mars?", "vesper-relay", "relay-core", tools=TOOLS)
    line = npc_line(calls)
    for k in knows("vesper-relay", "hale"):
        assert k["text"] not in line


def test_talk_that_asks_nothing_gets_the_npc_agenda():
    _, calls = ask("Hello Ameline", "vesper-relay", "relay-core", tools=TOOLS)
    assert "keep the relay's last song playing" in npc_line(calls)


def test_after_the_npc_has_spoken_the_narration_adds_no_second_quote():
    text = "Sister Ameline, who are you?"
    ctx = context(text, "vesper-relay", "relay-core")
    call = ToolCall(
        id="call_1", name="npc_speak", arguments={"npc": "ameline", "line": "I'm Sister Ameline."}
    )
    messages = [
        Message("user", text),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", json.dumps({"ok": True}), tool_call_id="call_1", name="npc_speak"),
    ]
    follow, calls = run(ChatRequest(messages=messages, tools=TOOLS, seed=3, context=ctx))
    assert calls == []
    assert '"' not in follow and "Sister Ameline" in follow
    for stock in STOCK:
        assert stock not in follow


def test_an_npc_outside_any_mission_answers_inline():
    """No npc_speak tool (no mission running): the world NPC's answer is quoted in the narration."""
    ctx = context("Ossian, what do you want?", "vesper-relay", "docking-ring")
    ctx.pop("mission")
    ctx.pop("lore")
    request = ChatRequest(messages=[Message("user", "x")], tools=[schema.SKILL_CHECK], seed=2, context=ctx)
    text, calls = run(request)
    assert calls == []
    assert "move one sealed crate through Vesper Relay" in text


def test_npc_first_person_agenda_has_no_third_person_left():
    person = read_context(context("Ossian?", "rootbound-vault", "root-vault"), []).people["Ossian Ward"]
    assert answers.agenda_phrase(person.agenda).startswith("get the vault open")
    spoken = answers.agenda_phrase(person.agenda, spoken=True)
    assert "to my buyer" in spoken and " his " not in spoken


# ---- determinism ---------------------------------------------------------------------------------


def test_answers_are_deterministic_per_seed():
    args = ("Sister Ameline, who are you, and what happened to the crew?", "vesper-relay", "relay-core")
    assert ask(*args, tools=TOOLS, seed=11) == ask(*args, tools=TOOLS, seed=11)
    lines = {npc_line(ask(*args, tools=TOOLS, seed=s)[1]) for s in range(12)}
    assert len(lines) > 1  # the wording varies with the seed; the facts do not
    assert all("lifeboat" in line for line in lines)


def test_an_npc_who_is_elsewhere_in_the_mission_cannot_answer():
    text, calls = ask("Hale, why are you here?", "thule-descent", "listening-post", tools=TOOLS)
    assert calls == []
    assert "Captain Idris Hale" in text and "here" in text
    for k in knows("thule-descent", "hale"):
        assert k["text"] not in text


@pytest.mark.parametrize(("slug", "scene"), scenes())
def test_what_happened_here_gets_a_telling_detail_of_the_scene(slug, scene):
    details = next(s for s in mission(slug)["scenes"] if s["id"] == scene)["details"]
    text, calls = ask("What happened here?", slug, scene, tools=TOOLS)
    assert calls == []
    assert any(d in text for d in details)


@pytest.mark.parametrize("outcome", ["success", "critical_success", "failure", "critical_failure"])
def test_a_won_social_check_makes_the_npc_tell_what_they_kept(outcome):
    text = "I persuade Ossian to open the crate"
    ctx = context(text, "vesper-relay", "relay-core")
    first, calls = run(ChatRequest(messages=[Message("user", text)], tools=TOOLS, seed=4, context=ctx))
    [check] = calls
    assert check.name == "rules_skill_check" and check.arguments["skill"] == "persuasion"
    natural = {"critical_success": 20, "success": 15, "failure": 5, "critical_failure": 1}[outcome]
    result = {"natural": natural, "total": natural + 2, "dc": 13, "outcome": outcome}
    messages = [
        Message("user", text),
        Message("assistant", first, tool_calls=(check,)),
        Message("tool", json.dumps(result), tool_call_id=check.id, name=check.name),
    ]
    _, calls = run(ChatRequest(messages=messages, tools=TOOLS, seed=4, context=ctx))
    told = [c for c in calls if c.name == "npc_speak"]
    if outcome in ("success", "critical_success"):
        assert told and told[0].arguments["npc"] == "ossian" and "relay key" in told[0].arguments["line"]
    else:
        assert not told
