"""The review queue page (GM, and a stage's moderators for their stage) and the GM's category
form. Views check through services.queue_for and call the same services as the API; a refused
form comes back as a message, a refused page as the site's 403/404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.errors import DomainError, Forbidden, NotFound
from campaigns.models import Membership
from campaigns.safety import categories, services
from gtw_site import redact


def _access(request, campaign_id: int):
    try:
        return services.queue_for(viewer=request.user, campaign_id=campaign_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
@require_http_methods(["GET", "HEAD"])
def review_queue(request, campaign_id: int):
    campaign, membership, sessions = _access(request, campaign_id)
    is_gm = membership.role == Membership.Role.GM
    policy = services.policy_get(campaign)
    context = {
        "campaign": campaign,
        "is_gm": is_gm,
        "pending": services.queue_items(campaign=campaign, sessions=sessions),
        "decided": services.queue_items(campaign=campaign, sessions=sessions, status=None, limit=50),
        "log": services.audit_log(campaign=campaign, sessions=sessions),
        "categories": [
            {"slug": slug, "label": label, "action": policy.action(slug)}
            for slug, label in categories.CATEGORIES.items()
        ],
        "actions": categories.ACTIONS,
        "redact_kinds": [{"kind": k, "on": k in policy.redact} for k in redact.KINDS],
        "counts": services.trigger_counts(campaign=campaign) if is_gm else [],
        "max_edit": services.MAX_EDIT_CHARS,
    }
    return render(request, "safety/queue.html", context)


@login_required
@require_POST
def review_decide(request, campaign_id: int, item_id: int):
    _access(request, campaign_id)
    verdict = request.POST.get("verdict", "")
    try:
        services.review_decide(
            viewer=request.user,
            campaign_id=campaign_id,
            item_id=item_id,
            verdict=verdict,
            text=request.POST.get("text"),
        )
        messages.success(
            request, {"approve": "Approved.", "edit": "Edited and approved.", "reject": "Rejected."}[verdict]
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("safety_queue", args=[campaign_id]))


@login_required
@require_POST
def policy_save(request, campaign_id: int):
    campaign, membership, _sessions = _access(request, campaign_id)
    if membership.role != Membership.Role.GM:
        raise PermissionDenied("Only the GM sets the content categories.")
    actions = {
        slug: request.POST[f"cat-{slug}"] for slug in categories.CATEGORIES if f"cat-{slug}" in request.POST
    }
    unknown = [k[4:] for k in request.POST if k.startswith("cat-") and k[4:] not in categories.CATEGORIES]
    try:
        if unknown:
            raise DomainError(f"unknown category '{unknown[0]}'")
        kinds = request.POST.getlist("redact") if request.POST.get("redact-form") else None
        services.policy_set(campaign=campaign, user=request.user, actions=actions, redact_kinds=kinds)
        messages.success(request, "Content settings saved.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("safety_queue", args=[campaign_id]) + "#policy-h")
