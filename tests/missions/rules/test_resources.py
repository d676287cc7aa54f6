import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missions.rules.resources import (
    Resource,
    ResourceError,
    can_afford,
    change,
    drip,
    resources_from_dict,
    resources_to_dict,
)


def pool(**values):
    return {name: Resource(name=name, **spec) for name, spec in values.items()}


def test_drip_applies_rates_and_reports_depletion_turn():
    resources = pool(oxygen={"value": 10, "cap": 10}, credits={"value": 50})
    new, events = drip(resources, {"oxygen": -3}, turns=5)
    assert new["oxygen"].value == 0
    assert new["credits"] == resources["credits"]
    assert events == [{"type": "ResourceDepleted", "resource": "oxygen", "turn": 4, "value": 0}]


def test_drip_reports_cap_and_orders_events_by_turn():
    resources = pool(fuel={"value": 0, "cap": 5}, oxygen={"value": 2})
    _, events = drip(resources, {"fuel": 2, "oxygen": -1}, turns=4)
    assert [(e["type"], e["resource"], e["turn"]) for e in events] == [
        ("ResourceDepleted", "oxygen", 2),
        ("ResourceCapped", "fuel", 3),
    ]


def test_resting_on_the_floor_does_not_report_again():
    resources = pool(oxygen={"value": 0})
    new, events = drip(resources, {"oxygen": -1}, turns=3)
    assert new == resources and events == []


def test_custom_floor_and_uncapped_growth():
    resources = pool(heat={"value": -5, "floor": -10})
    new, events = drip(resources, {"heat": -2}, turns=2)
    assert new["heat"].value == -9 and events == []
    new, _ = drip(pool(credits={"value": 1}), {"credits": 7}, turns=3)
    assert new["credits"].value == 22


def test_change_spends_and_can_afford_checks_the_floor():
    resources = pool(credits={"value": 30})
    assert can_afford(resources, {"credits": 30})
    assert not can_afford(resources, {"credits": 31})
    new, events = change(resources, "credits", -40)
    assert new["credits"].value == 0
    assert events == [{"type": "ResourceDepleted", "resource": "credits", "turn": 0, "value": 0}]
    assert resources["credits"].value == 30  # input untouched


def test_json_round_trip():
    resources = pool(oxygen={"value": 7, "cap": 10}, credits={"value": 3})
    data = json.loads(json.dumps(resources_to_dict(resources)))
    assert resources_from_dict(data) == resources


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Resource("oxygen", 11, cap=10), "value of 'oxygen' must be 0..10"),
        (lambda: Resource("oxygen", -1), "value of 'oxygen' must be 0..1000000000"),
        (lambda: Resource("oxygen", 5, floor=3, cap=2), "cap of 'oxygen' must be 3.."),
        (lambda: Resource("Oxygen!", 5), "resource name"),
        (lambda: drip(pool(o={"value": 1}), {"fuel": -1}), "rate given for unknown resource 'fuel'"),
        (lambda: drip(pool(o={"value": 1}), {"o": 0.5}), "rate of 'o' must be an integer"),
        (lambda: drip(pool(o={"value": 1}), {"o": 1}, turns=-1), "turns must be 0..10000"),
        (lambda: resources_from_dict({"o": {"value": 1, "max": 3}}), "unknown field"),
    ],
)
def test_bad_values_are_refused(call, message):
    with pytest.raises(ResourceError, match=message):
        call()


@settings(deadline=None, max_examples=200)
@given(
    st.integers(0, 100),
    st.one_of(st.none(), st.integers(0, 100)),
    st.integers(-20, 20),
    st.integers(0, 30),
)
def test_drip_stays_within_bounds_and_matches_turn_by_turn(value, cap, rate, turns):
    if cap is not None and value > cap:
        value, cap = cap, value
    resources = pool(r={"value": value, "cap": cap})
    once, events = drip(resources, {"r": rate}, turns)
    stepwise = resources
    step_events = []
    for turn in range(1, turns + 1):
        stepwise, found = drip(stepwise, {"r": rate}, 1)
        step_events += [{**e, "turn": turn} for e in found]
    assert once == stepwise
    assert events == step_events
    assert 0 <= once["r"].value <= (cap if cap is not None else 10**9)
