"""The providers page (staff: the site's choices, keys and prices; a GM: their campaign's
choices, `?campaign=<id>`) and the cost pages of a session and a campaign (its GM, or staff).
The same services and selectors as `/api/providers` (gtw_site/providers_api.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from gtw_site import costs
from gtw_site.errors import DomainError, Invalid
from gtw_site.models import PriceOverride, ProviderKey
from gtw_site.providers import services
from gtw_site.providers.overview import providers_overview
from gtw_site.providers_api import campaign_gm, session_viewer


def _campaign_param(request) -> int | None:
    raw = request.GET.get("campaign") or request.POST.get("campaign") or ""
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid("campaign must be a number") from None


def _error_page(request, exc: DomainError):
    return render(request, "error.html", {"error": exc}, status=exc.status)


def _select(request, campaign_id: int | None) -> str:
    post = request.POST
    role = post.get("role", "")
    choice = post.get("choice", "")  # "preset:<name>" or "provider:<name>"
    kind, _, name = choice.partition(":")
    options = {k: post.get(k, "").strip() for k in ("model", "base_url") if post.get(k, "").strip()}
    key = None
    if post.get("key", "").strip():
        key = services.key_create(
            label=post.get("key_label") or f"{role} key", plain=post["key"], user=request.user
        )
    elif post.get("key_id"):
        key = ProviderKey.objects.filter(pk=post.get("key_id")).first()
        if key is None or not (request.user.is_staff or key.created_by_id == request.user.pk):
            raise Invalid("no such stored key")
    try:
        services.choice_set(
            role=role,
            provider=name if kind == "provider" else "",
            preset=name if kind == "preset" else "",
            options=options,
            key=key,
            campaign_id=campaign_id,
            user=request.user,
        )
    except DomainError:
        if key is not None and post.get("key", "").strip():
            key.delete()
        raise
    return f"The {role} role now uses {name}."


@login_required
@require_http_methods(["GET", "POST"])
def providers_page(request):
    try:
        campaign_id = campaign_gm(request.user, _campaign_param(request))
    except DomainError as exc:
        return _error_page(request, exc)
    message, error, status = "", "", 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "select":
                message = _select(request, campaign_id)
            elif action == "clear":
                role = request.POST.get("role", "")
                services.role_registry(role)
                services.choice_clear(role=role, campaign_id=campaign_id)
                message = (
                    f"The {role} role is back to the {'site' if campaign_id else 'environment'}'s choice."
                )
            elif action == "key" and campaign_id is None:
                key = services.key_create(
                    label=request.POST.get("label", ""), plain=request.POST.get("key", ""), user=request.user
                )
                message = f"Key {key.label} (…{key.last4}) stored encrypted."
            elif action == "price" and campaign_id is None:
                services.price_set(
                    model=request.POST.get("model", ""),
                    provider=request.POST.get("provider", ""),
                    **{
                        name: request.POST.get(name, "")
                        for name in (
                            "input_per_mtok",
                            "output_per_mtok",
                            "cached_input_per_mtok",
                            "per_audio_second",
                            "per_image",
                        )
                    },
                )
                message = "Price saved."
            else:
                raise Invalid("unknown action")
        except DomainError as exc:
            error, status = exc.message, exc.status
    overview = providers_overview(campaign_id=campaign_id, staff=request.user.is_staff)
    context = {
        "overview": overview,
        "campaign_id": campaign_id,
        "message": message,
        "error": error,
        "prices": PriceOverride.objects.order_by("provider", "model") if campaign_id is None else [],
        "my_keys": ProviderKey.objects.filter(created_by=request.user).order_by("-created_at")
        if campaign_id
        else [],
    }
    return render(request, "providers/providers.html", context, status=status)


@login_required
def session_costs_page(request, session_id: int):
    try:
        session = session_viewer(request.user, session_id)
    except DomainError as exc:
        return _error_page(request, exc)
    data = costs.session_costs(session_id=session.pk)
    return render(
        request,
        "providers/costs.html",
        {
            "data": data,
            "session": session,
            "campaign": session.campaign,
            "rows": data["turns"],
            "row_key": "turn_seq",
            "row_label": "Turn",
        },
    )


@login_required
def campaign_costs_page(request, campaign_id: int):
    try:
        campaign_gm(request.user, campaign_id)
    except DomainError as exc:
        return _error_page(request, exc)
    from campaigns.models import Campaign

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    data = costs.campaign_costs(campaign_id=campaign_id)
    return render(
        request,
        "providers/costs.html",
        {
            "data": data,
            "session": None,
            "campaign": campaign,
            "rows": data["sessions"],
            "row_key": "session_id",
            "row_label": "Session",
        },
    )


@login_required
def compare_page(request):
    """A/B variants and shadow providers side by side (numbers only; staff, or a campaign's GM)."""
    try:
        campaign_id = campaign_gm(request.user, _campaign_param(request))
    except DomainError as exc:
        return _error_page(request, exc)
    role = request.GET.get("role") or "narrator"
    data = costs.comparison(campaign_id=campaign_id, role=role[:40])
    return render(request, "providers/compare.html", {"data": data, "campaign_id": campaign_id})
