"""/api/simulation (issue 19): the GM starts, steps, stops, verifies, exports and imports the
world and chooses its provider; players and spectators are refused (403) and nothing changes;
an outsider gets 404 on every route; a tampered, truncated or other campaign's snapshot is
refused on import."""

from __future__ import annotations

import json

import pytest

from campaigns.models import Event, Membership
from gtw_site.models import ProviderChoice
from missions.models import SimulationSnapshot

pytestmark = pytest.mark.django_db


def _post(client, path, body):
    return client.post(f"/api/simulation{path}", json.dumps(body), content_type="application/json")


def test_the_gm_runs_the_world_through_the_api(session, gm_client):
    cid = session.campaign_id
    started = _post(gm_client, "/start", {"campaign_id": cid, "entities": 80})
    assert started.status_code == 201, started.content
    assert [e["type"] for e in started.json()] == ["SimulationStarted", "WorldNotice"]
    stepped = _post(gm_client, "/step", {"campaign_id": cid, "budget": 4})
    assert stepped.status_code == 201
    payload = stepped.json()[0]["payload"]
    assert payload["window"]["budget"] == 4 and payload["actual"] == 4
    status = gm_client.get(f"/api/simulation?campaign={cid}").json()
    assert status["state"]["status"] == "running" and status["latest_snapshot"] == payload["snapshot"]
    assert status["provider"] == "procedural"
    verified = _post(gm_client, "/verify", {"campaign_id": cid})
    assert verified.json()["mismatches"] == [] and verified.json()["hash"] == payload["hash"]
    exported = gm_client.get(f"/api/simulation/snapshots/export?campaign={cid}")
    assert exported.status_code == 200 and exported["Content-Disposition"].startswith("attachment")
    blob = exported.content
    imported = _post(gm_client, "/snapshots/import", {"campaign_id": cid, "snapshot": blob.decode()})
    assert imported.status_code == 201 and imported.json()["state_hash"] == payload["hash"]
    stopped = _post(gm_client, "/stop", {"campaign_id": cid})
    assert stopped.status_code == 201 and stopped.json()[0]["type"] == "SimulationStopped"


def test_a_tampered_truncated_or_foreign_snapshot_is_refused_on_import(session, gm, gm_client):
    from campaigns import services

    cid = session.campaign_id
    _post(gm_client, "/start", {"campaign_id": cid, "entities": 40})
    blob = gm_client.get(f"/api/simulation/snapshots/export?campaign={cid}").content.decode()
    tampered = json.loads(blob)
    tampered["world"]["npcs"][0]["alive"] = False
    other = services.campaign_create(user=gm, name="Elsewhere", pack_slug="starter")
    count = SimulationSnapshot.objects.count()
    for text, target in (
        (json.dumps(tampered), cid),
        (blob[:-40], cid),
        (blob, other.pk),
        ("not a snapshot", cid),
    ):
        response = _post(gm_client, "/snapshots/import", {"campaign_id": target, "snapshot": text})
        assert response.status_code == 422, response.content
        assert "refused" in response.json()["detail"].lower() or "snapshot" in response.content.decode()
    assert SimulationSnapshot.objects.count() == count


@pytest.mark.parametrize("role", ["player", "spectator"])
def test_players_and_spectators_are_refused_everywhere(session, gm_client, player, player_client, role):
    cid = session.campaign_id
    _post(gm_client, "/start", {"campaign_id": cid, "entities": 40})
    if role == "spectator":
        Membership.objects.filter(user=player, campaign_id=cid).update(role=Membership.Role.SPECTATOR)
    before = Event.objects.filter(session=session).count()
    for path, body in (
        ("/start", {"campaign_id": cid}),
        ("/step", {"campaign_id": cid, "budget": 2}),
        ("/stop", {"campaign_id": cid}),
        ("/verify", {"campaign_id": cid}),
        ("/snapshots/import", {"campaign_id": cid, "snapshot": "{}"}),
        ("/provider", {"campaign_id": cid, "provider": "procedural"}),
    ):
        assert _post(player_client, path, body).status_code == 403, path
    assert player_client.get(f"/api/simulation?campaign={cid}").status_code == 403
    assert player_client.get(f"/api/simulation/snapshots/export?campaign={cid}").status_code == 403
    assert Event.objects.filter(session=session).count() == before
    assert not ProviderChoice.objects.filter(role="simulation").exists()


def test_the_outsider_gets_404_on_every_route(session, gm_client, outsider_client):
    cid = session.campaign_id
    _post(gm_client, "/start", {"campaign_id": cid, "entities": 40})
    for path, body in (
        ("/start", {"campaign_id": cid}),
        ("/step", {"campaign_id": cid, "budget": 2}),
        ("/stop", {"campaign_id": cid}),
        ("/verify", {"campaign_id": cid}),
        ("/snapshots/import", {"campaign_id": cid, "snapshot": "{}"}),
        ("/provider", {"campaign_id": cid, "provider": "procedural"}),
    ):
        assert _post(outsider_client, path, body).status_code == 404, path
    assert outsider_client.get(f"/api/simulation?campaign={cid}").status_code == 404
    assert outsider_client.get(f"/api/simulation/snapshots/export?campaign={cid}").status_code == 404


def test_the_gm_chooses_the_provider_for_their_campaign(session, gm_client, settings):
    cid = session.campaign_id
    settings.GTW_PROVIDER_ALLOW_PRIVATE = True
    unknown = _post(gm_client, "/provider", {"campaign_id": cid, "provider": "crystal-ball"})
    assert unknown.status_code == 422
    chosen = _post(
        gm_client, "/provider", {"campaign_id": cid, "provider": "remote", "base_url": "http://127.0.0.1:9/"}
    )
    assert chosen.status_code == 200, chosen.content
    assert chosen.json()["provider"] == "remote"
    assert ProviderChoice.objects.get(role="simulation", campaign_id=cid).provider == "remote"
    back = _post(gm_client, "/provider", {"campaign_id": cid, "provider": ""})
    assert back.json()["provider"] == "procedural"
