"""The procedural simulation (missions.simulation, pure): seeded exactly by the four ids,
byte-identical twice in one run and against a golden hash, snapshots that restore to the same
world and refuse tampered, truncated or foreign blobs, and reconciliation that rejects what
breaks an invariant."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missions.simulation import (
    ProceduralSimulation,
    SimulationError,
    Window,
    WindowReport,
    generate_world,
    reconcile,
    step_seed,
)

# Recorded once from this code (campaign 1, session 2, a 200-entity world of seed 7, windows of
# 5 steps at the five beats). A change to the stepper's arithmetic or its seeding changes it:
# that is a new world format, and old snapshots would drift.
GOLDEN = "d6b2f4beddac78f3e6af64092e1076715b084a051a9bc74efed6dae34a33ad24"


def _run(entities=200, seed=7, campaign=1, session=2) -> ProceduralSimulation:
    sim = ProceduralSimulation()
    sim.start({"campaign_id": campaign, "session_id": session}, generate_world(entities, seed))
    for beat in ("inciting", "rising", "twist", "climax", "denouement"):
        sim.step(Window(beat, sim.step_index, 5))
    return sim


def test_the_step_seed_is_sha256_of_the_four_ids():
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"1:2:rising:3").digest()[:8], "big")
    assert step_seed(1, 2, "rising", 3) == expected
    assert step_seed(1, 2, "rising", 4) != expected and step_seed(2, 2, "rising", 3) != expected


def test_the_same_inputs_give_the_same_bytes_twice_and_the_golden_hash():
    first, second = _run(), _run()
    assert first.snapshot() == second.snapshot()
    assert first.state_hash() == GOLDEN
    assert _run(campaign=9).state_hash() != GOLDEN  # another campaign's world moves otherwise


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=5), st.integers(0, 4))
def test_restoring_a_snapshot_and_going_on_equals_never_stopping(budgets, cut):
    whole = ProceduralSimulation()
    whole.start({"campaign_id": 3, "session_id": 4}, generate_world(60, 1))
    halted = ProceduralSimulation()
    halted.start({"campaign_id": 3, "session_id": 4}, generate_world(60, 1))
    for i, budget in enumerate(budgets):
        whole.step(Window(f"b{i}", whole.step_index, budget))
        if i == cut:
            blob = halted.snapshot()
            halted = ProceduralSimulation()
            halted.restore(blob, campaign_id=3)
        halted.step(Window(f"b{i}", halted.step_index, budget))
    assert halted.state_hash() == whole.state_hash()


def test_a_tampered_truncated_or_foreign_snapshot_is_refused():
    blob = _run().snapshot()
    data = json.loads(blob)
    data["world"]["market"]["medpatch"]["stock"] += 1
    tampered = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    for bad, words in (
        (tampered, "was changed"),
        (blob[: len(blob) // 2], "not readable"),
        (b"", "not readable"),
        (b"[1, 2]", "no checksum"),
    ):
        with pytest.raises(SimulationError, match=words):
            ProceduralSimulation().restore(bad, campaign_id=1)
    with pytest.raises(SimulationError, match="another campaign"):
        ProceduralSimulation().restore(blob, campaign_id=2)


def test_a_window_must_start_where_the_world_is_and_stay_in_budget():
    sim = ProceduralSimulation()
    with pytest.raises(SimulationError, match="start the simulation"):
        sim.step(Window("x", 0, 1))
    sim.start({"campaign_id": 1, "session_id": 1}, generate_world(10, 0))
    with pytest.raises(SimulationError, match="starts at step 3"):
        sim.step(Window("x", 3, 1))
    with pytest.raises(SimulationError, match="budget"):
        sim.step(Window("x", 0, -1))
    report = sim.step(Window("x", 0, 4))
    assert report.steps == 4 and sim.step_index == 4


def test_the_world_keeps_its_invariants_over_many_steps():
    sim = ProceduralSimulation()
    sim.start({"campaign_id": 5, "session_id": 6}, generate_world(300, 2))
    sim.step(Window("long", 0, 300))
    world = sim.world
    assert all(m["stock"] >= 0 and m["price"] >= 1 for m in world["market"].values())
    assert all(0 <= s["hazard"] <= 9 for s in world["sectors"])


def test_reconciliation_rejects_what_breaks_an_invariant():
    report = WindowReport(
        "rising",
        10,
        5,
        5,
        (
            {"step": 10, "kind": "npc_died", "npc": 1, "sector": 0},
            {"step": 11, "kind": "npc_died", "npc": 1, "sector": 0},  # dies twice
            {"step": 12, "kind": "npc_died", "npc": 2, "sector": 0},  # the mission needs them
            {"step": 12, "kind": "objective_completed", "objective": "dock"},  # never by the world
            {"step": 30, "kind": "hazard_flare", "sector": 3, "level": 4},  # outside the window
            {"step": 13, "kind": "hazard_flare", "sector": 3, "level": 4},
        ),
        "h",
    )
    decision = reconcile(report, protected={2}, sector_names={3: "the Docking Ring"})
    assert [c["step"] for c in decision.accepted] == [10, 13]
    reasons = [why for _, why in decision.rejected]
    assert reasons[0] == "a dead NPC cannot die again"
    assert reasons[1] == "the mission still needs this NPC"
    assert reasons[2].startswith("unknown change 'objective_completed'")
    assert reasons[3] == "outside its step window"
    assert "A hazard flares up in the Docking Ring." in decision.notes


def test_the_bench_ends_with_one_json_line_of_its_figures(capsys):
    from types import SimpleNamespace

    from gtw_site.bench import sim

    assert sim.main(SimpleNamespace(entities=40, windows_sim=3, no_write=True)) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["windows"] == 3 and result["steps"] == 3 * sim.WINDOW_STEPS
    assert result["steps_per_s"] > 0 and result["boundary_p95_ms"] >= result["boundary_p50_ms"]
    again = sim.run(entities=40, windows=3)
    assert again["state_hash"] == result["state_hash"]  # the measured run is deterministic too
