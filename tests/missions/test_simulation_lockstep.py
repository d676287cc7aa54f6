"""The world simulation at the table (issue 19): started by the GM, run in lockstep with the
director (a window before every BeatChanged, budget vs actual recorded, a snapshot per window
whose id rides on the log), the world's changes told to players in the game's words, and drift
quarantined, replayed once, then fallen back to plain narration with a notice."""

from __future__ import annotations

import json
import random

import pytest

from campaigns import selectors
from campaigns import state as reducer
from campaigns.errors import Conflict, Forbidden
from campaigns.events import to_record
from campaigns.models import Event, Membership
from gtw_site.errors import NotFound
from missions import registry, simulation_services
from missions.models import SimulationSnapshot
from missions.simulation import ProceduralSimulation
from narrative import engine

pytestmark = pytest.mark.django_db


def _types(session, after=0):
    return list(
        Event.objects.filter(session=session, seq__gt=after).order_by("seq").values_list("type", flat=True)
    )


def _start(session, gm, entities=120):
    return simulation_services.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=entities)


def _beat(session, gm, beat):
    session.refresh_from_db()
    return engine.beat_set(session=session, beat=beat, actor_id=gm.pk)


def test_a_beat_boundary_runs_the_window_before_the_beat_advances(session, gm, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 7}
    _start(session, gm)
    before = Event.objects.filter(session=session).count()
    _beat(session, gm, "rising")
    types = _types(session, before)
    assert types.index("SimulationStepped") < types.index("BeatChanged")
    stepped = Event.objects.get(session=session, type="SimulationStepped")
    p = stepped.payload
    assert p["window"]["budget"] == 7 and p["actual"] == 7
    assert p["step"] == 7 and p["window"]["start_step"] == 0
    row = SimulationSnapshot.objects.get(pk=p["snapshot"])
    assert row.campaign_id == session.campaign_id and row.state_hash == p["hash"] and row.step == 7
    assert row.reason == "boundary"
    session.refresh_from_db()
    assert session.state["simulation"]["snapshot"] == row.pk
    assert session.state["simulation"]["hash"] == p["hash"]
    # The window's seed material: campaign, session, the beat's id, each step index.
    assert p["window"]["beat_id"].startswith("rising-")


def test_the_engine_room_is_the_gms_and_players_read_the_world_in_game_words(session, gm, player, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 60}
    _start(session, gm, entities=400)
    for beat in ("rising", "twist", "climax"):
        _beat(session, gm, beat)
    membership = Membership.objects.get(user=player, campaign=session.campaign)
    player_view = [e.type for e in selectors.visible_to(Event.objects.filter(session=session), membership)]
    gm_only = Event.objects.filter(session=session, type__startswith="Simulation")
    assert gm_only.exists() and all(e.audience == [] for e in gm_only)
    changed = Event.objects.filter(session=session, type="WorldChanged")
    assert changed.exists()
    for e in changed:
        assert e.audience is None  # everyone at the table
        text = " ".join(e.payload["lines"])
        for internal in ("hash", "step", "snapshot", "budget", "sha", "score"):
            assert internal not in text.lower()
    assert "WorldChanged" in player_view
    assert not any(t.startswith("Simulation") for t in player_view)


def test_replay_of_the_log_reproduces_the_live_simulation_hash(session, gm, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 5}
    _start(session, gm)
    for beat in ("rising", "twist"):
        _beat(session, gm, beat)
    simulation_services.simulation_step(viewer=gm, campaign_id=session.campaign_id, budget=3)
    session.refresh_from_db()
    report = simulation_services.simulation_replay(session.pk)
    assert report["mismatches"] == [] and report["windows"] == 3
    assert report["hash"] == session.state["simulation"]["hash"]
    log = [to_record(e) for e in Event.objects.filter(session=session).order_by("seq")]
    assert reducer.replay(log) == session.state


def test_a_new_session_goes_on_from_the_campaigns_last_world(session, gm, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 4}
    _start(session, gm)
    _beat(session, gm, "rising")
    last = SimulationSnapshot.objects.filter(campaign_id=session.campaign_id).order_by("-pk").first()
    simulation_services.simulation_stop(viewer=gm, campaign_id=session.campaign_id)
    result = _start(session, gm)
    started = result.events[0].payload
    assert (
        started["continued_from"] == last.pk and started["step"] == 4 and started["hash"] == last.state_hash
    )


def test_players_spectators_and_outsiders_are_refused_and_nothing_is_appended(session, gm, player, outsider):
    before = Event.objects.filter(session=session).count()
    with pytest.raises(Forbidden):
        _start(session, player)
    with pytest.raises(NotFound):
        _start(session, outsider)
    Membership.objects.filter(user=player, campaign=session.campaign).update(role=Membership.Role.SPECTATOR)
    with pytest.raises(Forbidden):
        _start(session, player)
    with pytest.raises(Conflict):
        simulation_services.simulation_step(viewer=gm, campaign_id=session.campaign_id, budget=3)
    assert Event.objects.filter(session=session).count() == before


