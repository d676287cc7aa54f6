"""The remote simulation provider's contract (docs/SIMULATION.md), against a local fake learned
world model: a well-behaved server gives the procedural provider's exact hashes; a short answer
is asked for the rest; a slow one times out, a 500 and a non-JSON answer are ProviderErrors;
a wrong hash drifts. At the table, each misbehaviour is quarantined, replayed once and falls
back to plain narration with a notice."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError
from missions import simulation_services
from missions.simulation import ProceduralSimulation, Window, generate_world
from missions.simulation.window import run_window
from missions.simulation_remote import RemoteSimulation
from narrative import engine
from tests.fakes.simulation_server import FakeWorldModel


@pytest.fixture
def fake():
    server = FakeWorldModel()
    yield server
    server.close()


def _pair(url, timeout=10.0):  # a ceiling: a loaded machine can keep the fake waiting for seconds
    local, remote = (
        ProceduralSimulation(),
        RemoteSimulation(base_url=url, timeout=timeout, api_key="k-123456"),
    )
    for sim in (local, remote):
        sim.start({"campaign_id": 5, "session_id": 6}, generate_world(50, 3))
    return local, remote


def test_a_well_behaved_server_matches_the_procedural_hashes(fake):
    local, remote = _pair(fake.url)
    for beat in ("rising-4", "twist-9"):
        a = local.step(Window(beat, local.step_index, 6))
        b = remote.step(Window(beat, remote.step_index, 6))
        assert a.state_hash == b.state_hash == remote.state_hash()
    sent = fake.requests[0]
    window = {"beat_id": "rising-4", "start_step": 0, "budget": 6, "protected": []}
    assert sent["protocol"] == 1 and sent["window"] == window
    assert len(sent["seeds"]) == 6 and sent["campaign_id"] == 5
    assert fake.auth[0] == "Bearer k-123456"
    # The remote's snapshots are the same world format: a procedural provider restores them.
    back = ProceduralSimulation()
    back.restore(remote.snapshot(), campaign_id=5)
    assert back.state_hash() == local.state_hash()


def test_a_short_answer_is_asked_for_the_rest_of_the_window(fake):
    fake.mode, fake.cap = "short", 2
    _local, remote = _pair(fake.url)
    blob, expected = remote.snapshot(), remote.state_hash()
    outcome = run_window(
        remote, blob, expected, Window("b-1", 0, 5), campaign_id=5, session_id=6, errors=(ProviderError,)
    )
    # 2 + 2 + 1: three calls, the whole budget; budget vs actual recorded.
    assert outcome.ok and outcome.steps == 5 and len(fake.requests) == 3


@pytest.mark.parametrize(
    ("mode", "retryable", "words"),
    [("slow", True, "no answer"), ("http500", True, "HTTP 500"), ("not_json", False, "not JSON")],
)
def test_misbehaving_servers_are_provider_errors(fake, mode, retryable, words):
    fake.mode, fake.delay = mode, 1.5
    # Only the slow server needs the short timeout; a 500 or a non-JSON answer must be told apart
    # from no answer even when the machine is too busy to answer within 0.3 s.
    _local, remote = _pair(fake.url, timeout=0.3 if mode == "slow" else 10.0)
    with pytest.raises(ProviderError) as caught:
        remote.step(Window("b", 0, 3))
    assert caught.value.retryable is retryable and words in str(caught.value)
    assert "k-123456" not in str(caught.value)


def test_a_wrong_hash_is_drift_quarantined_then_replayed_then_given_up(fake):
    fake.mode = "wrong_hash"
    _local, remote = _pair(fake.url)
    blob, expected = remote.snapshot(), remote.state_hash()
    outcome = run_window(
        remote, blob, expected, Window("b", 0, 3), campaign_id=5, session_id=6, errors=(ProviderError,)
    )
    assert not outcome.ok and len(outcome.quarantined) == 2 and "hash" in outcome.quarantined[0]


def test_an_objective_the_world_completes_alone_is_rejected(fake):
    fake.mode = "objective"
    _local, remote = _pair(fake.url)
    outcome = run_window(
        remote, remote.snapshot(), remote.state_hash(), Window("b", 0, 3), campaign_id=5, session_id=6
    )
    assert (
        outcome.ok
        and ("objective_completed", "unknown change 'objective_completed': the world changes nothing else")
        in outcome.rejected
    )
    assert not any("objective" in line.lower() for line in outcome.lines)


# ---- at the table --------------------------------------------------------------------------------


@pytest.fixture
def remote_campaign(fake, session, gm, settings):
    settings.GTW_PROVIDER_ALLOW_PRIVATE = True
    settings.GTW_SIMULATION = {
        **settings.GTW_SIMULATION,
        "budget": 3,
        # A ceiling for a well-behaved fake on a loaded machine; the slow one's test shortens it.
        "simulation": {"provider": "procedural", "timeout": 10.0},
    }
    simulation_services.simulation_provider_set(
        viewer=gm, campaign_id=session.campaign_id, provider="remote", base_url=fake.url
    )
    simulation_services.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=60)
    return session


@pytest.mark.django_db
def test_a_remote_world_moves_at_the_beat_boundary_and_leaves_telemetry(fake, remote_campaign, gm):
    session = remote_campaign
    engine.beat_set(session=session, beat="rising", actor_id=gm.pk)
    stepped = Event.objects.get(session=session, type="SimulationStepped").payload
    assert stepped["provider"] == "remote" and stepped["actual"] == 3 and stepped["quarantined"] == []
    assert ProviderCall.objects.filter(role="simulation", provider="remote", ok=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["slow", "wrong_hash", "http500"])
def test_a_misbehaving_remote_falls_back_to_plain_narration(fake, remote_campaign, gm, mode, settings):
    session = remote_campaign
    fake.mode, fake.delay = mode, 1.0
    if mode == "slow":
        conf = settings.GTW_SIMULATION
        settings.GTW_SIMULATION = {**conf, "simulation": {**conf["simulation"], "timeout": 0.3}}
    session.refresh_from_db()
    engine.beat_set(session=session, beat="rising", actor_id=gm.pk)
    types = list(Event.objects.filter(session=session).order_by("seq").values_list("type", flat=True))
    assert "SimulationDrifted" in types and types[-1] == "BeatChanged"
    drifted = Event.objects.get(session=session, type="SimulationDrifted").payload
    assert len(drifted["quarantined"]) == 2  # the first try, and its one replay
    notice = Event.objects.filter(session=session, type="WorldNotice").last().payload["text"]
    assert "hash" not in notice and "500" not in notice and "remote" not in notice
    session.refresh_from_db()
    assert session.state["simulation"]["status"] == "fallback"
