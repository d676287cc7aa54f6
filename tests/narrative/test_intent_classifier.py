"""The offline GM reads what an action means (issue 13, part 1): the right skill and attribute,
or no roll at all for questions and talk — with the local embedding model's nearest labelled
examples and rules, or with the rules alone when the model cannot load."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from gtw_site.bench import intent as bench
from narrative import intent, intent_model
from narrative.llm.base import ChatRequest, Message, ToolCallEvent
from narrative.llm.offline import OfflineNarrator
from narrative.tools import SKILL_CHECK

NPCS = [("Sister Ameline", "choir keeper"), ("Ossian Ward", "smuggler"), ("Captain Idris Hale", "warden")]
DEV_SET = Path(__file__).parent / "data" / "intent_dev.jsonl"


def read(action, *, model=True, name="Kira Vance", actor="kira", npcs=NPCS):
    return intent.analyse(action, name=name, actor=actor, npcs=npcs, model=model)


def rolls(action, **kw):
    found = read(action, **kw)
    return found.skill if found.kind in ("check", "loot") else None


@pytest.fixture
def no_model(monkeypatch):
    """The embedding model fails to load: the rules decide alone."""

    def broken():
        raise OSError("model.onnx: no such file")

    intent_model.reset()
    monkeypatch.setattr(intent_model, "embedder_factory", broken)
    yield
    intent_model.reset()


# ---- the examples -----------------------------------------------------------------------


def test_hailing_a_ship_is_talk_not_an_athletics_roll():
    """Regression (issue 13): "I hail the Warden cutter on the open channel" rolled athletics."""
    found = read("I hail the Warden cutter on the open channel")
    assert found.kind == "talk" and not found.question


def test_rerouting_power_is_engineering_by_tech():
    """Regression (issue 13): "reroute auxiliary power into the relay core" rolled athletics (might),
    and the objective it was meant for completes only on a tech or engineering check."""
    for action in (
        "reroute auxiliary power into the relay core",
        "I reroute auxiliary power into the relay core",
        "Kira diverts what's left of the auxiliary power to the relay core",
    ):
        found = read(action)
        assert (found.kind, found.skill, found.attribute) == ("check", "engineering", "tech"), action


def test_sneaking_unseen_is_stealth():
    """Regression (issue 13): "sneak … without being seen" rolled athletics, not stealth."""
    for action in (
        "I sneak across the docking ring without being seen",
        "Kira slips past the scavengers unseen",
        "Stay in the shadows and get to the far airlock",
        "we creep along the catwalk so the acolytes don't notice us",
    ):
        found = read(action)
        assert (found.skill, found.attribute) == ("stealth", "agility"), action


@pytest.mark.parametrize(
    "action",
    [
        "What are our objectives right now?",
        "I crouch by the scored deck plates — what made these marks, and how fresh are they?",
        "where does this corridor lead",
        "Is the reactor stable",
        "how long until the clock runs out?",
        "I wonder who scored these plates",
        "Tell me about the relay",
    ],
)
def test_questions_to_the_gm_never_roll(action):
    found = read(action)
    assert found.question is True
    assert found.kind == "observe"
    assert rolls(action) is None


def test_a_question_to_an_npc_is_talk_to_that_npc():
    found = read("Sister Ameline, who are you, and what happened to the crew?")
    assert (found.kind, found.npc, found.question) == ("talk", NPCS[0], True)
    found = read("Ossian, what's really in the crate")
    assert (found.kind, found.npc, found.question) == ("talk", NPCS[1], True)
    found = read("I ask Captain Hale why the Wardens want the relay")
    assert (found.kind, found.npc, found.question) == ("talk", NPCS[2], True)


def test_talk_never_rolls_and_names_whom_it_addresses():
    for action in (
        "I greet Sister Ameline",
        "I tell Ossian what we found in the core",
        '"Hold the door!" I shout',
    ):
        found = read(action)
        assert found.kind == "talk" and rolls(action) is None, action
    assert read("I greet Sister Ameline").npc == NPCS[0]


def test_a_question_that_declares_an_attempt_rolls_for_it():
    """Asking while doing: the declared search rolls; "Do I spot …?" asks for a perception roll;
    "Can I hack the panel?" asks whether one may try, and is answered."""
    found = read("Anything behind the loose panel? I pry it off and search the cavity.")
    assert found.question and found.kind == "check"
    found = read("Do I notice anyone watching us from the catwalk?")
    assert found.question and found.skill == "perception"
    assert rolls("Can I hack the panel?") is None


# ---- meaning, not keywords --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "skill", "attribute"),
    [
        ("I jack into the lift controller and convince it we're maintenance", "hacking", "tech"),
        ("Loop the camera feed in the security office", "hacking", "tech"),
        ("Get the dead lift running again", "engineering", "tech"),
        ("Kira welds a plate over the breach", "engineering", "tech"),
        ("Bring us alongside the derelict's docking collar", "piloting", "agility"),
        ("take the helm and shake off the cutter", "piloting", "agility"),
        ("Scramble up the antenna lattice", "athletics", "agility"),
        ("Shoulder the jammed hatch until it gives", "athletics", "might"),
        ("Mira heaves the fallen girder off the acolyte", "athletics", "might"),
        ("I lift the keycard off his belt while he's talking", "sleight of hand", "agility"),
        ("Open fire on the scavengers", "marksmanship", "agility"),
        ("I slug the raider", "brawling", "might"),
        ("Talk the frightened acolytes into leaving the core", "persuasion", "presence"),
        ("Pretend we're buyers from the Syndicate", "deception", "presence"),
        ("I level my pistol at Ossian and demand answers", "intimidation", "presence"),
        ("Offer the Wardens the crate in exchange for the relay", "negotiation", "presence"),
        ("Go through the crew manifests for the missing names", "investigation", "wits"),
        ("Keep watch for movement on the catwalks", "perception", "wits"),
        ("Run a diagnostic on the reactor", "analysis", "wits"),
        ("I try to remember what the Choir believes", "lore", "wits"),
        ("Plot a course back to the Warden outpost", "navigation", "wits"),
        ("Patch up Bo's wounded shoulder", "medicine", "wits"),
        # a scene-setting preface before the main clause
        ("Kneeling by the fuse box, I start splicing the cut cables", "engineering", "tech"),
        ("Straining, I drag the crate off the hatch", "athletics", "might"),
        ("Smiling, I assure the officer the cargo is grain, though I know better", "deception", "presence"),
        ("I threaten to shoot the pilot unless she lands", "intimidation", "presence"),
    ],
)
def test_the_skill_and_attribute_follow_the_meaning(action, skill, attribute):
    found = read(action)
    assert (found.kind, found.skill, found.attribute) == ("check", skill, attribute)


@pytest.mark.parametrize(
    "action",
    [
        "I sneak past the sentries",  # first person
        "Kira sneaks past the sentries",  # third person, the character's name
        "Tomas sneaks past the sentries",  # third person, a name the game was not told
        "sneak past the sentries",  # imperative
        "I try to quietly sneak past the sentries",  # fillers
    ],
)
def test_person_and_mood_do_not_change_the_reading(action):
    assert rolls(action) == "stealth"


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("I walk to the relay core", "move"),
        ("Kira heads back to the docking ring", "move"),
        ("I look around the chapel", "observe"),
        ("I sit down and rest", "rest"),
        ("I pick up the datapad", "act"),
        ("I pay the vendor for the noodles", "act"),
    ],
)
def test_plain_actions_do_not_roll(action, kind):
    """Objects the examples associate with a skill ("the relay core") don't make a walk a repair."""
    assert read(action).kind == kind


