"""The GM chooses the campaign's narrator voice on the campaign page (issue 14, part 4): shown,
chosen, refused to anyone else, and used for the next narration."""

import pytest

from campaigns.models import Campaign
from media.speech import narration, voices


def _url(campaign):
    return f"/campaigns/{campaign.pk}/voice"


@pytest.mark.django_db
def test_the_gm_sees_the_voices_and_picks_one_that_the_narration_then_uses(gm_client, campaign, session):
    page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'name="voice"' in page and "Gravel — deep and rough" in page

    response = gm_client.post(_url(campaign), {"voice": "gravel"})
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).settings["voice"]["gm"] == "gravel"
    narration._voices.clear()  # the per-session cache of a running worker
    assert narration.gm_voice(session.pk).key == voices.CATALOGUE["gravel"].key
    page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert '<option value="gravel" selected>' in page

    # "" goes back to the personality's own voice.
    assert gm_client.post(_url(campaign), {"voice": ""}).status_code == 302
    assert "gm" not in Campaign.objects.get(pk=campaign.pk).settings["voice"]


@pytest.mark.django_db
def test_an_unknown_voice_is_refused_and_nothing_changes(gm_client, campaign):
    response = gm_client.post(_url(campaign), {"voice": "../../etc/passwd"})
    assert response.status_code == 422
    assert "voice" not in (Campaign.objects.get(pk=campaign.pk).settings or {})


@pytest.mark.django_db
def test_players_outsiders_and_strangers_cannot_choose(player_client, outsider_client, client, campaign):
    assert player_client.post(_url(campaign), {"voice": "low"}).status_code == 403
    assert outsider_client.post(_url(campaign), {"voice": "low"}).status_code == 404
    anonymous = client.post(_url(campaign), {"voice": "low"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert "voice" not in (Campaign.objects.get(pk=campaign.pk).settings or {})
    page = player_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'name="voice"' not in page
