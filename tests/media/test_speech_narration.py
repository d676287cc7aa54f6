"""The GM speaks as the narration streams: sentences cut as deltas arrive, each synthesised on
the synthesis thread, stored content-addressed, announced as `session.audio` and served to
members only; a failing voice never fails the turn; NPC lines in their own voices."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from django.test import Client

from campaigns.models import Event
from gtw_site.providers import ProviderError
from media.speech import narration, registry, store, voices
from media.speech.base import Speech
from media.speech.narration import Narration
from realtime import broadcast

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


class CountingTTS:
    """The real local voice, counting calls (so a cached sentence is seen not to be spoken)."""

    name = "local"
    model = "piper:en_US-joe-medium"

    def __init__(self, inner=None, *, fail: bool = False, gate: threading.Event | None = None):
        self.inner = inner
        self.fail = fail
        self.gate = gate
        self.calls: list[tuple[str, str]] = []

    def synthesize(self, text, voice):
        self.calls.append((text, voice.key))
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise ProviderError(
                "could not connect to http://10.0.0.9:8000/v1", retryable=True, provider="openai"
            )
        if self.inner is None:
            from tests.fakes.speech_server import tiny_wav

            return Speech(tiny_wav(), "audio/wav", 0.25)
        return self.inner.synthesize(text, voice)


@pytest.fixture
def voice_on(settings, tmp_path):
    speech = str(tmp_path / "speech")
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "narration": "always", "audio_dir": speech}
    narration.reset_state()
    yield
    narration.drain(30)
    narration.reset_state()


@pytest.fixture
def sent(monkeypatch):
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: messages.append((group, message)))
    return messages


@pytest.fixture
def tts(monkeypatch):
    fake = CountingTTS()
    monkeypatch.setattr(registry, "tts", lambda: fake)
    return fake


def audio_of(sent) -> list[dict]:
    return [m for _, m in sent if m["type"] == "session.audio"]


def test_a_sentence_is_spoken_before_the_narration_ends(voice_on, sent, tts, session):
    stream = broadcast.DeltaStream(session.pk, 7)
    stream.push("The hatch grinds open. Cold air")
    assert narration.drain(10)
    first = audio_of(sent)
    assert [(a["i"], a["text"], a["ok"]) for a in first] == [(0, "The hatch grinds open.", True)]
    stream.push(" rushes in.")
    stream.flush()
    assert narration.drain(10)
    spoken = audio_of(sent)
    assert [a["text"] for a in spoken] == ["The hatch grinds open.", "Cold air rushes in."]
    assert [a["i"] for a in spoken] == [0, 1]
    assert all(group == f"session.{session.pk}" for group, m in sent if m["type"] == "session.audio")


def test_audio_is_content_addressed_and_a_replay_speaks_nothing(voice_on, sent, tts, session):
    for seq in (3, 4):
        stream = broadcast.DeltaStream(session.pk, seq)
        stream.push("Static crackles on the relay. ")
        stream.flush()
        assert narration.drain(10)
    first, second = audio_of(sent)
    assert first["url"] == second["url"] and first["key"] == second["key"]
    assert len(tts.calls) == 1
    assert store.find(first["key"]).read_bytes().startswith(b"RIFF")


def test_the_gm_speaks_in_the_personalitys_voice(voice_on, sent, tts, session):
    from campaigns.models import PersonalityPreset

    preset = PersonalityPreset.objects.get(slug="noir-veteran")
    session.campaign.personality = preset
    session.campaign.save(update_fields=["personality"])
    stream = broadcast.DeltaStream(session.pk, 9)
    stream.push("Rain on the viewport.")
    stream.flush()
    assert narration.drain(10)
    assert audio_of(sent)[0]["voice"] == preset.data["tts_profile"]["voice"] == "low"


def test_a_failing_voice_never_fails_the_turn(
    voice_on, sent, monkeypatch, player, session, django_capture_on_commit_callbacks
):
    failing = CountingTTS(fail=True)
    monkeypatch.setattr(registry, "tts", lambda: failing)
    from narrative import turns

    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I look around the bay.", idempotency_key="v1"
        )
    assert narration.drain(10)
    assert Event.objects.filter(session=session, type="Narration").exists()
    spoken = audio_of(sent)
    assert spoken and all(a["ok"] is False and a["notice"] == "audio unavailable" for a in spoken)
    assert all("10.0.0.9" not in str(a) for a in spoken)  # players never see the provider's address
    # The breaker: after the first failure the rest are announced without waiting on the voice.
    assert len(failing.calls) == 1


def test_a_reset_preview_speaks_none_of_its_queued_sentences(voice_on, sent, monkeypatch, session):
    gate = threading.Event()
    slow = CountingTTS(gate=gate)
    monkeypatch.setattr(registry, "tts", lambda: slow)
    stream = broadcast.DeltaStream(session.pk, 11)
    stream.push("One thing happens. Another thing happens. ")
    stream.reset("retrying")
    gate.set()
    assert narration.drain(10)
    assert audio_of(sent) == []


def test_a_whole_turn_is_spoken_sentence_by_sentence_in_order(
    voice_on, sent, player, session, django_capture_on_commit_callbacks
):
    """The real piper voice, the offline narrator, a real turn."""
    from narrative import turns

    registry.reset()
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk,
            user=player,
            text="I ask the quartermaster about the relay.",
            idempotency_key="v2",
        )
    assert narration.drain(60)
    action_seq = Event.objects.get(session=session, type="Action").seq
    spoken = [a for a in audio_of(sent) if a["action_seq"] == action_seq]
    narrated = Event.objects.get(session=session, type="Narration").payload["text"]
    assert spoken and all(a["ok"] for a in spoken)
    gm = [a for a in spoken if a["voice"] == narration.gm_voice(session.pk).key]
    assert " ".join(a["text"] for a in gm).split()[:5] == narrated.replace("*", "").split()[:5]
    assert [a["i"] for a in spoken] == sorted(a["i"] for a in spoken)
    assert all(a["duration"] and a["duration"] > 0.2 for a in spoken)


def test_npc_lines_are_spoken_in_the_npcs_voice_in_their_place(voice_on, sent, tts, session):
    stream = broadcast.DeltaStream(session.pk, 21)
    stream.push("The quartermaster leans in.")
    line = SimpleNamespace(
        audience=None,
        seq=22,
        payload={"action_seq": 21, "npc": "quartermaster", "line": "Prices went up. Cash only."},
    )
    narration.npc_spoke(session.pk, [line])
    whisper = SimpleNamespace(audience=[5], seq=23, payload={"action_seq": 21, "npc": "spy", "line": "Psst."})
    narration.npc_spoke(session.pk, [whisper])
    stream.push(" He grins.")
    stream.flush()
    assert narration.drain(10)
    spoken = audio_of(sent)
    gm = narration.gm_voice(session.pk).key
    npc = voices.npc_voice("quartermaster", gm_key=gm).key
    assert [(a["text"], a["voice"]) for a in spoken] == [
        ("The quartermaster leans in.", gm),
        ("Prices went up.", npc),
        ("Cash only.", npc),
        ("He grins.", gm),
    ]
    assert npc != gm


def test_voice_off_speaks_nothing(settings, sent, tts, session):
    settings.GTW_SPEECH = {**settings.GTW_SPEECH, "narration": False}
    stream = broadcast.DeltaStream(session.pk, 5)
    stream.push("Nothing to hear. ")
    stream.flush()
    assert narration.drain(5)
    assert audio_of(sent) == [] and tts.calls == []


class TestServingAudio:
    @pytest.fixture
    def spoken(self, voice_on, sent, tts, session):
        stream = broadcast.DeltaStream(session.pk, 2)
        stream.push("A siren wails. ")
        stream.flush()
        assert narration.drain(10)
        return audio_of(sent)[0]

    def test_members_fetch_it_with_an_etag(self, spoken, player_client, gm_client):
        response = player_client.get(spoken["url"])
        assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
        assert response["ETag"] == f'"{spoken["key"]}"' and "immutable" in response["Cache-Control"]
        assert b"".join(response.streaming_content).startswith(b"RIFF")
        again = gm_client.get(spoken["url"], HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 304

    def test_outsiders_and_strangers_get_404(self, spoken, outsider_client):
        assert outsider_client.get(spoken["url"]).status_code == 404
        assert Client().get(spoken["url"]).status_code in (302, 404)

    def test_a_sentence_of_another_session_is_404_even_to_a_member(self, spoken, player_client, session, gm):
        from campaigns import selectors, services

        other = services.session_open(
            membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
        )
        assert player_client.get(f"/speech/{other.pk}/{spoken['key']}").status_code == 404
        assert player_client.get(f"/speech/{session.pk}/{'0' * 64}").status_code == 404
        assert player_client.get(f"/speech/{session.pk}/..%2Fsecret_key").status_code == 404


def test_narration_unit_keeps_order_under_npc_interleaving():
    """Pure bookkeeping: indices rise across GM and NPC sentences."""
    calls = []
    n = Narration(1, 1, voices.CATALOGUE["narrator"])
    n._say = lambda sentence, voice: calls.append((sentence, voice.key))  # type: ignore[method-assign]
    n.push("Alpha. Beta")
    n.say("Gamma.", voices.CATALOGUE["low"])
    n.push(" Delta")
    n.flush()
    assert calls == [("Alpha.", "narrator"), ("Beta", "narrator"), ("Gamma.", "low"), ("Delta", "narrator")]


def test_the_x_card_silences_the_voice_at_once(voice_on, sent, monkeypatch, session):
    """Regression guard: a tap must stop the GM mid-narration, queued sentences included."""
    gate = threading.Event()
    slow = CountingTTS(gate=gate)
    monkeypatch.setattr(registry, "tts", lambda: slow)
    stream = broadcast.DeltaStream(session.pk, 31)
    other = broadcast.DeltaStream(session.pk + 1000, 31)  # another session keeps talking
    stream.push("The creature lunges from the dark. It ")
    other.push("Elsewhere the relay hums. ")
    narration.xcard_tapped(session.pk, [SimpleNamespace(type="XCardTapped")])
    stream.push("tears into the crew. ")
    stream.flush()
    gate.set()
    assert narration.drain(10)
    assert [m["text"] for m in audio_of(sent)] == ["Elsewhere the relay hums."]
