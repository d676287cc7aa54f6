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
  thread that takes the result, on that thread's connection and transaction. A chat call's
  request rides on its row (references only, taken when the call ends) and is stored as the
  prompt sent when the row is written (gtw_site.prompt_store).

- runtime selection: with no explicit `conf`, `build`/`get` layer the role's runtime choice
  (gtw_site.providers.selection: the campaign's, else the site's, else the environment) over
  the settings — the chosen provider, and options (model, base_url, an opened stored key) merged
  into the constructor arguments the adapter's factory accepts. The campaign comes from
  `campaign_id=` or the telemetry scope the turn runs in (gtw_site.telemetry.scope).

Every Registry declared is listed by `kinds()` (the providers page and /api/providers).

Adding a provider to a kind = one adapter module + one line in `providers` + its contract test.
Pure of Django itself; telemetry rows go through gtw_site.telemetry.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gtw_site.prompt_store import capture
from gtw_site.providers.base import ProviderError, Usage, clip, load_factory
from gtw_site.telemetry import current_scope, record_call
from gtw_site.telemetry import enabled as telemetry_enabled

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
    # A runtime choice's options (model, base_url, api_key, …), merged over `arguments(choice)`.
    options: Mapping[str, Any] = field(default_factory=dict)
    selection: Any = None  # the gtw_site.providers.selection.Selection, if any


# Every kind declared so far (weakly: a test's throwaway kind goes away with the test).
_KINDS: weakref.WeakValueDictionary[str, Registry] = weakref.WeakValueDictionary()
_UNSET: Any = object()


def kinds() -> dict[str, Registry]:
    """The kinds declared so far, by name."""
    return dict(_KINDS)


def registry_for(role: str) -> Registry | None:
    """The kind that serves `role`, if one is declared (imported) in this process."""
    for registry in _KINDS.values():
        if role in registry.roles:
            return registry
    return None


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
        selectable: bool = True,
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
        # Adapters that are costly to build (a local model) are built once per distinct key
        # (a key of None: built every time).
        self.cache_key = cache_key
        self.telemetry = telemetry
        # Runtime choices (gtw_site.providers.selection) apply to this kind's roles.
        self.selectable = selectable
        self._lock = threading.Lock()
        self._cache: dict[Hashable, Any] = {}
        _KINDS[kind] = self

    def __repr__(self) -> str:
        return f"<Registry {self.kind}: {', '.join(self.roles)}>"

    def provider_name(self, role: str, conf: Mapping[str, Any] | None = None) -> str:
        """Which provider `role` uses under these settings (the kind's settings by default)."""
        self._known_role(role)
        return self.choose(role, self.settings() if conf is None else conf)

    def selection(self, role: str, campaign_id: int | None = _UNSET, *, refresh: bool = True) -> Any:
        """The runtime choice in force for `role` (None: the environment's settings)."""
        if not self.selectable:
            return None
        self._known_role(role)
        from gtw_site.providers import selection

        here = current_scope()
        if campaign_id is _UNSET:
            campaign_id = here.get("campaign_id")
        return selection.current(role, campaign_id, here.get("session_id"), refresh=refresh)

    def build(
        self,
        role: str,
        conf: Mapping[str, Any] | None = None,
        *,
        campaign_id: int | None = _UNSET,
        selection: Any = _UNSET,
    ) -> Any:
        """The bare adapter for `role` (no telemetry): loaded, built and checked.

        With no `conf`, the role's runtime choice applies (see the module docstring); `selection`
        builds a given choice instead (checking one before it is saved), None the env's."""
        explicit = conf is not None
        conf = self.settings() if conf is None else conf
        if selection is _UNSET:
            selection = None if explicit else self.selection(role, campaign_id)
        options: Mapping[str, Any] = {}
        if selection is not None:
            from gtw_site.providers.selection import options_for

            self._known_role(role)
            provider = selection.provider
            options = options_for(selection)
        else:
            provider = self.provider_name(role, conf)
        choice = Choice(
            kind=self.kind,
            role=role,
            provider=provider,
            conf=conf,
            timeout=self.timeout(role, conf) if self.timeout is not None else None,
            options=options,
            selection=selection,
        )
        built_key = self.cache_key(choice) if self.cache_key is not None else None
        if built_key is None:  # not cached (a cache_key may return None for cheap adapters)
            return self._make(choice)
        key = (choice.provider, built_key, tuple(sorted((k, repr(v)) for k, v in options.items())))
        # Held while building, so two threads never load the same model twice.
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._make(choice)
            return self._cache[key]

    def get(
        self, role: str, conf: Mapping[str, Any] | None = None, *, campaign_id: int | None = _UNSET
    ) -> Any:
        """The adapter for `role`, recording a telemetry row for every call."""
        chosen = self.selection(role, campaign_id) if conf is None else None
        adapter = self.build(role, conf, selection=chosen)
        if not (self.telemetry and telemetry_enabled()):
            return adapter
        return self.wrap(role, adapter, chosen, shadows=conf is None, campaign_id=campaign_id)

    def wrap(
        self, role: str, adapter: Any, chosen: Any = None, *, shadows: bool = True, campaign_id: Any = _UNSET
    ) -> Recorded:
        """`adapter` recorded: its rows name the experiment variant that chose it, and the role's
        shadow providers (if any, and not inside a shadow run) get each successful call."""
        recorded = self.record(role, adapter, variant=getattr(chosen, "variant", ""))
        if shadows and self.selectable and not current_scope().get("shadow"):
            from gtw_site.providers import selection as selections

            here = current_scope().get("campaign_id") if campaign_id is _UNSET else campaign_id
            found = selections.shadows(role, here)
            if found:
                from gtw_site.providers.shadow import Shadows

                recorded.shadows = Shadows(self, role, found)
        return recorded

    def record(self, role: str, adapter: Any, *, variant: str = "") -> Recorded:
        return Recorded(role, adapter, calls=self.calls, kind=self.kind, variant=variant)

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
        try:
            arguments = dict(self.arguments(choice))
        except KeyError as exc:
            raise ProviderError(
                f"no settings for the {self.kind} adapter {name} ({exc})", retryable=False, provider=name
            ) from None
        if choice.options:
            arguments.update(_accepted(factory, choice.options))
        try:
            adapter = factory(**arguments)
        except ProviderError:
            raise
        except (TypeError, ValueError) as exc:
            # A choice's option the adapter refuses: a setup problem, worded without the values.
            raise ProviderError(
                f"the {self.kind} adapter {name} could not start ({type(exc).__name__})",
                retryable=False,
                provider=name,
            ) from None
        if self.check is not None:
            self.check(adapter, choice)
        return adapter


