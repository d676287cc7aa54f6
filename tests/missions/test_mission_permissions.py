"""Who may install missions and decks and read a mission's source: the site's operators (staff,
or a user given the model's "add" permission), never a GM just because they run a campaign —
anyone can create one. And the per-user limit on installs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from missions.models import Mission
from narrative.models import StoryDeck

STARTER = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter"
VESPER = (STARTER / "missions" / "vesper-relay.mission").read_text()
HIJACKED = VESPER.replace('"The Silence at Vesper Relay"', '"Vesper Relay (hijacked)"')
DECK = json.loads((STARTER / "decks" / "reach-twists.json").read_text())


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_a_gm_of_their_own_campaign_cannot_read_or_replace_a_mission(session, rival_client):
    """issue 11 hole 1: a user who created a sandbox campaign (so is "a GM") read every mission's
    hidden source and replaced vesper-relay for every campaign on the server."""
    detail = rival_client.get("/api/missions/vesper-relay")
    assert detail.status_code == 403
    assert "hidden until" not in detail.content.decode()
    assert "operators" in detail.json()["detail"]

    before = list(Mission.objects.values_list("pk", flat=True))
    refused = post(rival_client, "/api/missions", {"source": HIJACKED})
    assert refused.status_code == 403 and "operators" in refused.json()["detail"]
    assert list(Mission.objects.values_list("pk", flat=True)) == before
    assert not Mission.objects.filter(title__contains="hijacked").exists()


def test_the_campaigns_own_gm_players_and_outsiders_are_refused_too(
    session, gm_client, player_client, outsider_client
):
    for client in (gm_client, player_client, outsider_client):
        assert client.get("/api/missions/vesper-relay").status_code == 403
        assert post(client, "/api/missions", {"source": HIJACKED}).status_code == 403
        assert post(client, "/api/decks", DECK).status_code == 403
        # The catalogue stays open to signed-in users: a GM picks from it; it holds no spoilers.
        listed = client.get("/api/missions")
        assert listed.status_code == 200 and "source" not in listed.json()[0]
    assert not Mission.objects.filter(title__contains="hijacked").exists()


def test_a_gm_of_their_own_campaign_cannot_install_a_deck(session, rival_client, rival_gm):
    """issue 11 hole 1: decks are server-wide content too (every campaign's twists)."""
    StoryDeck.objects.filter(slug="reach-twists").update(sha256="stale")  # so an install would write
    refused = post(rival_client, "/api/decks", DECK)
    assert refused.status_code == 403 and "operators" in refused.json()["detail"]
    assert StoryDeck.objects.get(slug="reach-twists").sha256 == "stale"
    assert StoryDeck.objects.get(slug="reach-twists").installed_by_id != rival_gm.pk


@pytest.mark.parametrize("who", ["operator", "designer"])
def test_operators_install_missions_and_decks_and_read_sources(session, who, request):
    user = request.getfixturevalue(who)
    client = request.getfixturevalue(f"{who}_client")
    detail = client.get("/api/missions/vesper-relay")
    assert detail.status_code == 200 and "hidden until" in detail.json()["source"]

    created = post(client, "/api/missions", {"source": HIJACKED.replace("hijacked", "director's cut")})
    assert created.status_code == 201
    assert Mission.objects.get(content_hash=created.json()["content_hash"]).installed_by == user

    StoryDeck.objects.filter(slug="reach-twists").update(sha256="stale")
    installed = post(client, "/api/decks", DECK)
    assert installed.status_code == 201 and installed.json()["changed"] is True
    assert StoryDeck.objects.get(slug="reach-twists").installed_by == user


def test_the_view_permission_reads_sources_but_does_not_install(session, outsider, outsider_client):
    from django.contrib.auth.models import Permission

    outsider.user_permissions.add(Permission.objects.get(codename="view_mission"))
    assert outsider_client.get("/api/missions/vesper-relay").status_code == 200
    assert post(outsider_client, "/api/missions", {"source": HIJACKED}).status_code == 403


def test_an_inactive_staff_account_installs_nothing(session, operator):
    from missions.services import can_install_missions, can_read_mission_source
    from narrative.services import can_install_decks

    operator.is_active = False
    assert not (
        can_install_missions(operator) or can_install_decks(operator) or can_read_mission_source(operator)
    )


def test_installs_are_rate_limited_per_user(session, settings, operator_client, designer_client):
    """issue 11 hole 10: mission uploads were unlimited. Mission and deck installs share one
    per-user budget; another operator keeps theirs."""
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "content_install": (3, 3600, "installs")}
    for n in range(2):
        source = HIJACKED.replace("hijacked", f"draft {n}")
        assert post(operator_client, "/api/missions", {"source": source}).status_code == 201
    assert post(operator_client, "/api/decks", DECK).status_code == 200  # the third install
    refused = post(operator_client, "/api/missions", {"source": HIJACKED.replace("hijacked", "draft 9")})
    assert refused.status_code == 429 and "at most 3 installs" in refused.json()["detail"]
    assert not Mission.objects.filter(title__contains="draft 9").exists()
    assert post(operator_client, "/api/decks", DECK).status_code == 429
    # The limit is the flooder's alone.
    assert post(designer_client, "/api/missions", {"source": HIJACKED}).status_code == 201
