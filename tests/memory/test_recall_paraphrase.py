"""A question's word for a thing the memories call something else (memory/recall/paraphrase.py):
the scope's vocabulary, the question's phrases no memory uses, the nearest thing by embedding, the
question in the memories' words; and (on the embedded Postgres) that a viewer's vocabulary only
ever holds what that viewer may see."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory import retrieval
from memory.models import Memory, player_namespace
from memory.recall import paraphrase, vocabulary

MEMORIES = [
    "Dov Strand sold us a plasma pistol at the Brass Compass for 390 credits.",
    "Mara acted: I stow the plasma pistol in the cargo hold of the Copper Comet.",
    "Sef received plasma pistol x1.",
    "We searched the Pit and turned up a drive coil.",
    "Hale sold us a drive coil cheap, no questions asked.",
    "The medical kit cheap at the market ran out.",
    "Kira found a medical kit under the bunk.",
]


def vocab(texts=MEMORIES) -> paraphrase.Vocabulary:
    v = paraphrase.Vocabulary()
    v.add(texts)
    return v


def test_things_are_phrases_several_memories_use_at_their_own_length():
    names = vocab().names()
    assert {"plasma pistol", "drive coil"} <= set(names)
    # "medical kit cheap" counts for "medical kit"; "medical" alone is never a thing of its own.
    assert "medical kit" in names and "medical" not in names
    assert "cargo hold" not in names  # one memory only
    # The game state's lower-case names are things too; its proper names are the entity stage's.
    assert "relay key" in vocab().names(known=["relay key", "Mira Hale"])
    assert "mira hale" not in vocab().names(known=["relay key", "Mira Hale"])


def test_only_phrases_no_memory_uses_are_asked_about():
    v = vocab()
    assert paraphrase.unknown_spans("Which station is the sidearm on its way to?", v) == ["sidearm"]
    # Said in the memories' own words (any case): nothing to rewrite.
    assert paraphrase.unknown_spans("Who sold us the Plasma Pistol?", v) == []
    # A phrase that runs on into a verb is cut before it.
    assert paraphrase.unknown_spans("Who was the engine part intended for?", v) == ["engine part"]
    # Words of time are the time stage's: "the day prior to the raid" names no thing.
    assert paraphrase.unknown_spans("who did we see the day prior to the raid?", v) == ["raid"]


def unit(*rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


NAMES = ["plasma pistol", "drive coil", "medical kit", "cargo hold", "market", "bunk"]
# A stand-in embedding: one axis per thing, so nearness is set by hand.
THINGS = unit(*np.eye(6))


def test_the_nearest_thing_when_it_stands_out():
    sidearm = unit([0.9, 0.1, 0.05, 0.05, 0.05, 0.05])
    [m] = paraphrase.best_match(["sidearm"], sidearm, NAMES, THINGS, min_standout=1.5)
    assert (m.span, m.name) == ("sidearm", "plasma pistol")
    # A plain word about as near to several things is matched to none of them.
    person = unit([0.5, 0.5, 0.45, 0.45, 0.5, 0.5])
    assert paraphrase.best_match(["person"], person, NAMES, THINGS, min_standout=1.5) == []
    # Too far from everything.
    far = unit([0.2, 0.01, 0.01, 0.01, 0.01, 0.98])
    assert paraphrase.best_match(["far"], far, NAMES[:5], THINGS[:5, :], min_standout=1.5) == []


def test_a_thing_whose_words_the_phrase_already_has_is_no_other_name_for_it():
    names = ["books", "ledger", "market", "bunk", "drive coil", "cargo hold"]
    account_book = unit([0.9, 0.6, 0.0, 0.0, 0.0, 0.0])
    [m] = paraphrase.best_match(["account book"], account_book, names, THINGS, min_standout=0.5)
    assert m.name == "ledger"


def test_rewrite_puts_the_memories_words_in_the_question():
    match = paraphrase.Match("first-aid supplies", "medical kit", 0.5)
    assert (
        paraphrase.rewrite("Who gave us the First-Aid supplies, and where do they live?", [match])
        == "Who gave us the medical kit, and where do they live?"
    )
    # Whole words only.
    assert paraphrase.rewrite("a sidearms dealer", [paraphrase.Match("sidearm", "plasma pistol", 0.5)]) == (
        "a sidearms dealer"
    )


@given(st.text(max_size=200))
def test_spans_and_rewrites_never_raise(text):
    v = vocab()
    spans = paraphrase.unknown_spans(text, v)
    paraphrase.rewrite(text, [paraphrase.Match(s, "plasma pistol", 0.5) for s in spans])


@pytest.mark.django_db
def test_a_viewers_vocabulary_holds_only_what_they_may_see(campaign, player):
    """A phrase of another player's private memory must never rewrite this player's question
    (nor show that it exists): the vocabulary is read through the viewer's scoped queryset."""
    vocabulary.clear()
    table = Memory.objects.create(campaign=campaign, namespace=f"campaign:{campaign.pk}", text="a drive coil")
    Memory.objects.create(campaign=campaign, namespace=f"campaign:{campaign.pk}", text="the drive coil hums")
    for text in ("the ghost lantern glows", "a ghost lantern again"):
        Memory.objects.create(campaign=campaign, namespace=player_namespace(player.pk + 999), text=text)
    scope = retrieval.scope_filter(campaign_id=campaign.pk, user_id=player.pk, is_gm=False)
    seen = vocabulary.vocabulary(Memory.objects.filter(scope))
    assert "drive coil" in seen.names()
    assert "ghost" not in seen.words and "ghost lantern" not in seen.names()
    # Topped up with what was added since, still through the scope.
    Memory.objects.create(
        campaign=campaign, namespace=f"campaign:{campaign.pk}", text="a relay key, then a relay key"
    )
    Memory.objects.create(campaign=campaign, namespace=f"campaign:{campaign.pk}", text="the relay key")
    again = vocabulary.vocabulary(Memory.objects.filter(scope))
    assert "relay key" in again.names() and "ghost" not in again.words
    table.delete()


