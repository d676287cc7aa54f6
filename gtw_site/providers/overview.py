"""What the providers page and `GET /api/providers` show: per role, the kind that serves it, its
adapters, which one is active and where that comes from (the environment, the site's choice or
the campaign's), and its health (whether it builds now, and its recent calls' errors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Q
from django.utils import timezone

from gtw_site import keys
from gtw_site.models import ProviderCall, ProviderKey
from gtw_site.providers import selection
from gtw_site.providers.base import ProviderError
from gtw_site.providers.registry import registry_for

HEALTH_WINDOW = timedelta(hours=1)


def _recent(role: str, campaign_id: int | None) -> dict[str, Any]:
    calls = ProviderCall.objects.filter(
        role=role, created_at__gte=timezone.now() - HEALTH_WINDOW, shadow=False
    )
    if campaign_id is not None:
        calls = calls.filter(campaign_id=campaign_id)
    stats = calls.aggregate(
        calls=Count("id"), errors=Count("id", filter=Q(ok=False)), latency=Avg("latency_ms")
    )
    last_error = calls.filter(ok=False).order_by("-created_at").values("error", "created_at").first()
    return {
        "calls_last_hour": stats["calls"],
        "errors_last_hour": stats["errors"],
        "mean_latency_ms": round(stats["latency"], 1) if stats["latency"] is not None else None,
        "last_error": last_error["error"] if last_error else "",
    }


def role_overview(role: str, *, campaign_id: int | None) -> dict[str, Any]:
    from gtw_site.providers.services import discover

    registry = registry_for(role) or (discover() and registry_for(role))
    if registry is None:
        return {
            "role": role,
            "kind": None,
            "available": False,
            "providers": [],
            "active": None,
            "health": None,
        }
    chosen = registry.selection(role, campaign_id)
    active: dict[str, Any] = {"source": "environment", "preset": "", "options": {}, "key": ""}
    if chosen is not None:
        active = {
            "source": chosen.scope,
            "preset": chosen.preset,
            "options": dict(chosen.options),
            "key": keys.masked(chosen.key_last4),
        }
    health: dict[str, Any] = {"ok": True, "error": ""}
    try:
        adapter = registry.build(role, campaign_id=campaign_id)
        active["provider"] = getattr(adapter, "name", "") or (chosen.provider if chosen else "")
        active["model"] = str(getattr(adapter, "model", "") or "")
    except ProviderError as exc:
        active["provider"] = chosen.provider if chosen else _env_provider(registry, role)
        active["model"] = str(active["options"].get("model", ""))
        health = {"ok": False, "error": exc.message}
    health.update(_recent(role, campaign_id))
    return {
        "role": role,
        "kind": registry.kind,
        "available": True,
        "providers": list(registry.providers),
        "environment": _env_provider(registry, role),
        "active": active,
        "health": health,
    }


def _env_provider(registry, role: str) -> str:
    try:
        return registry.provider_name(role)
    except (ProviderError, KeyError, TypeError):
        return ""


def providers_overview(
    *, campaign_id: int | None, staff: bool, roles: tuple[str, ...] = selection.ROLES
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "campaign": campaign_id,
        "roles": [role_overview(role, campaign_id=campaign_id) for role in roles],
        "presets": [
            {
                "name": p.name,
                "label": p.label,
                "provider": p.provider,
                "base_url": p.base_url,
                "model": p.model,
                "models": list(p.models),
                "needs_key": p.needs_key,
            }
            for p in selection.PRESETS.values()
        ],
    }
    if staff:
        out["keys"] = [
            {"id": k.pk, "label": k.label, "last4": k.last4}
            for k in ProviderKey.objects.order_by("-created_at").only("pk", "label", "last4")
        ]
    return out
