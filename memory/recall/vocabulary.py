"""The scope's vocabulary, read and embedded once (the shell around memory/recall/paraphrase.py).

`paraphrased(base, question)` returns the question in the memories' own words ("which station is
the sidearm on its way to" -> "…the plasma pistol…") or None. Per process:

- one `Vocabulary` per scope (the caller's scoped queryset, keyed by its SQL: campaign, namespaces
  and filters), read through that queryset — so a viewer's vocabulary only ever holds phrases
  of memories they may see — and topped up with the memories added since (ids above the last
  one read); rebuilt after VOCABULARY_TTL seconds, so a forgotten memory's phrases go too;
- one vector per phrase (a phrase's vector is the same in every scope), at most NEW_VECTORS
  embedded per question, most used phrases first, so the first questions in a new campaign pay a
  bounded cost and the vocabulary fills over a few questions.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np

from memory.recall import paraphrase

SCOPES = 64  # vocabularies kept (LRU): a 1,000-memory scope holds about 1 MB of words and pairs
PHRASE_VECTORS = 50_000  # phrase vectors kept (LRU): 384 floats each, ~80 MB at most
NEW_VECTORS = 96  # phrases embedded per question at most
VOCABULARY_TTL = 600.0  # seconds before a scope's vocabulary is read again from scratch
MAX_MEMORIES = 20_000  # a vocabulary reads at most this many memories (the newest)

_lock = threading.Lock()
_scopes: OrderedDict[str, tuple[paraphrase.Vocabulary, int, float]] = OrderedDict()
_vectors: OrderedDict[str, np.ndarray] = OrderedDict()


def clear() -> None:
    with _lock:
        _scopes.clear()
        _vectors.clear()


def vocabulary(base) -> paraphrase.Vocabulary:
    """The scope's vocabulary: the memories read through `base` (a scoped queryset)."""
    key = str(base.query)
    now = time.monotonic()
    with _lock:
        cached = _scopes.get(key)
        if cached is not None:
            _scopes.move_to_end(key)
    vocab, last, built = cached if cached and now - cached[2] < VOCABULARY_TTL else (None, 0, now)
    if vocab is None:
        vocab = paraphrase.Vocabulary()
        rows = list(base.order_by("-id").values_list("id", "text")[:MAX_MEMORIES])
    else:
        rows = list(base.filter(id__gt=last).order_by("-id").values_list("id", "text")[:MAX_MEMORIES])
    with _lock:  # one scope's vocabulary may be topped up by two requests at once
        if rows:
            vocab.add(text for _id, text in rows)
            last = max(last, rows[0][0])
        _scopes[key] = (vocab, last, built)
        _scopes.move_to_end(key)
        while len(_scopes) > SCOPES:
            _scopes.popitem(last=False)
    return vocab


def _embed(texts: list[str]) -> np.ndarray | None:
    from gtw_site.providers import ProviderError
    from memory.embeddings import registry

    try:
        vectors = np.asarray(registry.get().embed(texts), dtype=np.float32)
    except ProviderError:
        return None
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def name_vectors(names: list[str]) -> tuple[list[str], np.ndarray | None]:
    """The names that have a vector (embedding up to NEW_VECTORS new ones), and their vectors."""
    with _lock:
        missing = [n for n in names if n not in _vectors][:NEW_VECTORS]
    if missing:
        vectors = _embed(missing)
        if vectors is not None:
            with _lock:
                for name, vector in zip(missing, vectors, strict=True):
                    _vectors[name] = vector
                while len(_vectors) > PHRASE_VECTORS:
                    _vectors.popitem(last=False)
    with _lock:
        have = [n for n in names if n in _vectors]
        for n in have:
            _vectors.move_to_end(n)
        matrix = np.stack([_vectors[n] for n in have]) if have else None
    return have, matrix


def paraphrased(base, question: str, known=()) -> tuple[str, list[paraphrase.Match]] | None:
    """The question with its phrases that no memory of the scope uses in the memories' own words
    (`paraphrase`), and the matches; None when there is nothing to rewrite."""
    vocab = vocabulary(base)
    with _lock:
        spans = paraphrase.unknown_spans(question, vocab)
        things = vocab.names(known) if spans else []
    if not spans:
        return None
    names, matrix = name_vectors(things)
    if matrix is None:
        return None
    span_vectors = _embed(spans)
    if span_vectors is None:
        return None
    matches = paraphrase.best_match(spans, span_vectors, names, matrix)
    if not matches:
        return None
    return paraphrase.rewrite(question, matches), matches
