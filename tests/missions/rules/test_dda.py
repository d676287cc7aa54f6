import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missions.rules.dda import (
    DdaAdjustment,
    DdaConfig,
    DdaError,
    DdaState,
    adjust,
    apply_dc,
)

F, S, CF, CS = "failure", "success", "critical_failure", "critical_success"


@st.composite
def configs(draw):
    window = draw(st.integers(1, 50))
    lo_i = draw(st.floats(0.1, 3.0))
    hi_i = draw(st.floats(lo_i, 3.0))
    ease = draw(st.floats(0.01, 1.0))
    harden = draw(st.floats(max(0.01, 1.0 - ease + 0.001), 1.0))
    return DdaConfig(
        window=window,
        dc_min_offset=draw(st.integers(-10, 0)),
        dc_max_offset=draw(st.integers(0, 10)),
        intensity_min=lo_i,
        intensity_max=hi_i,
        step=draw(st.integers(1, 10)),
        intensity_step=draw(st.floats(0.001, 1.0)),
        ease_ratio=ease,
        harden_ratio=harden,
        min_samples=draw(st.integers(1, window)),
    )


states = st.builds(DdaState, dc_offset=st.integers(-10, 10), intensity=st.floats(0.1, 3.0))
outcomes = st.lists(st.sampled_from([F, S, CF, CS]), max_size=60)


def _within(config: DdaConfig, adj) -> bool:
    return (
        config.dc_min_offset <= adj.dc_offset <= config.dc_max_offset
        and config.intensity_min <= adj.intensity <= config.intensity_max
    )


@settings(deadline=None, max_examples=500)
@given(configs(), states, outcomes)
def test_never_past_the_caps_and_at_most_one_step(config, current, recent):
    adj = adjust(config, recent, current)
    assert _within(config, adj)
    inside = _within(config, current)
    if inside:
        assert abs(adj.dc_offset - current.dc_offset) <= config.step
        assert abs(adj.intensity - current.intensity) <= config.intensity_step + 1e-9
    assert adj.changed == ((adj.dc_offset, adj.intensity) != (current.dc_offset, current.intensity))
    assert adj.reason
    assert DdaAdjustment.from_dict(json.loads(json.dumps(adj.to_dict()))) == adj


@settings(deadline=None, max_examples=200)
@given(configs(), states, st.lists(outcomes, max_size=30))
def test_repeated_adjustments_stay_capped_and_replay_identically(config, start, batches):
    def run():
        state, trail = start, []
        for recent in batches:
            adj = adjust(config, recent, state)
            trail.append(adj)
            state = adj.state
        return trail

    trail = run()
    assert trail == run()
    assert all(_within(config, adj) for adj in trail)


@settings(deadline=None, max_examples=200)
@given(configs(), states, outcomes)
def test_direction_follows_the_players(config, current, recent):
    adj = adjust(config, recent, current)
    window = recent[-config.window :]
    base_offset = max(config.dc_min_offset, min(config.dc_max_offset, current.dc_offset))
    failed = sum(o in (F, CF) for o in window)
    if len(window) >= config.min_samples and failed >= config.ease_ratio * len(window) + 1e-6:
        assert adj.dc_offset <= base_offset
    if len(window) >= config.min_samples and len(window) - failed >= config.harden_ratio * len(window) + 1e-6:
        assert adj.dc_offset >= base_offset


def test_reason_strings_are_human_readable():
    config = DdaConfig()
    adj = adjust(config, [S, S, F, F, F, F], DdaState())
    assert adj == DdaAdjustment(-1, 0.9, "4 of last 6 checks failed: DC -1, intensity 0.9", True)
    adj = adjust(config, [S, CS, S, S, F, S], DdaState(dc_offset=2, intensity=1.4))
    assert adj.reason == "5 of last 6 checks succeeded: DC +1, intensity 1.5"
    adj = adjust(config, [F] * 6, DdaState(dc_offset=-3, intensity=0.5))
    assert not adj.changed
    assert adj.reason == "6 of last 6 checks failed: already at the easiest setting (DC -3, intensity 0.5)"
    adj = adjust(config, [F, S], DdaState())
    assert not adj.changed and adj.reason.startswith("only 2 checks so far (need 3)")
    adj = adjust(config, [F, S, F, S, F, S], DdaState())
    assert adj.reason == "3 of last 6 checks failed, 3 succeeded: holding at DC 0, intensity 1"


def test_only_the_window_counts():
    config = DdaConfig(window=4)
    adj = adjust(config, [F] * 10 + [S] * 4, DdaState())
    assert adj.dc_offset == 1


def test_out_of_caps_state_is_pulled_back_inside():
    adj = adjust(DdaConfig(), [F, S, F, S], DdaState(dc_offset=-8, intensity=2.5))
    assert (adj.dc_offset, adj.intensity, adj.changed) == (-3, 1.5, True)
    assert "pulled inside the caps" in adj.reason


def test_apply_dc_clamps_to_5_30():
    assert apply_dc(15, DdaState(dc_offset=-2)) == 13
    assert apply_dc(6, DdaState(dc_offset=-3)) == 5
    assert apply_dc(29, DdaAdjustment(3, 1.0, "x", True)) == 30
    assert apply_dc(12, 1) == 13


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window must be 1..50"),
        ({"dc_min_offset": 1}, "dc_min_offset must be -10..0"),
        ({"dc_max_offset": -1}, "dc_max_offset must be 0..10"),
        ({"intensity_min": 1.2, "intensity_max": 1.1}, "intensity_min .* is greater than intensity_max"),
        ({"intensity_min": float("nan")}, "intensity_min must be a finite number"),
        ({"step": 0}, "step must be 1..10"),
        ({"intensity_step": 0}, r"intensity_step must be in \(0.0, 1.0\]"),
        ({"ease_ratio": 0.4, "harden_ratio": 0.5}, "must exceed 1"),
        ({"window": 4, "min_samples": 5}, "min_samples must be 1..4"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(DdaError, match=message):
        DdaConfig(**kwargs)


def test_bad_inputs_are_refused():
    with pytest.raises(DdaError, match="unknown check outcome 'partial'"):
        adjust(DdaConfig(), ["partial"], DdaState())
    with pytest.raises(DdaError, match="unknown DDA setting"):
        DdaConfig.from_dict({"windw": 4})
    with pytest.raises(DdaError, match=r"base_dc must be 1\.\.40"):
        apply_dc(0, 0)
    with pytest.raises(DdaError, match="recent_outcomes must be a list"):
        adjust(DdaConfig(), "failure", DdaState())


def test_config_round_trip():
    config = DdaConfig(window=8, intensity_max=1.2)
    assert DdaConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.intensity_bounds == (0.5, 1.2)
