import contextlib

from django.db import connection
from django.http import JsonResponse

# /healthz answers within about this long even while a server is unreachable (a hosted one that
# drops packets): a load balancer's probe must get the 503, not a time-out.
PROBE_TIMEOUT_S = 2


def healthz(request):
    """200 with each dependency "ok", or 503 naming what is down (issue 23: "db", "redis")."""
    status = {"db": "ok", "pgvector": "ok", "redis": "ok"}
    try:
        row = _pgvector_row()
        if row is None:
            status["pgvector"] = "missing: run migrations (CREATE EXTENSION vector)"
    except Exception as exc:  # noqa: BLE001 - any failure means "down", and we say which
        status["db"] = f"down: {type(exc).__name__}"
        status["pgvector"] = "unknown"
    try:
        import redis
        from django.conf import settings

        client = redis.from_url(
            settings.REDIS_URL, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        status["redis"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in status.values())
    return JsonResponse(status, status=200 if healthy else 503)


def _pgvector_row():
    """A fresh connection with a short connect timeout, not one from the web process's pool: while
    the server is down the pool would make us wait its whole checkout timeout (10 s)."""
    import psycopg

    params = {**connection.get_connection_params(), "connect_timeout": PROBE_TIMEOUT_S}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with contextlib.closing(psycopg.connect(**params, autocommit=True)) as conn:
        return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
