"""`turns each` (issue 13, fair stakes): a fail state guarded by `turns each >= N` waits until every
player who is playing has had N turns of their own that took time — whatever the size of the table.
A total (`turns >= 24`) gives a table of three 8 actions each but a table of six only 4."""

from __future__ import annotations

import random

import pytest

from missions.dsl import MissionError, compile_source, to_source
from missions.runtime import describe, initial_state, step, turns_each

SOURCE = """mission doom "Doom" biome derelict-station summary "s"
scene hall "Hall" { description "A hall." }
objective fix "Fix the core" { complete when check tech succeeded }
clock doom "Doom" size 2 { tick 1 when turn ended }
fail boom "The core blows." when clock doom full and turns each >= 3
complete when objective fix complete
"""
DOOM = compile_source(SOURCE, "doom.mission").ast


def turn(*actors, took_time=True):
    return {"type": "TurnEnded", "took_time": took_time, "actors": list(actors)}


def play(events):
    state = initial_state(DOOM)
    for event in events:
        state, _ = step(DOOM, state, event, random.Random(0))
    return state


def test_the_guard_waits_for_the_player_who_has_acted_least():
    # Six players; five have had 3 turns each, one only 2. The clock is long full.
    events = [turn(6), turn(6)] + [turn(p) for _ in range(3) for p in (1, 2, 3, 4, 5)]
    state = play(events)
    assert state["clocks"]["doom"] == 2 and state["turns"] == 17
    assert turns_each(state) == 2
    assert state["status"] == "active"
    state = play([*events, turn(6)])
    assert turns_each(state) == 3
    assert state["status"] == "failed" and state["ended_by"] == "boom"


def test_questions_and_talk_are_not_a_players_turn():
    state = play([turn(1), turn(1, took_time=False), turn(1, took_time=False)])
    assert state["turns_by"] == {"1": 1}


def test_a_player_who_never_acts_does_not_hold_the_mission_still():
    state = play([turn(1)] * 3)
    assert turns_each(state) == 3 and state["status"] == "failed"


def test_logs_from_before_actors_were_named_count_nobody():
    state = play([{"type": "TurnEnded", "took_time": True}] * 5)
    assert state["turns"] == 5 and turns_each(state) == 0 and state["status"] == "active"


@pytest.mark.parametrize("actors", [None, "1", [True], [None], [{"id": 1}], [1.5]])
def test_malformed_actors_are_ignored(actors):
    state = play([{"type": "TurnEnded", "took_time": True, "actors": actors}])
    assert state["turns"] == 1 and turns_each(state) == 0


def test_a_stage_window_counts_each_speaker_once():
    state = play([turn(1, 2, 2, 3)])
    assert state["turns_by"] == {"1": 1, "2": 1, "3": 1}


def test_the_view_reports_turns_each():
    assert describe(DOOM, play([turn(1), turn(2), turn(2)]))["turns_each"] == 1


def test_turns_each_round_trips_through_the_printer():
    printed = to_source(DOOM)
    assert "turns each >= 3" in printed
    assert compile_source(printed, "again.mission").ast == DOOM


def test_each_is_still_a_name_elsewhere():
    source = SOURCE.replace("clock doom", "clock each")
    assert [c["id"] for c in compile_source(source).ast["clocks"]] == ["each"]


def test_a_bad_turns_each_is_a_syntax_error_in_words():
    with pytest.raises(MissionError) as caught:
        compile_source(SOURCE.replace("turns each >= 3", "turns each >= many"), "bad.mission")
    assert "bad.mission:5" in str(caught.value)
