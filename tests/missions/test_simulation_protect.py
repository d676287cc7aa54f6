"""At the table, the world simulation never kills an NPC the running mission still needs: the
needed NPCs come from the session's mission state, each window records the world NPCs it kept
alive, they are alive in every snapshot while others die around them, and the log replays."""

from __future__ import annotations

import json

import pytest

from campaigns.models import Event
from missions import simulation_services as sim
from missions.models import SimulationSnapshot
from missions.simulation import ProceduralSimulation, generate_world
from missions.simulation.cast import protected_indices
from narrative import engine

pytestmark = pytest.mark.django_db


def _deadly_world(session):
    """Every sector at the top hazard: NPCs die in every window unless protected."""
    world = generate_world(120, 5)
    for sector in world["sectors"]:
        sector["hazard"] = 9
    probe = ProceduralSimulation()
    probe.start({"campaign_id": session.campaign_id, "session_id": session.pk}, world)
    return probe


def test_the_npcs_the_mission_needs_survive_a_deadly_world(session, gm, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 30}
    session.refresh_from_db()
    needs = sim.mission_needs(session.state)
    assert needs and all(key.startswith(f"{session.state['mission']['slug']}/") for key in needs)
    sim.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=120)
    deadly = _deadly_world(session)
    sim.snapshot_import(viewer=gm, campaign_id=session.campaign_id, blob=deadly.snapshot())
    kept = set(protected_indices(needs, deadly.world["npcs"]))
    assert kept

    for beat in ("rising", "twist"):
        session.refresh_from_db()
        engine.beat_set(session=session, beat=beat, actor_id=gm.pk)

    stepped = Event.objects.filter(session=session, type="SimulationStepped").order_by("seq")
    assert stepped.count() == 2
    for event in stepped:
        assert set(event.payload["window"]["protected"]) == kept
        world = json.loads(bytes(SimulationSnapshot.objects.get(pk=event.payload["snapshot"]).blob))["world"]
        assert all(world["npcs"][i]["alive"] for i in kept)
    dead = [i for i, npc in enumerate(world["npcs"]) if not npc["alive"]]
    assert len(dead) >= 5  # the world is deadly for everyone else
    assert not Event.objects.filter(session=session, type="SimulationDrifted").exists()
    assert sim.simulation_replay(session.pk)["mismatches"] == []


def test_a_finished_mission_protects_nobody(session):
    session.refresh_from_db()
    state = session.state
    done = {
        **state,
        "mission": {**state["mission"], "state": {**state["mission"]["state"], "status": "complete"}},
    }
    assert sim.mission_needs(done) == ()
    assert sim.mission_needs({}) == ()
