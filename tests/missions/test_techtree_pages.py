"""The tech trees on the play page: a character's tree on its sheet, the alliances' trees under
the sheets, the log line of each research event, and the live update an alliance member's socket
gets (the broadcast renders the same partials)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from campaigns import selectors, teams
from campaigns.models import Character, Event
from realtime import broadcast


@pytest.fixture
def researching(session, gm, player, characters):
    Character.objects.filter(campaign=session.campaign).update(xp=500)
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    alliance = teams.alliance_create(membership=gm_seat, name="Free Haulers", reputation=20)
    teams.alliance_member_add(
        membership=gm_seat,
        alliance=alliance,
        target=selectors.membership_get(viewer=player, campaign_id=session.campaign_id),
    )
    return alliance


def _research(client, body):
    return client.post("/api/tech-trees/research", json.dumps(body), content_type="application/json")


def test_the_play_page_shows_the_trees_with_status_and_beats_left(session, researching, player_client):
    body = {"campaign_id": session.campaign_id, "tree": "compact-works", "alliance_id": researching.pk}
    assert _research(player_client, {**body, "node": "supply-line"}).status_code == 409  # locked
    assert _research(player_client, {**body, "node": "safe-dock"}).status_code == 201
    assert (
        _research(
            player_client,
            {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": "signal-sifting"},
        ).status_code
        == 409
    )
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert 'id="alliance-research"' in page and "Alliance Works" in page
    assert 'data-node="safe-dock" data-status="in_progress"' in page
    assert "in progress · 1 beat left" in page
    assert 'data-node="supply-line" data-status="locked"' in page
    assert 'data-node="relay-lore" data-status="available"' in page  # the sheet's own tree
    assert "begins researching Safe Dock (1 beat)" in page  # the log line


def test_a_research_event_goes_out_with_the_updated_trees(session, researching, player_client, gm_client):
    body = {"campaign_id": session.campaign_id, "tree": "compact-works", "alliance_id": researching.pk}
    _research(player_client, {**body, "node": "safe-dock"})
    _research(gm_client, {**body, "node": "safe-dock", "action": "complete"})
    session.refresh_from_db()
    done = Event.objects.get(session=session, type="ResearchCompleted")
    assert done.payload["by"] == "gm"
    [message] = broadcast.event_messages([done], session.state)
    html = message["html"]
    assert 'id="alliance-research" class="alliance-research" hx-swap-oob="true"' in html
    assert 'data-node="safe-dock" data-status="done"' in html
    assert 'data-node="supply-line" data-status="available"' in html
    assert "completes Safe Dock, finished early by the GM" in html
    json.dumps(message)  # the payload is plain JSON


def test_the_campaign_page_shows_each_alliances_tree_to_its_members(session, researching, player_client):
    body = {"campaign_id": session.campaign_id, "tree": "compact-works", "alliance_id": researching.pk}
    assert _research(player_client, {**body, "node": "listening-post"}).status_code == 201
    page = player_client.get(f"/campaigns/{session.campaign_id}/").content.decode()
    assert f'data-owner="alliance:{researching.pk}:compact-works"' in page
    assert 'data-node="listening-post" data-status="in_progress"' in page
    assert 'data-node="flagship" data-status="locked"' in page


def test_staff_see_the_trees_in_the_admin_and_a_bad_edit_is_refused_with_its_path(campaign, gm):
    from missions.models import TechTree

    gm.is_staff = gm.is_superuser = True
    gm.save()
    client = Client()
    client.force_login(gm)
    listing = client.get("/admin/missions/techtree/").content.decode()
    assert "Crew Craft" in listing and "Alliance Works" in listing
    row = TechTree.objects.get(slug="crew-craft")
    document = {**row.document, "nodes": [{**row.document["nodes"][0], "cost": {"points": -2}}]}
    response = client.post(
        f"/admin/missions/techtree/{row.pk}/change/", {"pack": row.pack_id, "document": json.dumps(document)}
    )
    assert response.status_code == 200
    assert "$.nodes[0].cost.points: must not be negative" in response.content.decode()
    row.refresh_from_db()
    assert len(row.document["nodes"]) == 13


def test_the_play_page_form_starts_and_the_gm_finishes_research(
    session, researching, player, player_client, gm_client
):
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert 'id="research-title"' in page and 'value="compact-works/safe-dock"' in page  # the leader
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    response = player_client.post(
        f"/sessions/{session.pk}/research",
        {"owner": f"character:{kira.pk}", "node": "crew-craft/relay-lore", "action": "start"},
    )
    assert response.status_code == 302
    started = Event.objects.get(session=session, type="ResearchStarted")
    assert started.payload["node"] == "relay-lore" and started.actor_id == player.pk
    gm_page = gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Finish early (GM)" in gm_page
    response = gm_client.post(
        f"/sessions/{session.pk}/research",
        {"owner": f"character:{kira.pk}", "node": "crew-craft/relay-lore", "action": "complete"},
    )
    assert response.status_code == 302
    assert Event.objects.get(session=session, type="ResearchCompleted").payload["by"] == "gm"


def test_the_research_form_refuses_bad_input_and_others_characters(session, researching, gm, player_client):
    ossian = Character.objects.get(campaign=session.campaign, owner=gm)
    url = f"/sessions/{session.pk}/research"
    for data, status in (
        ({"owner": f"character:{ossian.pk}", "node": "crew-craft/relay-lore"}, 403),  # the GM's character
        ({"owner": "someone", "node": "crew-craft/relay-lore"}, 422),
        ({"owner": "alliance:x", "node": "compact-works/safe-dock"}, 422),
        ({"owner": f"alliance:{researching.pk}", "node": "nonsense"}, 422),
        ({"owner": f"alliance:{researching.pk}", "node": "compact-works/nope"}, 404),
    ):
        assert player_client.post(url, data).status_code == status, data
    assert not Event.objects.filter(session=session, type__startswith="Research").exists()


def test_a_spectator_and_the_outsider_get_no_research_form(session, gm, outsider_client):
    from campaigns import services
    from campaigns.models import Membership
    from tests.conftest import _user

    gm_seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    watcher = _user("watcher")
    code = services.invite_create(membership=gm_seat, role=Membership.Role.SPECTATOR).code
    services.invite_accept(code=code, user=watcher)
    client = Client()
    client.force_login(watcher)
    page = client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert 'id="research-title"' not in page
    assert (
        client.post(f"/sessions/{session.pk}/research", {"owner": "character:1", "node": "a/b"}).status_code
        == 403
    )
    response = outsider_client.post(
        f"/sessions/{session.pk}/research", {"owner": "character:1", "node": "a/b"}
    )
    assert response.status_code == 404
