"""The one per-session turn runner, for both kinds of turn (party.py, batch.py).

A runner answers one session's work in order while it holds that session's PostgreSQL advisory
lock; a second runner for the same session and kind finds the lock taken and returns at once,
and the first re-checks after releasing its lock, so work that arrived at the last moment is
never stranded. A turn that raises is handed back to its kind (`Turns.crashed`) and the runner
goes on; a kind with a budget yields after that many turns and re-queues the session behind
other sessions' work. What a kind keeps pending stays committed, so a crash (even SIGKILL)
loses nothing: the next runner picks it up.

Also here: one provider round streamed to the players with exactly one retry, shared by the
party narrator and the batch narrator.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connection

from campaigns.models import PlaySession
from gtw_site import busy, metrics, reconnect, telemetry
from gtw_site.providers import ProviderError, selection
from gtw_site.trace import mark
from narrative.llm.base import ChatRequest, TextDelta, ToolCall, ToolCallEvent
from realtime import broadcast

logger = logging.getLogger(__name__)

RETRYING = "The GM lost the thread for a moment — retrying…"


class Turns:
    """One kind of work the runner answers for a session. An instance lasts one run, so it may
    keep what it learns along the way (the party turn's query vectors, the batch turn's failed
    windows)."""

    lock_namespace: int
    budget: int = 0  # turns per run before the session is re-queued; 0: no limit
    crash_message: str  # logged with (key(item), session id) when a turn raises

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id

    def locked(self) -> None:
        """The lock is held and nothing has run yet."""

    def next(self, session: PlaySession) -> Any | None:
        """The next piece of work, read from the freshly loaded session; None: nothing left."""
        raise NotImplementedError

    def key(self, item: Any) -> Any:
        """How the log names the piece of work."""
        return item

    def run(self, session: PlaySession, item: Any) -> None:
        raise NotImplementedError

    def crashed(self, session: PlaySession, item: Any, exc: Exception) -> None:
        """`run` raised (logged already): record it so the runner never spins on it."""
        raise NotImplementedError

    def more(self) -> bool:
        """After the unlock: is there work left for a runner?"""
        raise NotImplementedError

    def idle(self) -> None:
        """The run found nothing to do."""

    def requeue(self) -> None:
        """The budget is spent and work is left: queue the session's next runner."""
        raise NotImplementedError


def run(turns: Turns) -> int:
    """Answer the session's work of one kind, in order. Returns how many turns ran.

    Losing the database mid-turn (PostgreSQL killed or restarted, a failover) is not the turn's
    fault: the runner keeps the session it was answering, reconnects with back-off and runs again
    as soon as the server accepts connections (issue 23) — the turn's committed events (its dice
    roll) are reused by their idempotency keys, so it is still answered exactly once. Only after
    `GTW_RECONNECT_WAIT_S` without a database does it give up, leaving the turn pending for the
    supervisor's sweep."""
    ran = 0
    while True:
        try:
            return ran + _run(turns)
        except Exception as exc:
            if not reconnect.database_lost(exc):
                raise
            lost_at = time.monotonic()
            logger.warning("lost the database during session %s's turns; reconnecting", turns.session_id)
            if not reconnect.wait_for_database(settings.GTW_RECONNECT_WAIT_S):
                raise
            logger.warning(
                "database back after %.1f s; re-running session %s's turns",
                time.monotonic() - lost_at,
                turns.session_id,
            )
            if isinstance(exc, _Interrupted):
                ran += exc.ran
                _reset_preview(turns.session_id, exc.item)


class _Interrupted(Exception):
    """The database went away while `item` ran (raised from the lost connection's error)."""

    def __init__(self, ran: int, item: Any) -> None:
        super().__init__(f"database lost while running {item!r}")
        self.ran = ran
        self.item = item


RECONNECTED = "The GM lost the connection for a moment — picking the thread back up…"


def _reset_preview(session_id: int, item: Any) -> None:
    """The interrupted turn's preview restarts with its re-run: tell clients to drop what they
    have of it (an int item is the action seq the deltas are tagged with)."""
    if isinstance(item, int) and not isinstance(item, bool):
        stream = broadcast.DeltaStream(session_id, item)
        stream.sent_any = True  # we can't know whether any delta went out: say it anyway
        stream.reset(RECONNECTED)


