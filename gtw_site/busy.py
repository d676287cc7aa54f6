"""Turns first: background work (memory writes, embedding) waits while a GM turn is running.

On a small machine the embedding job (tens of ms of ONNX per batch) and the turn compete for
the same cores, and players are waiting on the turn. A running turn registers itself in a
Redis sorted set with an expiry (so a crashed worker can't block anything for long); background
tasks call `wait_for_turns()` before their CPU-heavy part, which waits at most `max_wait`
seconds, so memory work is delayed, never starved.
"""

from __future__ import annotations

import contextlib
import os
import time

from django.core.cache import cache
from django.db import connection

ENTRY_TTL_S = 30.0
EXPECTED_TTL_S = 3.0


def _key() -> str:
    return f"gtw:turns-running:{connection.settings_dict['NAME']}"


def _client():
    return cache._cache.get_client(write=True)


def _expected(session_id: int) -> str:
    return f"next:{session_id}"


def _streaming_key() -> str:
    """Running turns (members of `_key()`) whose first delta is out."""
    return f"gtw:turns-streaming:{connection.settings_dict['NAME']}"


def _first_deltas_key() -> str:
    """How many turns have sent their first delta (a counter: waiters see one go by)."""
    return f"gtw:first-deltas:{connection.settings_dict['NAME']}"


def turn_expected(session_id: int) -> None:
    """A turn was just scheduled: background work waits from now on, not only once the runner
    has the turn (the memory job for the action itself would otherwise run in that gap, beside
    the turn's start). `turn_running` takes the entry over; unclaimed, it expires."""
    with contextlib.suppress(Exception):  # see turn_running
        _client().zadd(_key(), {_expected(session_id): time.time() + EXPECTED_TTL_S})


def turn_unexpected(session_id: int) -> None:
    """The scheduled runner found nothing to do (a replayed action)."""
    with contextlib.suppress(Exception):
        _client().zrem(_key(), _expected(session_id))


@contextlib.contextmanager
def turn_running(session_id: int):
    member = f"{os.getpid()}:{session_id}"
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.zadd(_key(), {member: time.time() + ENTRY_TTL_S})
        pipe.zrem(_key(), _expected(session_id))
        pipe.execute()
    except Exception:  # noqa: BLE001 — priority is an optimisation; a Redis hiccup must not stop a turn
        member = None
    try:
        yield
    finally:
        if member is not None:
            with contextlib.suppress(Exception):
                pipe = _client().pipeline(transaction=False)
                pipe.zrem(_key(), member)
                pipe.zrem(_streaming_key(), member)
                pipe.execute()


def first_delta_out(session_id: int) -> None:
    """This process's running turn of the session sent its first delta: work that only keeps out
    of a turn's way until then (the telemetry writer, `turns_before_first_delta`) may go on."""
    with contextlib.suppress(Exception):  # see turn_running
        now = time.time()
        pipe = _client().pipeline(transaction=False)
        pipe.zadd(_streaming_key(), {f"{os.getpid()}:{session_id}": now + ENTRY_TTL_S})
        pipe.zremrangebyscore(_streaming_key(), "-inf", now)
        pipe.incr(_first_deltas_key())
        pipe.publish(_first_deltas_key(), session_id)  # wakes a waiter (first_delta_listener)
        pipe.execute()


def first_delta_listener():
    """A Redis subscription that gets a message whenever a turn's first delta goes out (any
    process's): a waiter blocks on its socket (`get_message(timeout=…)`), using no CPU, instead
    of polling `turns_before_first_delta`. The caller keeps it (one connection) and closes it."""
    listener = _client().pubsub(ignore_subscribe_messages=True)
    listener.subscribe(_first_deltas_key())
    return listener


def turns_before_first_delta() -> tuple[int, int]:
    """(turns of every process, this one's included, that are expected or running and have not
    sent their first delta yet; how many first deltas went out so far). One round trip; raises
    if Redis is unreachable (the caller decides what that means)."""
    now = time.time()
    pipe = _client().pipeline(transaction=False)
    pipe.zrangebyscore(_key(), now, "+inf")
    pipe.zrangebyscore(_streaming_key(), now, "+inf")
    pipe.get(_first_deltas_key())
    running, streaming, deltas = pipe.execute()
    return len(set(running) - set(streaming)), int(deltas or 0)


def turns_running() -> int:
    """Turns running in *other* processes (a task run inline by a turn must not wait for it)."""
    client, key = _client(), _key()
    client.zremrangebyscore(key, "-inf", time.time())  # entries of crashed workers expire
    own = f"{os.getpid()}:".encode()
    return sum(1 for m in client.zrange(key, 0, -1) if not m.startswith(own))


_last_full_wait = 0.0


def wait_for_turns(max_wait: float = 2.0, poll: float = 0.02, grace: float = 10.0) -> float:
    """Sleep while any turn runs, up to `max_wait` seconds. Returns how long it waited.

    After a wait that ran out (turns back to back), tasks in the next `grace` seconds don't wait
    at all, so a table that never pauses can't starve memory work into a growing backlog."""
    global _last_full_wait
    start = time.monotonic()
    if start - _last_full_wait < grace:
        return 0.0
    with contextlib.suppress(Exception):  # see turn_running: never let this stop the task
        while turns_running():
            if time.monotonic() - start >= max_wait:
                _last_full_wait = time.monotonic()
                break
            time.sleep(poll)
    return time.monotonic() - start
