"""`gtw doctor` names the piper voice file a personality or campaign wants and the voices folder
lacks, and says the stt and tts roles load."""

from __future__ import annotations

import pytest

from media.speech import doctor, registry

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def voices_dir(settings, tmp_path):
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "voices_dir": str(tmp_path)}
    registry.reset()
    yield tmp_path
    registry.reset()


def by_label(lines):
    return {label: (good, detail) for good, label, detail in lines}


def test_a_missing_voice_file_is_named_with_who_uses_it(content, voices_dir):
    from campaigns.models import PersonalityPreset

    preset = PersonalityPreset.objects.get(slug="space-opera")
    preset.data = {**preset.data, "tts_profile": {"voice": "en_GB-alan-medium", "rate": 1.0}}
    preset.save()
    lines = by_label(doctor.checks())
    assert lines["stt"][0] and lines["tts"][0]
    good, detail = lines["voices"]
    assert not good
    assert str(voices_dir / "en_GB-alan-medium.onnx") in detail and "space-opera" in detail
    (voices_dir / "en_GB-alan-medium.onnx").write_bytes(b"x")
    (voices_dir / "en_GB-alan-medium.onnx.json").write_text("{}")
    good, detail = by_label(doctor.checks())["voices"]
    assert good and "en_GB-alan-medium" in detail


def test_catalogue_voices_need_no_files(content, voices_dir):
    good, detail = by_label(doctor.checks())["voices"]
    assert good and "offline variations" in detail


def test_a_broken_stt_setting_fails_its_line(content, settings):
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "stt": {"provider": "openai_compatible", "timeout": 5.0}}
    registry.reset()
    try:
        good, detail = by_label(doctor.checks())["stt"]
        assert not good and "GTW_SPEECH_BASE_URL" in detail
    finally:
        registry.reset()
