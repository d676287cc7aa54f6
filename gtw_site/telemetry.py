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

A `deferred()` block (a turn, run while the runner holds the session's advisory lock) does not
write its rows itself when it ends: it hands them to the process's background writer — one
daemon thread, a bounded queue (GTW_TELEMETRY_QUEUE batches), its own database connection, kept
between batches where CONN_MAX_AGE keeps connections (`gtw up`'s task workers; closed after
IDLE_CLOSE_S without work), else closed whenever the queue runs dry — so the next turn of the
session does not wait for the INSERTs. The writer also keeps off the CPU while any process's
turn is on its way to its first delta (gtw_site.busy): a batch is written right after the next
first delta goes out, or once the table is quiet, and waits at most GTW_TELEMETRY_YIELD_S
(Writer._yield_to_turns). A full queue makes the caller write its rows itself (nothing is
dropped); a block that ends inside a transaction writes them itself too, so they commit or roll
back with it; so does GTW_TELEMETRY_WRITER=sync. `flush()` waits until everything handed over is
written (tests, the benches; atexit does it too). A forked child starts its own writer. What a
kill -9 loses is at most the queued rows: the player's action, the Narration and its events are
committed before.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any

from gtw_site.providers import Usage
from gtw_site.redact import configured, redact
from gtw_site.trace import mark

logger = logging.getLogger(__name__)

# Rows collected instead of written, while a `collecting()` / `deferred()` block is active.
_held: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "gtw_telemetry_held", default=None
)
_scope: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("gtw_telemetry_scope", default={})  # noqa: B039 - never mutated
SCOPE_FIELDS = ("campaign_id", "session_id", "turn_seq", "variant", "prompt_version", "shadow")
PROMPT = "_prompt"  # a held row's captured prompt (not a column: see gtw_site.prompt_store)


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
    prompt: Any = None,
) -> None:
    """Store one telemetry row (or hold it, see the module docstring). Never raises: telemetry
    must not break a turn. `prompt`: what a chat call sent (gtw_site.prompt_store.Captured),
    stored beside the row for the GM's replay timeline."""
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
    if prompt is not None and not row.get("shadow"):
        row[PROMPT] = prompt
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
    _write(rows, _scope.get())


def _write(rows: list[dict[str, Any]], here: dict[str, Any]) -> None:
    """Price, render and insert rows (and their prompts) in one transaction, on this thread's
    connection; `here` is the scope the rows were recorded in. Never raises."""
    rendered: list[Any] = []
    try:
        from django.db import transaction

        from gtw_site import prompt_store
        from gtw_site.models import ProviderCall, ProviderPrompt
        from gtw_site.providers.pricing import cost_of

        keep_prompts = prompt_store.retention_days() > 0
        objs = []
        prompts = []
        for row in rows:
            row = {**{k: v for k, v in here.items() if k in SCOPE_FIELDS}, **row}
            prompts.append(row.pop(PROMPT, None) if keep_prompts else None)
            row.pop(PROMPT, None)
            row.setdefault("cost_usd", cost_of(row, refresh=False))
            row["shadow"] = bool(row.get("shadow"))
            row["variant"] = str(row.get("variant") or "")[:40]
            row["prompt_version"] = str(row.get("prompt_version") or "")[:40]
            objs.append(ProviderCall(**row))
        # Rendered (redacted, cut) before the transaction; rows and prompts then commit together,
        # one commit for the batch (not one per insert), no savepoint inside a caller's.
        rendered = prompt_store.render_all(objs, prompts) if any(p is not None for p in prompts) else []
        with transaction.atomic(savepoint=False):
            ProviderCall.objects.bulk_create(objs)
            if rendered:
                ProviderPrompt.objects.bulk_create(prompt_store.rows_for(objs, rendered))
    except Exception:
        logger.warning("could not record provider telemetry", exc_info=True)
        return
    if rendered:
        try:
            prompt_store.purge()  # at most once an hour per process
        except Exception:
            logger.warning("could not delete old provider prompts", exc_info=True)


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
        hand_off(pending)  # a block that raised still leaves its rows (a crashed turn's calls)


# ---- the background writer (see the module docstring) ----------------------------------------

DEFAULT_QUEUE = 1000  # batches (one per turn), not rows


def _setting(name: str, default: Any) -> Any:
    try:
        from django.conf import settings

        return getattr(settings, name, default)
    except Exception:  # noqa: BLE001 - settings not configured (a pure test)
        return default


