"""The local adapters with their real small models: faster-whisper tiny.en hears what the
bundled piper voice says, hears nothing in silence or hiss, and the offline voices differ."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from media.speech import voices
from media.speech.audio import decode, loudness_dbfs
from media.speech.base import SAMPLE_RATE_STT, Utterance
from media.speech.tts_local import LocalTextToSpeech, missing_voice_files
from tests.media.speech_helpers import silence_webm, spoken_webm, wav_samples

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def stt():
    from media.speech.stt_local import LocalSpeechToText

    return LocalSpeechToText()


@pytest.fixture(scope="module")
def tts():
    return LocalTextToSpeech()


def utterance(data: bytes) -> Utterance:
    samples = decode(data, max_seconds=30)
    return Utterance(data, "audio/webm", samples, samples.size / SAMPLE_RATE_STT, loudness_dbfs(samples))


def words(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()


def test_whisper_hears_the_piper_voice(stt):
    said = "I search the captain's quarters for the missing keycard."
    heard = stt.transcribe(utterance(spoken_webm(said))).text
    expected = words(said)
    got = words(heard)
    matched = sum(1 for w in expected if w in got)
    assert matched >= len(expected) - 2, heard


@pytest.mark.parametrize("level", [0.0, 0.002])
def test_silence_and_hiss_are_never_a_sentence(stt, level):
    assert stt.transcribe(utterance(silence_webm(3.0, level))).text == ""


def test_a_missing_model_folder_is_a_clear_setup_error(tmp_path):
    from gtw_site.providers import ProviderError
    from media.speech.stt_local import LocalSpeechToText

    with pytest.raises(ProviderError) as error:
        LocalSpeechToText(model_dir=str(tmp_path))
    assert "model.bin" in str(error.value) and not error.value.retryable


def spectral_centroid(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    return float((spectrum * freqs).sum() / spectrum.sum())


def test_the_offline_voices_sound_different(tts):
    line = "The relay hums, and somewhere below a door slams shut."
    measured = {}
    for key in ("narrator", "low", "bright", "quick", "gravel", "soft"):
        # Noise off: piper samples it at random; pitch and pace are what tell the voices apart.
        speech = tts.synthesize(
            line, dataclasses.replace(voices.CATALOGUE[key], noise_scale=0.0, noise_w=0.0)
        )
        assert speech.content_type == "audio/wav" and speech.duration_s > 1
        samples, rate = wav_samples(speech.audio)
        measured[key] = (spectral_centroid(samples, rate), speech.duration_s)
    assert measured["bright"][0] > measured["narrator"][0] > measured["low"][0] > measured["gravel"][0]
    assert measured["quick"][1] < measured["narrator"][1] < measured["soft"][1]


def test_a_missing_voices_folder_file_falls_back_and_doctor_names_it(tts, tmp_path, caplog):
    local = LocalTextToSpeech(voices_dir=str(tmp_path))
    speech = local.synthesize("Hello there.", voices.named("en_GB-alan-medium"))
    assert speech.duration_s > 0.3  # the bundled voice spoke instead
    assert "en_GB-alan-medium" in caplog.text
    missing = missing_voice_files(str(tmp_path), ["en_GB-alan-medium"])
    assert any("en_GB-alan-medium.onnx" in m for m in missing)
    (tmp_path / "en_GB-alan-medium.onnx").write_bytes(b"x")
    (tmp_path / "en_GB-alan-medium.onnx.json").write_text("{}")
    assert missing_voice_files(str(tmp_path), ["en_GB-alan-medium"]) == []
