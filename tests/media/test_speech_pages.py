"""The voice controls on the play and stage pages: everyone who can see the session gets the
captions and the GM's voice; the talk button is the script's to show (only with an action box
and a microphone). Outsiders get neither page."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_play_page_has_the_voice_controls_for_gm_and_player(gm_client, player_client, session):
    for client in (gm_client, player_client):
        html = client.get(f"/sessions/{session.pk}/play/").content.decode()
        assert 'id="voice"' in html and f'data-speech-url="/api/sessions/{session.pk}/speech"' in html
        assert 'id="voice-feed"' in html and "voice.js" in html
        assert 'id="voice-ptt"' in html and 'id="voice-unlock"' in html


def test_spectators_get_captions_and_voice(campaign, session):
    from campaigns.models import Membership
    from tests.conftest import _user

    user = _user("spectator")
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.SPECTATOR)
    client = Client()
    client.force_login(user)
    html = client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert 'id="voice-caption"' in html and 'id="voice-feed"' in html
    assert 'id="action-text"' not in html  # so the script never shows them a talk button


def test_stage_page_has_them_too(gm_client, gm, campaign, characters):
    from campaigns import selectors
    from campaigns.stage import services as stage_services

    stage = stage_services.stage_open(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk), title="Town hall"
    )
    html = gm_client.get(f"/sessions/{stage.pk}/stage/").content.decode()
    assert 'id="voice"' in html and "voice.js" in html and f"/api/sessions/{stage.pk}/speech" in html


def test_outsiders_get_no_page(outsider_client, session):
    assert outsider_client.get(f"/sessions/{session.pk}/play/").status_code == 404
