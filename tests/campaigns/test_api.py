"""The HTTP API with the three personas. Outsiders get 404 (no existence leak) everywhere."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from campaigns.models import Event, Invite, Membership


def post(client, url, data=None, **extra):
    return client.post(url, json.dumps(data or {}), content_type="application/json", **extra)


def test_campaign_create_and_list_only_mine(gm_client, outsider_client, content):
    r = post(gm_client, "/api/campaigns", {"name": "Ice Moon Heist", "pack": "starter"})
    assert r.status_code == 201
    cid = r.json()["id"]
    mine = gm_client.get("/api/campaigns").json()
    assert [c["id"] for c in mine] == [cid] and mine[0]["role"] == "gm"
    assert outsider_client.get("/api/campaigns").json() == []


def test_campaign_from_unknown_pack_is_a_clear_422(gm_client, content):
    r = post(gm_client, "/api/campaigns", {"name": "X", "pack": "no-such-pack"})
    assert r.status_code == 422
    assert "no content pack called 'no-such-pack'" in r.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "", "pack": "starter"},
        {"name": "x" * 121, "pack": "starter"},
        {"name": "a\x00b", "pack": "starter"},
        {"name": 5, "pack": []},
    ],
)
def test_campaign_create_bad_input(gm_client, content, body):
    r = post(gm_client, "/api/campaigns", body)
    assert r.status_code == 422, r.content
    assert r.json()["detail"]


def test_invite_flow(gm_client, outsider, outsider_client, campaign):
    r = post(gm_client, f"/api/campaigns/{campaign.pk}/invites")
    assert r.status_code == 201
    code, url = r.json()["code"], r.json()["url"]
    assert url.endswith(f"/invite/{code}/")
    r = post(outsider_client, f"/api/invites/{code}/accept")
    assert r.status_code == 200 and r.json() == {"campaign": campaign.pk, "role": "player"}
    assert Membership.objects.get(campaign=campaign, user=outsider).role == "player"


def test_reused_invite_is_gone(gm_client, campaign, outsider_client, db):
    from tests.conftest import _user

    code = post(gm_client, f"/api/campaigns/{campaign.pk}/invites").json()["code"]
    assert post(outsider_client, f"/api/invites/{code}/accept").status_code == 200
    # The same person again: idempotent.
    assert post(outsider_client, f"/api/invites/{code}/accept").status_code == 200
    someone_else = Client()
    someone_else.force_login(_user("late"))
    r = post(someone_else, f"/api/invites/{code}/accept")
    assert r.status_code == 410 and "already been used" in r.json()["detail"]


def test_expired_invite_is_gone(gm_client, campaign, outsider_client):
    code = post(gm_client, f"/api/campaigns/{campaign.pk}/invites").json()["code"]
    Invite.objects.filter(code=code).update(expires_at=timezone.now() - timedelta(minutes=1))
    r = post(outsider_client, f"/api/invites/{code}/accept")
    assert r.status_code == 410 and "expired" in r.json()["detail"]


def test_unknown_invite_is_404(outsider_client, content):
    assert post(outsider_client, "/api/invites/nope/accept").status_code == 404


def test_only_the_gm_invites_and_opens_sessions(player_client, campaign):
    assert post(player_client, f"/api/campaigns/{campaign.pk}/invites").status_code == 403
    assert post(player_client, f"/api/campaigns/{campaign.pk}/sessions").status_code == 403


def test_character_creation_and_validation(player_client, campaign):
    url = f"/api/campaigns/{campaign.pk}/characters"
    assert post(player_client, url, {"name": "Kira", "archetype": "wizard"}).status_code == 422
    r = post(player_client, url, {"name": "Kira", "archetype": "netrunner", "attributes": {"might": 30}})
    assert r.status_code == 422 and "might" in r.json()["detail"]
    r = post(player_client, url, {"name": "Kira", "archetype": "netrunner"})
    assert r.status_code == 201
    r = post(player_client, url, {"name": "Kira 2", "archetype": "netrunner"})
    assert r.status_code == 409


def test_session_action_and_events(gm_client, player_client, session):
    url = f"/api/sessions/{session.pk}"
    r = post(
        player_client, f"{url}/actions", {"text": "I look around the docking ring", "idempotency_key": "a-1"}
    )
    assert r.status_code == 202 and r.json()["seq"] == 2
    events = gm_client.get(f"{url}/events?after=0").json()["events"]
    assert [e["seq"] for e in events][:2] == [1, 2]
    assert events[1]["type"] == "Action" and events[1]["payload"]["text"] == "I look around the docking ring"
    after = gm_client.get(f"{url}/events?after=1").json()["events"]
    assert after[0]["seq"] == 2
    # Replaying the idempotency key returns the original seq, adds nothing.
    again = post(player_client, f"{url}/actions", {"text": "something else", "idempotency_key": "a-1"})
    assert again.status_code == 202 and again.json() == {"seq": 2, "replayed": True}
    assert Event.objects.filter(session=session, type="Action").count() == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("x" * 2001, "at most 2000"),
        ("a\x00b", "NUL"),
        ("\ud800 lone", "unicode"),
        (None, "text"),
    ],
)
def test_bad_action_text_is_refused_and_stores_nothing(player_client, session, text, fragment):
    r = post(player_client, f"/api/sessions/{session.pk}/actions", {"text": text, "idempotency_key": "k"})
    assert r.status_code == 422
    assert fragment.lower() in r.json()["detail"].lower()
    assert not Event.objects.filter(session=session, type="Action").exists()


def test_bad_idempotency_key(player_client, session):
    r = post(
        player_client, f"/api/sessions/{session.pk}/actions", {"text": "hi", "idempotency_key": "has space"}
    )
    assert r.status_code == 422


def test_malformed_json_body(player_client, session):
    r = player_client.post(
        f"/api/sessions/{session.pk}/actions", "{not json", content_type="application/json"
    )
    assert r.status_code in (400, 422)


def test_spectator_cannot_act(gm, gm_client, session, outsider, outsider_client):
    code = post(gm_client, f"/api/campaigns/{session.campaign_id}/invites", {"role": "spectator"}).json()[
        "code"
    ]
    post(outsider_client, f"/api/invites/{code}/accept")
    r = post(outsider_client, f"/api/sessions/{session.pk}/actions", {"text": "hi", "idempotency_key": "s"})
    assert r.status_code == 403
    assert outsider_client.get(f"/api/sessions/{session.pk}/events").status_code == 200


def test_resume_ended_session(gm, gm_client, player_client, session):
    from campaigns import selectors, services

    services.session_end(
        session=session, membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    r = post(player_client, f"/api/sessions/{session.pk}/actions", {"text": "hi", "idempotency_key": "x"})
    assert r.status_code == 409 and "ended" in r.json()["detail"]
    assert post(player_client, f"/api/sessions/{session.pk}/resume").status_code == 403
    r = post(gm_client, f"/api/sessions/{session.pk}/resume")
    assert r.status_code == 200 and r.json()["status"] == "active"


def test_outsider_is_refused_on_every_endpoint(outsider_client, session):
    cid, sid = session.campaign_id, session.pk
    refused = [
        post(outsider_client, f"/api/campaigns/{cid}/invites"),
        post(outsider_client, f"/api/campaigns/{cid}/characters", {"name": "x", "archetype": "netrunner"}),
        post(outsider_client, f"/api/campaigns/{cid}/sessions"),
        post(outsider_client, f"/api/sessions/{sid}/resume"),
        post(outsider_client, f"/api/sessions/{sid}/actions", {"text": "hi", "idempotency_key": "o"}),
        post(outsider_client, f"/api/sessions/{sid}/actions/2/retry"),
        post(outsider_client, f"/api/campaigns/{cid}/memories", {"text": "x"}),
        post(outsider_client, "/api/memory/query", {"campaign": cid, "query": "x"}),
        post(outsider_client, f"/api/sessions/{sid}/branch", {"at_seq": 1}),
        post(outsider_client, f"/api/sessions/{sid}/whispers", {"to": 1, "text": "x"}),
        outsider_client.get(f"/api/sessions/{sid}/events"),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    # Same answer as for something that does not exist at all: no existence leak.
    assert outsider_client.get("/api/sessions/999999/events").json() == refused[-1].json()


def test_anonymous_gets_401(client, session):
    assert client.get("/api/campaigns").status_code == 401
    assert client.get(f"/api/sessions/{session.pk}/events").status_code == 401


def test_bearer_token_from_management_command(session, player, capsys):
    call_command("gtw_token", player.username)
    token = capsys.readouterr().out.strip().splitlines()[-1]
    api = Client()
    r = api.get(f"/api/sessions/{session.pk}/events", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = api.post(
        f"/api/sessions/{session.pk}/actions",
        json.dumps({"text": "scripted", "idempotency_key": "bot-1"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 202
    assert api.get("/api/campaigns", headers={"Authorization": "Bearer gtw_wrong"}).status_code == 401


def test_gtw_token_create_makes_the_user(db, capsys):
    from django.contrib.auth import get_user_model

    call_command("gtw_token", "robot", "--create")
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("gtw_")
    assert get_user_model().objects.filter(username="robot").exists()


def test_session_auth_needs_csrf(gm, content):
    client = Client(enforce_csrf_checks=True)
    client.force_login(gm)
    r = post(client, "/api/campaigns", {"name": "x", "pack": "starter"})
    assert r.status_code == 403


def test_openapi_docs(client, db):
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_token_last_used_is_written_at_most_once_a_minute(session, player):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gtw_site.models import ApiToken

    token, raw = ApiToken.issue(user=player, name="script")
    api, auth = Client(), {"Authorization": f"Bearer {raw}"}
    assert api.get(f"/api/sessions/{session.pk}/events", headers=auth).status_code == 200
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        assert api.get(f"/api/sessions/{session.pk}/events", headers=auth).status_code == 200
    assert not [q for q in queries if q["sql"].startswith('UPDATE "gtw_site_apitoken"')]
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    assert api.get(f"/api/sessions/{session.pk}/events", headers=auth).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > first


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/invites/ab%00cd/accept", None),
        ("/api/campaigns", {"name": "X", "pack": "st\u0000arter"}),
        ("/api/campaigns", {"name": "X", "pack": "starter", "personality": "a\u0000"}),
        ("/api/tokens", {"name": "a\u0000b"}),
    ],
)
def test_a_nul_in_a_lookup_is_a_4xx_not_a_500(player_client, content, url, body):
    r = post(player_client, url, body)
    assert 400 <= r.status_code < 500, r.content
    assert "NUL" in r.json()["detail"] or r.status_code == 404


def test_invite_links_use_the_site_url_on_the_page_as_in_the_api(gm_client, campaign, settings):
    settings.SITE_URL = "https://game.example.com"
    page = gm_client.post(f"/campaigns/{campaign.pk}/invites", {"role": "player"}).content.decode()
    api = post(gm_client, f"/api/campaigns/{campaign.pk}/invites", {"role": "player"}).json()["url"]
    assert "https://game.example.com/invite/" in page and api.startswith("https://game.example.com/invite/")