def test_a_second_start_is_refused(session, gm):
    _start(session, gm)
    n = Event.objects.filter(session=session).count()
    with pytest.raises(Conflict):
        _start(session, gm)
    assert Event.objects.filter(session=session).count() == n


# ---- drift --------------------------------------------------------------------------------------


class DriftingSimulation(ProceduralSimulation):
    """A provider made to drift: its world picks up noise no seed explains. `fails` attempts
    drift (class-wide count, so the replay's fresh instance sees it too); then it behaves."""

    name = "drifting"
    fails = 99

    def step(self, window):
        report = super().step(window)
        if DriftingSimulation.fails > 0:
            DriftingSimulation.fails -= 1
            self.world["market"]["medpatch"]["stock"] += random.SystemRandom().randrange(1, 1000)
        return report


@pytest.fixture
def drifting(settings):
    registry.SIMULATION.providers["drifting"] = "tests.missions.test_simulation_lockstep:DriftingSimulation"
    settings.GTW_SIMULATION = {
        **settings.GTW_SIMULATION,
        "simulation": {"provider": "drifting", "timeout": 5.0},
    }
    yield DriftingSimulation
    registry.SIMULATION.providers.pop("drifting", None)


def test_a_drift_is_quarantined_replayed_once_and_then_accepted(session, gm, drifting):
    _start(session, gm)
    drifting.fails = 1
    _beat(session, gm, "rising")
    stepped = Event.objects.get(session=session, type="SimulationStepped").payload
    assert stepped["replayed"] is True and len(stepped["quarantined"]) == 1
    assert "hash" in stepped["quarantined"][0]
    session.refresh_from_db()
    assert session.state["simulation"]["status"] == "running"
    assert not Event.objects.filter(session=session, type="SimulationDrifted").exists()


def test_a_provider_that_keeps_drifting_falls_back_to_plain_narration_with_a_notice(
    session, gm, drifting, caplog
):
    _start(session, gm)
    drifting.fails = 99
    with caplog.at_level("WARNING", logger="missions.simulation"):
        _beat(session, gm, "rising")
    types = _types(session)
    assert "SimulationStepped" not in types
    assert types.index("SimulationDrifted") < types.index("BeatChanged")  # the beat still advances
    drifted = Event.objects.get(session=session, type="SimulationDrifted")
    assert drifted.audience == [] and len(drifted.payload["quarantined"]) == 2
    notice = Event.objects.filter(session=session, type="WorldNotice").last()
    assert notice.audience is None and "quiet" in notice.payload["text"]
    assert any("drifted" in r.getMessage() for r in caplog.records)  # the GM's log line
    session.refresh_from_db()
    assert session.state["simulation"]["status"] == "fallback"
    # Plain narration from here: the next beat runs no window at all.
    n = Event.objects.filter(session=session).count()
    _beat(session, gm, "twist")
    assert _types(session, n) == ["BeatChanged"]


def test_a_replay_mismatch_quarantines_the_simulation(session, gm, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 3}
    _start(session, gm)
    _beat(session, gm, "rising")
    # Somebody rewrites a recorded hash: the replay no longer reproduces the log.
    stepped = Event.objects.get(session=session, type="SimulationStepped")
    stepped.payload = {**stepped.payload, "hash": "0" * 64}
    stepped.save(update_fields=["payload"])
    report = simulation_services.simulation_verify(viewer=gm, campaign_id=session.campaign_id)
    assert report["mismatches"] and report["mismatches"][0]["seq"] == stepped.seq
    session.refresh_from_db()
    assert session.state["simulation"]["status"] == "fallback"
    assert Event.objects.filter(session=session, type="WorldNotice", payload__kind="fallback").exists()


# ---- export / import ----------------------------------------------------------------------------


def test_export_then_import_round_trips_and_bad_blobs_are_refused(session, gm, player, campaign, settings):
    from campaigns import services as campaign_services
    from gtw_site.errors import Invalid

    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 2}
    _start(session, gm)
    _beat(session, gm, "rising")
    row = simulation_services.snapshot_export(viewer=gm, campaign_id=session.campaign_id)
    blob = bytes(row.blob)
    imported = simulation_services.snapshot_import(viewer=gm, campaign_id=session.campaign_id, blob=blob)
    assert imported.state_hash == row.state_hash and imported.pk != row.pk
    data = json.loads(blob)
    data["world"]["market"]["medpatch"]["stock"] = 1  # tampered
    other = campaign_services.campaign_create(user=gm, name="Another", pack_slug="starter")
    count = SimulationSnapshot.objects.count()
    for bad, campaign_id in (
        (json.dumps(data).encode(), session.campaign_id),
        (blob[: len(blob) // 2], session.campaign_id),
        (blob, other.pk),
    ):
        with pytest.raises(Invalid):
            simulation_services.snapshot_import(viewer=gm, campaign_id=campaign_id, blob=bad)
    assert SimulationSnapshot.objects.count() == count
    with pytest.raises(Forbidden):
        simulation_services.snapshot_export(viewer=player, campaign_id=session.campaign_id)
