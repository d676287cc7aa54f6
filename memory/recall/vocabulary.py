"""The scope's vocabulary, read and embedded in the background (the shell around
memory/recall/paraphrase.py).

`paraphrased(base, question)` returns the question in the memories' own words ("which station is
the sidearm on its way to" -> "…the plasma pistol…") or None. It is on a turn's path to its first
delta, so it never reads memories nor embeds the scope's phrases itself: it uses what is ready (a
stale vocabulary too, while its rebuild runs) and embeds only the question's own phrases. Per
process:

- one `Vocabulary` per scope (the caller's scoped queryset, keyed by its SQL: campaign, namespaces
  and filters), read through that queryset — so a viewer's vocabulary only ever holds phrases
  of memories they may see — and topped up with the memories added since (ids above the last
  one read); rebuilt after VOCABULARY_TTL seconds, so a forgotten memory's phrases go too;
- one vector per phrase (a phrase's vector is the same in every scope), the question's phrases
  too, so a phrase asked again is not embedded again;
- one daemon thread, the builder, that reads, tops up and embeds the scopes asked about (a queue
  of scopes, each once; a scope asked about is looked at again at most every REFRESH seconds).
  A scope's first question finds nothing ready and is asked as it was. `warm(base)` does the same
  work at once, for the recall benchmark and tests.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from memory.recall import paraphrase

SCOPES = 64  # vocabularies kept (LRU): a 1,000-memory scope holds about 1 MB of words and pairs
PHRASE_VECTORS = 50_000  # phrase vectors kept (LRU): 384 floats each, ~80 MB at most
BATCH = 128  # phrases per embedding call of the builder
VOCABULARY_TTL = 600.0  # seconds before a scope's vocabulary is read again from scratch
REFRESH = 5.0  # seconds before a scope asked about again is topped up (in the background)
MAX_MEMORIES = 20_000  # a vocabulary reads at most this many memories (the newest)

log = logging.getLogger(__name__)


@dataclass
class _Scope:
    vocab: paraphrase.Vocabulary
    last: int  # the highest memory id read
    built: float  # when it was read from scratch (monotonic)
    looked: float  # when the builder last read and embedded it (monotonic)
    names: list[str] = field(default_factory=list)  # the things, most used first


_lock = threading.Lock()
_changed = threading.Condition(_lock)  # a job queued or finished
_scopes: OrderedDict[str, _Scope] = OrderedDict()
_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
_jobs: OrderedDict[str, tuple] = OrderedDict()  # key -> (scoped queryset, known names)
_running: str | None = None  # the key the builder is on
_builder: tuple[int, threading.Thread] | None = None  # (pid, thread): a forked child starts its own


def clear() -> None:
    """Forget every vocabulary, vector and queued job (a job running finishes)."""
    with _lock:
        _scopes.clear()
        _vectors.clear()
        _jobs.clear()


def vocabulary(base) -> paraphrase.Vocabulary:
    """The scope's vocabulary: the memories read through `base` (a scoped queryset), read now
    (topped up, or from scratch when missing or older than VOCABULARY_TTL)."""
    return _read(str(base.query), base).vocab


def warm(base, known=()) -> paraphrase.Vocabulary:
    """Read and embed the scope's vocabulary now, in this thread (what the builder does)."""
    return _build(str(base.query), base, tuple(known)).vocab


def wait(timeout: float) -> bool:
    """Block until the builder has nothing queued nor running (True), or `timeout` seconds."""
    with _changed:
        return _changed.wait_for(lambda: not _jobs and _running is None, timeout)


def _read(key: str, base) -> _Scope:
    now = time.monotonic()
    with _lock:
        entry = _scopes.get(key)
    if entry is None or now - entry.built >= VOCABULARY_TTL:
        rows = list(base.order_by("-id").values_list("id", "text")[:MAX_MEMORIES])
        vocab = paraphrase.Vocabulary()
        vocab.add(text for _id, text in rows)  # nobody else sees it yet: no lock
        entry = _Scope(vocab, rows[0][0] if rows else 0, now, now, entry.names if entry else [])
    else:
        rows = list(base.filter(id__gt=entry.last).order_by("-id").values_list("id", "text")[:MAX_MEMORIES])
        with _lock:  # questions read it meanwhile; warm() and the builder may both top it up
            new = [text for mid, text in rows if mid > entry.last]
            if new:
                entry.vocab.add(new)
                entry.last = rows[0][0]
    with _lock:
        _scopes[key] = entry
        _scopes.move_to_end(key)
        while len(_scopes) > SCOPES:
            _scopes.popitem(last=False)
    return entry


