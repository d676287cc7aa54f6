"""`/api/providers`: what each role uses and its health, choosing another (staff for the site,
the GM for their campaign), stored keys and price overrides (staff), and the cost of a session
or a campaign (its GM, or staff).

Permissions: staff manage the site's choices, keys and prices. A campaign's GM sees and changes
that campaign's choices (`?campaign=<id>`); a player of it gets 403 (engine internals), anyone
else 404. The views in gtw_site/providers_views.py use the same `providers_overview` and cost
selectors.
"""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema, Status

from campaigns.models import Membership
from campaigns.selectors import membership_get, session_membership_get
from gtw_site import costs
from gtw_site.errors import Forbidden, Invalid, NotFound
from gtw_site.models import PriceOverride, ProviderKey
from gtw_site.providers import services
from gtw_site.providers.overview import providers_overview

router = Router(tags=["providers"])


def campaign_gm(user, campaign_id: int | None) -> int | None:
    """The campaign id the user may steer: None for the site (staff only); NotFound for a
    non-member, Forbidden for a player."""
    if campaign_id is None:
        if not user.is_staff:
            raise Forbidden("Only site staff can change the site's providers.")
        return None
    if user.is_staff:
        return campaign_id
    membership = membership_get(viewer=user, campaign_id=campaign_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the campaign's game master can see or change its providers.")
    return campaign_id


def session_viewer(user, session_id: int):
    """The session, for its GM or staff (NotFound for outsiders, Forbidden for players)."""
    if user.is_staff:
        from campaigns.models import PlaySession

        session = PlaySession.objects.select_related("campaign").filter(pk=session_id).first()
        if session is None:
            raise NotFound("No such session.")
        return session
    session, membership = session_membership_get(viewer=user, session_id=session_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can see what a session cost.")
    return session


class SelectIn(Schema):
    role: str
    provider: str = ""
    preset: str = ""
    options: dict[str, Any] = {}
    key_id: int | None = None
    # A new key, stored encrypted and used for this choice (never echoed back).
    key: str | None = None
    key_label: str = ""
    campaign: int | None = None


class ClearIn(Schema):
    role: str
    campaign: int | None = None


class KeyIn(Schema):
    label: str = ""
    key: str


class PriceIn(Schema):
    model: str
    provider: str = ""
    input_per_mtok: float | str | None = None
    output_per_mtok: float | str | None = None
    cached_input_per_mtok: float | str | None = None
    per_audio_second: float | str | None = None
    per_image: float | str | None = None


@router.get("")
def provider_list(request, campaign: int | None = None):
    campaign_id = campaign_gm(request.user, campaign)
    return providers_overview(campaign_id=campaign_id, staff=request.user.is_staff)


def _key_for(request, data: SelectIn) -> ProviderKey | None:
    if data.key:
        return services.key_create(
            label=data.key_label or f"{data.role} key", plain=data.key, user=request.user
        )
    if data.key_id is None:
        return None
    key = ProviderKey.objects.filter(pk=data.key_id).first()
    # A GM may use only the keys they stored themselves; staff any.
    if key is None or not (request.user.is_staff or key.created_by_id == request.user.pk):
        raise Invalid(f"no stored key {data.key_id}")
    return key


@router.post("/select")
def provider_select(request, data: SelectIn):
    campaign_id = campaign_gm(request.user, data.campaign)
    key = _key_for(request, data)
    try:
        services.choice_set(
            role=data.role,
            provider=data.provider.strip(),
            preset=data.preset.strip(),
            options=data.options,
            key=key,
            campaign_id=campaign_id,
            user=request.user,
        )
    except Exception:
        if key is not None and data.key:
            key.delete()  # a key entered with a refused choice is not kept
        raise
    return providers_overview(campaign_id=campaign_id, staff=request.user.is_staff, roles=(data.role,))


@router.post("/clear")
def provider_clear(request, data: ClearIn):
    campaign_id = campaign_gm(request.user, data.campaign)
    services.role_registry(data.role)
    services.choice_clear(role=data.role, campaign_id=campaign_id)
    return providers_overview(campaign_id=campaign_id, staff=request.user.is_staff, roles=(data.role,))


@router.get("/keys")
def key_list(request):
    campaign_gm(request.user, None)
    return [
        {"id": k.pk, "label": k.label, "last4": k.last4, "created_at": k.created_at}
        for k in ProviderKey.objects.order_by("-created_at")
    ]


@router.post("/keys", response={201: dict})
def key_create(request, data: KeyIn):
    campaign_gm(request.user, None)
    key = services.key_create(label=data.label, plain=data.key, user=request.user)
    return Status(201, {"id": key.pk, "label": key.label, "last4": key.last4})


@router.delete("/keys/{key_id}", response={204: None})
def key_delete(request, key_id: int):
    campaign_gm(request.user, None)
    key = ProviderKey.objects.filter(pk=key_id).first()
    if key is None:
        raise NotFound("No such key.")
    services.key_delete(key=key)
    return Status(204, None)


@router.get("/prices")
def price_list(request):
    campaign_gm(request.user, None)
    return [
        {
            "provider": p.provider,
            "model": p.model,
            **{
                name: (None if getattr(p, name) is None else str(getattr(p, name))) for name in p.PRICE_FIELDS
            },
        }
        for p in PriceOverride.objects.order_by("provider", "model")
    ]


@router.post("/prices")
def price_set(request, data: PriceIn):
    campaign_gm(request.user, None)
    prices = data.dict()
    row = services.price_set(model=prices.pop("model"), provider=prices.pop("provider"), **prices)
    return {
        "provider": row.provider,
        "model": row.model,
        **{n: str(getattr(row, n)) for n in row.PRICE_FIELDS},
    }


@router.get("/calls")
def call_export(request, session: int | None = None, campaign: int | None = None, limit: int = 200):
    """Telemetry rows as OpenTelemetry GenAI attributes (JSON export), newest first."""
    if session is not None:
        scope = {"session_id": session_viewer(request.user, session).pk}
    elif campaign is not None:
        if campaign_gm(request.user, campaign) is None:
            raise NotFound("No such campaign.")
        scope = {"campaign_id": campaign}
    else:
        campaign_gm(request.user, None)
        scope = {}
    return costs.export(limit=max(1, min(limit, 1000)), **scope)


class ExperimentIn(Schema):
    name: str
    role: str = "narrator"
    unit: str = "campaign"
    variants: list[dict[str, Any]]
    active: bool = True


class ShadowIn(Schema):
    role: str = "narrator"
    name: str
    provider: str
    options: dict[str, Any] = {}
    campaign: int | None = None
    active: bool = True


@router.post("/experiments")
def experiment_set(request, data: ExperimentIn):
    campaign_gm(request.user, None)  # experiments span campaigns: staff only
    row = services.experiment_set(
        name=data.name, role=data.role, variants=data.variants, unit=data.unit, active=data.active
    )
    return {
        "name": row.name,
        "role": row.role,
        "unit": row.unit,
        "variants": row.variants,
        "active": row.active,
    }


@router.post("/shadows")
def shadow_set(request, data: ShadowIn):
    campaign_id = campaign_gm(request.user, data.campaign)
    row = services.shadow_set(
        role=data.role,
        name=data.name,
        provider=data.provider,
        options=data.options,
        campaign_id=campaign_id,
        active=data.active,
    )
    return {"name": row.name, "role": row.role, "provider": row.provider, "campaign": row.campaign_id}


@router.get("/compare")
def compare(request, campaign: int | None = None, role: str = "narrator"):
    """Latency, tokens, cost, refusals, valid tool calls and length per variant and shadow."""
    return costs.comparison(campaign_id=campaign_gm(request.user, campaign), role=role)


@router.get("/sessions/{session_id}/costs")
def session_costs(request, session_id: int):
    session = session_viewer(request.user, session_id)
    return costs.session_costs(session_id=session.pk)


@router.get("/campaigns/{campaign_id}/costs")
def campaign_costs(request, campaign_id: int):
    campaign_gm(request.user, campaign_id)
    return costs.campaign_costs(campaign_id=campaign_id)
