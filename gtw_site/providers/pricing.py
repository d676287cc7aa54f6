"""What a provider call cost, in USD: an operator's override (gtw_site.models.PriceOverride) for
the model, else the offline price table of the pinned `genai-prices` package (its bundled
snapshot; nothing is fetched at run time), else 0 — local models (the offline narrator, the
local embedder, a GGUF, piper, whisper) and models the table does not know cost nothing.

Overrides are read with the provider choices' revision (gtw_site.providers.selection), so a
change prices the next row in every process.
"""

from __future__ import annotations

import functools
import logging
import threading
from decimal import Decimal
from typing import Any

logger = logging.getLogger(__name__)

# Adapters that run on this machine: never priced, whatever model name they report.
LOCAL_PROVIDERS = frozenset(
    {"offline", "local", "local_llm", "piper", "whisper", "faster_whisper", "procedural", "rules", "keywords"}
)
# Our adapter names → genai-prices provider ids (openai_compatible: found by the model name).
VENDOR_IDS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "grok": "x-ai"}
MILLION = Decimal(1_000_000)
QUANTUM = Decimal("0.000001")

_lock = threading.Lock()
_overrides: dict[tuple[str, str], dict[str, Decimal | None]] = {}
_overrides_revision: int | None = None


def _load_overrides(refresh: bool = True) -> dict[tuple[str, str], dict[str, Decimal | None]]:
    """The overrides as of the current revision (reloaded when it moves). `refresh=False`: as of
    this process's last revision check (the provider build of the same turn), no query."""
    global _overrides, _overrides_revision
    from gtw_site.providers import selection

    if refresh or selection._state.revision is None:
        selection.sync()
    revision = selection._state.revision
    if revision is not None and revision == _overrides_revision:
        return _overrides
    from gtw_site.models import PriceOverride

    loaded = {
        (row.provider, row.model): {name: getattr(row, name) for name in PriceOverride.PRICE_FIELDS}
        for row in PriceOverride.objects.all()
    }
    with _lock:
        _overrides, _overrides_revision = loaded, revision
    return loaded


def override_for(provider: str, model: str, *, refresh: bool = True) -> dict[str, Decimal | None] | None:
    try:
        overrides = _load_overrides(refresh)
    except Exception:
        logger.debug("price overrides not read", exc_info=True)
        overrides = _overrides
    return overrides.get((provider, model)) or overrides.get(("", model))


@functools.lru_cache(maxsize=512)
def _table_prices(provider: str, model: str) -> tuple[Decimal, Decimal, Decimal] | None:
    """(input, output, cached input) USD per million tokens from genai-prices, or None."""
    try:
        from genai_prices import Usage as PriceUsage
        from genai_prices import calc_price
    except ImportError:
        return None
    try:
        million = 1_000_000
        kwargs: dict[str, Any] = {}
        vendor = VENDOR_IDS.get(provider)
        if vendor:
            kwargs["provider_id"] = vendor
        one_in = calc_price(PriceUsage(input_tokens=million, output_tokens=0), model_ref=model, **kwargs)
        one_out = calc_price(PriceUsage(input_tokens=0, output_tokens=million), model_ref=model, **kwargs)
        cached = calc_price(
            PriceUsage(input_tokens=million, cache_read_tokens=million, output_tokens=0),
            model_ref=model,
            **kwargs,
        )
    except Exception:  # noqa: BLE001 - LookupError for an unknown model; nothing may break a row
        return None
    return (Decimal(one_in.total_price), Decimal(one_out.total_price), Decimal(cached.total_price))


def cost_of(row: dict[str, Any], *, refresh: bool = True) -> Decimal:
    """A telemetry row's cost in USD (6 decimal places). Telemetry passes `refresh=False`: rows
    are priced with the overrides this process loaded at its last provider build, so writing a
    turn's rows costs no extra query."""
    provider = str(row.get("provider") or "")
    model = str(row.get("model") or "")
    if provider in LOCAL_PROVIDERS:
        return Decimal(0)
    tokens_in = int(row.get("tokens_in") or 0)
    tokens_out = int(row.get("tokens_out") or 0)
    cached = min(int(row.get("tokens_cached") or 0), tokens_in)
    audio = Decimal(str(row.get("audio_seconds") or 0))
    images = int(row.get("images") or 0)
    override = override_for(provider, model, refresh=refresh)
    if override is not None:
        input_price = override["input_per_mtok"] or Decimal(0)
        cached_price = override["cached_input_per_mtok"]
        cached_price = input_price if cached_price is None else cached_price
        total = (
            input_price * (tokens_in - cached) / MILLION
            + cached_price * cached / MILLION
            + (override["output_per_mtok"] or Decimal(0)) * tokens_out / MILLION
            + (override["per_audio_second"] or Decimal(0)) * audio
            + (override["per_image"] or Decimal(0)) * images
        )
        return total.quantize(QUANTUM)
    if not model or not (tokens_in or tokens_out):
        return Decimal(0)
    prices = _table_prices(provider, model)
    if prices is None:
        return Decimal(0)
    input_price, output_price, cached_price = prices
    total = (
        input_price * (tokens_in - cached) / MILLION
        + cached_price * cached / MILLION
        + output_price * tokens_out / MILLION
    )
    return total.quantize(QUANTUM)


def table_price(provider: str, model: str) -> dict[str, float] | None:
    """The table's per-million prices for a model (for the providers page), or None."""
    prices = _table_prices(provider, model)
    if prices is None:
        return None
    return {
        "input_per_mtok": float(prices[0]),
        "output_per_mtok": float(prices[1]),
        "cached_input_per_mtok": float(prices[2]),
    }
