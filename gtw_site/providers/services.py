"""Services that change provider choices, stored keys and price overrides. Each bumps the
revision in its transaction, so every process applies the change at its next call.

Callers authorise first (the providers API and page: staff for the site, the GM for their
campaign). A choice is built before it is saved: a provider that does not exist or cannot start
is refused with the reason (`ChoiceRefused`) and the old choice stays.
"""

from __future__ import annotations

import importlib
import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction

from gtw_site import keys
from gtw_site.errors import Invalid, NotFound
from gtw_site.models import PriceOverride, ProviderChoice, ProviderKey
from gtw_site.netcheck import non_public_reason
from gtw_site.providers import selection
from gtw_site.providers.base import ProviderError
from gtw_site.providers.registry import Registry, accepted_options, kinds, registry_for

logger = logging.getLogger(__name__)


class ChoiceRefused(Invalid):
    """The chosen adapter does not exist or cannot start (HTTP 422 with the reason)."""

    status = 422
    code = "provider_refused"


def discover() -> dict[str, Registry]:
    """Import every `registry.py` of the project's apps (each declares one kind) and return the
    kinds declared. A module that fails to import is skipped (and logged)."""
    base = Path(settings.BASE_DIR).resolve()
    for config in apps.get_app_configs():
        root = Path(config.path).resolve()
        if base not in root.parents and root != base:
            continue
        for path in sorted(root.rglob("registry.py")):
            rel = path.relative_to(base).with_suffix("")
            if "tests" in rel.parts or len(rel.parts) > 4:
                continue
            name = ".".join(rel.parts)
            try:
                importlib.import_module(name)
            except Exception:
                logger.warning("provider registry %s could not be imported", name, exc_info=True)
    return kinds()


def role_registry(role: str) -> Registry:
    registry = registry_for(role)
    if registry is None:
        discover()
        registry = registry_for(role)
    if registry is None:
        if role in selection.ROLES:
            raise ChoiceRefused(f"no adapters for the {role} role are installed yet")
        raise NotFound(f"no provider role '{role}' (roles: {', '.join(selection.ROLES)})")
    return registry