def _build(key: str, base, known: tuple[str, ...]) -> _Scope:
    """The builder's job: read (or top up) the scope, then embed its things that have no vector."""
    entry = _read(key, base)
    with _lock:
        names = entry.vocab.names(known)
        missing = [n for n in names if n not in _vectors]
    for i in range(0, len(missing), BATCH):
        batch = missing[i : i + BATCH]
        vectors = _embed(batch)
        if vectors is None:
            break
        with _lock:
            for name, vector in zip(batch, vectors, strict=True):
                _vectors[name] = vector
            while len(_vectors) > PHRASE_VECTORS:
                _vectors.popitem(last=False)
    with _lock:
        entry.names = names
        entry.looked = time.monotonic()
        for name in names:  # the scope's vectors are in use: last to go
            if name in _vectors:
                _vectors.move_to_end(name)
    return entry


def _schedule(key: str, base, known: tuple[str, ...]) -> None:
    """Queue the scope for the builder (once; the latest names win). Caller holds `_lock`."""
    global _builder
    if key == _running and key not in _jobs:
        return
    _jobs[key] = (base.all(), known)  # a clone: the caller's queryset stays the caller's
    if _builder is None or _builder[0] != os.getpid() or not _builder[1].is_alive():
        thread = threading.Thread(target=_build_forever, name="gtw-vocabulary", daemon=True)
        _builder = (os.getpid(), thread)
        thread.start()
    _changed.notify_all()


def _build_forever() -> None:
    global _running
    from django.db import connections

    while True:
        with _changed:
            _changed.wait_for(lambda: bool(_jobs))
            key, (base, known) = _jobs.popitem(last=False)
            _running = key
        try:
            _build(key, base, known)
        except Exception:
            log.exception("could not build a recall vocabulary")
        finally:
            connections.close_all()  # this thread's own connections: idle until the next job
            with _changed:
                _running = None
                _changed.notify_all()


def _embed(texts: list[str]) -> np.ndarray | None:
    from gtw_site.providers import ProviderError
    from memory.embeddings import registry

    try:
        vectors = np.asarray(registry.get().embed(texts), dtype=np.float32)
    except ProviderError:
        return None
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def paraphrased(base, question: str, known=()) -> tuple[str, list[paraphrase.Match]] | None:
    """The question with its phrases that no memory of the scope uses in the memories' own words
    (`paraphrase`), and the matches; None when there is nothing to rewrite or nothing is ready
    yet. Reads no memory and embeds only the question's phrases; the rest is the builder's."""
    key = str(base.query)
    now = time.monotonic()
    with _lock:
        entry = _scopes.get(key)
        if entry is None or now - entry.looked >= REFRESH or now - entry.built >= VOCABULARY_TTL:
            _schedule(key, base, tuple(known))
        if entry is None:
            return None
        _scopes.move_to_end(key)
        spans = paraphrase.unknown_spans(question, entry.vocab)
        if not spans:
            return None
        names = [n for n in entry.names if n in _vectors]
        if not names:
            return None
        matrix = np.stack([_vectors[n] for n in names])
        known_spans = {s: _vectors[s] for s in spans if s in _vectors}
    missing = [s for s in spans if s not in known_spans]
    if missing:  # the one embedding on the question's path; a phrase asked again is kept
        vectors = _embed(missing)
        if vectors is None:
            return None
        with _lock:
            for span, vector in zip(missing, vectors, strict=True):
                _vectors[span] = known_spans[span] = vector
            while len(_vectors) > PHRASE_VECTORS:
                _vectors.popitem(last=False)
    span_vectors = np.stack([known_spans[s] for s in spans])
    matches = paraphrase.best_match(spans, span_vectors, names, matrix)
    if not matches:
        return None
    return paraphrase.rewrite(question, matches), matches
