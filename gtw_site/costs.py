"""Cost selectors over the telemetry rows: per turn and per provider in a session, per session
and per provider in a campaign, and a JSON export with OpenTelemetry GenAI names. Callers
authorise (the session's GM or staff). Shadow calls are counted apart (`shadow_usd`): they cost
money but served no player."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from gtw_site.models import ProviderCall
from gtw_site.telemetry import otel_attributes

_SUMS = {
    "calls": Count("id"),
    "errors": Count("id", filter=Q(ok=False)),
    "tokens_in": Sum("tokens_in"),
    "tokens_out": Sum("tokens_out"),
    "tokens_cached": Sum("tokens_cached"),
    "audio_seconds": Sum("audio_seconds"),
    "images": Sum("images"),
    "cost_usd": Sum("cost_usd"),
}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            value = str(value.quantize(Decimal("0.000001")))
        elif value is None and key in _SUMS:
            value = "0.000000" if key == "cost_usd" else 0
        elif isinstance(value, float):
            value = round(value, 2)
        out[key] = value
    return out


def _summary(calls) -> dict[str, Any]:
    live = calls.filter(shadow=False)
    total = _clean(live.aggregate(**_SUMS))
    shadow = calls.filter(shadow=True).aggregate(cost=Sum("cost_usd"))["cost"] or Decimal(0)
    total["shadow_usd"] = str(shadow.quantize(Decimal("0.000001")))
    mix = [
        _clean(row)
        for row in live.values("role", "provider", "model")
        .annotate(**_SUMS)
        .order_by("-cost_usd", "role", "provider")
    ]
    return {"total": total, "provider_mix": mix}


def session_costs(*, session_id: int) -> dict[str, Any]:
    calls = ProviderCall.objects.filter(session_id=session_id)
    out = _summary(calls)
    out["session"] = session_id
    out["turns"] = [
        _clean(row)
        for row in calls.filter(shadow=False).values("turn_seq").annotate(**_SUMS).order_by("turn_seq")
    ]
    return out


def campaign_costs(*, campaign_id: int) -> dict[str, Any]:
    calls = ProviderCall.objects.filter(campaign_id=campaign_id)
    out = _summary(calls)
    out["campaign"] = campaign_id
    out["sessions"] = [
        _clean(row)
        for row in calls.filter(shadow=False).values("session_id").annotate(**_SUMS).order_by("session_id")
    ]
    return out


def export(*, limit: int = 200, **scope: Any) -> list[dict[str, Any]]:
    calls = ProviderCall.objects.filter(**scope).order_by("-created_at", "-id")[:limit]
    return [otel_attributes(call) for call in calls]


def comparison(*, campaign_id: int | None = None, role: str = "narrator") -> dict[str, Any]:
    """Per experiment variant and per shadow provider: calls, errors, latency, time to first
    token, tokens, cost, tool calls (valid or not) and length — numbers only, never a shadow's
    text (that stays in ShadowOutput, for staff in the admin)."""
    from django.db.models import Avg

    from gtw_site.models import ShadowOutput

    calls = ProviderCall.objects.filter(role=role)
    if campaign_id is not None:
        calls = calls.filter(campaign_id=campaign_id)
    stats = {
        **_SUMS,
        "mean_latency_ms": Avg("latency_ms"),
        "mean_ttft_ms": Avg("ttft_ms"),
    }
    live = []
    for row in (
        calls.filter(shadow=False)
        .values("variant", "provider", "model")
        .annotate(**stats)
        .order_by("variant", "provider")
    ):
        row["mean_tokens_out"] = round((row["tokens_out"] or 0) / row["calls"], 1) if row["calls"] else 0
        live.append(_clean(row))
    outputs = ShadowOutput.objects.filter(role=role)
    if campaign_id is not None:
        outputs = outputs.filter(campaign_id=campaign_id)
    shadows = []
    for row in (
        outputs.values("shadow_name", "provider", "model")
        .annotate(
            runs=Count("id"),
            failed=Count("id", filter=Q(ok=False)),
            tool_calls=Sum("tool_calls"),
            valid_tool_calls=Sum("valid_tool_calls"),
            mean_latency_ms=Avg("latency_ms"),
        )
        .order_by("shadow_name")
    ):
        texts = outputs.filter(shadow_name=row["shadow_name"]).values_list("text", flat=True)
        lengths = [len(t.split()) for t in texts]
        cost = calls.filter(shadow=True, variant=f"shadow:{row['shadow_name']}").aggregate(
            cost=Sum("cost_usd"), tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out")
        )
        shadows.append(
            _clean(
                {
                    **row,
                    "mean_words": round(sum(lengths) / len(lengths), 1) if lengths else 0,
                    "cost_usd": cost["cost"],
                    "tokens_in": cost["tokens_in"],
                    "tokens_out": cost["tokens_out"],
                    "invalid_tool_calls": (row["tool_calls"] or 0) - (row["valid_tool_calls"] or 0),
                }
            )
        )
    return {"role": role, "campaign": campaign_id, "live": live, "shadows": shadows}
