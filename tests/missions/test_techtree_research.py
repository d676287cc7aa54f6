"""Research at the table: the pack's trees install, research starts and completes as events
(by beats or by the GM), points and items are spent, effects reach the next skill check, and
who may decide — three personas, alliance leaders, spectators — is enforced over the API."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from campaigns import selectors, services, teams
from campaigns import state as reducer
from campaigns.events import to_record
from campaigns.models import Campaign, Character, Event, Membership
from missions import techtree_services
from missions.models import TechTree
from narrative import engine
from tests.conftest import _user
from tests.narrative.test_engine import call

RESEARCH = "/api/tech-trees/research"


def _post(client: Client, body: dict):
    return client.post(RESEARCH, json.dumps(body), content_type="application/json")


def _research_events(session) -> list[Event]:
    return list(Event.objects.filter(session=session, type__startswith="Research").order_by("seq"))


def _beat(session, gm, beat: str):
    session.refresh_from_db()
    engine.beat_set(session=session, beat=beat, actor_id=gm.pk)


@pytest.fixture
def rich(characters, campaign, player):
    Character.objects.filter(campaign=campaign).update(xp=1000)  # 40 research points each
    return Character.objects.get(campaign=campaign, owner=player)


@pytest.fixture
def alliance(campaign, gm, player):
    """An alliance whose first member (its leader) is `player`, joined by `second`."""
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    alliance = teams.alliance_create(membership=gm_seat, name="Free Haulers", reputation=40)  # 20 points
    teams.alliance_member_add(
        membership=gm_seat,
        alliance=alliance,
        target=selectors.membership_get(viewer=player, campaign_id=campaign.pk),
    )
    second = _user("second")
    services.invite_accept(code=services.invite_create(membership=gm_seat).code, user=second)
    teams.alliance_member_add(
        membership=gm_seat,
        alliance=alliance,
        target=selectors.membership_get(viewer=second, campaign_id=campaign.pk),
    )
    alliance.second = second
    return alliance


def test_the_pack_installs_both_trees_and_a_bad_one_is_reported(campaign, tmp_path):
    assert set(TechTree.objects.filter(pack=campaign.pack).values_list("kind", flat=True)) == {
        "player",
        "alliance",
    }
    (tmp_path / "techtrees").mkdir()
    (tmp_path / "techtrees" / "bad.json").write_text(
        json.dumps({"slug": "bad", "name": "Bad", "kind": "player", "nodes": [
            {"id": "a", "name": "A", "cost": {"points": -1}, "effects": [{"kind": "dda_cap", "shift": 1}]}]})
    )  # fmt: skip
    lines = techtree_services.on_pack_loaded(None, pack=campaign.pack, folder=tmp_path)
    assert lines == ["tech tree bad.json NOT installed: $.nodes[0].cost.points: must not be negative, got -1"]
    assert not TechTree.objects.filter(slug="bad").exists()


def test_a_player_researches_and_the_next_skill_check_has_the_bonus(session, gm, player, rich, player_client):
    # Relay Lore: +1 tech, one beat.
    _, before = call(session, player, "rules_skill_check", {"skill": "repair", "attribute": "tech", "dc": 12})
    assert "research_modifier" not in before[0].payload
    base_modifier = before[0].payload["modifier"]

    response = _post(
        player_client, {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": "relay-lore"}
    )
    assert response.status_code == 201, response.content
    assert [e["type"] for e in response.json()] == ["ResearchStarted"]
    assert response.json()[0]["payload"]["points"] == 2

    # Still in progress: no bonus yet, and completing it early is the GM's call.
    early = _post(
        player_client,
        {
            "campaign_id": session.campaign_id,
            "tree": "crew-craft",
            "node": "relay-lore",
            "action": "complete",
        },
    )
    assert early.status_code == 409 and "more beat" in early.json()["detail"]
    assert [e.type for e in _research_events(session)] == ["ResearchStarted"]  # nothing appended

    # A beat passes: the listener completes it.
    _beat_with_listeners(session, gm, "rising")
    done = Event.objects.get(session=session, type="ResearchCompleted")
    assert done.payload["by"] == "beats" and done.payload["node"] == "relay-lore"

    _, after = call(session, player, "rules_skill_check", {"skill": "repair", "attribute": "tech", "dc": 12})
    roll = after[0].payload
    assert roll["research_modifier"] == 1
    assert roll["modifier"] == base_modifier + 1
    session.refresh_from_db()
    assert (
        reducer.replay(to_record(e) for e in Event.objects.filter(session=session).order_by("seq"))
        == session.state
    )
    assert session.state["research"][f"character:{rich.pk}:crew-craft"]["done"] == ["relay-lore"]


def _beat_with_listeners(session, gm, beat):
    """Set the beat and run the after-commit listeners the way a real request does."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        _beat(session, gm, beat)


