"""Putting work on a django-q2 queue.

`django_q.tasks.async_task` builds a new broker for every task unless it is handed one, and
the Redis broker's constructor makes a new Redis client with its own connection pool: every
enqueue opened (and dropped) a connection, a millisecond or two on the path from a player's
action to the start of the GM's turn. `enqueue` keeps one broker per queue and process
(redis-py clients are thread-safe and reconnect after a fork).
"""

from __future__ import annotations

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
