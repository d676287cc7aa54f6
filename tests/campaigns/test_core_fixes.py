"""Fixes found by reviewing the campaigns core: NUL in lookups, tokens, invite links behind a
proxy, ending a session twice, stage sessions on the party pages, whispers after the end."""

from __future__ import annotations

import json

import pytest

from campaigns import selectors, services
from campaigns.errors import Conflict
from campaigns.models import Event
from campaigns.stage import services as stage_services
from gtw_site.models import ApiToken


def post(client, url, data=None):
    return client.post(url, json.dumps(data or {}), content_type="application/json")


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


def test_invite_links_use_the_site_url_on_the_page_as_in_the_api(gm_client, campaign, settings):
    settings.SITE_URL = "https://game.example.com"
    page = gm_client.post(f"/campaigns/{campaign.pk}/invites", {"role": "player"}).content.decode()
    api = post(gm_client, f"/api/campaigns/{campaign.pk}/invites", {"role": "player"}).json()["url"]
    assert "https://game.example.com/invite/" in page and api.startswith("https://game.example.com/invite/")


def test_ending_twice_appends_one_event_and_the_page_shrugs(session, gm, gm_client):
    seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    services.session_end(session=session, membership=seat)
    with pytest.raises(Conflict):
        services.session_end(session=session, membership=seat)
    assert gm_client.post(f"/sessions/{session.pk}/end").status_code == 302  # a double click
    assert Event.objects.filter(session=session, type="SessionEnded").count() == 1
    services.session_resume(session=session, membership=seat)
    services.session_resume(session=session, membership=seat)  # already active: nothing to add
    assert Event.objects.filter(session=session, type="SessionResumed").count() == 1


def test_no_whisper_into_an_ended_session(session, gm, player):
    seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    services.session_end(session=session, membership=seat)
    session.refresh_from_db()
    with pytest.raises(Conflict):
        services.session_whisper(session=session, membership=seat, to_user_id=player.pk, text="psst")


def test_stage_sessions_live_on_the_stage_page(campaign, gm, gm_client, player_client):
    stage = stage_services.stage_open(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk), title="Town hall"
    )
    page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f"/sessions/{stage.pk}/stage/" in page and f"/sessions/{stage.pk}/play/" not in page
    r = player_client.get(f"/sessions/{stage.pk}/play/")
    assert r.status_code == 302 and r["Location"].endswith(f"/sessions/{stage.pk}/stage/")
