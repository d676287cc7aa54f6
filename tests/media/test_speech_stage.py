"""On a stage, the GM's beat summary is spoken as it streams: the audio goes to the session
group, which every stage socket (speakers, audience, spectators) is in."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from campaigns.stage import windows as stage_windows
from media.speech import narration, registry
from realtime import broadcast
from tests.campaigns.conftest import commit, player2, spectator, stage  # noqa: F401 - fixtures
from tests.campaigns.stage_helpers import _act, _m, _speaker
from tests.media.test_speech_narration import CountingTTS

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_the_beat_summary_is_spoken_to_the_whole_stage(
    stage,  # noqa: F811 - the fixture, imported above
    gm,
    player,
    commit,  # noqa: F811
    settings,
    tmp_path,
    monkeypatch,
):
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "narration": "always", "audio_dir": str(tmp_path)}
    narration.reset_state()
    tts = CountingTTS()
    monkeypatch.setattr(registry, "tts", lambda: tts)
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: sent.append((group, message)))
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, stage.campaign))
    _act(stage, player, "I cover the hatch while the others run", "s1")
    commit(stage_windows.window_close, session=stage, membership=_m(gm, stage.campaign))
    assert narration.drain(20)
    summary = Event.objects.get(session=stage, type="Narration")
    close_seq = Event.objects.get(session=stage, type="BatchWindowClosed").seq
    spoken = [(g, m) for g, m in sent if m["type"] == "session.audio" and m["action_seq"] == close_seq]
    assert spoken and all(g == broadcast.session_group(stage.pk) and m["ok"] for g, m in spoken)
    first_words = " ".join(m["text"] for _, m in spoken).split()[:4]
    assert first_words == summary.payload["text"].replace("*", "").split()[:4]
    narration.reset_state()
