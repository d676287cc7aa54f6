import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrative.director import (
    BEAT_LABELS,
    BEATS,
    DirectorConfig,
    DirectorError,
    DirectorState,
    enforce_window,
    intensity_target,
    set_beat,
    step,
    word_limit,
)

# Thresholds chosen to be easy to read in the table tests below.
CONFIG = DirectorConfig.from_weights(
    {
        "min_turns": {"inciting": 2, "rising": 3, "twist": 2, "climax": 2},
        "max_turns": {"inciting": 6, "rising": 8, "twist": 6, "climax": 5},
    }
)


def at(beat: str, turns: int = 0) -> DirectorState:
    return DirectorState(beat=beat, turns_in_beat=turns, total_turns=turns + 10)


def signals(**kw):
    base = {
        "turns_elapsed": 1,
        "mission_progress": 0.0,
        "max_clock": 0.0,
        "mission_status": "active",
        "twist_fired": False,
    }
    return {**base, **kw}


def moved(state, sig, config=CONFIG):
    new, effects = step(config, state, sig)
    return new.beat, effects


# --- the transition table, one test per row (and the "stay" side of each) ------------------


def test_inciting_to_rising_after_min_turns():
    assert moved(at("inciting", 0), signals())[0] == "inciting"
    beat, effects = moved(at("inciting", 1), signals())
    assert beat == "rising"
    assert effects == [
        {
            "type": "BeatChanged",
            "from": "inciting",
            "to": "rising",
            "label": "Rising",
            "reason": "2 turns in Inciting",
            "by": "director",
            "recap_requested": True,
        }
    ]


def test_inciting_to_rising_on_first_objective_progress():
    beat, effects = moved(at("inciting", 0), signals(mission_progress=0.34))
    assert beat == "rising"
    assert effects[0]["reason"] == "first objective progress"


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signals(mission_progress=0.5), "objectives 50% complete"),
        (signals(max_clock=0.5), "a clock is 50% full"),
    ],
)
def test_rising_to_twist_on_progress_or_clock_after_min_turns(sig, reason):
    assert moved(at("rising", 0), sig)[0] == "rising"  # 1 turn < min 3
    beat, effects = moved(at("rising", 2), sig)
    assert beat == "twist"
    assert effects[0]["reason"] == reason


def test_rising_to_twist_when_a_twist_fired_even_early():
    beat, effects = moved(at("rising", 0), signals(twist_fired=True))
    assert beat == "twist"
    assert effects[0]["reason"] == "a twist card fired"


def test_rising_to_twist_at_max_turns():
    assert moved(at("rising", 6), signals(mission_progress=0.49, max_clock=0.49))[0] == "rising"
    beat, effects = moved(at("rising", 7), signals())
    assert beat == "twist"
    assert effects[0]["reason"] == "8 turns in Rising (max 8)"


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signals(max_clock=0.75), "a clock is 75% full"),
        (signals(mission_progress=0.8), "objectives 80% complete"),
    ],
)
def test_twist_to_climax_on_clock_or_progress_after_min_turns(sig, reason):
    assert moved(at("twist", 0), sig)[0] == "twist"
    beat, effects = moved(at("twist", 1), sig)
    assert beat == "climax"
    assert effects[0]["reason"] == reason
    assert effects[0]["label"] == "Climax"


def test_twist_to_climax_at_max_turns():
    assert moved(at("twist", 4), signals(max_clock=0.74, mission_progress=0.74))[0] == "twist"
    assert moved(at("twist", 5), signals())[0] == "climax"


@pytest.mark.parametrize("status", ["complete", "failed"])
def test_climax_to_denouement_when_the_mission_ends(status):
    beat, effects = moved(at("climax", 0), signals(mission_status=status))
    assert beat == "denouement"
    assert effects[0]["reason"] == f"mission {status}"


def test_climax_to_denouement_at_max_turns():
    assert moved(at("climax", 3), signals(mission_progress=1.0, max_clock=1.0))[0] == "climax"
    beat, effects = moved(at("climax", 4), signals())
    assert beat == "denouement"
    assert effects[0]["reason"] == "5 turns in Climax (max 5)"


@pytest.mark.parametrize("beat", ["inciting", "rising", "twist"])
def test_mission_end_jumps_straight_to_denouement_from_any_beat(beat):
    new_beat, effects = moved(at(beat, 0), signals(mission_status="failed"))
    assert new_beat == "denouement"
    assert effects[0]["from"] == beat


def test_denouement_is_terminal():
    state = at("denouement", 0)
    new, effects = step(
        CONFIG, state, signals(turns_elapsed=500, mission_status="complete", twist_fired=True)
    )
    assert new.beat == "denouement" and effects == []
    assert new.turns_in_beat == 500