def test_the_same_action_reads_the_same_way_every_time():
    actions = [line.action for line in bench.load_lines(DEV_SET)]
    first = [intent.analyse(a, name="Kira", npcs=NPCS) for a in actions]
    intent_model.reset()  # a fresh process: the example vectors come back from the disk cache
    again = [intent.analyse(a, name="Kira", npcs=NPCS) for a in actions]
    assert first == again


def test_the_example_vectors_are_cached_on_disk_by_model_and_examples(tmp_path, monkeypatch):
    calls = []
    real = intent_model.embedder_factory

    class Counting:
        def __init__(self):
            self.inner = real()
            self.model, self.dimensions = self.inner.model, self.inner.dimensions

        def embed(self, texts):
            calls.append(len(texts))
            return self.inner.embed(texts)

    monkeypatch.setenv("GTW_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(intent_model, "embedder_factory", Counting)
    intent_model.reset()
    try:
        assert rolls("I hack the airlock panel") == "hacking"
        examples = len(intent_model.load_examples())
        assert calls[0] == examples  # computed once, then one call per action
        cached = list((tmp_path / "cache").glob("intent-examples-*.npy"))
        assert len(cached) == 1 and np.load(cached[0]).shape[0] == examples
        calls.clear()
        intent_model.reset()
        assert rolls("I hack the airlock panel") == "hacking"
        assert calls == [1]  # the examples came from the cache; only the action was embedded
    finally:
        intent_model.reset()


# ---- without the model -------------------------------------------------------------------------


def test_without_the_model_the_rules_still_read_actions_and_say_so_once(no_model, caplog):
    with caplog.at_level(logging.WARNING, logger="narrative.intent_model"):
        assert read("I hail the Warden cutter on the open channel").kind == "talk"
        assert rolls("reroute auxiliary power into the relay core") == "engineering"
        assert rolls("I sneak across the ring without being seen") == "stealth"
        assert read("What made these marks?").kind == "observe"
        assert read("Sister Ameline, who are you?").npc == NPCS[0]
        assert rolls("I force the jammed hatch open") == "athletics"
        assert read("I force the jammed hatch open").attribute == "might"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert not intent_model.available(intent._prepare)


def test_without_the_model_the_dev_set_still_mostly_reads_right(no_model):
    result = bench.score(bench.load_lines(DEV_SET), lambda a: bench.predict(a, npcs=NPCS, model=True))
    assert result.skill_accuracy >= 0.8
    assert result.noroll_precision >= 0.8


def test_an_action_the_tokenizer_cannot_embed_falls_back_to_rules(monkeypatch):
    class Refusing:
        model, dimensions = "refusing", 3

        def embed(self, texts):
            if len(texts) == 1:
                raise ValueError("tokenizing failed")
            return [[1.0, 0.0, 0.0]] * len(texts)

    monkeypatch.setattr(intent_model, "embedder_factory", Refusing)
    monkeypatch.setattr(intent_model, "cache_dir", lambda: Path("/nonexistent/gtw-intent-test"))
    intent_model.reset()
    try:
        assert rolls("I hack the airlock panel") == "hacking"
    finally:
        intent_model.reset()


# ---- the narrator and the stage use the same reading --------------------------------------------


def test_the_offline_narrator_rolls_the_classified_skill_and_answers_questions_without_a_roll():
    narrator = OfflineNarrator()

    def calls_for(text):
        context = {
            "action": {"text": text, "actor": "kira", "character": {"name": "Kira Vance"}},
            "world": {"npcs": [{"name": n, "role": r} for n, r in NPCS]},
        }
        request = ChatRequest(
            messages=[Message(role="user", content=text)], tools=[SKILL_CHECK], context=context, seed=3
        )
        return [e.call for e in narrator.stream(request) if isinstance(e, ToolCallEvent)]

    (call,) = calls_for("I reroute auxiliary power into the relay core")
    assert (call.arguments["skill"], call.arguments["attribute"]) == ("engineering", "tech")
    assert calls_for("What are our objectives right now?") == []
    assert calls_for("I hail the Warden cutter on the open channel") == []


def test_the_stage_plans_no_check_for_questions_or_talk():
    schema = SKILL_CHECK.parameters
    plan = dict(name="Kira Vance", actor="kira", schema=schema, seed=1)
    assert intent.plan_check(text="Where is Ossian?", **plan) is None
    assert intent.plan_check(text="I hail the cutter", **plan) is None
    args = intent.plan_check(text="I sneak past the sentries without being seen", **plan)
    assert (args["skill"], args["attribute"]) == ("stealth", "agility")


# ---- the measured sets ---------------------------------------------------------------------------


def test_the_dev_set_scores_above_the_targets():
    result = bench.score(bench.load_lines(DEV_SET), lambda a: bench.predict(a, npcs=NPCS))
    assert result.skill_accuracy >= 0.9
    assert result.noroll_precision >= 0.95
    assert result.question_accuracy >= 0.95


def test_the_held_out_set_scores_above_the_targets():
    """The held-out set (tests/bench/data/intent_actions.jsonl, written apart from the examples
    and the rules): skill accuracy >= 90 %, no-roll precision >= 95 %, as `gtw bench intent`
    reports them."""
    lines = bench.load_lines(bench.DEFAULT_DATA)
    assert len(lines) >= 300
    result = bench.score(lines, lambda a: bench.predict(a, npcs=bench.starter_npcs()))
    assert result.skill_accuracy >= 0.90, result.misses
    assert result.noroll_precision >= 0.95, result.misses


def test_the_bench_scores_by_its_definitions():
    lines = [
        bench.Line("a", "hacking", False),
        bench.Line("b", "engineering", False, ("hacking",)),
        bench.Line("c", "stealth", False),
        bench.Line("d", None, True),
        bench.Line("e", None, False),
    ]
    predicted = {"a": ("hacking", False), "b": ("hacking", False), "c": (None, False), "d": (None, True)}
    result = bench.score(lines, lambda a: predicted.get(a, ("athletics", True)))
    assert result.skill_accuracy == pytest.approx(2 / 3)  # a right, b accepted, c a no-roll: wrong
    assert result.noroll_precision == pytest.approx(1 / 2)  # c and d predicted no-roll; d is null
    assert result.noroll_recall == pytest.approx(1 / 2)  # d found, e rolled
    assert result.question_accuracy == pytest.approx(4 / 5)
    assert result.confusion["stealth"]["no roll"] == 1


def test_a_malformed_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"action": "I hack it", "skill": "hacking", "question": false}\n{"skill": 3}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        bench.load_lines(path)


