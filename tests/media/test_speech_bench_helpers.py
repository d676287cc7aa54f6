"""`gtw bench voice`'s scoring: a fixed set of at least 20 distinct spoken actions, and a word
error rate that counts substitutions, insertions and deletions the usual way."""

from __future__ import annotations

from gtw_site.bench import voice


def test_the_fixed_set_is_large_distinct_and_digit_free():
    assert len(voice.ACTIONS) >= 20 and len(set(voice.ACTIONS)) == len(voice.ACTIONS)
    assert not any(ch.isdigit() for line in voice.ACTIONS for ch in line)


def test_words_ignore_case_and_punctuation():
    assert voice.words("Open the air-lock, NOW!") == ["open", "the", "air", "lock", "now"]


def test_edit_distance_counts_each_kind_of_error():
    said = voice.words("I search the body for a keycard")
    assert voice.edit_distance(said, said) == 0
    assert voice.edit_distance(said, voice.words("I searched the body for a keycard")) == 1  # substitution
    assert voice.edit_distance(said, voice.words("I search the body for a key card")) == 2  # sub + insertion
    assert voice.edit_distance(said, voice.words("search the body")) == 4  # deletions
    assert voice.edit_distance([], said) == len(said)


def test_the_client_reads_narration_as_the_voice_does():
    assert voice._plain("**The hatch**  opens.\n Cold") == "The hatch opens. Cold"