def test_the_gm_finishes_research_early_and_the_dc_cap_moves(session, gm, gm_client, alliance, settings):
    settings.GTW_DDA = {"window": 6, "dc_min_offset": -3, "dc_max_offset": 3}
    body = {"campaign_id": session.campaign_id, "tree": "compact-works", "alliance_id": alliance.pk}
    for node in ("listening-post", "patrol-codes"):  # patrol codes: the DDA's top offset -1
        assert _post(gm_client, {**body, "node": node}).status_code == 201
        response = _post(gm_client, {**body, "node": node, "action": "complete"})
        assert response.status_code == 201, response.content
        assert response.json()[0]["payload"]["by"] == "gm"
    session.refresh_from_db()
    assert engine.load_rules(session).dda_config.dc_max_offset == 2


def test_alliance_research_is_the_leaders_and_shared_by_members(session, gm, player, alliance, player_client):
    second = Client()
    second.force_login(alliance.second)
    body = {
        "campaign_id": session.campaign_id,
        "tree": "compact-works",
        "alliance_id": alliance.pk,
        "node": "safe-dock",
    }
    refused = _post(second, body)
    assert refused.status_code == 403 and "leader" in refused.json()["detail"]
    assert not _research_events(session)
    assert _post(player_client, body).status_code == 201  # the leader (first to join)

    seen = second.get(f"/api/tech-trees?campaign={session.campaign_id}").json()
    mine = next(p for p in seen["progress"] if p["owner_kind"] == "alliance")
    assert mine["you_decide"] is False
    safe_dock = next(n for n in mine["tree"]["nodes"] if n["id"] == "safe-dock")
    assert safe_dock["status"] == "in_progress" and safe_dock["beats_left"] == 1
    assert mine["points_left"] == 20 - 3
    leader = player_client.get(f"/api/tech-trees?campaign={session.campaign_id}").json()
    assert next(p for p in leader["progress"] if p["owner_kind"] == "alliance")["you_decide"] is True


def test_a_non_member_of_the_alliance_and_a_spectator_are_refused(session, gm, campaign, alliance):
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    loner, watcher = _user("loner"), _user("watcher")
    services.invite_accept(code=services.invite_create(membership=gm_seat).code, user=loner)
    services.invite_accept(
        code=services.invite_create(membership=gm_seat, role=Membership.Role.SPECTATOR).code, user=watcher
    )
    body = {
        "campaign_id": session.campaign_id,
        "tree": "compact-works",
        "alliance_id": alliance.pk,
        "node": "safe-dock",
    }
    for user, words in ((loner, "not in Free Haulers"), (watcher, "Spectators")):
        client = Client()
        client.force_login(user)
        response = _post(client, body)
        assert response.status_code == 403 and words in response.json()["detail"]
    watcher_client = Client()
    watcher_client.force_login(watcher)
    own = _post(watcher_client, {**body, "tree": "crew-craft", "node": "relay-lore"})
    assert own.status_code == 403
    assert not _research_events(session)


