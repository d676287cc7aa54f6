"""The pure mission runtime settles as the engine expects: a mission opens at the inciting beat,
a chain settles to a fixpoint in one event however long it is, and the DSL accepts only the
`where` keys the decks understand and XP within what the engine grants."""

from __future__ import annotations

import random

import pytest

from missions import runtime
from missions.dsl import MissionError, compile_source
from missions.dsl.ast import MAX_XP, WHERE_KEYS
from missions.rules import progression

HEADER = 'mission m "T" biome ice-moon summary "s"\nscene a "A"\n'


def step(ast, state, event):
    return runtime.step(ast, state, event, random.Random(0))


def test_a_mission_starts_at_the_inciting_beat():
    ast = compile_source(
        HEADER
        + 'objective greet "Greet" { complete when beat inciting and flag hello }\n'
        + 'twist early { at beat inciting\n when flag hello\n text "Early." }\n'
        + "complete when flag done\n"
    ).ast
    state = runtime.initial_state(ast)
    assert state["beat"] == "inciting"
    state, effects = step(ast, state, {"type": "SetFlag", "name": "hello", "value": True})
    kinds = [e["type"] for e in effects]
    assert "ObjectiveCompleted" in kinds and "TwistTriggered" in kinds
    assert state["objectives"]["greet"] == "complete" and state["twists"] == ["early"]


def test_initial_state_takes_the_directors_beat():
    ast = compile_source(HEADER + "complete when flag done\n").ast
    assert runtime.initial_state(ast, beat="climax")["beat"] == "climax"
    assert runtime.initial_state(ast, beat=None)["beat"] is None


@pytest.mark.parametrize("n", [40, 120])
def test_a_long_requires_chain_settles_in_one_event(n):
    chain = "".join(
        f'objective o{i} "o{i}" {{ requires o{i - 1}\n complete when flag start }}\n'
        for i in range(n - 1, 0, -1)
    )
    src = HEADER + chain + 'objective o0 "o0" { complete when flag start }\n'
    src += f"complete when objective o{n - 1} complete\n"
    ast = compile_source(src).ast
    state, _ = step(ast, runtime.initial_state(ast), {"type": "SetFlag", "name": "start", "value": True})
    assert all(v == "complete" for v in state["objectives"].values())
    assert state["status"] == "complete"


def test_the_pass_limit_counts_every_change_an_event_can_make():
    ast = compile_source(
        'mission m "T" biome ice-moon summary "s"\n'
        + 'scene a "A" { go to b when flag z }\nscene b "B"\n'
        + 'objective o "o" { hidden until flag x\n complete when flag y }\n'
        + 'clock c "c" size 4 { tick 1 when flag x\n tick 1 when flag y }\n'
        + 'twist t { when flag x\n text "T." }\n'
        + "complete when flag done\n"
    ).ast
    assert runtime.pass_limit(ast) == 2 * 1 + 2 + 2 + 1 + 1


def test_where_keys_are_what_the_decks_filter_on():
    assert set(WHERE_KEYS) == {"biome", "beat", "faction"}
    with pytest.raises(MissionError) as caught:
        compile_source(
            HEADER + 'twist t { when flag x\n draw hazard where tag == "vacuum" }\ncomplete when flag d\n'
        )
    assert "unknown 'where' key 'tag'" in str(caught.value)
    compiled = compile_source(
        HEADER + 'twist t { when flag x\n draw agenda where faction == "helix" }\ncomplete when flag d\n'
    )
    assert compiled.ast["twists"][0]["draw"]["where"] == {"faction": "helix"}


def test_reward_xp_is_limited_to_what_the_engine_grants():
    assert MAX_XP == progression.MAX_GRANT
    reward = 'objective o "o" {{ reward {{ xp {xp} }}\n complete when flag y }}\ncomplete when flag d\n'
    compile_source(HEADER + reward.format(xp=progression.MAX_GRANT))
    with pytest.raises(MissionError) as caught:
        compile_source(HEADER + reward.format(xp=progression.MAX_GRANT + 1))
    assert f"xp must be between 0 and {progression.MAX_GRANT}" in str(caught.value)