@pytest.mark.django_db(transaction=True)  # the builder thread reads through its own connection
def test_a_cold_scope_is_built_off_the_question_path(campaign, monkeypatch):
    """Issue 21: a scope's first question must not read its memories nor embed their phrases (it
    is on the path to the turn's first delta). It is asked as it was, the builder thread reads
    and embeds the scope, and the questions after it are asked in the memories' words."""
    vocabulary.clear()
    # Three things only: no thing can stand out of so few by MIN_STANDOUT (tuned on hundreds).
    monkeypatch.setattr(paraphrase, "best_match", functools.partial(paraphrase.best_match, min_standout=1.0))
    for text in MEMORIES:
        Memory.objects.create(campaign=campaign, namespace=f"campaign:{campaign.pk}", text=text)
    base = Memory.objects.filter(namespace=f"campaign:{campaign.pk}")
    question = "Who sold us the laser gun?"
    with no_queries():
        assert vocabulary.paraphrased(base, question) is None
    assert vocabulary.wait(timeout=60), "the builder did not finish"
    asked, matches = vocabulary.paraphrased(base, question)
    assert asked == "Who sold us the plasma pistol?"
    assert [(m.span, m.name) for m in matches] == [("laser gun", "plasma pistol")]
    # A phrase asked again is not embedded again.
    monkeypatch.setattr(vocabulary, "_embed", lambda texts: pytest.fail(f"embedded {texts} again"))
    assert vocabulary.paraphrased(base, "Where is the laser gun now?")[0] == "Where is the plasma pistol now?"


@pytest.mark.django_db(transaction=True)
def test_a_stale_vocabulary_answers_while_the_builder_tops_it_up(campaign, monkeypatch):
    """A memory added since the vocabulary was read is the builder's to read, never the
    question's: the question is answered from what is ready, and the top-up comes after."""
    vocabulary.clear()
    ns = f"campaign:{campaign.pk}"
    for text in MEMORIES:
        Memory.objects.create(campaign=campaign, namespace=ns, text=text)
    base = Memory.objects.filter(namespace=ns)
    vocabulary.warm(base)
    for text in ("the relay key was stolen", "a relay key, then a relay key"):
        Memory.objects.create(campaign=campaign, namespace=ns, text=text)
    monkeypatch.setattr(vocabulary, "REFRESH", 0.0)
    with no_queries():
        assert vocabulary.paraphrased(base, "Who sold us the plasma pistol?") is None
    assert vocabulary.wait(timeout=60), "the builder did not finish"
    with vocabulary._lock:
        assert "relay key" in next(iter(vocabulary._scopes.values())).names


def no_queries():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    class NoQueries(CaptureQueriesContext):
        def __exit__(self, *exc):
            super().__exit__(*exc)
            assert self.captured_queries == [], self.captured_queries

    return NoQueries(connection)
