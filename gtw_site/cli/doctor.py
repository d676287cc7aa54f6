"""`gtw doctor`: is the database, pgvector, Redis and each LLM role usable, and is anything
configured that is fine on a laptop but dangerous on a server."""

from __future__ import annotations

import sys

from gtw_site.cli.common import security_warnings, setup_django


def cmd_doctor(args) -> int:
    setup_django()
    from django.conf import settings
    from django.db import connection

    ok = True

    def line(good: bool, label: str, detail: str) -> None:
        nonlocal ok
        ok = ok and good
        sys.stdout.write(f"  {'✓' if good else '✗'} {label:<12} {detail}\n")

    sys.stdout.write(f"gtw doctor — data folder {settings.DATA_DIR}\n")
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            version = cur.fetchone()[0].split(",")[0]
            cur.execute("SELECT extversion FROM pg_extension WHERE extname='vector'")
            vec = cur.fetchone()
        line(True, "database", f"{version} ({'embedded' if settings.EMBEDDED_POSTGRES else 'DATABASE_URL'})")
        line(
            vec is not None,
            "pgvector",
            vec[0] if vec else "extension missing — run `python manage.py migrate`",
        )
    except Exception as exc:  # noqa: BLE001
        line(False, "database", f"unreachable: {exc}")
    try:
        import redis

        info = redis.from_url(settings.REDIS_URL, socket_timeout=2).info("server")
        line(
            True,
            "redis",
            f"{info['redis_version']} ({'embedded' if settings.EMBEDDED_REDIS else 'REDIS_URL'})",
        )
    except Exception as exc:  # noqa: BLE001
        line(False, "redis", f"unreachable: {exc}")
    for role in ("narrator", "summarizer"):
        line(*_provider_check(role))
    try:
        from media.speech import doctor as speech_doctor

        for good, label, detail in speech_doctor.checks():  # issue 14: stt, tts, voice files
            line(good, label, detail)
    except Exception as exc:  # noqa: BLE001
        line(False, "voice", f"could not check: {exc}")
    warnings = security_warnings()
    for warning in warnings:
        # A warning, not a failure: a laptop without mail is fine, a public server is not.
        sys.stdout.write(f"  ! WARNING: {warning}\n")
    verdict = "some checks failed" if not ok else "all good, but see the warnings" if warnings else "all good"
    sys.stdout.write(f"{verdict}\n")
    return 0 if ok else 1


def _provider_check(role: str, conf: dict | None = None) -> tuple[bool, str, str]:
    """(ok, role, detail) for doctor: builds the role's adapter as a turn would, so a bad
    provider name or a missing key shows here rather than at the first turn."""
    from django.conf import settings

    from gtw_site.providers import ProviderError
    from narrative.llm.registry import build, resolve_provider_name

    conf = conf or settings.GTW_LLM
    name = resolve_provider_name(role, conf)
    try:
        provider = build(role, conf)
    except ProviderError as exc:
        return False, role, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. an SDK that fails to import
        return False, role, f"{name}: {type(exc).__name__}: {exc}"
    return True, role, f"{name} ({getattr(provider, 'model', None) or 'procedural'})"