def test_every_example_is_labelled_with_a_known_skill_or_kind():
    labels = {label for _, label in intent_model.load_examples()}
    assert labels == set(intent.R.SKILLS) | set(intent.R.NO_ROLL)
    assert len(intent_model.load_examples()) >= 300


def test_a_question_about_an_npc_asked_of_the_gm_is_not_talk():
    found = read("Where is Ossian?")
    assert (found.kind, found.npc, found.question) == ("observe", NPCS[1], True)


def test_gibberish_is_a_plain_act_not_a_roll():
    for action in ("blorp zing wub", "asdfgh qwerty", "lorem ipsum dolor sit amet"):
        assert rolls(action) is None, action


def test_a_wall_of_text_is_read_by_its_opening():
    assert rolls("I hack the airlock panel. " + "Then some more words go here. " * 500) == "hacking"


def test_an_npc_is_addressed_by_any_part_of_their_name_and_after_a_dash():
    assert read("Ameline — what is the song?").npc == NPCS[0]
    assert read("Ward, give me the crate").npc == NPCS[1]
    assert read("Hale: stand down, the relay is ours").kind == "talk"


def test_the_actor_named_as_the_speaker_is_not_someone_addressed():
    found = read("Kira: I sneak past the guards")
    assert (found.kind, found.skill) == ("check", "stealth")


def test_a_threat_in_talk_rolls_intimidation():
    assert rolls("Tell Ossian to back off or else") == "intimidation"
    assert rolls('"Drop the crate or I\'ll vent the bay!" I shout at the scavengers') == "intimidation"
