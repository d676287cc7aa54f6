"""Telemetry rows for provider calls (role, provider, model, latency, tokens, cost, the session
and turn they served).

A row is written on the thread that owns the work, with that thread's database connection, so it
commits (or rolls back) with the caller's transaction. Provider calls that run on a worker pool
(a turn embeds its query on "gtw-embed") go through `in_thread`: the worker only collects its
rows, and they travel with the future to whoever takes its result. A thread inside `deferred()`
(a turn) holds every row it collects until the block ends, so the first delta writes nothing.

`scope(campaign_id=…, session_id=…, turn_seq=…, variant=…, shadow=…)` names what the calls in a
block serve: rows take those fields (a pool job's rows take the scope of the thread that records
them), and the provider registry picks the campaign's runtime provider choice from it. The cost
is priced when a row is written (gtw_site.providers.pricing), never on the streaming path.
GTW_TELEMETRY=0 writes no rows at all (for measuring what telemetry costs).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any

from gtw_site.providers import Usage
from gtw_site.redact import configured, redact

logger = logging.getLogger(__name__)

# Rows collected instead of written, while a `collecting()` / `deferred()` block is active.
_held: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "gtw_telemetry_held", default=None
)
_scope: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("gtw_telemetry_scope", default={})  # noqa: B039 - never mutated
SCOPE_FIELDS = ("campaign_id", "session_id", "turn_seq", "variant", "prompt_version", "shadow")


def current_scope() -> dict[str, Any]:
    return _scope.get()


@contextmanager
def scope(**fields: Any) -> Iterator[dict[str, Any]]:
    """Name what the block's provider calls serve (see the module docstring); nested blocks add
    to the outer one's fields. Unknown names are a programming error."""
    unknown = set(fields) - set(SCOPE_FIELDS)
    if unknown:
        raise TypeError(f"unknown telemetry scope fields: {', '.join(sorted(unknown))}")
    merged = {**_scope.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _scope.set(merged)
    try:
        yield merged
    finally:
        _scope.reset(token)


def enabled() -> bool:
    """Whether calls are recorded here: GTW_TELEMETRY, and — for `gtw bench turn --telemetry ab`
    only — GTW_TELEMETRY_AB, which turns telemetry off for the calls of odd-numbered sessions so
    one run measures both (no row, no wrapper around the adapter)."""
    try:
        from django.conf import settings

        if not getattr(settings, "GTW_TELEMETRY", True):
            return False
        if getattr(settings, "GTW_TELEMETRY_AB", False):
            session_id = _scope.get().get("session_id")
            return not (isinstance(session_id, int) and session_id % 2)
        return True
    except Exception:  # noqa: BLE001 - settings not configured (a pure test): record as before
        return True


def record_call(
    *,
    role: str,
    provider: str,
    model: str,
    latency_ms: float,
    usage: Usage | None = None,
    ok: bool = True,
    error: str = "",
    kind: str = "",
    ttft_ms: float | None = None,
    variant: str = "",
) -> None:
    """Store one telemetry row (or hold it, see the module docstring). Never raises: telemetry
    must not break a turn."""
    usage = usage or Usage()
    row: dict[str, Any] = {
        "role": role[:40],
        "provider": provider[:40],
        "model": (model or "")[:120],
        "kind": kind[:40],
        "latency_ms": round(latency_ms, 2),
        "ttft_ms": None if ttft_ms is None else round(ttft_ms, 2),
        "tokens_in": max(0, int(usage.tokens_in or 0)),
        "tokens_out": max(0, int(usage.tokens_out or 0)),
        "tokens_cached": max(0, int(getattr(usage, "tokens_cached", 0) or 0)),
        "audio_seconds": max(0.0, float(getattr(usage, "audio_seconds", 0) or 0)),
        "images": max(0, int(getattr(usage, "images", 0) or 0)),
        "ok": ok,
        # GTW_REDACT: a vendor's error may quote the prompt back, PII and all.
        "error": redact(error[:2000], configured().kinds)[:500] if error else "",
    }
    row.update({k: v for k, v in _scope.get().items() if k in SCOPE_FIELDS})
    if variant:  # the experiment variant that chose this adapter (beats the scope's)
        row["variant"] = variant[:40]
    _observe(row)
    record_rows([row])


def _observe(row: dict[str, Any]) -> None:
    """The Prometheus counters for a call (gtw_site.metrics); never raises."""
    try:
        from gtw_site import metrics

        metrics.provider_call(row)
    except Exception:
        logger.debug("provider metrics not updated", exc_info=True)


def record_rows(rows: list[dict[str, Any]]) -> None:
    """Write rows collected elsewhere — or add them to this thread's held rows, if it holds any."""
    if not rows:
        return
    held = _held.get()
    if held is not None:
        held.extend(rows)
        return
    if not enabled():
        return
    try:
        from gtw_site.models import ProviderCall
        from gtw_site.providers.pricing import cost_of

        here = _scope.get()
        objs = []
        for row in rows:
            row = {**{k: v for k, v in here.items() if k in SCOPE_FIELDS}, **row}
            row.setdefault("cost_usd", cost_of(row, refresh=False))
            row["shadow"] = bool(row.get("shadow"))
            row["variant"] = str(row.get("variant") or "")[:40]
            row["prompt_version"] = str(row.get("prompt_version") or "")[:40]
            objs.append(ProviderCall(**row))
        ProviderCall.objects.bulk_create(objs)
    except Exception:
        logger.warning("could not record provider telemetry", exc_info=True)


# OpenTelemetry GenAI semantic conventions for a row's fields (gen_ai.* attributes).
OTEL_NAMES = {
    "provider": "gen_ai.provider.name",
    "model": "gen_ai.request.model",
    "role": "gtw.role",
    "kind": "gen_ai.operation.name",
    "tokens_in": "gen_ai.usage.input_tokens",
    "tokens_out": "gen_ai.usage.output_tokens",
    "tokens_cached": "gen_ai.usage.cache_read.input_tokens",
    "latency_ms": "gtw.latency_ms",
    "ttft_ms": "gtw.time_to_first_token_ms",
    "audio_seconds": "gtw.usage.audio_seconds",
    "images": "gtw.usage.images",
    "cost_usd": "gtw.cost_usd",
    "error": "error.type",
    "variant": "gtw.variant",
    "prompt_version": "gtw.prompt_version",
    "shadow": "gtw.shadow",
    "campaign_id": "gtw.campaign.id",
    "session_id": "gen_ai.conversation.id",
    "turn_seq": "gtw.turn.seq",
}


def otel_attributes(call: Any) -> dict[str, Any]:
    """A ProviderCall (or a row dict) as OpenTelemetry GenAI attributes, for JSON export."""
    get = call.get if isinstance(call, dict) else lambda name, default=None: getattr(call, name, default)
    out: dict[str, Any] = {}
    for name, otel in OTEL_NAMES.items():
        value = get(name, None)
        if value in (None, "") or (name == "error" and not value):
            continue
        if name == "cost_usd":
            value = float(value)
        out[otel] = value
    created = get("created_at", None)
    if created is not None:
        out["time"] = created.isoformat()
    return out


@contextmanager
def collecting() -> Iterator[list[dict[str, Any]]]:
    """Inside the block, rows are collected in the yielded list, not written; the caller hands
    them on with `record_rows`."""
    rows: list[dict[str, Any]] = []
    token = _held.set(rows)
    try:
        yield rows
    finally:
        _held.reset(token)


@contextmanager
def deferred() -> Iterator[None]:
    """Write the block's rows when it ends (however it ends), not as the calls happen. Nested in
    another `deferred()` or `collecting()` block, the outer one takes them."""
    if _held.get() is not None:
        yield
        return
    pending: list[dict[str, Any]] = []
    try:
        with collecting() as rows:
            try:
                yield
            finally:
                pending = list(rows)
    finally:
        record_rows(pending)  # a block that raised still leaves its rows (a crashed turn's calls)


class RecordedFuture(Future):
    """A pool job's future whose telemetry rows are recorded by the thread that takes its result
    (`result()` or `exception()`), once."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[dict[str, Any]] = []
        self._rows_lock = threading.Lock()

    def result(self, timeout: float | None = None) -> Any:
        try:
            return super().result(timeout)
        finally:
            if self.done():
                self._hand_over()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            return super().exception(timeout)
        finally:
            if self.done():
                self._hand_over()

    def _hand_over(self) -> None:
        with self._rows_lock:
            rows, self._rows = self._rows, []
        record_rows(rows)


def in_thread(pool: Executor, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> RecordedFuture:
    """`pool.submit(fn, …)`, but the provider calls `fn` makes in the worker leave their rows to
    the future's consumer: no row is written from the worker's own database connection."""
    out = RecordedFuture()

    def work() -> Any:
        with collecting() as rows:
            try:
                return fn(*args, **kwargs)
            finally:
                out._rows = list(rows)

    inner = pool.submit(work)

    def settle(done: Future) -> None:
        if done.cancelled():  # the pool shut down before the job started
            out.cancel()
            return
        exc = done.exception()
        if exc is not None:
            out.set_exception(exc)
        else:
            out.set_result(done.result())

    inner.add_done_callback(settle)
    return out