def _run(turns: Turns) -> int:
    session_id = turns.session_id
    budget = turns.budget
    ran = 0
    while True:
        if not try_lock(turns.lock_namespace, session_id):
            return ran
        if not ran:
            turns.locked()
        try:
            while not (budget > 0 and ran >= budget):
                session = PlaySession.objects.select_related(
                    "campaign", "campaign__pack", "campaign__personality"
                ).get(pk=session_id)
                item = turns.next(session)
                if item is None:
                    break
                try:
                    # Issue 17: the turn's provider rows name their campaign, session and turn, and
                    # the campaign's runtime provider choice applies (gtw_site.telemetry.scope),
                    # read once for the whole turn (a choice changed mid-turn applies to the next).
                    key = turns.key(item)
                    with (
                        busy.turn_running(session_id),
                        selection.checked_once(),
                        telemetry.scope(
                            campaign_id=session.campaign_id,
                            session_id=session_id,
                            turn_seq=key if isinstance(key, int) else None,
                        ),
                    ):
                        started = time.perf_counter()
                        _turn.cpu = time.thread_time()
                        turns.run(session, item)
                        metrics.turn_finished(time.perf_counter() - started)
                except Exception as exc:
                    if reconnect.database_lost(exc):
                        # Not the turn's fault: never recorded as failed; `run` reconnects.
                        raise _Interrupted(ran, item) from exc
                    logger.exception(turns.crash_message, turns.key(item), session_id)
                    turns.crashed(session, item, exc)
                ran += 1
        finally:
            _unlock(turns.lock_namespace, session_id)
        if not turns.more():
            if not ran:
                turns.idle()
            return ran
        if budget > 0 and ran >= budget:
            # Our share is used up: the rest goes to the back of the queue (after the unlock, so
            # the next runner can't find the lock still taken and leave).
            turns.requeue()
            return ran


def _unlock(namespace: int, session_id: int) -> None:
    """`unlock`, except on a lost connection: its server session, and the lock, are gone."""
    try:
        unlock(namespace, session_id)
    except Exception as exc:
        if not reconnect.database_lost(exc):
            raise


def try_lock(namespace: int, session_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, session_id])
        return bool(cursor.fetchone()[0])


def unlock(namespace: int, session_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, session_id])


_turn = threading.local()  # .cpu: the running turn's thread CPU time at its start


class TurnDeltaStream(broadcast.DeltaStream):
    """A turn's delta stream that tells gtw_site.busy once its first delta is out: background
    work that keeps out of the way of a turn's path to its first delta (the telemetry writer)
    may go on from there."""

    told = False

    def flush(self, now: float | None = None) -> None:
        first = self.index == 0 and bool(self.buffer)
        super().flush(now)
        if first and not self.told:
            self.told = True
            if settings.GTW_TELEMETRY_AB and hasattr(_turn, "cpu"):
                # `gtw bench turn --telemetry ab` compares the turn's CPU to its first delta.
                mark(f"turn.first_delta_cpu_us={(time.thread_time() - _turn.cpu) * 1e6:.0f}")
            busy.first_delta_out(self.session_id)


class Stopwatch:
    """Seconds spent inside a provider's stream (waiting on the model), for the batch's log."""

    def __init__(self) -> None:
        self.seconds = 0.0


def stream_with_retry(
    provider,
    request: ChatRequest,
    stream: broadcast.DeltaStream,
    *,
    who: str = "narrator",
    stopwatch: Stopwatch | None = None,
) -> tuple[str, list[ToolCall]]:
    """One provider round, its text pushed to the players as it streams. A retryable error gets
    exactly one more try (the preview restarts); any other, or a second, is raised."""
    for attempt in (1, 2):
        parts: list[str] = []
        calls: list[ToolCall] = []
        try:
            for event in _timed(provider.stream(request), stopwatch):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    stream.push(event.text)
                elif isinstance(event, ToolCallEvent):
                    calls.append(event.call)
            return "".join(parts), calls
        except ProviderError as exc:
            if not exc.retryable or attempt == 2:
                raise
            logger.warning("%s failed (%s); retrying once", who, exc)
            stream.reset(RETRYING)
    raise AssertionError("unreachable")


def _timed(events, stopwatch: Stopwatch | None):
    if stopwatch is None:
        yield from events
        return
    iterator = iter(events)
    while True:
        started = time.perf_counter()
        try:
            event = next(iterator)
        except StopIteration:
            stopwatch.seconds += time.perf_counter() - started
            return
        stopwatch.seconds += time.perf_counter() - started
        yield event
