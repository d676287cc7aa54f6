from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """200 with each dependency "ok", or 503 naming what is down."""
    status = {"db": "ok", "pgvector": "ok", "redis": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        if row is None:
            status["pgvector"] = "missing: run migrations (CREATE EXTENSION vector)"
    except Exception as exc:  # noqa: BLE001 - any failure means "down", and we say which
        status["db"] = f"down: {type(exc).__name__}"
        status["pgvector"] = "unknown"
    try:
        import redis
        from django.conf import settings

        redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        status["redis"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in status.values())
    return JsonResponse(status, status=200 if healthy else 503)
