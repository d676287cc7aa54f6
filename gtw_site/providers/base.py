"""The one error type every adapter raises, token usage, and the helpers that word a vendor's
failure for a GM. Pure: no Django, no vendor SDK."""

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
    """What a call consumed, as the adapter learned it: tokens (cached: prompt tokens served
    from the vendor's cache, counted inside tokens_in), seconds of audio heard or spoken (stt,
    tts) and images made. Telemetry prices it (gtw_site.providers.pricing)."""

    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    audio_seconds: float = 0.0
    images: int = 0


def load_factory(dotted: str) -> Callable[..., Any]:
    """Import `package.module:attr` lazily, so an unused provider's SDK is never imported."""
    module_name, _, attr = dotted.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def clip(text: str, limit: int = 300) -> str:
    """One line of at most `limit` characters, for error messages that quote a vendor's reply."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_detail(body: object) -> str:
    """The human message in a vendor's error body (`{"error": {"message": …}}`, a bare
    `{"message": …}` or plain text), or "" when it carries none."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return body if isinstance(body, str) else ""


def status_error(provider: str, status: int, detail: str, *, auth: str, model: str) -> ProviderError:
    """A vendor's HTTP error status as a ProviderError a GM can act on: what happened, what to
    check (`auth`: where the key comes from; `model`: the model name in use), and whether one
    more try may help (timeouts, conflicts, rate limits and server errors)."""
    detail = clip(detail)
    if status == 401:
        message = f"authentication failed (401) — {auth}"
    elif status == 403:
        message = f"permission denied (403): {detail}"
    elif status == 404:
        message = f"not found (404) — check the model name '{model}': {detail}"
    elif status == 429:
        message = f"rate limited (429): {detail}"
    elif status == 529:  # Anthropic's "overloaded"
        message = f"overloaded (529), try again shortly: {detail}"
    elif status >= 500:
        message = f"server error ({status}): {detail}"
    else:
        message = f"request rejected ({status}): {detail}"
    retryable = status in (408, 409, 429) or status >= 500
    return ProviderError(message, retryable=retryable, provider=provider, status=status)
