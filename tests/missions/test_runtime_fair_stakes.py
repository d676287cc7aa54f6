"""Fair stakes in the pure runtime (issue 13): `turn ended` is a turn that took time, a clock warns
one step before it fills, and the view says how a mission ended."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from missions.dsl import compile_source
from missions.runtime import describe, initial_state, stakes, step

MISSIONS_DIR = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter" / "missions"

DOOM = compile_source(
    """mission doom "Doom" biome derelict-station summary "s"
scene hall "Hall" { description "A hall." }
objective fix "Fix the core" { complete when check tech succeeded }
objective talk "Talk to the keeper" { complete when flag talked }
clock doom "Doom" size 4 {
  tick 1 when turn ended
  tick 1 when check failed
}
clock noise "Noise" size 3 { tick 1 when flag loud }
fail boom "The core blows." when clock doom full
complete when objective fix complete and objective talk complete
""",
    "doom.mission",
).ast

QUESTION = {"type": "TurnEnded", "took_time": False}
TIMED = {"type": "TurnEnded", "took_time": True}


def run(ast, events):
    state, effects = initial_state(ast), []
    for event in events:
        state, more = step(ast, state, event, random.Random(0))
        effects += more
    return state, effects


def test_a_turn_that_took_no_time_ticks_no_clock_and_counts_no_turn():
    """Regression: Vesper Relay's reactor ticked on a pure question ("What are our objectives
    right now?") and the mission was lost after 6 actions."""
    state, effects = run(DOOM, [QUESTION] * 10)
    assert state["clocks"]["doom"] == 0 and state["turns"] == 0 and state["status"] == "active"
    assert effects == []
    state, effects = run(DOOM, [QUESTION, TIMED, QUESTION])
    assert state["clocks"]["doom"] == 1 and state["turns"] == 1
    assert [e["type"] for e in effects] == ["ClockTicked"]


def test_a_turn_end_without_the_flag_took_time_as_before():
    """Logs written before `took_time` existed replay as they were folded: every turn took time."""
    state, _ = run(DOOM, [{"type": "TurnEnded"}] * 2)
    assert state["clocks"]["doom"] == 2 and state["turns"] == 2


def test_a_malformed_took_time_changes_nothing():
    for junk in ("no", 0, 1, None, [True]):
        state, effects = run(DOOM, [{"type": "TurnEnded", "took_time": junk}])
        assert state == initial_state(DOOM) and effects == []


def test_the_table_is_warned_once_one_step_before_a_clock_fills():
    state, effects = run(DOOM, [TIMED, TIMED])
    warnings = [e for e in effects if e["type"] == "ClockWarning"]
    assert warnings == []
    state, effects = run(DOOM, [TIMED, TIMED, TIMED])
    warnings = [e for e in effects if e["type"] == "ClockWarning"]
    assert len(warnings) == 1
    assert warnings[0] == {
        "type": "ClockWarning",
        "clock": "doom",
        "label": "Doom",
        "value": 3,
        "size": 4,
        "stakes": ["The core blows."],
    }
    # The warning comes right after the tick that brought the clock there.
    kinds = [e["type"] for e in effects]
    assert kinds.index("ClockWarning") == kinds.index("ClockTicked", 2) + 1
    assert describe(DOOM, state)["at_risk"] is True
    state, effects = run(DOOM, [TIMED] * 4)
    assert [e["type"] for e in effects].count("ClockWarning") == 1  # filling it warns no more
    assert state["status"] == "failed"


def test_a_clock_is_warned_again_each_time_it_rises_to_the_last_step():
    state, effects = run(
        DOOM, [TIMED, TIMED, TIMED, {"type": "GmOverride", "clock": "doom", "value": 1}, TIMED, TIMED]
    )
    assert state["clocks"]["doom"] == 3
    assert [e["type"] for e in effects].count("ClockWarning") == 2
    state, effects = run(DOOM, [{"type": "GmOverride", "clock": "doom", "value": 3}])
    assert [e["type"] for e in effects] == ["ClockTicked", "ClockWarning"]
    state, effects = run(DOOM, [{"type": "GmOverride", "clock": "doom", "value": 4}])
    assert "ClockWarning" not in [e["type"] for e in effects]  # straight to full: nothing to warn


