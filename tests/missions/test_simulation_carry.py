"""The simulated world travels with a campaign's history (missions.simulation_copies): a branch
at seq S goes on from the world as it was at S — never a snapshot taken after S — and replays
to the hashes its copied log records; a campaign file round trip and a clone with history keep
the snapshots; a file whose snapshot was tampered with (and re-signed) is refused whole."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import selectors
from campaigns.branching import campaign_branch
from campaigns.lifecycle_export import checksum
from campaigns.models import Campaign, Event, PlaySession
from missions import simulation_services as sim
from missions.models import SimulationSnapshot
from missions.simulation_copies import MAX_BLOB_BYTES, SECTION
from narrative import engine

pytestmark = pytest.mark.django_db


def _beat(session, gm, beat):
    session.refresh_from_db()
    engine.beat_set(session=session, beat=beat, actor_id=gm.pk)
    session.refresh_from_db()


def _stepped(session):
    return list(Event.objects.filter(session=session, type="SimulationStepped").order_by("seq"))


@pytest.fixture
def world(session, gm, settings):
    """A session whose world ran two windows: start (seq s), rising (window A), twist (window B)."""
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 5}
    sim.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=60)
    _beat(session, gm, "rising")
    _beat(session, gm, "twist")
    return session


def _branch(session, gm, at_seq):
    membership = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    return campaign_branch(membership=membership, session=session, at_seq=at_seq)


def test_a_branch_goes_on_from_the_world_at_its_seq_never_a_later_one(world, gm):
    first, second = _stepped(world)
    a = SimulationSnapshot.objects.get(pk=first.payload["snapshot"])
    b = SimulationSnapshot.objects.get(pk=second.payload["snapshot"])
    branch = _branch(world, gm, at_seq=first.seq + 1)  # just after window A's BeatChanged

    copies = list(SimulationSnapshot.objects.filter(campaign_id=branch.campaign_id).order_by("pk"))
    assert [c.state_hash for c in copies] == [
        SimulationSnapshot.objects.get(pk=first.payload["previous"]).state_hash,
        a.state_hash,
    ]
    assert b.state_hash not in {c.state_hash for c in copies}  # window B came after the branch point
    assert copies[-1].seed["copied_from"] == a.pk and copies[-1].session_id == branch.pk
    assert sim.snapshot_named(branch.campaign_id, a.pk, a.state_hash) == copies[-1]
    assert branch.state["simulation"]["snapshot"] == a.pk  # the copied log, as it was

    # The branch's next beat runs its window from A's copy; the parent's B is another world.
    _beat(branch, gm, "twist")
    [_, mine] = _stepped(branch)
    assert mine.payload["window"]["start_step"] == a.step and mine.payload["previous"] == copies[-1].pk
    assert mine.payload["hash"] != b.state_hash
    assert not Event.objects.filter(session=branch, type="SimulationDrifted").exists()
    # Its log replays: the copied window under the parent's seeds, its own under the branch's.
    report = sim.simulation_replay(branch.pk)
    assert report["windows"] == 2 and report["mismatches"] == []
    # Stopped and started again, the branch's world continues from A, not the parent's latest.
    sim.simulation_stop(viewer=gm, campaign_id=branch.campaign_id)
    started = sim.simulation_start(viewer=gm, campaign_id=branch.campaign_id).events[0].payload
    assert started["hash"] == mine.payload["hash"]
    # The parent's world is untouched.
    assert sim.simulation_replay(world.pk)["mismatches"] == []


def test_a_branch_before_the_world_started_starts_a_world_of_its_own(world, gm):
    started = Event.objects.get(session=world, type="SimulationStarted")
    branch = _branch(world, gm, at_seq=started.seq - 1)
    assert not SimulationSnapshot.objects.filter(campaign_id=branch.campaign_id).exists()
    again = sim.simulation_start(viewer=gm, campaign_id=branch.campaign_id, entities=60).events[0]
    assert again.payload["continued_from"] is None


def test_a_branch_of_a_branch_keeps_replaying(world, gm):
    first, _ = _stepped(world)
    child = _branch(world, gm, at_seq=first.seq + 1)
    _beat(child, gm, "twist")
    [_, own] = _stepped(child)
    grandchild = _branch(child, gm, at_seq=own.seq + 1)
    refs = {
        c.seed["copied_from"] for c in SimulationSnapshot.objects.filter(campaign_id=grandchild.campaign_id)
    }
    assert first.payload["snapshot"] in refs and own.payload["snapshot"] in refs
    _beat(grandchild, gm, "climax")
    report = sim.simulation_replay(grandchild.pk)
    assert report["windows"] == 3 and report["mismatches"] == []


def test_a_branch_takes_the_campaigns_world_from_before_its_point_never_a_later_sessions(world, gm):
    from campaigns import services

    membership = selectors.membership_get(viewer=gm, campaign_id=world.campaign_id)
    first, second = _stepped(world)
    b = SimulationSnapshot.objects.get(pk=second.payload["snapshot"])
    services.session_end(session=world, membership=membership)
    later = services.session_open(membership=membership)
    started = sim.simulation_start(viewer=gm, campaign_id=world.campaign_id).events[0]
    assert started.payload["continued_from"] == b.pk
    _beat(later, gm, "rising")
    [c_event] = _stepped(later)

    # Session 1 at window A: the later session's worlds are not the branch's.
    early = _branch(world, gm, at_seq=first.seq + 1)
    hashes = set(
        SimulationSnapshot.objects.filter(campaign_id=early.campaign_id).values_list("state_hash", flat=True)
    )
    assert b.state_hash not in hashes and c_event.payload["hash"] not in hashes
    # Session 2 before its start: the campaign's world was session 1's last (B), and a start there
    # goes on from it.
    before_start = _branch(later, gm, at_seq=started.seq - 1)
    [copy] = SimulationSnapshot.objects.filter(campaign_id=before_start.campaign_id)
    assert copy.state_hash == b.state_hash and copy.session_id is None
    again = sim.simulation_start(viewer=gm, campaign_id=before_start.campaign_id).events[0]
    assert again.payload["continued_from"] == copy.pk and again.payload["hash"] == b.state_hash


def _export(client, campaign_id) -> dict:
    response = client.get(f"/api/campaigns/{campaign_id}/export")
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def _import(client, body: dict):
    body["sha256"] = checksum(body)
    data = json.dumps(body).encode()
    return client.post("/api/campaigns/import", {"file": SimpleUploadedFile("save.gtw.json", data)})


def test_an_export_import_round_trip_keeps_the_world(world, gm, gm_client):
    body = _export(gm_client, world.campaign_id)
    originals = list(SimulationSnapshot.objects.filter(campaign_id=world.campaign_id).order_by("pk"))
    assert [r["ref"] for r in body["sections"][SECTION]] == [o.pk for o in originals]

    response = _import(gm_client, body)

    assert response.status_code == 201, response.content
    assert any("simulation snapshot" in line for line in response.json()["notes"])
    new = Campaign.objects.get(pk=response.json()["id"])
    copies = list(SimulationSnapshot.objects.filter(campaign=new).order_by("pk"))
    assert [(c.state_hash, c.step, c.seed["copied_from"]) for c in copies] == [
        (o.state_hash, o.step, o.pk) for o in originals
    ]
    imported = PlaySession.objects.get(campaign=new)
    assert all(c.session_id == imported.pk for c in copies)
    assert sim.simulation_replay(imported.pk)["mismatches"] == []
    # The imported world goes on at its next beat, from the last window's copy.
    _beat(imported, gm, "climax")
    last = _stepped(imported)[-1].payload
    assert last["previous"] == copies[-1].pk and last["window"]["start_step"] == copies[-1].step
    assert not Event.objects.filter(session=imported, type="SimulationDrifted").exists()


@pytest.mark.parametrize("damage", ["world", "hash", "session", "blob", "bomb"])
def test_a_file_with_a_bad_snapshot_is_refused_whole(world, gm_client, damage):
    body = _export(gm_client, world.campaign_id)
    row = body["sections"][SECTION][-1]
    if damage == "world":
        blob = json.loads(zlib.decompress(base64.b64decode(row["blob"])))
        blob["world"]["npcs"][0]["alive"] = not blob["world"]["npcs"][0]["alive"]
        row["blob"] = base64.b64encode(zlib.compress(json.dumps(blob).encode())).decode()
    elif damage == "hash":
        row["state_hash"] = "0" * 64
    elif damage == "session":
        row["session"] = 99
    elif damage == "blob":
        row["blob"] = row["blob"][:-30]
    else:  # a small text that inflates past the limit
        row["blob"] = base64.b64encode(zlib.compress(b" " * (MAX_BLOB_BYTES + 10))).decode()
    counts = (Campaign.objects.count(), SimulationSnapshot.objects.count(), Event.objects.count())

    response = _import(gm_client, body)

    assert response.status_code == 422, response.content
    assert "Simulation snapshot" in response.json()["detail"]
    assert (Campaign.objects.count(), SimulationSnapshot.objects.count(), Event.objects.count()) == counts


def test_a_clone_with_history_keeps_the_world(world, gm_client):
    response = gm_client.post(
        f"/api/campaigns/{world.campaign_id}/clone", {"history": True}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    clone = PlaySession.objects.get(campaign_id=response.json()["id"])
    hashes = SimulationSnapshot.objects.filter(campaign_id=clone.campaign_id).values_list(
        "state_hash", flat=True
    )
    originals = SimulationSnapshot.objects.filter(campaign_id=world.campaign_id)
    assert sorted(hashes) == sorted(originals.values_list("state_hash", flat=True))
    assert sim.simulation_replay(clone.pk)["mismatches"] == []


def test_a_campaign_without_a_simulation_exports_as_before(session, gm_client):
    assert SECTION not in _export(gm_client, session.campaign_id)["sections"]


def test_rebind_reowns_a_checked_snapshot_and_keeps_its_hash():
    from missions.simulation import ProceduralSimulation, SimulationError, generate_world, rebind

    source = ProceduralSimulation()
    source.start({"campaign_id": 3, "session_id": 4}, generate_world(30, 1))
    blob = rebind(source.snapshot(), 9)
    copy = ProceduralSimulation()
    copy.restore(blob, campaign_id=9)
    assert copy.state_hash() == source.state_hash() and copy.session_id == 4
    with pytest.raises(SimulationError):
        copy.restore(blob, campaign_id=3)  # it belongs to campaign 9 now
    tampered = json.loads(source.snapshot())
    tampered["world"]["market"]["medpatch"]["stock"] += 1
    for bad in (json.dumps(tampered).encode(), source.snapshot()[:-20], b"[]", b"{}"):
        with pytest.raises(SimulationError):
            rebind(bad, 9)
