"""What an embedder looks like. Pure: no Django, no vendor SDK."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol


class Embedder(Protocol):
    """Turns texts into vectors that the memory engine compares with a dot product."""

    name: str  # "local", "openai"
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector of `dimensions` floats per text, in the order given.

        Cosine similarity is then a plain dot product, which is what pgvector's inner-product
        index computes. A text the model cannot place at all (e.g. blank) may come back as
        all zeros, never as NaN. Failures raise `ProviderError`.
        """
        ...


def normalise(vectors: Iterable[Sequence[float]]) -> list[list[float]]:
    """Scale each vector to unit length; an all-zero (or non-finite) vector comes back as zeros.

    Zeros rather than NaN: a NaN stored in pgvector poisons every distance it takes part in.
    """
    out: list[list[float]] = []
    for vector in vectors:
        values = [float(x) for x in vector]
        norm = math.sqrt(math.fsum(x * x for x in values))
        if not math.isfinite(norm) or norm == 0.0:
            out.append([0.0] * len(values))
        else:
            out.append([x / norm for x in values])
    return out