# How long a batch keeps out of the way of turns that have not sent their first delta yet (any
# process's, via gtw_site.busy): the write then waits at most this long, from its hand-off.
DEFAULT_YIELD_S = 1.5
# With no turn in flight, a batch still waits this long for the table's next action: at a table
# that plays back to back (the benchmark), that action arrives a few ms after the Narration, and a
# write started in between would run beside the next turn's path to its first delta.
SETTLE_S = 0.25
# A first delta wakes a waiting batch at once. Besides, it looks at flush() and the bound every
# TICK_S (in-process, ~free) and asks Redis whether a turn is still on its way every WAKE_S (one
# round trip, a few hundred µs of CPU under load: not a 50 Hz poll).
TICK_S = 0.02
WAKE_S = 0.1
IDLE_CLOSE_S = 10.0  # the writer's database connection is closed after this long without work


class Writer:
    """One daemon thread writing queued batches in the order they were handed over.

    A batch waits (`_yield_to_turns`) until no turn is on its way to a first delta — it goes
    right after one goes out, or once the table has been quiet for SETTLE_S — for at most
    GTW_TELEMETRY_YIELD_S seconds from its hand-off. It never waits when the queue is half full,
    while a `flush()` waits on it, or when Redis is unreachable; nothing is ever dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = max(1, int(cap))
        self.queue: queue.Queue[tuple[list[dict[str, Any]], dict[str, Any], float]] = queue.Queue(self.cap)
        self.thread: threading.Thread | None = None
        self.start_lock = threading.Lock()
        self.hurry = threading.Event()  # set while a flush() waits: write at once
        self.flushing = 0  # how many flush() calls wait (guarded by queue.all_tasks_done)
        self.overflowed = 0  # batches the callers wrote themselves because the queue was full
        self.failed = 0  # batches whose write raised (logged; the thread goes on)
        self.yielded_s = 0.0  # time batches spent waiting for turns' first deltas (tests, benches)
        self.listener: Any = None  # the writer thread's subscription to first deltas (gtw_site.busy)

    def submit(self, rows: list[dict[str, Any]], here: dict[str, Any]) -> bool:
        """Queue a batch; False when the queue is full (the caller then writes it)."""
        self._ensure_thread()
        try:
            self.queue.put_nowait((rows, here, time.monotonic()))
        except queue.Full:
            self.overflowed += 1
            return False
        return True

    def _ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        with self.start_lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="gtw-telemetry", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        _name_thread("gtw-telemetry")  # benches find the writer's CPU time under this name
        while True:
            try:
                rows, here, handed = self.queue.get(timeout=IDLE_CLOSE_S)
            except queue.Empty:
                # A table that keeps playing reuses the connection (a new one is a PostgreSQL
                # backend to start: milliseconds of CPU on the machine the turns run on).
                _close_connections()
                continue
            try:
                self._yield_to_turns(handed)
                mark("telemetry.writing")
                _refresh_connections()
                write_batch(rows, here)
            except Exception:  # the writer outlives any one bad batch
                self.failed += 1
                logger.warning("could not record provider telemetry (background writer)", exc_info=True)
            finally:
                # `gtw bench turn --telemetry ab` checks that the writer kept out of the next
                # action's path to its first delta (a write that overlaps it is its cost).
                mark("telemetry.written")
                self.queue.task_done()
            if self.queue.empty() and not _keeps_connections():
                _close_connections()  # outside `gtw up`'s task workers: a connection per run of work

    def _yield_to_turns(self, handed: float) -> None:
        """Wait while a turn (any process's) has not sent its first delta, up to the bound; see
        the class docstring. The wait blocks on a Redis subscription to first deltas
        (gtw_site.busy.first_delta_listener), so it costs no CPU beside the turn it waits for."""
        started = time.monotonic()
        try:
            self._wait_for_first_delta(handed + float(_setting("GTW_TELEMETRY_YIELD_S", DEFAULT_YIELD_S)))
        except Exception:  # noqa: BLE001 - no Redis (or no Django): write now
            self._drop_listener()
        finally:
            self.yielded_s += time.monotonic() - started

    def _wait_for_first_delta(self, deadline: float) -> None:
        from gtw_site import busy

        def must_write() -> bool:
            return self.hurry.is_set() or self.queue.qsize() * 2 >= self.cap or time.monotonic() >= deadline

        if must_write():
            return
        if self.listener is None:
            self.listener = busy.first_delta_listener()
        listener = self.listener
        while listener.get_message(timeout=0) is not None:
            pass  # first deltas from before this batch (its own turn's)
        # Quiet for SETTLE_S: the table's next action may be a few ms behind the Narration.
        settle_until = time.monotonic() + SETTLE_S
        next_check = 0.0
        while not must_write():
            now = time.monotonic()
            if now >= next_check:
                if now >= settle_until and not busy.turns_before_first_delta()[0]:
                    return  # nothing on its way to a first delta (a failed turn ends too)
                next_check = now + WAKE_S
            if listener.get_message(timeout=max(0.0, min(TICK_S, deadline - now))) is not None:
                return  # a first delta just went out: write now, behind it

    def _drop_listener(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued batch is written (or `timeout` seconds); True when empty.
        Queued batches stop waiting for turns meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.queue.all_tasks_done:
            self.flushing += 1
            self.hurry.set()
            try:
                while self.queue.unfinished_tasks:
                    if self.thread is None or not self.thread.is_alive():
                        return False  # nothing will drain it (a child's copy; never started)
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self.queue.all_tasks_done.wait(0.5 if left is None else min(left, 0.5))
            finally:
                self.flushing -= 1
                if not self.flushing:
                    self.hurry.clear()
        return True


def _name_thread(name: str) -> None:
    """The calling thread's name as the kernel shows it (/proc/<pid>/task/<tid>/comm, `top -H`);
    Linux only, best effort."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass


def write_batch(rows: list[dict[str, Any]], here: dict[str, Any]) -> None:
    """What the writer thread does with one batch (a seam for tests)."""
    _write(rows, here)


def _keeps_connections() -> bool:
    """Whether connections are meant to outlive their work here (CONN_MAX_AGE, which `gtw up`
    sets for task workers); if not, the writer closes its own whenever the queue runs dry."""
    try:
        from django.conf import settings

        return settings.DATABASES["default"].get("CONN_MAX_AGE", 0) != 0
    except Exception:  # noqa: BLE001 - settings not configured (a pure test)
        return False


def _refresh_connections() -> None:
    """Before a batch: the writer's kept connection is dropped if it broke or outlived
    CONN_MAX_AGE (0, outside `gtw up`: a new one per batch); a kept one is health-checked on use
    (CONN_HEALTH_CHECKS), so a database restarted meanwhile costs no rows."""
    try:
        from django.db import close_old_connections

        close_old_connections()
    except Exception:
        logger.debug("telemetry writer: refreshing its connection failed", exc_info=True)


def _close_connections() -> None:
    """The writer thread's own database connections, closed while it waits for work."""
    try:
        from django.db import connections

        connections.close_all()  # this thread's connections only
    except Exception:
        logger.debug("telemetry writer: closing its connection failed", exc_info=True)


_writer_lock = threading.Lock()
_writer: Writer | None = None


def writer() -> Writer:
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = Writer(_setting("GTW_TELEMETRY_QUEUE", DEFAULT_QUEUE))
        return _writer


def _forget_writer_after_fork() -> None:
    """A forked child inherits the parent's queue (and maybe its locks held) but not its thread:
    it starts a fresh writer of its own; the parent's queued rows stay the parent's to write."""
    global _writer, _writer_lock
    _writer_lock = threading.Lock()
    _writer = None


os.register_at_fork(after_in_child=_forget_writer_after_fork)


def hand_off(rows: list[dict[str, Any]]) -> None:
    """Rows a turn collected: to the background writer, or written here (inside a transaction,
    GTW_TELEMETRY_WRITER=sync, a full queue). Never raises."""
    if not rows:
        return
    if _held.get() is not None or not enabled():
        record_rows(rows)  # an outer block takes them / nothing is recorded
        return
    try:
        from django.db import connection

        in_transaction = connection.in_atomic_block
    except Exception:  # noqa: BLE001 - settings not configured (a pure test)
        in_transaction = True
    here = dict(_scope.get())
    if in_transaction or _setting("GTW_TELEMETRY_WRITER", "background") == "sync":
        _write(rows, here)
    elif not writer().submit(list(rows), here):
        _write(rows, here)  # the queue is full: write rather than drop


def flush(timeout: float | None = None) -> bool:
    """Wait until the rows handed to the background writer are written. True when they are."""
    current = _writer
    return True if current is None else current.flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    try:
        if not flush(timeout=5.0):
            logger.warning("telemetry writer: exiting with rows still queued")
    except Exception:  # at exit, logging itself may be gone
        logger.debug("telemetry writer: flush at exit failed", exc_info=True)


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
    the future's consumer: no row is written from the worker's own database connection. The
    job runs in the submitter's scope (its campaign's provider choice applies) and builds its
    adapters from the choices this thread checked (gtw_site.providers.selection.for_pool_job):
    the worker reads no revision, so it opens no database connection for that."""
    from gtw_site.providers import selection

    out = RecordedFuture()
    fields = _scope.get()
    selection.for_pool_job()

    def work() -> Any:
        token = _scope.set(fields)
        try:
            with collecting() as rows, selection.as_loaded():
                try:
                    return fn(*args, **kwargs)
                finally:
                    out._rows = list(rows)
        finally:
            _scope.reset(token)

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
