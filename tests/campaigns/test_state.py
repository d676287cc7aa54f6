"""Engine tier: the pure reducer, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.state import EventRecord, apply, initial_state, replay, state_hash

pytestmark = []

event_types = st.sampled_from(
    [
        "SessionOpened",
        "Action",
        "Narration",
        "DiceRolled",
        "TurnFailed",
        "TurnRetried",
        "BeatChanged",
        "Mystery",
    ]
)


@st.composite
def event_logs(draw):
    events = []
    for seq in range(1, draw(st.integers(0, 40)) + 1):
        kind = draw(event_types)
        payload = {}
        if kind in ("Narration", "TurnFailed", "TurnRetried"):
            payload["action_seq"] = draw(st.integers(1, max(1, seq)))
        if kind == "BeatChanged":
            payload["beat"] = draw(st.sampled_from(["Rising", "Twist", "Nonsense"]))
        events.append(
            EventRecord(seq=seq, type=kind, actor_id=draw(st.sampled_from([None, 1, 2])), payload=payload)
        )
    return events


@given(event_logs(), st.integers(0, 40))
def test_replay_from_any_snapshot_equals_full_replay(events, cut):
    cut = min(cut, len(events))
    full = replay(events)
    snapshot = replay(events[:cut])
    assert state_hash(replay(events[cut:], snapshot)) == state_hash(full)


@given(event_logs())
def test_apply_never_mutates_its_input(events):
    state = initial_state()
    for event in events:
        before = state_hash(state)
        new = apply(state, event)
        assert state_hash(state) == before
        state = new
    assert state["version"] == len(events)


def test_an_action_is_pending_until_narrated():
    s = replay([EventRecord(1, "SessionOpened"), EventRecord(2, "Action", 7, {"text": "x"})])
    assert s["pending"] == [2]
    s = apply(s, EventRecord(3, "Narration", None, {"action_seq": 2}))
    assert s["pending"] == []


def test_failed_turn_can_be_retried():
    s = replay(
        [EventRecord(1, "Action", 7), EventRecord(2, "TurnFailed", None, {"action_seq": 1, "error": "e"})]
    )
    assert s["pending"] == [] and s["failed"] == {"1": "e"}
    s = apply(s, EventRecord(3, "TurnRetried", 7, {"action_seq": 1}))
    assert s["pending"] == [1] and s["failed"] == {}


def test_out_of_order_event_is_rejected():
    with pytest.raises(ValueError, match="does not follow"):
        apply(initial_state(), EventRecord(2, "Action"))


def test_hash_is_canonical():
    assert state_hash({"a": 1, "b": [1, 2]}) == state_hash({"b": [1, 2], "a": 1})
