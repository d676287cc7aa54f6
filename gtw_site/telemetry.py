"""Telemetry rows for provider calls (role, provider, model, latency, tokens)."""

from __future__ import annotations

import logging

from gtw_site.providers import Usage

logger = logging.getLogger(__name__)


def record_call(
    *,
    role: str,
    provider: str,
    model: str,
    latency_ms: float,
    usage: Usage | None = None,
    ok: bool = True,
    error: str = "",
) -> None:
    """Store one telemetry row. Never raises: telemetry must not break a turn."""
    try:
        from gtw_site.models import ProviderCall

        ProviderCall.objects.create(
            role=role,
            provider=provider,
            model=model[:120],
            latency_ms=round(latency_ms, 2),
            tokens_in=usage.tokens_in if usage else 0,
            tokens_out=usage.tokens_out if usage else 0,
            ok=ok,
            error=error[:500],
        )
    except Exception:
        logger.warning("could not record provider telemetry", exc_info=True)
