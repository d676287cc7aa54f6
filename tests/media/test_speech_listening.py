"""The GM's narration is synthesised only while someone at the session listens (a page with
voice on and audio unlocked says so): nobody listening costs the turns no CPU."""

import pytest
from django.core.cache import cache

from media.speech import narration


@pytest.fixture
def listening_mode(settings):
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "narration": True}
    cache.delete(narration._listening_key(999_999))


@pytest.mark.django_db
def test_members_say_they_listen_and_the_narration_is_then_spoken(
    listening_mode, session, player_client, gm_client
):
    cache.delete(narration._listening_key(session.pk))
    assert narration.listener(session.pk, 1) is None  # nobody listens: nothing synthesised
    assert player_client.post(f"/api/sessions/{session.pk}/voice/listening").status_code == 204
    assert narration.is_listened(session.pk)
    assert narration.listener(session.pk, 2) is not None
    assert not narration.is_listened(999_999)  # another session is not affected
    assert gm_client.post(f"/api/sessions/{session.pk}/voice/listening").status_code == 204


@pytest.mark.django_db
def test_outsiders_cannot_switch_a_sessions_voice_on(listening_mode, session, outsider_client, client):
    cache.delete(narration._listening_key(session.pk))
    assert outsider_client.post(f"/api/sessions/{session.pk}/voice/listening").status_code == 404
    assert client.post(f"/api/sessions/{session.pk}/voice/listening").status_code in (401, 403)
    assert not narration.is_listened(session.pk)


def test_always_and_never_ignore_the_listeners(settings):
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "narration": "always"}
    assert narration.is_listened(123)
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "narration": False}
    assert not narration.is_listened(123)
