"""One registry for every provider kind: domain code asks for a role, never a vendor.

A kind (chat LLM, embedder, and next speech-to-text, text-to-speech, images, moderation,
simulation) is one `Registry(...)` declaration next to its adapters, e.g. in narrative/llm/:

    CHAT = Registry(
        "chat",
        roles=("narrator", "summarizer"),
        providers={"offline": "narrative.llm.offline:OfflineNarrator", ...},
        settings=lambda: django_settings.GTW_LLM,
        choose=lambda role, conf: conf[role]["provider"],
        timeout=lambda role, conf: conf[role]["timeout"],
        arguments=lambda choice: {"model": ..., "timeout": choice.timeout},
        calls={"stream": STREAM, "complete": CALL},
    )

and then, for free:

- lazy loading: an adapter's module (and its vendor SDK) is imported the first time a role
  picks it, by the dotted path in `providers`; a name not there, or a module that fails to
  import, is a `ProviderError(retryable=False)` naming the role and the choices;
- settings per role: `settings()` is read on every build (tests and, later, runtime selection
  change it), `choose` picks the provider for a role and `arguments` turns the settings into the
  adapter's constructor arguments;
- one timeout per kind: `timeout` is resolved from the settings and handed to `arguments` in
  the `Choice`, so every adapter of the kind is built with the same limit;
- telemetry on every call: `get(role)` wraps the adapter in `Recorded`, which writes one
  ProviderCall row (role, provider, model, latency, tokens, ok/error) per call named in
  `calls` — a plain call, or a stream whose events are yielded through. A call made on a
  worker pool is submitted with `gtw_site.telemetry.in_thread`, so its row is written by the
  thread that takes the result, on that thread's connection and transaction.

Adding a provider to a kind = one adapter module + one line in `providers` + its contract test.
Pure of Django itself; telemetry rows go through gtw_site.telemetry.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gtw_site.providers.base import ProviderError, Usage, clip, load_factory
from gtw_site.telemetry import record_call

CallStyle = Literal["call", "stream"]
CALL: CallStyle = "call"  # one return value; token counts, if any, left in the adapter's `last_usage`
STREAM: CallStyle = "stream"  # a generator; an event carrying `usage` is the stream's end


@dataclass(frozen=True)
class Choice:
    """What a role resolved to: handed to the kind's `arguments` to build the adapter."""

    kind: str
    role: str
    provider: str
    conf: Mapping[str, Any]  # the kind's whole settings, as `settings()` returned them
    timeout: float | None


def _default_choose(role: str, conf: Mapping[str, Any]) -> str:
    return conf[role]["provider"]


