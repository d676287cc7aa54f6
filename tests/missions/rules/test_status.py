import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missions.rules.status import (
    StatusEffect,
    StatusError,
    apply,
    effects_from_list,
    effects_to_list,
    modifiers,
    remove,
    tick,
)


def fx(name="slowed", duration=3, stacking="refresh", mods=None, max_stacks=1):
    return StatusEffect.make(
        name, duration, stacking=stacking, modifiers=mods or {"agility": -1}, max_stacks=max_stacks
    )


# --- the stacking table: one test per rule, each for "first application" and "re-application"


@pytest.mark.parametrize("rule", ["refresh", "stack", "independent", "ignore"])
def test_first_application_adds_one_instance_whatever_the_rule(rule):
    new = fx(stacking=rule, max_stacks=3 if rule == "stack" else 1)
    assert apply([], new) == [new]


def test_refresh_resets_duration_and_keeps_one_instance():
    effects = apply([], fx(duration=3))
    effects, _ = tick(effects, 2)
    assert effects[0].duration == 1
    effects = apply(effects, fx(duration=3))
    assert [e.duration for e in effects] == [3]


def test_stack_increments_intensity_up_to_max_and_refreshes_duration():
    effects: list[StatusEffect] = []
    for _ in range(5):
        effects, _ = tick(apply(effects, fx(stacking="stack", max_stacks=3, duration=4)), 1)
    assert len(effects) == 1
    assert effects[0].stacks == 3
    assert effects[0].duration == 3  # refreshed to 4 on the last application, then ticked once
    assert modifiers(effects) == {"agility": -3}


def test_independent_adds_separate_instances_that_expire_on_their_own():
    effects = apply([], fx(stacking="independent", duration=1))
    effects = apply(effects, fx(stacking="independent", duration=3))
    assert len(effects) == 2
    assert modifiers(effects) == {"agility": -2}
    remaining, expired = tick(effects)
    assert [e.duration for e in remaining] == [2]
    assert [e.duration for e in expired] == [1]


def test_ignore_keeps_the_first_instance():
    first = fx(stacking="ignore", duration=2, mods={"wits": 2})
    effects = apply(apply([], first), fx(stacking="ignore", duration=9, mods={"wits": 5}))
    assert effects == [first]


def test_mixing_rules_for_one_name_is_refused():
    with pytest.raises(StatusError, match="already present with stacking 'refresh'"):
        apply([fx()], fx(stacking="stack", max_stacks=2))


def test_apply_does_not_mutate_its_input():
    effects = [fx(name="burning")]
    before = list(effects)
    apply(effects, fx(name="burning", duration=9))
    tick(effects, 5)
    assert effects == before


def test_tick_zero_rounds_changes_nothing_and_remove_cures():
    effects = [fx(name="burning"), fx(name="slowed")]
    assert tick(effects, 0) == (effects, [])
    remaining, removed = remove(effects, "burning")
    assert [e.name for e in remaining] == ["slowed"]
    assert [e.name for e in removed] == ["burning"]


def test_modifiers_sum_across_effects_and_drop_zeroes():
    effects = [fx(name="a", mods={"agility": -2, "might": 1}), fx(name="b", mods={"agility": 2, "wits": 1})]
    assert modifiers(effects) == {"might": 1, "wits": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name", "duration": 1}, "effect name"),
        ({"name": "x", "duration": 0}, "duration of 'x' must be 1..1000"),
        ({"name": "x", "duration": True}, "duration of 'x' must be an integer"),
        ({"name": "x", "duration": 1, "stacking": "merge"}, "stacking of 'x' must be one of"),
        ({"name": "x", "duration": 1, "max_stacks": 3}, "only applies to stacking 'stack'"),
        ({"name": "x", "duration": 1, "modifiers": {"agility": 99}}, "modifier 'agility' of 'x' must be"),
    ],
)
def test_invalid_effects_are_refused_precisely(kwargs, message):
    with pytest.raises(StatusError, match=message):
        StatusEffect.make(**kwargs)


def test_bad_inputs_to_operations():
    with pytest.raises(StatusError, match=r"rounds must be 0\.\.1000"):
        tick([fx()], -1)
    with pytest.raises(StatusError, match="must contain StatusEffect"):
        apply([{"name": "x"}], fx())
    with pytest.raises(StatusError, match="unknown status effect field"):
        StatusEffect.from_dict({"name": "x", "duration": 1, "colour": "red"})


effect_strategy = st.builds(
    lambda name, duration, rule, amount, cap: StatusEffect.make(
        name,
        duration,
        stacking=rule,
        modifiers={"agility": amount},
        max_stacks=cap if rule == "stack" else 1,
    ),
    st.sampled_from(["a", "b", "c"]),
    st.integers(1, 10),
    st.sampled_from(["refresh", "stack", "independent", "ignore"]),
    st.integers(-3, 3),
    st.integers(1, 4),
)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(effect_strategy, st.integers(0, 3)), max_size=20))
def test_effects_stay_valid_and_round_trip_through_json(steps):
    effects: list[StatusEffect] = []
    for new, rounds in steps:
        try:
            effects = apply(effects, new)
        except StatusError as exc:
            assert "already present with stacking" in str(exc)
        effects, expired = tick(effects, rounds)
        assert all(e.duration >= 1 for e in effects)
        assert all(1 <= e.stacks <= e.max_stacks for e in effects)
        assert all(e.duration <= rounds for e in expired)
        names = [e.name for e in effects if e.stacking != "independent"]
        assert len(names) == len(set(names))
    assert effects_from_list(json.loads(json.dumps(effects_to_list(effects)))) == effects
