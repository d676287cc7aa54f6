"""POST /api/sessions/{id}/speech: one push-to-talk utterance in, its transcript back to the
player who spoke — the real decoder and the real tiny.en model, the three personas, bad input
and faults."""

from __future__ import annotations

import threading

import pytest
from django.test import Client

from campaigns import selectors, services
from gtw_site.providers import ProviderError
from media.speech import registry
from tests.media.speech_helpers import encode, silence_webm, spoken_wav, spoken_webm, wav_samples

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

LINE = "I open the airlock and step outside."


def url(session) -> str:
    return f"/api/sessions/{session.pk}/speech"


def say(client, session, data: bytes, content_type: str = "audio/webm;codecs=opus"):
    return client.post(url(session), data=data, content_type=content_type)


def words(text: str) -> set[str]:
    return set("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.fixture
def spectator_client(campaign, gm):
    from tests.conftest import _user

    user = _user("spectator")
    invite = services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk), role="spectator"
    )
    services.invite_accept(code=invite.code, user=user)
    client = Client()
    client.force_login(user)
    return client


class TestPersonas:
    def test_player_gets_the_transcript_and_nothing_is_stored(self, player_client, session):
        from campaigns.models import Event

        before = Event.objects.filter(session=session).count()
        response = say(player_client, session, spoken_webm(LINE))
        assert response.status_code == 200, response.content
        body = response.json()
        assert {"open", "airlock", "step", "outside"} <= words(body["text"])
        assert 1500 < body["duration_ms"] < 4000
        assert Event.objects.filter(session=session).count() == before  # a transcript is not an action

    def test_a_multipart_upload_works_too(self, player_client, session):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("take.webm", spoken_webm(LINE), content_type="audio/webm")
        response = player_client.post(url(session), {"audio": upload})
        assert response.status_code == 200 and "airlock" in words(response.json()["text"])

    def test_gm_may_speak_too(self, gm_client, session):
        assert say(gm_client, session, spoken_webm(LINE)).status_code == 200

    def test_outsider_gets_404_and_no_transcript(self, outsider_client, session):
        response = say(outsider_client, session, spoken_webm(LINE))
        assert response.status_code == 404
        assert "airlock" not in response.content.decode()

    def test_signed_out_is_refused(self, session):
        assert say(Client(), session, spoken_webm(LINE)).status_code == 401

    def test_spectator_is_refused(self, spectator_client, session):
        response = say(spectator_client, session, spoken_webm(LINE))
        assert response.status_code == 403 and "listen" in response.json()["detail"]

    def test_a_stage_audience_member_is_refused_until_called_up(self, campaign, gm, player, player_client):
        from campaigns.stage import services as stage_services

        stage = stage_services.stage_open(
            membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk), title="Town hall"
        )
        refused = say(player_client, stage, spoken_webm(LINE))
        assert refused.status_code == 403 and "raise your hand" in refused.json()["detail"]
        membership = selectors.membership_get(viewer=player, campaign_id=campaign.pk)
        stage_services.hand_raise(session=stage, membership=membership)
        stage_services.hand_approve(
            session=stage,
            membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk),
            target=membership,
        )
        assert say(player_client, stage, spoken_webm(LINE)).status_code == 200


class TestBadInput:
    @pytest.mark.parametrize(
        ("data", "content_type", "status", "code"),
        [
            (b"", "audio/webm", 400, "empty"),
            (b"definitely not audio " * 50, "audio/webm", 415, "not_audio"),
            (b"%PDF-1.7\n" + bytes(500), "audio/ogg", 415, "not_audio"),
        ],
    )
    def test_not_a_recording(self, player_client, session, data, content_type, status, code):
        response = say(player_client, session, data, content_type)
        assert response.status_code == status
        assert response.json()["error"] == code and response.json()["detail"]

    def test_a_wrong_container_label_still_decodes_what_it_is(self, player_client, session):
        # A browser labels mp4 as webm (or sends no type): the decoder reads the bytes, not the label.
        response = say(player_client, session, spoken_wav(LINE), "audio/webm")
        assert response.status_code == 200 and "airlock" in words(response.json()["text"])

    @pytest.mark.parametrize("level", [0.0, 0.002])
    def test_silence_is_didnt_catch_that(self, player_client, session, level):
        response = say(player_client, session, silence_webm(2.5, level))
        assert response.status_code == 422
        assert response.json()["error"] == "no_speech" and "catch" in response.json()["detail"]

    def test_sixty_seconds_is_refused_with_the_cap(self, player_client, session):
        import numpy as np

        samples, rate = wav_samples(spoken_wav(LINE))
        minute = np.tile(samples, int(60 * rate / samples.size) + 1)[: 60 * rate]
        response = say(player_client, session, encode(minute, rate))
        assert response.status_code == 413
        assert response.json()["error"] == "too_long" and "30 seconds" in response.json()["detail"]

    def test_ten_megabytes_is_refused_before_decoding(self, player_client, session):
        response = say(player_client, session, b"\x1a\x45\xdf\xa3" + bytes(10_000_000))
        assert response.status_code == 413

    def test_a_flood_is_rate_limited_and_others_unaffected(self, player_client, gm_client, session, settings):
        settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "speech": (3, 60, "voice messages")}
        silence = silence_webm(0.5)
        codes = [say(player_client, session, silence).status_code for _ in range(5)]
        assert codes[:3] == [422, 422, 422] and codes[3:] == [429, 429]
        assert say(gm_client, session, spoken_webm(LINE)).status_code == 200


class TestFaults:
    def test_stt_down_is_a_clear_503_and_the_game_goes_on_in_text(
        self, player_client, gm_client, session, monkeypatch
    ):
        class Down:
            name = "openai"
            model = "whisper-1"

            def transcribe(self, utterance):
                raise ProviderError(
                    "could not connect to http://127.0.0.1:9/v1", retryable=True, provider="openai"
                )

        monkeypatch.setattr(registry, "stt", lambda: Down())
        response = say(player_client, session, spoken_webm(LINE))
        assert response.status_code == 503
        detail = response.json()["detail"]
        assert "type your action" in detail and "127.0.0.1" not in detail  # players see no internals
        assert "127.0.0.1" in say(gm_client, session, spoken_webm(LINE)).json()["detail"]  # the GM can fix it
        typed = player_client.post(
            f"/api/sessions/{session.pk}/actions",
            {"text": "I open the airlock.", "idempotency_key": "typed-1"},
            content_type="application/json",
        )
        assert typed.status_code == 202


class TestIsolation:
    @pytest.mark.django_db(transaction=True)
    def test_two_players_speaking_at_once_each_get_only_their_own_words(self, campaign, gm, player, session):
        from tests.conftest import _user

        other = _user("player")
        invite = services.invite_create(
            membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
        )
        services.invite_accept(code=invite.code, user=other)
        clients = {}
        for user in (player, other):
            clients[user.pk] = Client()
            clients[user.pk].force_login(user)
        lines = {player.pk: "Scan the derelict freighter.", other.pk: "Fire the forward cannons."}
        audio = {pk: spoken_webm(text) for pk, text in lines.items()}
        results: dict[int, str] = {}

        def speak(pk):
            results[pk] = say(clients[pk], session, audio[pk]).json()["text"]

        threads = [threading.Thread(target=speak, args=(pk,)) for pk in lines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {"freighter"} <= words(results[player.pk]) and "cannons" not in words(results[player.pk])
        assert {"cannons"} <= words(results[other.pk]) and "freighter" not in words(results[other.pk])
