"""Putting work on a django-q2 queue.

`django_q.tasks.async_task` builds a new broker for every task unless it is handed one, and
the Redis broker's constructor makes a new Redis client with its own connection pool: every
enqueue opened (and dropped) a connection, a millisecond or two on the path from a player's
action to the start of the GM's turn. `enqueue` keeps one broker per queue and process
(redis-py clients are thread-safe and reconnect after a fork).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

_brokers: dict[tuple[int, str | None], Any] = {}
_lock = threading.Lock()


def broker(cluster: str | None = None):
    """The process's broker for `cluster`'s queue (None: the default cluster)."""
    key = (os.getpid(), cluster)
    found = _brokers.get(key)
    if found is None:
        from django_q.brokers import get_broker

        with _lock:
            found = _brokers.get(key)
            if found is None:
                found = _brokers[key] = get_broker(cluster)
    return found


def enqueue(func: str, *args, cluster: str | None = None, **options) -> str:
    """`async_task(func, *args, **options)` on `cluster`'s queue, through the kept broker."""
    from django_q.tasks import async_task

    if cluster is not None:
        options["cluster"] = cluster
    return async_task(func, *args, broker=broker(cluster), **options)


# A queued task waits seconds, not minutes (the turn cluster has a worker free within one turn);
# a flag older than this belongs to a task that was lost (a worker killed with it in hand), and
# must not keep its successors out for long.
QUEUED_TTL_S = 30


def _queued_key(name: str) -> str:
    from django.db import connection

    return f"gtw:queued:{connection.settings_dict['NAME']}:{name}"


def enqueue_once(name: str, func: str, *args, cluster: str | None = None, **options) -> str | None:
    """`enqueue`, unless a task enqueued under `name` is still waiting to start; None then.

    The task must call `started(name)` before it reads anything, so whatever was committed before
    a skipped enqueue is seen by the task already queued. One waiting task per name keeps a flood
    of requests (a player's actions, a client's replays) from filling the queue ahead of other
    people's work. If Redis fails, the task is enqueued anyway: a duplicate costs little.
    """
    from django.core.cache import cache

    key = _queued_key(name)
    try:
        fresh = cache.add(key, 1, timeout=QUEUED_TTL_S)
    except Exception:  # noqa: BLE001 — deduplication is an optimisation; never lose the task
        fresh = True
    if not fresh:
        return None
    if cluster is not None:
        options["cluster"] = cluster
    try:
        return enqueue(func, *args, **options)
    except BaseException:
        started(name)  # nothing is queued under the name after all
        raise


def started(name: str) -> None:
    """The task enqueued under `name` has begun: the next `enqueue_once(name, …)` queues again."""
    from django.core.cache import cache

    with contextlib.suppress(Exception):
        cache.delete(_queued_key(name))


def queued_reset() -> None:
    """Forget every waiting-task flag of this database (tests)."""
    from django.core.cache import cache
    from django.db import connection

    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=f"*gtw:queued:{connection.settings_dict['NAME']}:*"):
        client.delete(key)
