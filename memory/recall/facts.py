"""Short semantic facts from what was remembered — pure, no Django, no model (extractive).

"Hale commands the Warden cutter Aster." A fact is one sentence of a source memory that states
something lasting about a named someone or something: it starts with a name, has a verb of
being, having, owing, leading, selling or hiding, reads in the third person, and is no question.
Each fact keeps the ids of the memories it came from, and the **namespace** of its sources: a
fact read in a player's private memory is that player's private fact, never the table's. Facts
from sources in different namespaces are never merged.

The summariser's job writes them (memory/recall/store.py `facts_store`) beside each session
summary; an LLM summariser, when configured, may phrase its own (narrative/summaries.py), but
the offline default is this extract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from memory.recall import entities

MAX_FACT_CHARS = 220
MIN_FACT_CHARS = 16
FACT_VERBS = frozenset(
    """is are was were has have had owns owned owes owed commands commanded captains captained
    leads led runs ran works worked serves served sells sold buys bought hid hides stashed keeps
    kept carries carried lives lived belongs belonged knows knew wants wanted trusts trusted
    betrayed hates hated loves loved rules ruled controls controlled guards guarded holds held
    married killed founded built stole steals reports reported smuggles smuggled""".split()  # noqa: SIM905
)
_SENTENCES = re.compile(r"(?<=[.!?…])\s+")
_PERSONAL = re.compile(r"\b(I|we|We|you|You|me|us|our|Our|my|My|your|Your)\b")
_PREFIX = re.compile(r"^[^:]{1,60}\b(?:acted|said|says|whispered|noted|wrote):\s*")


@dataclass(frozen=True)
class Source:
    id: int
    namespace: str
    text: str


@dataclass(frozen=True)
class FactDraft:
    namespace: str
    text: str
    sources: tuple[int, ...]


def _normal(text: str) -> str:
    return " ".join(entities.words(text))


def candidates(text: str, known: Iterable[str] = ()) -> list[str]:
    """The fact sentences in one memory's text."""
    known = list(known)
    out = []
    for sentence in _SENTENCES.split(_PREFIX.sub("", text.strip())):
        sentence = sentence.strip().strip('"“”')
        if not MIN_FACT_CHARS <= len(sentence) <= MAX_FACT_CHARS or sentence.endswith("?"):
            continue
        if _PERSONAL.search(sentence):
            continue
        names = entities.find(sentence, known)
        first = sentence.split()[0].strip(",;:") if sentence.split() else ""
        starts_with_name = any(
            sentence.lower().startswith(n.lower()) or (first and first.lower() in n.lower().split())
            for n in names
        )
        if not starts_with_name:
            continue
        if not FACT_VERBS & set(entities.words(sentence)):
            continue
        out.append(sentence if sentence[-1] in ".!…" else sentence + ".")
    return out


def extract(sources: Sequence[Source], *, known: Iterable[str] = (), limit: int = 40) -> list[FactDraft]:
    """Facts from `sources`, one per (namespace, sentence), each with every source that said
    it; in the sources' order; at most `limit`."""
    known = list(known)
    found: dict[tuple[str, str], tuple[str, list[int]]] = {}
    for source in sources:
        for sentence in candidates(source.text, known):
            key = (source.namespace, _normal(sentence))
            if key not in found:
                if len(found) >= limit:
                    continue
                found[key] = (sentence, [])
            if source.id not in found[key][1]:
                found[key][1].append(source.id)
    return [FactDraft(ns, text, tuple(ids)) for (ns, _), (text, ids) in found.items()]