def _clean_options(provider: str, registry: Registry, options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    unknown = sorted(set(options) - set(selection.OPTION_NAMES))
    if unknown:
        raise ChoiceRefused(
            f"unknown option {', '.join(unknown)} (options: {', '.join(selection.OPTION_NAMES)})"
        )
    cleaned: dict[str, Any] = {}
    for name, value in options.items():
        if value in (None, ""):
            continue
        if name == "max_tokens":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
                raise ChoiceRefused("max_tokens must be a whole number from 1 to 100000")
        elif (
            not isinstance(value, str) or len(value) > selection.MAX_OPTION_LENGTH or not value.isprintable()
        ):
            raise ChoiceRefused(f"{name} must be text of at most {selection.MAX_OPTION_LENGTH} characters")
        elif name == "base_url" and not value.startswith(("http://", "https://")):
            raise ChoiceRefused("base_url must start with http:// or https://")
        cleaned[name] = value
    accepted = accepted_options(registry, provider)
    if accepted is not None:
        refused = sorted(set(cleaned) - set(accepted))
        if refused:
            raise ChoiceRefused(f"the {provider} adapter takes no {', '.join(refused)} option")
    return cleaned


@transaction.atomic
def choice_set(
    *,
    role: str,
    provider: str = "",
    preset: str = "",
    options: dict[str, Any] | None = None,
    key: ProviderKey | None = None,
    campaign_id: int | None = None,
    user: Any = None,
) -> ProviderChoice:
    """Choose `provider` (or a `preset` of the OpenAI-compatible adapter) for `role`, site-wide
    or for one campaign. The adapter is built first; ChoiceRefused, and nothing changes, if it
    cannot be."""
    registry = role_registry(role)
    options = dict(options or {})
    if preset:
        found = selection.PRESETS.get(preset)
        if found is None:
            raise ChoiceRefused(f"no preset '{preset}' (presets: {', '.join(selection.PRESETS)})")
        if role not in ("narrator", "summarizer"):
            raise ChoiceRefused(f"presets are chat servers; the {role} role cannot use one")
        provider = provider or found.provider
        options.setdefault("base_url", found.base_url)
        options.setdefault("model", found.model)
        if found.needs_key and key is None:
            raise ChoiceRefused(f"{found.label} needs an API key: add one and choose it with the preset")
    if not provider:
        raise ChoiceRefused("choose a provider or a preset")
    if provider not in registry.providers:
        raise ChoiceRefused(
            f"unknown provider '{provider}' for the {role} role (choose: {', '.join(registry.providers)})"
        )
    cleaned = _clean_options(provider, registry, options)
    if campaign_id is not None and cleaned.get("base_url") and not getattr(user, "is_staff", False):
        # A GM's own server: the site would call it on their say-so, so it must be a public one
        # (no reaching into the host's own network) unless the operator allows private ones.
        reason = None if settings.GTW_PROVIDER_ALLOW_PRIVATE else non_public_reason(cleaned["base_url"])
        if reason:
            raise ChoiceRefused(
                f"base_url {reason}; a campaign's own server must be a public address unless the "
                "operator allows private ones (GTW_PROVIDER_ALLOW_PRIVATE)"
            )
    candidate = selection.Selection(
        role=role,
        provider=provider,
        scope="campaign" if campaign_id else "site",
        campaign_id=campaign_id,
        preset=preset,
        options=cleaned,
        key_pk=key.pk if key else None,
        key_last4=key.last4 if key else "",
    )
    try:
        registry.build(role, selection=candidate)
    except ProviderError as exc:
        raise ChoiceRefused(f"{provider} cannot start: {exc.message}") from None
    row, _created = ProviderChoice.objects.update_or_create(
        role=role,
        campaign_id=campaign_id,
        defaults={"provider": provider, "preset": preset, "options": cleaned, "key": key, "updated_by": user},
    )
    selection.bump()
    return row


@transaction.atomic
def choice_clear(*, role: str, campaign_id: int | None = None) -> bool:
    """Back to the environment's settings (a campaign: back to the site's choice)."""
    deleted, _ = ProviderChoice.objects.filter(role=role, campaign_id=campaign_id).delete()
    if deleted:
        selection.bump()
    return bool(deleted)


@transaction.atomic
def key_create(*, label: str, plain: str, user: Any = None) -> ProviderKey:
    """Store a provider key encrypted. Invalid (422) for a malformed key; never echoes it."""
    label = (label or "").strip()[:80] or "key"
    try:
        value = keys.check_plain(plain)
        sealed = keys.seal(value)
    except keys.MalformedKey as exc:
        raise Invalid(f"malformed key: {exc}") from None
    except keys.KeyUnavailable as exc:
        raise Invalid(f"keys cannot be stored: {exc}") from None
    return ProviderKey.objects.create(
        label=label, ciphertext=sealed, last4=keys.last4(value), created_by=user
    )


@transaction.atomic
def key_delete(*, key: ProviderKey) -> None:
    key.delete()
    selection.bump()


def _price(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Invalid(f"{name} must be a number") from None
    if not price.is_finite():
        raise Invalid(f"{name} must be a number")
    if price < 0:
        raise Invalid(f"{name} cannot be negative")
    if price >= Decimal(10) ** 6:
        raise Invalid(f"{name} is too large")
    return price


@transaction.atomic
def price_set(*, model: str, provider: str = "", **prices: Any) -> PriceOverride:
    """Set an operator's price (USD per million tokens, per audio second, per image) for a model."""
    model = (model or "").strip()
    if not model or len(model) > 120:
        raise Invalid("model must be 1 to 120 characters")
    unknown = set(prices) - set(PriceOverride.PRICE_FIELDS)
    if unknown:
        raise Invalid(f"unknown price {', '.join(sorted(unknown))}")
    values = {name: _price(prices.get(name), name) for name in PriceOverride.PRICE_FIELDS}
    for name in PriceOverride.PRICE_FIELDS:
        if name != "cached_input_per_mtok" and values[name] is None:
            values[name] = Decimal(0)
    row, _ = PriceOverride.objects.update_or_create(
        provider=(provider or "").strip()[:40], model=model, defaults=values
    )
    selection.bump()
    return row


@transaction.atomic
def price_clear(*, model: str, provider: str = "") -> bool:
    deleted, _ = PriceOverride.objects.filter(provider=provider, model=model).delete()
    if deleted:
        selection.bump()
    return bool(deleted)


# ---- key rotation ---------------------------------------------------------------------------


def keys_rotate(
    *, batch: int = 100, new_key: bool = False, drop_old: bool = False, out=None
) -> dict[str, int]:
    """Re-seal every stored key with the keyring's primary key, `batch` rows per transaction.

    Interrupted half way, nothing is unreadable: rows not yet re-sealed still name the old key,
    which stays in the keyring; running it again picks up where it stopped. `new_key` first puts
    a fresh key at the head of the keyring file; `drop_old` removes the old keys once no row
    needs them."""
    if new_key:
        keys.add_primary_key()
    ring = keys.keyring()
    primary = ring.primary_id
    done = 0
    while True:
        with transaction.atomic():
            rows = list(
                ProviderKey.objects.select_for_update(skip_locked=True)
                .exclude(ciphertext__startswith=f"{primary}:")
                .order_by("pk")[:batch]
            )
            if not rows:
                break
            for row in rows:
                row.ciphertext = keys.reseal(row.ciphertext, ring)
            ProviderKey.objects.bulk_update(rows, ["ciphertext"])
        done += len(rows)
        if out is not None:
            out(f"re-sealed {done} key(s) so far")
    dropped: list[str] = []
    if drop_old:
        left = ProviderKey.objects.exclude(ciphertext__startswith=f"{primary}:").count()
        if left:
            raise keys.KeyUnavailable(f"{left} key(s) still sealed with an old key; not dropping any")
        dropped = keys.drop_keys_except({primary})
    return {"resealed": done, "dropped": len(dropped)}


# ---- A/B experiments and shadow providers (issue 17 part 4) ---------------------------------


def _checked(
    role: str, registry: Registry, provider: str, options: dict[str, Any] | None, scope: str, **extra
) -> selection.Selection:
    """A Selection for `provider` that builds now, or ChoiceRefused with the reason."""
    if provider not in registry.providers:
        raise ChoiceRefused(
            f"unknown provider '{provider}' for the {role} role (choose: {', '.join(registry.providers)})"
        )
    candidate = selection.Selection(
        role=role,
        provider=provider,
        scope=scope,
        options=_clean_options(provider, registry, options),
        **extra,
    )
    try:
        registry.build(role, selection=candidate)
    except ProviderError as exc:
        raise ChoiceRefused(f"{provider} cannot start: {exc.message}") from None
    return candidate


@transaction.atomic
def experiment_set(
    *, name: str, role: str, variants: list[dict[str, Any]], unit: str = "campaign", active: bool = True
):
    """Create or replace an A/B experiment: every variant must start; one active per role."""
    from django.utils.text import slugify

    from gtw_site.models import Experiment

    slug = slugify(name or "")[:40]
    if not slug:
        raise Invalid("name the experiment (letters, digits, dashes)")
    if unit not in Experiment.Unit.values:
        raise Invalid(f"unit must be one of {', '.join(Experiment.Unit.values)}")
    registry = role_registry(role)
    if not isinstance(variants, list) or len(variants) < 2:
        raise Invalid("an experiment needs at least two variants")
    cleaned = []
    names = set()
    for variant in variants:
        if not isinstance(variant, dict):
            raise Invalid("each variant is an object: {name, provider, options, weight}")
        vname = slugify(str(variant.get("name") or variant.get("provider") or ""))[:40]
        if not vname or vname in names:
            raise Invalid("each variant needs a distinct name")
        names.add(vname)
        weight = variant.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1000:
            raise Invalid("a variant's weight is a whole number from 1 to 1000")
        chosen = _checked(
            role, registry, str(variant.get("provider") or ""), variant.get("options"), "experiment"
        )
        cleaned.append(
            {"name": vname, "provider": chosen.provider, "options": dict(chosen.options), "weight": weight}
        )
    if active:
        Experiment.objects.filter(role=role, active=True).exclude(name=slug).update(active=False)
    row, _ = Experiment.objects.update_or_create(
        name=slug, defaults={"role": role, "unit": unit, "variants": cleaned, "active": active}
    )
    selection.bump()
    return row


@transaction.atomic
def shadow_set(
    *,
    role: str,
    name: str,
    provider: str,
    options: dict[str, Any] | None = None,
    campaign_id: int | None = None,
    active: bool = True,
):
    """Add (or replace) a shadow provider for `role`, site-wide or for one campaign."""
    from django.utils.text import slugify

    from gtw_site.models import ShadowProvider

    slug = slugify(name or provider or "")[:40]
    if not slug:
        raise Invalid("name the shadow provider")
    registry = role_registry(role)
    chosen = _checked(role, registry, provider, options, "shadow", name=slug)
    row, _ = ShadowProvider.objects.update_or_create(
        role=role,
        name=slug,
        campaign_id=campaign_id,
        defaults={"provider": chosen.provider, "options": dict(chosen.options), "active": active},
    )
    selection.bump()
    return row


@transaction.atomic
def shadow_clear(*, role: str, name: str, campaign_id: int | None = None) -> bool:
    from gtw_site.models import ShadowProvider

    deleted, _ = ShadowProvider.objects.filter(role=role, name=name, campaign_id=campaign_id).delete()
    if deleted:
        selection.bump()
    return bool(deleted)