class Registry:
    """Role → adapter for one provider kind. See the module docstring for the declaration."""

    def __init__(
        self,
        kind: str,
        *,
        roles: Sequence[str],
        providers: Mapping[str, str],
        settings: Callable[[], Mapping[str, Any]],
        arguments: Callable[[Choice], Mapping[str, Any]],
        calls: Mapping[str, CallStyle],
        choose: Callable[[str, Mapping[str, Any]], str] = _default_choose,
        timeout: Callable[[str, Mapping[str, Any]], float] | None = None,
        check: Callable[[Any, Choice], None] | None = None,
        cache_key: Callable[[Choice], Hashable] | None = None,
        telemetry: bool = True,
    ) -> None:
        self.kind = kind
        self.roles = tuple(roles)
        # A plain dict on purpose: one more line registers a provider (tests add fakes to it).
        self.providers: dict[str, str] = dict(providers)
        self.settings = settings
        self.arguments = arguments
        self.calls = dict(calls)
        self.choose = choose
        self.timeout = timeout
        # Raises ProviderError when a built adapter does not fit the settings.
        self.check = check
        # Adapters that are costly to build (a local model) are built once per distinct key.
        self.cache_key = cache_key
        self.telemetry = telemetry
        self._lock = threading.Lock()
        self._cache: dict[Hashable, Any] = {}

    def __repr__(self) -> str:
        return f"<Registry {self.kind}: {', '.join(self.roles)}>"

    def provider_name(self, role: str, conf: Mapping[str, Any] | None = None) -> str:
        """Which provider `role` uses under these settings (the kind's settings by default)."""
        self._known_role(role)
        return self.choose(role, self.settings() if conf is None else conf)

    def build(self, role: str, conf: Mapping[str, Any] | None = None) -> Any:
        """The bare adapter for `role` (no telemetry): loaded, built and checked."""
        conf = self.settings() if conf is None else conf
        choice = Choice(
            kind=self.kind,
            role=role,
            provider=self.provider_name(role, conf),
            conf=conf,
            timeout=self.timeout(role, conf) if self.timeout is not None else None,
        )
        if self.cache_key is None:
            return self._make(choice)
        key = (choice.provider, self.cache_key(choice))
        # Held while building, so two threads never load the same model twice.
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._make(choice)
            return self._cache[key]

    def get(self, role: str, conf: Mapping[str, Any] | None = None) -> Any:
        """The adapter for `role`, recording a telemetry row for every call."""
        adapter = self.build(role, conf)
        return self.record(role, adapter) if self.telemetry else adapter

    def record(self, role: str, adapter: Any) -> Recorded:
        return Recorded(role, adapter, calls=self.calls)

    def reset(self) -> None:
        """Forget cached adapters (settings changed, or a test wants a fresh one)."""
        with self._lock:
            self._cache.clear()

    def _known_role(self, role: str) -> None:
        if role not in self.roles:
            raise ProviderError(
                f"no {self.kind} role '{role}' (roles: {', '.join(self.roles)})", retryable=False
            )

    def _make(self, choice: Choice) -> Any:
        name = choice.provider
        dotted = self.providers.get(name)
        if dotted is None:
            raise ProviderError(
                f"unknown provider '{name}' for role {choice.role} (choose: {', '.join(self.providers)})",
                retryable=False,
                provider=name,
            )
        try:
            factory = load_factory(dotted)
        except (ImportError, AttributeError) as exc:
            # A missing optional SDK, or a typo in the dotted path: a setup problem, not a blip.
            reason = clip(f"{type(exc).__name__}: {exc}", 200)
            raise ProviderError(
                f"could not load the {self.kind} adapter {dotted} ({reason})",
                retryable=False,
                provider=name,
            ) from exc
        adapter = factory(**self.arguments(choice))
        if self.check is not None:
            self.check(adapter, choice)
        return adapter


class Recorded:
    """Wraps an adapter so every call named in `calls` leaves a telemetry row (latency, tokens,
    ok/error); every other attribute (name, model, dimensions, …) is the adapter's own.

    A row's error is the ProviderError's text (adapters keep secrets out of it), or
    "unexpected <type>: <text>" for anything else — which is recorded and raised unchanged."""

    def __init__(self, role: str, inner: Any, *, calls: Mapping[str, CallStyle]) -> None:
        self.role = role
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        for method, style in calls.items():
            wrap = self._recorded_stream if style == STREAM else self._recorded_call
            setattr(self, method, functools.partial(wrap, getattr(inner, method)))

    def __getattr__(self, attr: str) -> Any:
        # Only reached for attributes not set above; "inner" guards against recursion.
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def _recorded_stream(
        self, method: Callable[..., Iterator[Any]], *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        started = time.monotonic()
        usage = Usage()
        ended = False
        error = "stopped: the caller stopped reading the stream"
        events: Iterator[Any] | None = None
        try:
            events = method(*args, **kwargs)
            for event in events:
                end_usage = getattr(event, "usage", None)
                if isinstance(end_usage, Usage):
                    usage = end_usage
                    ended = True
                yield event
            error = ""
        except ProviderError as exc:
            error = str(exc)
            raise
        except GeneratorExit:
            # The consumer stopped iterating; after the end event that is a finished call.
            if ended:
                error = ""
            raise
        except BaseException as exc:
            error = unexpected_error(exc)
            raise
        finally:
            try:
                # Close the adapter's stream now, so its HTTP response is released with it.
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            finally:
                self._record(started, usage, error)

    def _recorded_call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        usage = Usage()
        error = ""
        try:
            result = method(*args, **kwargs)
            # Adapters that learn the token counts leave them in `last_usage`.
            usage = getattr(self.inner, "last_usage", None) or Usage()
        except ProviderError as exc:
            error = str(exc)
            raise
        except BaseException as exc:
            error = unexpected_error(exc)
            raise
        finally:
            self._record(started, usage, error)
        return result

    def _record(self, started: float, usage: Usage, error: str) -> None:
        record_call(
            role=self.role,
            provider=self.name,
            model=self.model,
            latency_ms=(time.monotonic() - started) * 1000,
            usage=usage,
            ok=not error,
            error=error,
        )


def unexpected_error(exc: BaseException) -> str:
    """A telemetry row's error text for an exception that is not a ProviderError."""
    return clip(f"unexpected {type(exc).__name__}: {exc}".rstrip(": "), 200)
