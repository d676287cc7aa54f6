"""The NPCs the running mission still needs are never killed by the world simulation (pure):
which mission NPCs are needed (missions.simulation.cast), the world NPC each stands for, a
window that keeps them alive where the same window unprotected kills them, reconciliation that
refuses such a death, and a provider that kills one anyway is drift."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from missions.simulation import ProceduralSimulation, Window, WindowReport, generate_world, reconcile
from missions.simulation.cast import bind, needed_npcs, protected_indices
from missions.simulation.window import run_window

AST = {
    "slug": "vesper-relay",
    "scenes": [{"id": "docking-ring"}, {"id": "relay-core"}, {"id": "vault"}],
    "objectives": [
        {"id": "dock", "text": "Get aboard through Docking Ring C", "scene": "docking-ring"},
        {"id": "power", "text": "Restore power to the relay core", "scene": "relay-core"},
        {"id": "crate", "text": "Decide what to do with Ossian Ward's sealed crate", "scene": None},
    ],
    "npcs": [
        {"id": "ossian", "name": "Ossian Ward", "scenes": ["vault"]},
        {"id": "hale", "name": "Captain Idris Hale", "scenes": ["relay-core"]},
        {"id": "ameline", "name": "Sister Ameline", "scenes": ["relay-core"]},
        {"id": "drifter", "name": "A drifter", "scenes": []},
        {"id": "keeper", "name": "The Vault Keeper", "scenes": ["vault"]},
    ],
}


def _state(scene="docking-ring", **objectives):
    status = {"dock": "active", "power": "hidden", "crate": "active", **objectives}
    return {"status": "active", "scene": scene, "objectives": status}


def test_the_mission_needs_who_can_still_matter():
    # Hale and Ameline wait in the relay core (an open objective's scene); Ossian is named by
    # an open objective; the drifter is present throughout; the vault keeper can no longer matter.
    assert needed_npcs(AST, _state()) == (
        "vesper-relay/ameline",
        "vesper-relay/drifter",
        "vesper-relay/hale",
        "vesper-relay/ossian",
    )
    done = _state(scene="relay-core", dock="complete", power="complete", crate="failed")
    assert needed_npcs(AST, done) == (
        "vesper-relay/ameline",
        "vesper-relay/drifter",
        "vesper-relay/hale",
    )  # the current scene's people
    assert needed_npcs(AST, {**_state(), "status": "complete"}) == ()
    assert needed_npcs(None, _state()) == () and needed_npcs(AST, None) == ()


def test_an_npc_stands_for_a_living_world_npc_and_keeps_it():
    npcs = [{"alive": True} for _ in range(50)]
    first = bind("vesper-relay/hale", npcs)
    assert first is not None and bind("vesper-relay/hale", npcs) == first
    npcs[first]["alive"] = False
    moved = bind("vesper-relay/hale", npcs)
    assert moved is not None and moved != first and npcs[moved]["alive"]
    assert bind("x/y", [{"alive": False}]) is None and bind("x/y", []) is None
    assert protected_indices(["a/b", "a/b"], npcs) == (bind("a/b", npcs),)


def _deadly(entities=200, campaign_id=2, session_id=3):
    """A world whose every sector burns at the top hazard: NPCs die in every window."""
    world = generate_world(entities, 11)
    for sector in world["sectors"]:
        sector["hazard"] = 9
    sim = ProceduralSimulation()
    sim.start({"campaign_id": campaign_id, "session_id": session_id}, world)
    return sim


def _dead(sim):
    return {i for i, npc in enumerate(sim.world["npcs"]) if not npc["alive"]}


def test_a_protected_npc_survives_the_window_that_kills_it_unprotected():
    open_world, guarded = _deadly(), _deadly()
    report = open_world.step(Window("rising-4", 0, 12))
    killed = sorted(_dead(open_world))
    assert len(killed) >= 3  # the deadly world does kill
    kept = tuple(killed[:3])
    guarded.step(Window("rising-4", 0, 12, kept))
    assert not _dead(guarded) & set(kept)
    # Reconciliation refuses the deaths of protected NPCs, whatever the provider reports.
    decision = reconcile(report, protected=kept)
    refused = {c["npc"] for c, why in decision.rejected if why == "the mission still needs this NPC"}
    assert refused == set(kept)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), keys=st.lists(st.sampled_from(["m/a", "m/b", "m/c", "n/a"]), max_size=3))
def test_no_window_ever_kills_a_needed_npc(seed, keys):
    sim = _deadly(entities=60)
    for i, step_at in enumerate(range(0, 30, 10)):
        outcome = run_window(
            sim,
            sim.snapshot(),
            sim.state_hash(),
            Window(f"b{seed}-{i}", step_at, 10),
            campaign_id=2,
            session_id=3,
            needs=tuple(keys),
        )
        assert outcome.ok
        sim.restore(outcome.blob, campaign_id=2)
        assert set(outcome.window.protected) == set(protected_indices(keys, sim.world["npcs"]))
        assert all(sim.world["npcs"][i]["alive"] for i in outcome.window.protected)


class Careless(ProceduralSimulation):
    """A provider that ignores the window's protection (a remote model that does not honour it)."""

    def step(self, window: Window) -> WindowReport:
        return super().step(Window(window.beat_id, window.start_step, window.budget))


def test_a_provider_that_kills_a_protected_npc_is_drift():
    probe = _deadly()
    probe.step(Window("rising-4", 0, 12))
    victim = min(_dead(probe))
    # A mission key bound to the victim: the key whose hash lands on it in the living world.
    world = _deadly()
    key = next(k for k in (f"m/npc{i}" for i in range(100_000)) if bind(k, world.world["npcs"]) == victim)
    careless = Careless()
    careless.restore(world.snapshot(), campaign_id=2)
    outcome = run_window(
        careless,
        world.snapshot(),
        world.state_hash(),
        Window("rising-4", 0, 12),
        campaign_id=2,
        session_id=3,
        needs=(key,),
        fresh=Careless,
    )
    assert outcome.drifted and len(outcome.quarantined) == 2
    assert "whom the mission protects" in outcome.quarantined[0]
    honest = run_window(
        copy.deepcopy(world),
        world.snapshot(),
        world.state_hash(),
        Window("rising-4", 0, 12),
        campaign_id=2,
        session_id=3,
        needs=(key,),
    )
    assert honest.ok and honest.window.protected == (victim,)
