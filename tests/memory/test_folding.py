"""The memory page's similarity rule (memory.folding): repeats and near-duplicates fold, other
memories do not. Pure: no database."""

from __future__ import annotations

import pytest

from memory.folding import NEAR, fold, normalize, similar


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("I look around.", "i look around!!"),
        ("Kira acted: I look   around", "KIRA ACTED: I LOOK AROUND"),
        ("\uff2b\uff49\uff52\uff41 acted: scan the hull", "Kira acted: scan the hull"),  # NFKC: full width
        (
            "Kira acted: I search the cargo bay for the relay key",
            "Kira acted: I search the cargo bay for the key",
        ),
    ],
)
def test_repeats_and_near_duplicates_are_similar(a, b):
    assert similar(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Kira acted: I search the cargo bay for the relay key",
            "Kira acted: I search the cargo bay for the medkit",
        ),
        ("Kira acted: I look around", "Ossian acted: I look around"),  # someone else did it
        ("The key is in bay 7.", "The key is in bay 9."),  # short: exact only
        ("Ossian owes the Wardens 3,000 credits.", "The Wardens owe Ossian nothing."),
    ],
)
def test_different_memories_are_not_similar(a, b):
    assert not similar(a, b)


def test_normalize_drops_case_punctuation_and_spacing():
    assert normalize("  Hello,   WORLD!? ") == "hello world"
    assert normalize("") == ""


def test_fold_keeps_order_counts_repeats_and_respects_the_kind():
    items = [
        ("a", "Kira acted: I look around", "campaign"),
        ("b", "The reactor hums.", "campaign"),
        ("c", "kira acted: i look around.", "campaign"),
        ("d", "Kira acted: I look around", "private"),  # a private note never folds into a table one
        ("e", "KIRA ACTED: I LOOK AROUND", "campaign"),
    ]
    folds = fold(items, text=lambda i: i[1], kind=lambda i: i[2])
    assert [f.first[0] for f in folds] == ["a", "b", "d"]
    assert [f.count for f in folds] == [3, 1, 1]
    assert [i[0] for i in folds[0].items] == ["a", "c", "e"]


def test_spam_folds_into_one_line():
    spam = [f"Buy cheap credits at scam.example{'!' * (i % 3)}" for i in range(200)]
    folds = fold(["A real note about the relay.", *spam], text=str)
    assert [f.count for f in folds] == [1, 200]


def test_the_near_threshold_is_what_the_docstring_says():
    assert NEAR == 0.8
    # 4 of 5 distinct words shared -> Jaccard 4/6 < 0.8: not folded.
    assert not similar("alpha beta gamma delta epsilon", "alpha beta gamma delta zeta")
    # 9 of 10 shared -> 9/10 >= 0.8: folded.
    assert similar(
        "one two three four five six seven eight nine ten", "one two three four five six seven eight nine"
    )
