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
                _client().zrem(_key(), member)


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