def test_the_outsider_sees_and_researches_nothing(session, outsider_client, rich):
    assert outsider_client.get(f"/api/tech-trees?campaign={session.campaign_id}").status_code == 404
    response = _post(
        outsider_client, {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": "relay-lore"}
    )
    assert response.status_code == 404
    assert not _research_events(session)


def test_a_player_cannot_research_for_another_character(session, gm, player_client, rich):
    gm_character = Character.objects.get(campaign=session.campaign, owner=gm)
    body = {
        "campaign_id": session.campaign_id,
        "tree": "crew-craft",
        "node": "relay-lore",
        "character_id": gm_character.pk,
    }
    assert _post(player_client, body).status_code == 403
    assert not _research_events(session)


@pytest.mark.parametrize(
    ("node", "status", "words"),
    [
        ("signal-sifting", 409, "locked: it needs Relay Lore"),
        ("reach-veteran", 409, "locked"),
        ("no-such-node", 404, "No node"),
    ],
)
def test_locked_and_unknown_nodes_are_refused_and_nothing_is_appended(
    session, player_client, rich, node, status, words
):
    response = _post(player_client, {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": node})
    assert response.status_code == status and words in response.json()["detail"]
    assert not _research_events(session)


def test_bad_requests_get_clear_errors(session, player_client, rich):
    unknown_tree = _post(player_client, {"campaign_id": session.campaign_id, "tree": "nope", "node": "a"})
    assert unknown_tree.status_code == 404
    bad_action = _post(
        player_client,
        {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": "relay-lore", "action": "steal"},
    )
    assert bad_action.status_code == 422
    missing = _post(
        player_client, {"campaign_id": session.campaign_id, "tree": "compact-works", "node": "safe-dock"}
    )
    assert missing.status_code == 422 and "alliance_id" in missing.json()["detail"]
    assert not _research_events(session)


def test_research_already_done_is_refused_and_costs_are_spent(
    session, gm, gm_client, player, player_client, rich
):
    body = {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": "relay-lore"}
    assert _post(player_client, body).status_code == 201
    assert _post(gm_client, {**body, "character_id": rich.pk, "action": "complete"}).status_code == 201
    again = _post(player_client, body)
    assert again.status_code == 409 and "already researched" in again.json()["detail"]
    assert len(_research_events(session)) == 2
    view = player_client.get(f"/api/tech-trees?campaign={session.campaign_id}").json()
    mine = next(p for p in view["progress"] if p["owner_kind"] == "character")
    assert mine["points_left"] == 40 - 2
    assert [p["owner_id"] for p in view["progress"]] == [rich.pk]  # a player sees only their own


def test_item_costs_are_taken_and_unlocked_items_granted(session, gm, gm_client, player_client, rich):
    body = {"campaign_id": session.campaign_id, "tree": "crew-craft"}
    for node in ("vacuum-drills",):
        _post(player_client, {**body, "node": node})
        _post(gm_client, {**body, "node": node, "character_id": rich.pk, "action": "complete"})
    dear = _post(player_client, {**body, "node": "breach-rigging"})
    assert dear.status_code == 409 and "breach-charge" in dear.json()["detail"]
    Character.objects.filter(pk=rich.pk).update(inventory=[{"item": "breach-charge", "qty": 1}])
    assert _post(player_client, {**body, "node": "breach-rigging"}).status_code == 201
    rich.refresh_from_db()
    assert rich.inventory == []
    assert (
        _post(
            gm_client, {**body, "node": "breach-rigging", "character_id": rich.pk, "action": "complete"}
        ).status_code
        == 201
    )
    rich.refresh_from_db()
    assert rich.inventory == [{"item": "breach-charge", "qty": 2}]


def test_research_needs_a_running_session(campaign, rich, player_client):
    response = _post(player_client, {"campaign_id": campaign.pk, "tree": "crew-craft", "node": "relay-lore"})
    assert response.status_code == 409 and "open a session" in response.json()["detail"]


def test_drips_pay_out_on_beats(session, gm, gm_client, alliance):
    body = {
        "campaign_id": session.campaign_id,
        "tree": "compact-works",
        "alliance_id": alliance.pk,
        "node": "safe-dock",
    }
    _post(gm_client, body)
    _post(gm_client, {**body, "action": "complete"})  # Safe Dock: a medpatch every 4 beats
    for beat in ("rising", "twist", "climax", "denouement"):
        _beat_with_listeners(session, gm, beat)
    drips = list(Event.objects.filter(session=session, type="ResearchDripped"))
    assert len(drips) == 1 and drips[0].payload["items"] == [{"item": "medpatch", "qty": 1}]
    assert Campaign.objects.get(pk=session.campaign_id).stash == [{"item": "medpatch", "qty": 1}]
    session.refresh_from_db()
    assert (
        reducer.replay(to_record(e) for e in Event.objects.filter(session=session).order_by("seq"))
        == session.state
    )


def test_an_archived_campaign_takes_no_research(session, rich, player_client):
    Campaign.objects.filter(pk=session.campaign_id).update(archived=True)
    response = _post(
        player_client, {"campaign_id": session.campaign_id, "tree": "crew-craft", "node": "relay-lore"}
    )
    assert response.status_code == 409
    assert not _research_events(session)  # the event store refuses it itself (campaigns.lifecycle)
