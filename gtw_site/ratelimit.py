"""Per-user rate limits in the shared cache (Redis), one fixed window per user and scope.

Every process (Daphne, task workers) shares the counters, so a flood spread over several web
processes is still one flood. Only the flooding user is refused; everyone else has their own
counter. Limits live in settings.GTW_RATE_LIMITS: scope -> (how many, per how many seconds,
what they are called in the refusal).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from gtw_site.errors import RateLimited


def limit_for(scope: str) -> tuple[int, int, str]:
    return settings.GTW_RATE_LIMITS[scope]


def rate_check(*, scope: str, ident: int | str) -> None:
    """Count one request of `scope` by `ident` (usually a user id); RateLimited past the limit.

    The window starts at the user's first request (not at a clock boundary, which would let a
    flood straddling it through twice); keys are per database, so deployments (and parallel test
    workers) sharing one Redis don't mix.
    """
    limit, per, what = limit_for(scope)
    if limit <= 0:
        return  # 0 turns a limit off
    key = f"rl:{connection.settings_dict['NAME']}:{scope}:{ident}"
    if cache.add(key, 1, timeout=per):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=per)
        return
    if count > limit:
        raise RateLimited(f"Slow down: at most {limit} {what} per {per} seconds.")


def rate_reset() -> None:
    """Forget every counter of this database (tests)."""
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=f"*rl:{connection.settings_dict['NAME']}:*"):
        client.delete(key)