def test_staying_counts_turns_and_moving_resets_them():
    state = DirectorState()
    state, _ = step(CONFIG, state, signals(turns_elapsed=1))
    assert (state.beat, state.turns_in_beat, state.total_turns) == ("inciting", 1, 1)
    state, _ = step(CONFIG, state, signals(turns_elapsed=1))
    assert (state.beat, state.turns_in_beat, state.total_turns) == ("rising", 0, 2)
    transition = {"from": "inciting", "to": "rising", "reason": "2 turns in Inciting", "by": "director"}
    assert state.history == ({**transition, "at_turn": 2},)


def test_pacing_scales_the_thresholds():
    slow = DirectorConfig.from_weights({"pacing": 0.5, "min_turns": {"inciting": 2}})
    fast = DirectorConfig.from_weights({"pacing": 1.5, "min_turns": {"inciting": 3}})
    assert slow.turn_threshold("inciting") == 4
    assert fast.turn_threshold("inciting") == 2
    assert moved(at("inciting", 2), signals(), slow)[0] == "inciting"
    assert moved(at("inciting", 3), signals(), slow)[0] == "rising"
    assert moved(at("inciting", 1), signals(), fast)[0] == "rising"


# --- properties ------------------------------------------------------------------------------

signal_strategy = st.fixed_dictionaries(
    {
        "turns_elapsed": st.integers(0, 30),
        "mission_progress": st.floats(0, 1),
        "max_clock": st.floats(0, 1),
        "mission_status": st.sampled_from(["active", "active", "active", "complete", "failed"]),
        "twist_fired": st.booleans(),
    }
)
weight_strategy = st.fixed_dictionaries(
    {"pacing": st.floats(0.5, 1.5)},
    optional={
        "min_turns": st.fixed_dictionaries({b: st.integers(1, 5) for b in BEATS}),
        "max_turns": st.fixed_dictionaries({b: st.integers(5, 20) for b in BEATS}),
    },
)


@settings(deadline=None, max_examples=300)
@given(weight_strategy, st.lists(signal_strategy, max_size=40))
def test_never_skips_more_than_one_beat_unless_the_mission_ended(weights, sequence):
    config = DirectorConfig.from_weights(weights)
    state = DirectorState()
    for sig in sequence:
        new, effects = step(config, state, sig)
        jump = BEATS.index(new.beat) - BEATS.index(state.beat)
        assert jump >= 0
        assert len(effects) == (1 if jump else 0)
        if jump > 1:
            assert sig["mission_status"] != "active" and new.beat == "denouement"
        if effects:
            assert effects[0]["label"] == BEAT_LABELS[new.beat]
            assert effects[0]["recap_requested"] is True
        assert new.total_turns == state.total_turns + sig["turns_elapsed"]
        # Round trip through JSON, as the engine stores it in event payloads.
        state = DirectorState.from_dict(json.loads(json.dumps(new.to_dict())))
        assert state == new


@settings(deadline=None, max_examples=100)
@given(weight_strategy)
def test_a_stalled_table_still_reaches_the_denouement(weights):
    config = DirectorConfig.from_weights(weights)
    state = DirectorState()
    for _ in range(200):
        state, _ = step(config, state, signals())
    assert state.beat == "denouement"


# --- GM control --------------------------------------------------------------------------------


def test_gm_can_move_the_beat_anywhere():
    state = at("climax", 3)
    new, effects = set_beat(state, "rising", by="gm")
    assert new.beat == "rising" and new.turns_in_beat == 0 and new.total_turns == state.total_turns
    assert effects[0] == {
        "type": "BeatChanged",
        "from": "climax",
        "to": "rising",
        "label": "Rising",
        "reason": "set by gm",
        "by": "gm",
        "recap_requested": True,
    }
    back, _ = set_beat(at("denouement"), "inciting", by="gm:42", reason="new act")
    assert back.beat == "inciting" and back.history[-1]["reason"] == "new act"
    assert set_beat(state, "climax") == (state, [])


def test_set_beat_validates():
    with pytest.raises(DirectorError, match="unknown beat 'finale'"):
        set_beat(DirectorState(), "finale")
    with pytest.raises(DirectorError, match="by must be"):
        set_beat(DirectorState(), "rising", by="")


