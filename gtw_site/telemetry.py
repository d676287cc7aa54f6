"""Telemetry rows for provider calls (role, provider, model, latency, tokens).

A row is written on the thread that owns the work, with that thread's database connection, so it
commits (or rolls back) with the caller's transaction. Provider calls that run on a worker pool
(a turn embeds its query on "gtw-embed") go through `in_thread`: the worker only collects its
rows, and they travel with the future to whoever takes its result. A thread inside `deferred()`
(a turn) holds every row it collects until the block ends, so the first delta writes nothing.
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


def record_call(
    *,
    role: str,
    provider: str,
    model: str,
    latency_ms: float,
    usage: Usage | None = None,
    ok: bool = True,
    error: str = "",
) -> None:
    """Store one telemetry row (or hold it, see the module docstring). Never raises: telemetry
    must not break a turn."""
    record_rows(
        [
            {
                "role": role,
                "provider": provider,
                "model": model[:120],
                "latency_ms": round(latency_ms, 2),
                "tokens_in": usage.tokens_in if usage else 0,
                "tokens_out": usage.tokens_out if usage else 0,
                "ok": ok,
                # GTW_REDACT: a vendor's error may quote the prompt back, PII and all.
                "error": redact(error[:2000], configured().kinds)[:500] if error else "",
            }
        ]
    )


def record_rows(rows: list[dict[str, Any]]) -> None:
    """Write rows collected elsewhere — or add them to this thread's held rows, if it holds any."""
    if not rows:
        return
    held = _held.get()
    if held is not None:
        held.extend(rows)
        return
    try:
        from gtw_site.models import ProviderCall

        ProviderCall.objects.bulk_create([ProviderCall(**row) for row in rows])
    except Exception:
        logger.warning("could not record provider telemetry", exc_info=True)


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
