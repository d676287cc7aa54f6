"""The GM's world-simulation page (issue 19): telemetry — budgets vs actual, snapshot ids, the
hash timeline, reconciliation decisions, drift alerts — and its controls; a player and an
outsider get 404; the play log tells players the world moved, in the game's words only."""

from __future__ import annotations

import re

import pytest

from campaigns.models import Event
from missions import simulation_services
from narrative import engine

pytestmark = pytest.mark.django_db


def test_the_gm_reads_the_telemetry_and_drives_the_controls(session, gm, gm_client, settings):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 6}
    url = f"/sessions/{session.pk}/simulation"
    assert gm_client.post(url, {"action": "start"}).status_code == 302
    engine.beat_set(session=session, beat="rising", actor_id=gm.pk)
    assert gm_client.post(url, {"action": "step", "budget": "4"}).status_code == 302
    page = gm_client.get(url)
    html = page.content.decode()
    stepped = Event.objects.filter(session=session, type="SimulationStepped").order_by("seq")
    assert page.status_code == 200 and stepped.count() == 2
    for e in stepped:
        assert f"#{e.payload['snapshot']}" in html and e.payload["hash"][:12] in html
    assert 'id="hash-timeline"' in html and "rising-" in html
    cells = re.findall(
        r'<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>\s*<td class="num">[\d.]+</td>', html
    )
    assert ("6", "6") in cells and ("4", "4") in cells  # budget vs actual (then ms)
    verified = gm_client.post(url, {"action": "verify"})
    assert "reproduced the live hash" in verified.content.decode()


def test_drift_alerts_show_on_the_gms_page(session, gm, gm_client):
    simulation_services.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=50)
    engine.beat_set(session=session, beat="rising", actor_id=gm.pk)
    stepped = Event.objects.get(session=session, type="SimulationStepped")
    stepped.payload = {**stepped.payload, "hash": "f" * 64}
    stepped.save(update_fields=["payload"])
    simulation_services.simulation_verify(viewer=gm, campaign_id=session.campaign_id)
    html = gm_client.get(f"/sessions/{session.pk}/simulation").content.decode()
    assert 'id="drift-alerts"' in html and "fell back to plain narration" in html


def test_players_and_outsiders_get_404_and_players_see_the_world_move(
    session, gm, player_client, outsider_client, settings
):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 40}
    simulation_services.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=300)
    for beat in ("rising", "twist"):
        session.refresh_from_db()
        engine.beat_set(session=session, beat=beat, actor_id=gm.pk)
    url = f"/sessions/{session.pk}/simulation"
    assert player_client.get(url).status_code == 404
    assert player_client.post(url, {"action": "stop"}).status_code == 404
    assert outsider_client.get(url).status_code == 404
    play = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "the world moves" in play
    changed = Event.objects.filter(session=session, type="WorldChanged").first()
    assert changed is not None and changed.payload["lines"][0] in play.replace("&#x27;", "'")
    for internal in ("Simulation:", "snapshot #", "SimulationStepped", "World simulation"):
        assert internal not in play


def test_a_spectator_gets_404_and_changes_nothing(session, gm, player, player_client):
    from campaigns.models import Membership

    simulation_services.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=40)
    Membership.objects.filter(user=player, campaign_id=session.campaign_id).update(
        role=Membership.Role.SPECTATOR
    )
    before = Event.objects.filter(session=session).count()
    url = f"/sessions/{session.pk}/simulation"
    assert player_client.get(url).status_code == 404
    for action in ("step", "stop", "verify", "start"):
        assert player_client.post(url, {"action": action, "budget": "5"}).status_code == 404
    assert Event.objects.filter(session=session).count() == before
