"""Folding repeats on the memory page: spam and near-duplicates shown once, "xN". Pure, no Django.

The similarity rule: two memories fold together when they have the same visibility (a private
note never hides inside a table memory, or the other way round) and

- their normalized text is equal — Unicode NFKC, case-folded, punctuation and symbols dropped,
  whitespace collapsed (so "I look around." and "i look around!!" are one line); or
- both have at least `MIN_TOKENS` distinct words and the Jaccard similarity of their word sets
  is at least `NEAR` (0.8): "Kira acted: I search the cargo bay for the relay key" and "Kira
  acted: I search the cargo bay for the key" fold; "… for the relay key" and "… for the medkit"
  do not.

Embeddings were not used: paraphrases that mean the same thing but read differently ("the key is
in bay 7" / "bay seven holds the key") are different entries to a reader scanning the page, and
folding them would hide what the table actually wrote. The fold keeps the input's order: a
group sits where its first (newest, or best-ranked) member was.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

NEAR = 0.8
MIN_TOKENS = 5
_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """The text as the fold compares it: NFKC, case-folded, words only, single spaces."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text or "").casefold()))


def similar(a: str, b: str) -> bool:
    """The rule above, on two texts (ignoring visibility)."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return True
    return _near(set(na.split()), set(nb.split()))


def _near(wa: set[str], wb: set[str]) -> bool:
    if len(wa) < MIN_TOKENS or len(wb) < MIN_TOKENS:
        return False
    return len(wa & wb) / len(wa | wb) >= NEAR


@dataclass
class Fold(Generic[T]):
    """One line on the page: `first` stands for the group, `others` are its repeats."""

    first: T
    others: list[T] = field(default_factory=list)

    @property
    def count(self) -> int:
        return 1 + len(self.others)

    @property
    def items(self) -> list[T]:
        return [self.first, *self.others]


def fold(items: Iterable[T], *, text: Callable[[T], str], kind: Callable[[T], object] = lambda _: None):
    """Group `items` by the rule above, in order. `kind(item)` must match for two items to fold
    (the visibility). Returns a list of Fold."""
    folds: list[Fold[T]] = []
    exact: dict[tuple[object, str], Fold[T]] = {}
    shingles: list[tuple[object, set[str], Fold[T]]] = []
    for item in items:
        key = normalize(text(item))
        k = kind(item)
        group = exact.get((k, key))
        if group is None:
            words = set(key.split())
            group = next((g for gk, gw, g in shingles if gk == k and _near(words, gw)), None)
            if group is None:
                group = Fold(item)
                folds.append(group)
                shingles.append((k, words, group))
            else:
                group.others.append(item)
            exact[(k, key)] = group
        else:
            group.others.append(item)
    return folds
