"""Role → model adapter. Domain code asks for a role ("narrator", "summarizer"), never a vendor.

Adding a provider = one module in narrative/llm/, one line in PROVIDERS, one contract test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from gtw_site.providers import ProviderError, Usage, clip, load_factory
from gtw_site.telemetry import record_call
from narrative.llm.base import ChatProvider, ChatRequest, StreamEnd, StreamEvent

PROVIDERS = {
    "offline": "narrative.llm.offline:OfflineNarrator",
    "openai": "narrative.llm.openai:OpenAIChatProvider",
    "anthropic": "narrative.llm.anthropic:AnthropicChatProvider",
    "openai_compatible": "narrative.llm.openai_compatible:OpenAICompatibleProvider",
}


def resolve_provider_name(role: str, conf: dict[str, Any] | None = None) -> str:
    conf = conf or settings.GTW_LLM
    name = conf[role]["provider"]
    if name != "auto":
        return name
    if conf["anthropic"]["api_key"]:
        return "anthropic"
    if conf["openai"]["api_key"]:
        return "openai"
    if conf["openai_compatible"]["base_url"]:
        return "openai_compatible"
    return "offline"


def build(role: str, conf: dict[str, Any] | None = None) -> ChatProvider:
    conf = conf or settings.GTW_LLM
    name = resolve_provider_name(role, conf)
    if name not in PROVIDERS:
        raise ProviderError(f"unknown provider '{name}' for role {role}", retryable=False, provider=name)
    factory = load_factory(PROVIDERS[name])
    if name == "offline":
        return factory(word_delay_s=conf["offline"]["word_delay_s"])
    vendor = conf[name]
    return factory(
        model=vendor["model"],
        api_key=vendor["api_key"],
        base_url=vendor["base_url"],
        timeout=conf[role]["timeout"],
    )


class Recorded:
    """Wraps an adapter so every call leaves a telemetry row (latency, tokens, ok/error)."""

    def __init__(self, role: str, inner: ChatProvider):
        self.role = role
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        started = time.monotonic()
        usage = Usage()
        ended = False
        error = "stopped: the caller stopped reading the stream"
        events: Iterator[StreamEvent] | None = None
        try:
            events = self.inner.stream(request)
            for event in events:
                if isinstance(event, StreamEnd):
                    usage = event.usage
                    ended = True
                yield event
            error = ""
        except ProviderError as exc:
            error = str(exc)
            raise
        except GeneratorExit:
            # The consumer stopped iterating; after the StreamEnd that is a finished call.
            if ended:
                error = ""
            raise
        except BaseException as exc:
            error = _unexpected(exc)
            raise
        finally:
            try:
                # Close the adapter's stream now, so its HTTP response is released with it.
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            finally:
                self._record(started, usage, ok=not error, error=error)

    def complete(self, request: ChatRequest) -> str:
        started = time.monotonic()
        usage = Usage()
        error = ""
        try:
            text = self.inner.complete(request)
            # Adapters that learn the token counts leave them in `last_usage`.
            usage = getattr(self.inner, "last_usage", None) or Usage()
        except ProviderError as exc:
            error = str(exc)
            raise
        except BaseException as exc:
            error = _unexpected(exc)
            raise
        finally:
            self._record(started, usage, ok=not error, error=error)
        return text

    def _record(self, started: float, usage: Usage, ok: bool = True, error: str = "") -> None:
        record_call(
            role=self.role,
            provider=self.name,
            model=self.model,
            latency_ms=(time.monotonic() - started) * 1000,
            usage=usage,
            ok=ok,
            error=error,
        )


def _unexpected(exc: BaseException) -> str:
    return clip(f"unexpected {type(exc).__name__}: {exc}".rstrip(": "), 200)


def get(role: str) -> Recorded:
    return Recorded(role, build(role))
