"""A question's word for a thing the memories call something else — pure, no Django.

A player asks about "the sidearm"; every memory says "plasma pistol". Neither list of the first
stage finds it: no memory has the word, and a whole-question embedding is mostly about the rest
of the question. So the things the scope's memories name (`Vocabulary`: the lower-case noun
phrases that recur in them — "plasma pistol", "drive coil", "relay key" — plus the game state's
names) are embedded once (the caller caches the vectors), and a phrase of the question that no
memory uses (`unknown_spans`) is matched to the nearest of them (`best_match`) by the same local
embedder that ranks memories: no hand-written synonym list. A match must be near enough
(`MIN_SIMILARITY`) and clearly nearer than the next thing (`MARGIN`); the caller asks the
question again with the thing's own name in it (`rewrite`).

The vocabulary is built from the memories a viewer may see only (the caller reads them through
its scoped queryset), so a private memory's phrase only ever rewrites its owner's questions.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from memory.recall import entities

MIN_COUNT = 2  # a phrase names a thing when this many memories use it
MIN_SIMILARITY = 0.45  # cosine of the question's phrase and the thing's name (MiniLM: see BENCHMARKS)
MARGIN = 0.03  # over the nearest thing that is not the same name cut shorter or longer
# How far the nearest thing stands out from all of them (standard deviations above their mean):
# a plain word ("person", "ship") is about as near to many things; another name for one thing
# ("power cell" for "fuel cell") stands out.
MIN_STANDOUT = 3.6
MAX_REWRITES = 2
SPAN_WORDS = 3


def _phrase_words(text: str, *, any_case: bool = False) -> list[list[str]]:
    """The lower-case noun phrases of a text as word lists ("a drive coil at the Brass Compass"
    gives ["drive", "coil"]; names in capitals are the entity stage's, not ours). `any_case`:
    a question's phrases however it is typed ("the AI core")."""
    out = []
    for phrase in entities.noun_phrases(text.lower() if any_case else text):
        if phrase[:1].islower():
            ws = entities.words(phrase)[:SPAN_WORDS]
            if ws and not all(w in entities.STOP for w in ws):
                out.append(ws)
    return out


@dataclass
class Vocabulary:
    """What a scope's memories call things: every word and word pair they use (to tell a
    question's phrase that no memory uses), and how many memories use each noun phrase (and
    each phrase's first words, so "medical kit cheap" counts for "medical kit")."""

    words: set[str] = field(default_factory=set)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)

    def add(self, texts: Iterable[str]) -> None:
        for text in texts:
            ws = entities.words(text)
            self.words.update(ws)
            self.pairs.update(itertools.pairwise(ws))
            seen: set[str] = set()
            for phrase in _phrase_words(text):
                seen.update(" ".join(phrase[:j]) for j in range(1, len(phrase) + 1))
            self.counts.update(seen)

    def names(self, known: Iterable[str] = ()) -> list[str]:
        """The things: phrases at least MIN_COUNT memories use, each at its own length ("medical"
        is always "medical kit": only "medical kit" is a thing), most used first; then the game
        state's lower-case names."""
        longer: dict[str, int] = {}
        for phrase, n in self.counts.items():
            head, _, _ = phrase.rpartition(" ")
            if head:
                longer[head] = max(longer.get(head, 0), n)
        found = [p for p, n in self.counts.most_common() if n >= MIN_COUNT and longer.get(p, 0) < n]
        found += [" ".join(entities.words(k)) for k in known if k[:1].islower()]
        return list(dict.fromkeys(p for p in found if p))

    def uses(self, span: Sequence[str]) -> bool:
        """Whether some memory has these words side by side (near enough: word pairs)."""
        return all(w in self.words for w in span) and all(p in self.pairs for p in itertools.pairwise(span))


_VERB_END = re.compile(r"(?:ed|ing)$")
# Words of time name no thing ("the day prior to the raid"): the time stage reads them.
_TIME = "day days night nights evening morning week weeks month months year years hour hours session"
TIME_WORDS = frozenset(f"{_TIME} sessions game games time times while".split())


def unknown_spans(question: str, vocabulary: Vocabulary) -> list[str]:
    """The question's noun phrases that no memory uses. A phrase that runs on into a verb ("the
    jump numbers intended for…") is cut before it ("jump numbers"); a phrase some memory uses is
    already in the memories' words."""
    out: list[str] = []
    for phrase in _phrase_words(question, any_case=True):
        if len(phrase) > 1 and _VERB_END.search(phrase[-1]):
            phrase = phrase[:-1]
        if TIME_WORDS & set(phrase):
            continue
        if not vocabulary.uses(phrase) and not all(w in entities.STOP for w in phrase):
            out.append(" ".join(phrase))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Match:
    span: str  # the question's words
    name: str  # what the memories call it
    similarity: float


def best_match(
    spans: Sequence[str],
    span_vectors: np.ndarray,
    names: Sequence[str],
    name_vectors: np.ndarray,
    *,
    min_similarity: float = MIN_SIMILARITY,
    margin: float = MARGIN,
    min_standout: float = MIN_STANDOUT,
) -> list[Match]:
    """For each question phrase (rows of `span_vectors`, unit length), the thing (rows of
    `name_vectors`) nearest to it, if near enough and clearly nearer than any other thing; a
    thing whose words the phrase already has ("books" for "account book") is no other name for
    it. The nearest first, at most MAX_REWRITES, one per phrase and per thing."""
    if not spans or not names:
        return []
    sims = span_vectors @ name_vectors.T
    out: list[Match] = []
    for i, span in enumerate(spans):
        have = {entities.stem(w) for w in span.split()}
        row = sims[i].copy()
        for j, name in enumerate(names):
            if {entities.stem(w) for w in name.split()} <= have:
                row[j] = -1.0
        j = int(np.argmax(row))
        best, name = float(row[j]), names[j]
        others = [
            float(row[k])
            for k, other in enumerate(names)
            if not (other.startswith(name) or name.startswith(other))
        ]
        spread = float(sims[i].std()) or 1.0
        standout = (best - float(sims[i].mean())) / spread
        if best >= min_similarity and best - max(others, default=0.0) >= margin and standout >= min_standout:
            out.append(Match(span, name, round(best, 4)))
    out.sort(key=lambda m: -m.similarity)
    picked: list[Match] = []
    for m in out:
        if all(m.name != p.name and not (set(m.span.split()) & set(p.span.split())) for p in picked):
            picked.append(m)
    return picked[:MAX_REWRITES]


def rewrite(question: str, matches: Sequence[Match]) -> str:
    """The question with each matched phrase in the memories' own words."""
    for m in matches:
        words = [re.escape(w) for w in m.span.split()]
        pattern = r"(?<![\w'])" + r"[\s\-]+".join(words) + r"(?![\w'])"
        question = re.sub(pattern, m.name, question, count=1, flags=re.I)
    return question
