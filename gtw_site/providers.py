"""Cross-cutting provider plumbing: the one error type, a lazy registry helper, telemetry.

Every provider adapter (LLM, embedder, speech, images) turns its failures into
`ProviderError` and says whether trying again may help. Domain code never catches a
vendor SDK's exception.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether one more try may succeed."""

    def __init__(self, message: str, *, retryable: bool, provider: str = "", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.provider = provider
        self.status = status

    def __str__(self) -> str:
        prefix = f"{self.provider}: " if self.provider else ""
        return f"{prefix}{self.message}"


@dataclass(frozen=True)
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0


def load_factory(dotted: str) -> Callable[..., Any]:
    """Import `package.module:attr` lazily, so an unused provider's SDK is never imported."""
    module_name, _, attr = dotted.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def clip(text: str, limit: int = 300) -> str:
    """One line of at most `limit` characters, for error messages that quote a vendor's reply."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
