"""Riding out a PostgreSQL or Redis restart (issue 23).

A process that loses its database or broker connection does not wait for a timer: it knows what it
was doing, reconnects with a short back-off and carries on.

- `database_lost(exc)`: whether an exception means the connection to PostgreSQL is gone (the server
  died or restarted, a failover), as opposed to an error in what we asked it;
- `wait_for_database(timeout)`: reconnect with back-off until the server accepts connections again;
- `redis_down(exc)`: whether an exception means Redis is unreachable;
- `ResilientRedisBroker`: django-q2's Redis broker whose pusher rides out a Redis restart. Stock
  django-q2 sleeps 10 s after a failed dequeue and lets its sentinel restart the pusher, so the
  first task after Redis came back waited ~11 s (issue 23); this one retries every
  `BROKER_RETRY_MAX_S` at most.
"""

from __future__ import annotations

import contextlib
import logging
import time

from django_q.brokers.redis_broker import Redis as _RedisBroker

logger = logging.getLogger(__name__)

# Back-off between reconnection attempts: doubles from the first to the last. The last bounds
# how long after the server is back we notice (the target is "within 5 s").
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 0.5
BROKER_RETRY_MAX_S = 0.5


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def database_lost(exc: BaseException, alias: str = "default") -> bool:
    """True if `exc` (or an exception it was raised from) is a connection-level failure *and* the
    connection is now unusable: the server closed it, or a new one could not be opened. A query
    error (a deadlock, a statement timeout, a constraint) leaves the connection usable: False."""
    import psycopg
    from django.db import connections
    from django.db import utils as db_utils

    kinds = (
        db_utils.OperationalError,
        db_utils.InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    )
    if not any(isinstance(e, kinds) for e in _chain(exc)):
        return False
    raw = connections[alias].connection
    return raw is None or bool(getattr(raw, "closed", False)) or bool(getattr(raw, "broken", False))


def wait_for_database(
    timeout: float, *, alias: str = "default", first: float = RETRY_FIRST_S, most: float = RETRY_MAX_S
) -> bool:
    """Drop the dead connection and reconnect, backing off from `first` to `most` seconds between
    tries, until the server answers a query (True) or `timeout` seconds pass (False)."""
    from django.db import connections
    from django.db import utils as db_utils

    connection = connections[alias]
    deadline = time.monotonic() + timeout
    delay = first
    while True:
        with contextlib.suppress(Exception):
            connection.close()
        try:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except (db_utils.OperationalError, db_utils.InterfaceError):
            pass
        if time.monotonic() + delay > deadline:
            with contextlib.suppress(Exception):
                connection.close()
            return False
        time.sleep(delay)
        delay = min(most, delay * 2)


def redis_down(exc: BaseException) -> bool:
    """True if `exc` (or an exception it was raised from) says Redis can't be reached."""
    import redis

    kinds = (redis.ConnectionError, redis.TimeoutError)
    return any(isinstance(e, kinds) for e in _chain(exc))


def service_down(exc: BaseException) -> str | None:
    """Which service an exception says is unreachable: "redis", "db", or None (anything else).
    For a failure seen from another thread than the one that hit it (a consumer awaiting a
    database call): any connection-level database error counts, pool time-outs included."""
    import psycopg
    from django.db import utils as db_utils

    if redis_down(exc):
        return "redis"
    kinds = (
        db_utils.OperationalError,
        db_utils.InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    )
    if any(isinstance(e, kinds) for e in _chain(exc)):
        return "db"
    return None


class ResilientRedisBroker(_RedisBroker):
    """django-q2's Redis broker (Q_CLUSTER["broker_class"]), whose `dequeue` returns nothing while
    Redis is unreachable, retrying with back-off, instead of raising: the stock pusher answers a
    raise by sleeping 10 s and exiting for its sentinel to replace. redis-py reconnects by itself
    on the next command once the server is back."""

    _down_since: float | None = None
    _delay: float = RETRY_FIRST_S

    def dequeue(self):
        try:
            found = super().dequeue()
        except Exception as exc:
            if not redis_down(exc):
                raise
            if self._down_since is None:
                self._down_since = time.monotonic()
                logger.warning("Redis is unreachable (%s); the task queue retries until it is back", exc)
            time.sleep(self._delay)
            self._delay = min(BROKER_RETRY_MAX_S, self._delay * 2)
            return None
        if self._down_since is not None:
            logger.warning(
                "Redis is back after %.1f s; taking tasks again", time.monotonic() - self._down_since
            )
            self._down_since = None
            self._delay = RETRY_FIRST_S
        return found