# --- config, signals and state validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"pacing": 2.0}, r"pacing must be in \[0.5, 1.5\]"),
        ({"pacing": "fast"}, "pacing must be a number"),
        ({"tempo": 1}, "unknown director weight"),
        ({"min_turns": {"finale": 2}}, "min_turns: unknown beat 'finale'"),
        ({"min_turns": {"rising": 0}}, "min_turns.rising must be 1..200"),
        ({"min_turns": {"rising": 9}, "max_turns": {"rising": 8}}, r"min_turns.rising \(9\) is greater"),
        ({"word_limits": {"climax": 5}}, "word_limits.climax must be 20..2000"),
        ({"intensity": {"twist": -1}}, "intensity.twist must be in"),
        ({"max_turns": [1, 2]}, "max_turns must be an object"),
        ([], "director weights must be an object"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(DirectorError, match=message):
        DirectorConfig.from_weights(weights)


@pytest.mark.parametrize(
    ("sig", "message"),
    [
        ({"turns_elapsed": -1}, "turns_elapsed must be 0..1000"),
        ({"mission_progress": 1.5}, r"mission_progress must be in \[0.0, 1.0\]"),
        ({"max_clock": float("nan")}, "max_clock must be a number"),
        ({"mission_status": "won"}, "mission_status must be one of"),
        ({"twist_fired": 1}, "twist_fired must be true or false"),
        ({"progress": 0.5}, "unknown signal"),
    ],
)
def test_bad_signals_are_refused(sig, message):
    with pytest.raises(DirectorError, match=message):
        step(CONFIG, DirectorState(), sig)


def test_state_from_dict_validates():
    with pytest.raises(DirectorError, match="unknown beat"):
        DirectorState.from_dict({"beat": "act-3"})
    with pytest.raises(DirectorError, match="unknown director state field"):
        DirectorState.from_dict({"beat": "rising", "mood": "grim"})


def test_default_config_word_windows_and_round_trip():
    config = DirectorConfig()
    assert [word_limit(config, b) for b in BEATS] == [180, 150, 160, 200, 220]
    assert DirectorConfig.from_weights(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(DirectorError, match="unknown beat"):
        word_limit(config, "epilogue")


# --- narration window ----------------------------------------------------------------------------


def test_enforce_window_leaves_short_text_alone():
    text = "The hatch opens.\n\nCold air rolls in.  "
    assert enforce_window(text, 10) == text


def test_enforce_window_cuts_at_a_sentence_boundary():
    text = (
        "The hatch opens. Cold air rolls in! \u201cWho is there?\u201d Ossian asks. "
        "Nobody answers him at all."
    )
    assert (
        enforce_window(text, 12)
        == "The hatch opens. Cold air rolls in! \u201cWho is there?\u201d Ossian asks."
    )
    assert enforce_window(text, 10) == "The hatch opens. Cold air rolls in! \u201cWho is there?\u201d"
    assert enforce_window(text, 9) == "The hatch opens. Cold air rolls in!"


def test_enforce_window_cuts_mid_sentence_when_no_boundary_is_close():
    text = "Short. " + " ".join(f"w{i}," for i in range(50))
    assert enforce_window(text, 10) == "Short. w0, w1, w2, w3, w4, w5, w6, w7, w8\u2026"


@settings(deadline=None, max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\u201d")), max_size=300), st.integers(1, 40))
def test_enforce_window_never_exceeds_the_limit(text, limit):
    trimmed = enforce_window(text, limit)
    assert len(trimmed.split()) <= limit
    if len(text.split()) <= limit:
        assert trimmed == text
    else:
        kept = trimmed.removesuffix("\u2026")
        assert text.startswith(kept)


# --- intensity and DDA -------------------------------------------------------------------------


def test_intensity_target_follows_the_curve_inside_dda_caps():
    config = DirectorConfig()
    curve = [intensity_target(config, b, (0.0, 3.0)) for b in BEATS]
    assert curve == [config.intensity[b] for b in BEATS]
    assert intensity_target(config, "climax", (0.5, 1.2)) == 1.2
    assert intensity_target(config, "denouement", (0.8, 1.2)) == 0.8
    with pytest.raises(DirectorError, match=r"lo \(1\.2\) is greater than hi \(0\.5\)"):
        intensity_target(config, "climax", (1.2, 0.5))


@settings(deadline=None)
@given(
    st.sampled_from(BEATS),
    st.floats(0, 3),
    st.floats(0, 3),
    st.fixed_dictionaries({b: st.floats(0, 3) for b in BEATS}),
)
def test_director_never_asks_for_more_than_dda_allows(beat, a, b, curve):
    lo, hi = sorted((a, b))
    config = DirectorConfig.from_weights({"intensity": curve})
    assert lo <= intensity_target(config, beat, (lo, hi)) <= hi
