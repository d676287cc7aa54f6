"""The pure parts of voice: sentences cut as deltas arrive, which voice speaks, the audio
checks. No database, no model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.speech import voices
from media.speech.audio import AudioRefused, decode, is_silent, loudness_dbfs, shift_pitch, wav_bytes
from media.speech.sentences import SentenceSplitter, split_all


def feed_in_pieces(text: str, size: int) -> list[str]:
    splitter = SentenceSplitter()
    out: list[str] = []
    for start in range(0, len(text), size):
        out += splitter.feed(text[start : start + size])
    return out + splitter.end()


class TestSentences:
    def test_a_sentence_is_out_as_soon_as_the_next_delta_starts_it(self):
        splitter = SentenceSplitter()
        assert splitter.feed("The hatch opens.") == []  # could still be "opens.5"? wait for more
        assert splitter.feed(" Cold air") == ["The hatch opens."]
        assert splitter.end() == ["Cold air"]

    def test_titles_numbers_and_initials_do_not_end_a_sentence(self):
        text = 'Capt. Hale checks the 3.5 m gap. J. Osei nods! "Go," she says. Done?'
        assert split_all(text) == [
            "Capt. Hale checks the 3.5 m gap.",
            "J. Osei nods!",
            '"Go," she says.',
            "Done?",
        ]

    def test_a_line_break_ends_a_sentence_and_markdown_is_not_read_aloud(self):
        assert split_all("**Alarm** blares\nThe lights die") == ["Alarm blares", "The lights die"]

    def test_the_first_piece_may_end_at_a_clause_so_the_gm_starts_sooner(self):
        text = "Kira Vance slides the panel aside, fingers on the bus lines, and it chirps. It opens, slowly."
        eager = SentenceSplitter(eager_first=True)
        pieces = eager.feed(text + " ") + eager.end()
        assert pieces == [
            "Kira Vance slides the panel aside,",
            "fingers on the bus lines, and it chirps.",
            "It opens, slowly.",
        ]
        assert (
            split_all(text)[0]
            == "Kira Vance slides the panel aside, fingers on the bus lines, and it chirps."
        )
        short = SentenceSplitter(eager_first=True)
        assert short.feed("Go, now. ") == ["Go, now."]  # too short a clause to stand alone

    def test_a_run_without_full_stops_is_cut_at_a_clause(self):
        text = "the corridor stretches on, " * 20
        parts = split_all(text)
        assert len(parts) > 1 and all(len(p) <= 240 for p in parts)

    @given(st.text(alphabet="abc .!?,\n\"'*", max_size=300), st.integers(min_value=1, max_value=17))
    def test_delta_size_never_changes_the_words_spoken(self, text, size):
        spoken = " ".join(feed_in_pieces(text, size)).split()
        assert spoken == " ".join(split_all(text)).split()
        assert spoken == text.replace("*", "").split()


class TestVoices:
    def test_at_least_four_audibly_different_voices_offline(self):
        distinct = {(v.pitch, v.length_scale) for v in voices.CATALOGUE.values()}
        assert len(distinct) >= 4
        pitches = sorted(v.pitch for v in voices.CATALOGUE.values())
        assert pitches[-1] / pitches[0] > 1.3  # a low and a high voice, not shades of one

    def test_gm_voice_follows_the_personality_profile(self):
        low = voices.gm_voice({"voice": "low", "rate": 0.95})
        assert low.key == "low"
        assert low.length_scale == pytest.approx(voices.CATALOGUE["low"].length_scale / 0.95)
        assert voices.gm_voice(None).key == voices.GM_DEFAULT
        assert voices.gm_voice({"voice": "low"}, override="bright").key == "bright"

    def test_unknown_profile_voice_is_a_voices_folder_file(self):
        voice = voices.gm_voice({"voice": "en_GB-alan-medium"})
        assert voice.model == "en_GB-alan-medium"
        assert voices.gm_voice({"voice": "../../etc/passwd"}).key == voices.GM_DEFAULT

    def test_npc_voice_is_stable_and_never_the_gms(self):
        for npc in ("quartermaster", "hale", "osei", "vex", "the-choir", "dockhand"):
            first = voices.npc_voice(npc, gm_key="low")
            assert first == voices.npc_voice(npc, gm_key="low")
            assert first.key != "low"
        spread = {voices.npc_voice(f"npc{i}").key for i in range(40)}
        assert len(spread) >= 4

    def test_npc_voice_from_its_dsl_description(self):
        assert voices.npc_voice("ilse", "Soft and formal; calls the relay 'she'.").key == "soft"
        assert voices.npc_voice("hale", "Clipped Warden cadence: short sentences.").key == "quick"
        assert voices.npc_voice("x", "Soft spoken", gm_key="soft").key != "soft"


class TestAudio:
    @pytest.mark.parametrize(
        ("data", "code"),
        [
            (b"", "empty"),
            (b"this is plainly a text file, not audio" * 10, "not_audio"),
            (b"\x89PNG\r\n\x1a\n" + bytes(200), "not_audio"),
            (b"\x1a\x45\xdf\xa3" + bytes(64), "not_audio"),  # an EBML (webm) header and nothing else
        ],
    )
    def test_bytes_that_are_not_a_recording_are_refused_clearly(self, data, code):
        with pytest.raises(AudioRefused) as refused:
            decode(data, max_seconds=30)
        assert refused.value.code == code
        assert refused.value.status in (400, 415, 422)
        assert "record" in refused.value.message

    def test_a_recording_past_the_cap_is_refused_and_names_the_cap(self):
        data = wav_bytes(np.full(16000 * 5, 0.1, dtype=np.float32), 16000)
        with pytest.raises(AudioRefused) as refused:
            decode(data, max_seconds=3)
        assert refused.value.code == "too_long" and refused.value.status == 413
        assert "3 seconds" in refused.value.message

    def test_wav_round_trips_at_16k(self):
        tone = (0.3 * np.sin(np.linspace(0, 440 * 2 * np.pi, 8000))).astype(np.float32)
        samples = decode(wav_bytes(tone, 8000), max_seconds=30)
        assert samples.size == pytest.approx(16000, abs=200)

    def test_loudness_gate(self):
        assert is_silent(np.zeros(16000, dtype=np.float32))
        assert is_silent((np.random.default_rng(1).standard_normal(16000) * 0.001).astype(np.float32))
        speech_like = np.zeros(32000, dtype=np.float32)
        speech_like[8000:9600] = 0.2  # a short word in a long press
        assert not is_silent(speech_like)
        assert loudness_dbfs(speech_like) > -20

    def test_pitch_shift_changes_length_by_the_factor(self):
        samples = np.ones(1000, dtype=np.float32)
        assert shift_pitch(samples, 1.25).size == 800
        assert shift_pitch(samples, 1.0) is samples