def _accepted(factory: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options `factory` takes by name (all of them if it takes **kwargs)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return dict(options)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


def accepted_options(registry: Registry, provider: str) -> tuple[str, ...] | None:
    """The option names `provider`'s factory takes (None: any), loading its module."""
    dotted = registry.providers.get(provider)
    if dotted is None:
        return ()
    try:
        params = inspect.signature(load_factory(dotted)).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return tuple(params)


class Recorded:
    """Wraps an adapter so every call named in `calls` leaves a telemetry row (latency, tokens,
    ok/error); every other attribute (name, model, dimensions, …) is the adapter's own.

    A row's error is the ProviderError's text (adapters keep secrets out of it), or
    "unexpected <type>: <text>" for anything else — which is recorded and raised unchanged."""

    def __init__(
        self, role: str, inner: Any, *, calls: Mapping[str, CallStyle], kind: str = "", variant: str = ""
    ) -> None:
        self.role = role
        self.kind = kind
        self.variant = variant
        # gtw_site.providers.shadow.Shadows: given the same call after it succeeded (A/B part 4).
        self.shadows: Any = None
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
        first: float | None = None
        error = "stopped: the caller stopped reading the stream"
        events: Iterator[Any] | None = None
        try:
            events = method(*args, **kwargs)
            for event in events:
                if first is None:
                    first = time.monotonic()
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
                self._record(started, usage, error, first=first, prompt=capture(args, kwargs))
                if not error and self.shadows is not None:
                    # A finished call (read to its end, or closed after it): the shadows get it.
                    self.shadows.run(getattr(method, "__name__", "stream"), args, kwargs)

    def _recorded_call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        usage = Usage()
        error = ""
        try:
            result = method(*args, **kwargs)
            # Adapters that learn the token counts leave them in `last_usage`.
            usage = getattr(self.inner, "last_usage", None) or Usage()
            if self.shadows is not None:
                self.shadows.run(getattr(method, "__name__", "complete"), args, kwargs)
        except ProviderError as exc:
            error = str(exc)
            raise
        except BaseException as exc:
            error = unexpected_error(exc)
            raise
        finally:
            self._record(started, usage, error, prompt=capture(args, kwargs))
        return result

    def _record(
        self, started: float, usage: Usage, error: str, *, first: float | None = None, prompt: Any = None
    ) -> None:
        record_call(
            role=self.role,
            provider=self.name,
            model=self.model or "",
            latency_ms=(time.monotonic() - started) * 1000,
            usage=usage,
            ok=not error,
            error=error,
            kind=self.kind,
            ttft_ms=None if first is None else (first - started) * 1000,
            variant=self.variant,
            prompt=prompt,
        )


def unexpected_error(exc: BaseException) -> str:
    """A telemetry row's error text for an exception that is not a ProviderError."""
    return clip(f"unexpected {type(exc).__name__}: {exc}".rstrip(": "), 200)
