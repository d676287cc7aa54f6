"""Server-rendered pages with the three personas, and the account flows."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from campaigns import selectors
from campaigns.models import Campaign, Character, Membership, PlaySession
from campaigns.stage import services as stage_services
from gtw_site.models import ApiToken


def test_newcomer_flow_through_the_pages(gm_client, player_client, gm, player, content):
    r = gm_client.post(
        "/campaigns/new", {"name": "Relay Run", "pack": "starter", "personality": "noir-veteran"}
    )
    campaign = Campaign.objects.get(name="Relay Run")
    assert r.status_code == 302 and r["Location"] == f"/campaigns/{campaign.pk}/"
    page = gm_client.get(f"/campaigns/{campaign.pk}/")
    assert page.status_code == 200 and b"Create invite link" in page.content
    # The invite link is created with htmx and rendered from the page's own partial.
    r = gm_client.post(
        f"/campaigns/{campaign.pk}/invites", {"role": "player"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and b"/invite/" in r.content and b"<html" not in r.content
    link = r.content.decode().split('value="')[1].split('"')[0]
    code = link.rstrip("/").rsplit("/", 1)[-1]
    assert player_client.get(f"/invite/{code}/").status_code == 200
    r = player_client.post(f"/invite/{code}/")
    assert r.status_code == 302 and Membership.objects.filter(campaign=campaign, user=player).exists()
    player_client.post(
        f"/campaigns/{campaign.pk}/characters", {"name": "Kira", "archetype": "netrunner", "attr_tech": "15"}
    )
    # Over the point budget (envoy sums to 60 already): refused with a message, nothing stored.
    r = gm_client.post(
        f"/campaigns/{campaign.pk}/characters",
        {"name": "Ward", "archetype": "envoy", "attr_tech": "15"},
        follow=True,
    )
    assert b"budget" in r.content
    gm_client.post(f"/campaigns/{campaign.pk}/characters", {"name": "Ward", "archetype": "envoy"})
    assert Character.objects.filter(campaign=campaign).count() == 2
    assert Character.objects.get(name="Kira").attributes["tech"] == 15
    r = gm_client.post(f"/campaigns/{campaign.pk}/sessions", {"title": "Docking"})
    session = PlaySession.objects.get(campaign=campaign)
    assert r["Location"] == f"/sessions/{session.pk}/play/"
    play = player_client.get(f"/sessions/{session.pk}/play/")
    assert play.status_code == 200
    html = play.content.decode()
    assert 'ws-connect="/ws/sessions/' in html and 'id="action-text"' in html and "Docking Ring C" in html


def test_dashboard_join_box_accepts_a_whole_url(player_client, content):
    r = player_client.post("/campaigns/join", {"code": "http://localhost:8000/invite/abc123/"})
    assert r["Location"] == "/invite/abc123/"


def test_bad_character_input_shows_a_message(player_client, campaign):
    r = player_client.post(
        f"/campaigns/{campaign.pk}/characters", {"name": "", "archetype": "netrunner"}, follow=True
    )
    assert b"required" in r.content
    r = player_client.post(
        f"/campaigns/{campaign.pk}/characters",
        {"name": "K", "archetype": "netrunner", "attr_tech": "lots"},
        follow=True,
    )
    assert b"whole number" in r.content


def test_used_invite_page_says_so(gm, campaign, outsider_client, player):
    from campaigns import selectors, services

    invite = services.invite_create(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))
    from tests.conftest import _user

    services.invite_accept(code=invite.code, user=_user("first"))
    r = outsider_client.post(f"/invite/{invite.code}/")
    assert r.status_code == 410 and b"already been used" in r.content


def test_outsider_is_refused_on_every_page(outsider_client, session):
    cid, sid = session.campaign_id, session.pk
    responses = {
        "campaign": outsider_client.get(f"/campaigns/{cid}/"),
        "invite": outsider_client.post(f"/campaigns/{cid}/invites"),
        "character": outsider_client.post(
            f"/campaigns/{cid}/characters", {"name": "x", "archetype": "netrunner"}
        ),
        "personality": outsider_client.post(f"/campaigns/{cid}/personality", {"personality": "noir-veteran"}),
        "session": outsider_client.post(f"/campaigns/{cid}/sessions"),
        "play": outsider_client.get(f"/sessions/{sid}/play/"),
        "memory": outsider_client.get(f"/campaigns/{cid}/memory/"),
        "memory-note": outsider_client.post(f"/campaigns/{cid}/memory/", {"text": "x"}),
        "resume": outsider_client.post(f"/sessions/{sid}/resume"),
        "end": outsider_client.post(f"/sessions/{sid}/end"),
        "branch": outsider_client.post(f"/sessions/{sid}/branch", {"at_seq": 1}),
    }
    assert {k: r.status_code for k, r in responses.items()} == dict.fromkeys(responses, 404)
    assert b"Vesper Run" not in responses["campaign"].content
    assert outsider_client.get("/").status_code == 200
    assert b"Vesper Run" not in outsider_client.get("/").content


def test_player_cannot_do_gm_things_on_pages(player_client, session):
    assert player_client.post(f"/campaigns/{session.campaign_id}/sessions").status_code == 403
    assert player_client.post(f"/sessions/{session.pk}/end").status_code == 403


@pytest.mark.parametrize("url", ["/", "/campaigns/1/", "/sessions/1/play/", "/account/tokens/"])
def test_anonymous_is_sent_to_sign_in(client, db, url):
    r = client.get(url)
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_signup_rejects_taken_email_and_weak_password(client, gm):
    r = client.post(
        "/accounts/signup/",
        {
            "email": gm.email,
            "username": "newbie",
            "password1": "Str0ng-enough-pass",
            "password2": "Str0ng-enough-pass",
        },
    )
    assert r.status_code == 200 and b"already registered" in r.content
    r = client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "username": "newbie", "password1": "123", "password2": "123"},
    )
    assert r.status_code == 200 and b"too short" in r.content
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_signup_and_login_with_email(client, db):
    r = client.post(
        "/accounts/signup/",
        {
            "email": "nova@example.com",
            "username": "nova",
            "password1": "Str0ng-enough-pass",
            "password2": "Str0ng-enough-pass",
        },
    )
    assert r.status_code == 302
    client.logout()
    r = client.post("/accounts/login/", {"login": "nova@example.com", "password": "Str0ng-enough-pass"})
    assert r.status_code == 302
    assert client.get("/").status_code == 200


def test_token_page_creates_and_revokes(player_client, player):
    r = player_client.post("/account/tokens/", {"name": "bot"})
    assert b"gtw_" in r.content
    token = player.api_tokens.get()
    player_client.post("/account/tokens/", {"revoke": token.pk})
    assert not player.api_tokens.exists()


def test_healthz(client, db):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"db": "ok", "pgvector": "ok", "redis": "ok"}


def test_healthz_names_what_is_down(client, db, settings):
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["redis"].startswith("down") and r.json()["db"] == "ok"


def test_database_down_gets_a_clear_503(player_client, session, monkeypatch):
    from django.db import OperationalError

    from campaigns import views

    def boom(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(views.selectors, "membership_get", boom)
    r = player_client.get(f"/campaigns/{session.campaign_id}/")
    assert r.status_code == 503 and b"database is unavailable" in r.content


def test_admin_shows_read_only_event_log(gm, session):
    from django.test import Client

    gm.is_staff = gm.is_superuser = True
    gm.save()
    c = Client()
    c.force_login(gm)
    r = c.get(f"/admin/campaigns/playsession/{session.pk}/change/")
    assert r.status_code == 200 and b"SessionOpened" in r.content
    assert c.get("/admin/campaigns/event/add/").status_code == 403
    for model in ("campaign", "membership", "character", "personalitypreset", "contentpack"):
        assert c.get(f"/admin/campaigns/{model}/").status_code == 200


def test_nul_on_the_pages_too(player_client, gm_client, campaign):
    assert player_client.post("/invite/ab%00cd/").status_code in (404, 422)
    personality = gm_client.post(f"/campaigns/{campaign.pk}/personality", {"personality": "a\x00"})
    assert personality.status_code == 422
    assert gm_client.post("/account/tokens/", {"name": "a\x00b"}).status_code == 422


def test_the_tokens_page_ignores_a_bad_revoke_and_is_never_cached(player, player_client):
    token, _ = ApiToken.issue(user=player, name="mine")
    r = player_client.post("/account/tokens/", {"revoke": "abc"})
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    assert ApiToken.objects.filter(pk=token.pk).exists()
    player_client.post("/account/tokens/", {"revoke": str(token.pk)})
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    r = player_client.post("/account/tokens/", {"name": "  laptop  "})
    assert "gtw_" in r.content.decode() and ApiToken.objects.get(user=player).name == "laptop"


def test_stage_sessions_live_on_the_stage_page(campaign, gm, gm_client, player_client):
    stage = stage_services.stage_open(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk), title="Town hall"
    )
    page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f"/sessions/{stage.pk}/stage/" in page and f"/sessions/{stage.pk}/play/" not in page
    r = player_client.get(f"/sessions/{stage.pk}/play/")
    assert r.status_code == 302 and r["Location"].endswith(f"/sessions/{stage.pk}/stage/")