def test_a_clock_nothing_fails_on_warns_with_no_stakes_and_puts_nothing_at_risk():
    state, effects = run(DOOM, [{"type": "GmOverride", "clock": "noise", "value": 2}])
    assert effects[-1]["type"] == "ClockWarning" and effects[-1]["stakes"] == []
    assert describe(DOOM, state)["at_risk"] is False


def test_stakes_read_full_and_the_last_step_comparisons():
    ast = compile_source(
        """mission s "S" biome b summary "s"
scene a "A"
objective o "O" { complete when flag x
  fail when clock c >= 5 }
clock c "C" size 5 { tick 1 when turn ended }
clock d "D" size 5 { tick 1 when turn ended }
fail f "Lost." when clock c == 5 and turns >= 3
fail g "Half." when clock d >= 3
complete when objective o complete
""",
        "s.mission",
    ).ast
    assert stakes(ast, "c") == ["Lost.", "Objective lost: O"]
    assert stakes(ast, "d") == []  # fails at 3 of 5: not at full
    assert stakes(ast, "nope") == []


def test_the_view_says_how_the_mission_ended_and_leaves_nothing_open():
    state, _ = run(DOOM, [TIMED] * 4)
    view = describe(DOOM, state)
    assert view["ending"] == {"outcome": "failed", "text": "The core blows."}
    assert {o["status"] for o in view["objectives"]} == {"unfinished"}
    assert view["at_risk"] is False
    state, _ = run(
        DOOM,
        [
            {"type": "CheckResolved", "skill": "tech", "outcome": "success"},
            {"type": "SetFlag", "name": "talked", "value": True},
        ],
    )
    view = describe(DOOM, state)
    assert view["ending"]["outcome"] == "complete" and "Doom" in view["ending"]["text"]
    assert describe(DOOM, initial_state(DOOM))["ending"] is None


@given(st.lists(st.sampled_from([QUESTION, TIMED]), max_size=30))
def test_only_turns_that_took_time_move_the_turn_count_and_the_clock(turns):
    state, _ = run(DOOM, turns)
    timed = turns.count(TIMED)
    if state["status"] == "active":
        assert state["turns"] == timed and state["clocks"]["doom"] == timed


def test_no_starter_mission_can_be_lost_before_every_player_had_8_turns():
    """The fair-chance rule (issue 13): every starter fail state waits for `turns each >= 8`, so
    every player at the table, however large, has had 8 actions of their own, whatever the dice say."""
    for path in sorted(MISSIONS_DIR.glob("*.mission")):
        ast = compile_source(path.read_text(encoding="utf-8"), path.name).ast
        for fail in ast["fails"]:
            guards = [
                c
                for c in _conjuncts(fail["when"])
                if c["op"] == "turns_each" and c["cmp"] in (">=", ">") and c["value"] >= 8
            ]
            if fail["id"] == "sealed":
                continue  # a story decision (a flag the narrator sets), not a clock running out
            assert guards, f"{path.name}: fail {fail['id']} has no fair-chance guard"


def test_the_vesper_reactor_stays_still_on_questions_in_relay_core():
    """Regression: the reactor clock ticked on every turn in Relay Core, questions included."""
    ast = compile_source((MISSIONS_DIR / "vesper-relay.mission").read_text(encoding="utf-8")).ast
    state = initial_state(ast)
    state, _ = step(
        ast, state, {"type": "GmOverride", "objective": "dock", "status": "complete"}, random.Random(0)
    )
    state, _ = step(ast, state, {"type": "GmOverride", "scene": "relay-core"}, random.Random(0))
    for _ in range(40):
        state, effects = step(ast, state, QUESTION, random.Random(0))
        assert effects == []
    assert state["clocks"]["reactor"] == 0 and state["status"] == "active"


def _conjuncts(cond):
    return [a for c in cond["args"] for a in _conjuncts(c)] if cond["op"] == "and" else [cond]
