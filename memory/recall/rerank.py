"""The learned-free re-ranker over the fused top candidates — pure, no Django.

No cross-encoder ships offline in a registry package (checked for issue 21: none does; the
reranker packages fetch their weights from a model hub at run time), so the second stage is a
weighted sum of features any reader can check:

- `fused`: the first stage's reciprocal-rank-fusion score, relative to the best candidate's;
- `terms`: how much of the question's content the memory covers, each word weighted by how rare
  it is among the candidates (a word every candidate shares tells them apart by nothing);
- `names`: the share of the question's names (memory/recall/entities.py) the memory mentions;
- `codes`: the share of the question's code-like tokens (docking codes, prices) it contains;
- `similarity`: 1 - the embedding's cosine distance, where the candidate came from the vector list;
- `private`: a question about what was whispered or slipped to the asker ("the note Hale slipped
  me") favours the asker's own memories (only ever the viewer's own: the scope is in SQL);
- `time`: how well its date fits the question's time words (memory/recall/temporal.py), only for
  questions that have them, and only counted for memories that are about the question at all
  (so "when did we last see Hale" picks the newest memory *of Hale*, not the newest memory).

`confidence` is the top memory's answer to "does this say what was asked?": its term and name
coverage and its similarity. The narrator treats a top memory under `threshold` as nothing
remembered ("you don't recall that").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from memory.recall import entities, temporal

PRIVATE_CUE = re.compile(
    r"\b(private(?:ly)?|secret(?:ly)?|whisper\w*|slip(?:ped|s)? me|passed me|told me|note|"
    r"just (?:me|us)|only (?:me|us)|alone)\b",
    re.I,
)


@dataclass(frozen=True)
class Item:
    id: int
    text: str
    when: datetime
    fused: float  # the first stage's score
    distance: float | None = None
    game_date: str | None = None  # in-game date, ISO (metadata["game_date"])
    session: int | None = None  # the number of the session it was said in
    private: bool = False  # in the viewer's own namespace (a whisper, a note)


@dataclass(frozen=True)
class Weights:
    fused: float = 1.0
    terms: float = 0.8
    names: float = 0.5
    codes: float = 0.6
    similarity: float = 0.3
    time: float = 1.0
    # "what did Hale whisper to me", "the note she slipped me": the viewer's own memories.
    private: float = 0.4
    # Outside the question's date window a memory keeps this share of its score.
    outside_window: float = 0.3


@dataclass(frozen=True)
class Ranked:
    id: int
    score: float
    confidence: float
    features: dict = field(default_factory=dict)


def _coverage(terms: Sequence[str], weights: dict[str, float], have: set[str]) -> float:
    total = sum(weights[t] for t in terms)
    return sum(weights[t] for t in terms if t in have) / total if total else 0.0


def confidence(*, terms: float, names: float, codes: float | None, similarity: float) -> float:
    """0..1: the share of the question the memory answers, leaning on the words it shares."""
    lexical = terms if codes is None else 0.5 * terms + 0.5 * codes
    sim = min(1.0, max(0.0, (similarity - 0.25) / 0.5))
    return round(0.55 * lexical + 0.2 * names + 0.25 * sim, 4)


def rerank(
    query: str,
    items: Sequence[Item],
    *,
    hint: temporal.TimeHint | None = None,
    names: Sequence[str] = (),
    weights: Weights = Weights(),
) -> list[Ranked]:
    """Best first; ties by id, newest first (as memory/ranking.py)."""
    if not items:
        return []
    private_cue = PRIVATE_CUE.search(query) is not None
    terms = entities.content_terms(query)
    wanted_codes = entities.codes(query)
    bags = {it.id: entities.stems(it.text) for it in items}
    df = {t: sum(t in bag for bag in bags.values()) for t in terms}
    n = len(items)
    idf = {t: math.log(1 + n / (1 + df[t])) + 0.1 for t in terms}
    best = max(it.fused for it in items) or 1.0
    dates = [it.when for it in items]
    oldest, newest = min(dates), max(dates)
    out = []
    for it in items:
        f_terms = _coverage(terms, idf, bags[it.id])
        f_names = sum(entities.mentions(it.text, nm) for nm in names) / len(names) if names else 0.0
        f_codes = (
            sum(c.lower() in it.text.lower() for c in wanted_codes) / len(wanted_codes)
            if wanted_codes
            else None
        )
        sim = 1.0 - it.distance if it.distance is not None else 0.0
        score = (
            weights.fused * it.fused / best
            + weights.terms * f_terms
            + weights.names * f_names
            + weights.codes * (f_codes or 0.0)
            + weights.similarity * sim
            + (weights.private if private_cue and it.private else 0.0)
        )
        fit = 1.0
        if hint is not None and hint.temporal:
            if hint.window and not hint.contains(it.when, game_date=it.game_date, session=it.session):
                score *= weights.outside_window
            if hint.order:
                fit = temporal.time_fit(hint, it.when, oldest=oldest, newest=newest)
                about = max(f_names, f_terms) if names else f_terms
                score += weights.time * fit * about**2
        conf = confidence(terms=f_terms, names=f_names if names else f_terms, codes=f_codes, similarity=sim)
        features = {"terms": round(f_terms, 3), "names": round(f_names, 3), "similarity": round(sim, 3)}
        if f_codes is not None:
            features["codes"] = round(f_codes, 3)
        if hint is not None and hint.order:
            features["time"] = round(fit, 3)
        out.append(Ranked(it.id, round(score, 6), conf, features))
    out.sort(key=lambda r: (-r.score, -r.id))
    return out
