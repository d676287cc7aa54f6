"""The meaning half of reading an action: the nearest labelled examples by sentence embedding.

content/intent/examples.jsonl holds short actions (`{"text", "label"}`), each labelled with the
skill it tests or the kind of no-roll action it is (`talk`, `observe`, `move`, `rest`, `act`).
`nearest_labels` embeds an action with the local MiniLM model that ships with the project
(memory.embeddings.local) — always that one, whatever the memory embedder is set to, so a
self-hoster on a remote embedding API pays no network call per action — and returns a vote per
label from its `K` nearest examples. narrative.intent adds the rules on top.

The examples' vectors are computed once per process (lazily, under a lock) and cached on disk
under `$GTW_DATA_DIR/cache/` (default ./var/cache/), keyed by a hash of the model and the
examples, so a cold worker reads them instead of embedding ~600 sentences. When the model
cannot load, `nearest_labels` returns None (logged once) and the caller falls back to rules.

Deterministic: the same action gets the same vote in every process (the cache holds exactly the
vectors a fresh computation gives; ties break by label order). Pure: no Django.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parents[1]
EXAMPLES_PATH = BASE_DIR / "content" / "intent" / "examples.jsonl"
# How many neighbours vote, and how sharply a closer one outweighs a farther one: a neighbour's
# weight is exp((similarity - best) / TEMPERATURE).
K = 9
TEMPERATURE = 0.05
# Bump when the way texts are prepared for embedding changes: it keys the disk cache.
PREPARE_VERSION = "1"


@dataclass(frozen=True)
class Examples:
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    vectors: np.ndarray  # (n, d) unit rows
    label_names: tuple[str, ...]
    label_index: np.ndarray  # (n,) index into label_names


def load_examples(path: Path = EXAMPLES_PATH) -> list[tuple[str, str]]:
    """(text, label) pairs of the example file; blank lines and `#` comments are skipped."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = json.loads(line)
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or not isinstance(label, str) or not text.strip():
            raise ValueError(f"{path}:{number}: each line needs a non-empty text and a label")
        pairs.append((text.strip(), label))
    return pairs


def _default_embedder() -> Any:
    from memory.embeddings.local import LocalEmbedder

    return LocalEmbedder()


# Tests swap this for a factory that fails, to exercise the rules-only path.
embedder_factory: Callable[[], Any] = _default_embedder

_lock = threading.Lock()
_state: dict[str, Any] = {}
# The votes of recently read actions, by prepared text: one turn reads its action two or three
# times (the narrator's first call, its follow-up after the roll, the clock's `took_time`).
VOTE_CACHE_SIZE = 256
_votes: OrderedDict[str, dict[str, float]] = OrderedDict()


def reset() -> None:
    """Forget the loaded model and examples (tests; a changed example file)."""
    with _lock:
        _state.clear()
        _votes.clear()


def cache_dir() -> Path:
    return Path(os.environ.get("GTW_DATA_DIR") or BASE_DIR / "var").expanduser() / "cache"


def _cache_key(model: str, pairs: list[tuple[str, str]], prepared: list[str]) -> str:
    digest = hashlib.sha256(f"{model}\0{PREPARE_VERSION}\0".encode())
    for (_, label), text in zip(pairs, prepared, strict=True):
        digest.update(f"{label}\0{text}\n".encode())
    return digest.hexdigest()[:24]


def _example_vectors(
    embedder: Any, model: str, pairs: list[tuple[str, str]], prepared: list[str]
) -> np.ndarray:
    path = cache_dir() / f"intent-examples-{_cache_key(model, pairs, prepared)}.npy"
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(prepared):
            return cached.astype(np.float32)
    except (OSError, ValueError):
        pass
    vectors = np.asarray(embedder.embed(prepared), dtype=np.float32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only data folder costs a recomputation per process, nothing else
        logger.info("could not cache the intent examples at %s: %s", path, exc)
    return vectors


def _load(prepare: Callable[[str], str]) -> tuple[Any, Examples] | None:
    with _lock:
        if "ready" in _state:
            return _state["ready"]
        ready = None
        try:
            embedder = embedder_factory()
            pairs = load_examples()
            prepared = [prepare(text) for text, _ in pairs]
            model = (
                f"{getattr(embedder, 'model', type(embedder).__name__)}:{getattr(embedder, 'dimensions', '')}"
            )
            vectors = _example_vectors(embedder, model, pairs, prepared)
            names = tuple(sorted({label for _, label in pairs}))
            index = np.array([names.index(label) for _, label in pairs], dtype=np.int64)
            examples = Examples(
                tuple(text for text, _ in pairs), tuple(label for _, label in pairs), vectors, names, index
            )
            ready = (embedder, examples)
        except Exception as exc:  # noqa: BLE001 — any failure to load means rules only, said once
            logger.warning(
                "intent classifier: the local embedding model is unavailable, using rules only: %s", exc
            )
        _state["ready"] = ready
        return ready


def available(prepare: Callable[[str], str]) -> bool:
    return _load(prepare) is not None


def nearest_labels(text: str, prepare: Callable[[str], str]) -> dict[str, float] | None:
    """A vote per label (summing to 1) from the K examples nearest to `prepare(text)`, or None
    when the model is unavailable. `prepare` must be the same function for every call."""
    ready = _load(prepare)
    if ready is None or not text.strip():
        return None
    embedder, examples = ready
    prepared = prepare(text)
    with _lock:
        if prepared in _votes:
            _votes.move_to_end(prepared)
            return dict(_votes[prepared])
    try:
        query = np.asarray(embedder.embed([prepared])[0], dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 — a text the tokenizer chokes on: rules decide this one
        logger.info("intent classifier: could not embed an action: %s", exc)
        return None
    result = vote(examples, query)
    with _lock:
        _votes[prepared] = result
        while len(_votes) > VOTE_CACHE_SIZE:
            _votes.popitem(last=False)
    return dict(result)


def vote(examples: Examples, query: np.ndarray, *, exclude: int | None = None) -> dict[str, float]:
    sims = examples.vectors @ query
    if exclude is not None:
        sims = sims.copy()
        sims[exclude] = -np.inf
    k = min(K, len(sims))
    # A stable sort: equal similarities keep the file's order, so ties break the same way always.
    top = np.argsort(-sims, kind="stable")[:k]
    weights = np.exp((sims[top] - sims[top[0]]) / TEMPERATURE)
    totals = np.zeros(len(examples.label_names), dtype=np.float64)
    np.add.at(totals, examples.label_index[top], weights)
    totals /= totals.sum()
    return {examples.label_names[i]: float(totals[i]) for i in np.flatnonzero(totals)}
