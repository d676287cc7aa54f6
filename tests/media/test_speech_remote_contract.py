"""Contract tests of the `openai` and `openai_compatible` speech adapters against a local server
speaking OpenAI's audio wire format (tests/fakes/speech_server.py), through the real SDK."""

from __future__ import annotations

import numpy as np
import pytest

from gtw_site.providers import ProviderError
from media.speech import voices
from media.speech.base import Utterance
from media.speech.remote import (
    OpenAICompatibleSpeechToText,
    OpenAICompatibleTextToSpeech,
    OpenAISpeechToText,
    OpenAITextToSpeech,
)
from tests.fakes.speech_server import SpeechReply, SpeechServer, tiny_wav


@pytest.fixture
def server():
    with SpeechServer() as running:
        yield running


def utterance() -> Utterance:
    return Utterance(
        b"\x1a\x45\xdf\xa3webm-bytes", "audio/webm;codecs=opus", np.zeros(16000, np.float32), 1.0, -20.0
    )


class TestTranscriptions:
    def test_sends_the_recording_as_multipart_and_reads_the_text(self, server):
        server.script(SpeechReply(text="  Open   the airlock. "))
        stt = OpenAISpeechToText(model="whisper-1", api_key="sk-test", base_url=server.base_url)
        assert stt.transcribe(utterance()).text == "Open the airlock."
        sent = server.requests[-1]
        assert sent.path == "/v1/audio/transcriptions"
        assert sent.headers["authorization"] == "Bearer sk-test"
        assert sent.fields["model"] == "whisper-1" and sent.fields["language"] == "en"
        assert sent.file == b"\x1a\x45\xdf\xa3webm-bytes"
        assert sent.filename == "speech.webm" and sent.file_type == "audio/webm"

    def test_compatible_server_needs_no_key_but_an_address(self, server):
        stt = OpenAICompatibleSpeechToText(model="Systran/faster-whisper-small", base_url=server.base_url)
        assert stt.transcribe(utterance()).text == "open the airlock"
        with pytest.raises(ProviderError) as error:
            OpenAICompatibleSpeechToText(model="m", base_url=None)
        assert "GTW_SPEECH_BASE_URL" in str(error.value)

    @pytest.mark.parametrize(
        ("status", "retryable", "words"), [(401, False, "OPENAI_API_KEY"), (500, True, "500")]
    )
    def test_errors_say_what_to_do(self, server, status, retryable, words):
        server.script(SpeechReply(status=status, error_message="nope"))
        stt = OpenAISpeechToText(model="whisper-1", api_key="sk-test", base_url=server.base_url)
        with pytest.raises(ProviderError) as error:
            stt.transcribe(utterance())
        assert error.value.retryable is retryable and words in str(error.value)

    def test_a_slow_server_times_out(self, server):
        server.script(SpeechReply(delay=3.0))
        stt = OpenAISpeechToText(model="whisper-1", api_key="sk-test", base_url=server.base_url, timeout=0.3)
        with pytest.raises(ProviderError) as error:
            stt.transcribe(utterance())
        assert error.value.retryable and "timed out" in str(error.value)

    def test_a_dead_server_is_a_connection_error_without_credentials(self):
        stt = OpenAICompatibleSpeechToText(model="m", base_url="http://user:secret@127.0.0.1:9/v1", timeout=1)
        with pytest.raises(ProviderError) as error:
            stt.transcribe(utterance())
        assert "secret" not in str(error.value) and "127.0.0.1:9" in str(error.value)


class TestSpeech:
    def test_sends_text_voice_and_speed_and_returns_wav(self, server):
        tts = OpenAITextToSpeech(model="tts-1", api_key="sk-test", base_url=server.base_url)
        speech = tts.synthesize("The door opens.", voices.gm_voice({"voice": "low", "rate": 1.25}))
        sent = server.requests[-1]
        assert sent.path == "/v1/audio/speech"
        assert sent.fields["input"] == "The door opens."
        assert sent.fields["voice"] == "onyx"  # the catalogue's "low"
        assert sent.fields["response_format"] == "wav"
        assert sent.fields["speed"] == pytest.approx(1.25 / voices.CATALOGUE["low"].length_scale, abs=0.01)
        assert speech.content_type == "audio/wav" and speech.duration_s == pytest.approx(0.25)

    def test_pii_is_redacted_before_it_leaves_for_a_remote_voice(self, server, settings):
        settings.GTW_REDACT = ["email"]
        tts = OpenAITextToSpeech(model="tts-1", api_key="sk-test", base_url=server.base_url)
        tts.synthesize("Mail kira@example.com now.", voices.CATALOGUE["narrator"])
        assert "kira@example.com" not in server.requests[-1].fields["input"]

    def test_not_a_wav_is_refused(self, server):
        server.script(SpeechReply(audio=b"garbage"))
        tts = OpenAICompatibleTextToSpeech(model="kokoro", base_url=server.base_url)
        with pytest.raises(ProviderError):
            tts.synthesize("Hello.", voices.CATALOGUE["narrator"])

    def test_server_error_is_retryable(self, server):
        server.script(SpeechReply(status=503, error_message="overloaded"))
        tts = OpenAITextToSpeech(model="tts-1", api_key="sk-test", base_url=server.base_url)
        with pytest.raises(ProviderError) as error:
            tts.synthesize("Hello.", voices.CATALOGUE["narrator"])
        assert error.value.retryable

    def test_fake_wav_helper_is_a_wav(self):
        assert tiny_wav().startswith(b"RIFF")


class TestRegistry:
    def test_roles_pick_the_configured_provider(self, server, settings):
        from media.speech import registry

        settings.GTW_SPEECH = {
            **settings.GTW_SPEECH,
            "stt": {"provider": "openai_compatible", "timeout": 5.0},
            "tts": {"provider": "openai", "timeout": 5.0},
            "openai": {**settings.GTW_SPEECH["openai"], "api_key": "sk-x", "base_url": server.base_url},
            "openai_compatible": {**settings.GTW_SPEECH["openai_compatible"], "base_url": server.base_url},
        }
        registry.reset()
        try:
            assert registry.STT.build("stt").name == "openai_compatible"
            assert registry.TTS.build("tts").name == "openai"
            settings.GTW_SPEECH = {**settings.GTW_SPEECH, "stt": {"provider": "nope", "timeout": 5.0}}
            with pytest.raises(ProviderError) as error:
                registry.STT.build("stt")
            assert "local" in str(error.value)
        finally:
            registry.reset()
