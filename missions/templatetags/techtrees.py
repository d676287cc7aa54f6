"""`{% alliance_research alliance %}`: an alliance's tech tree on the campaign page (the alliance
view), read once per page render for every alliance on it. The view has checked membership;
campaigns' pages reach the trees through this tag, so the tenant layer never imports missions."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string

from missions import techtree_services

register = template.Library()


@register.simple_tag(takes_context=True)
def alliance_research(context, alliance):
    cache = context.render_context.setdefault("alliance_research", {})
    if alliance.campaign_id not in cache:  # one fold for every alliance on the page
        cache[alliance.campaign_id] = techtree_services.research_views(alliance.campaign)["alliances"]
    entries = [p for p in cache[alliance.campaign_id] if p["owner_id"] == alliance.pk]
    return "".join(render_to_string("play/_techtree.html", {"p": p}) for p in entries)


@register.simple_tag(takes_context=True)
def research_controls(context, membership, session):
    """The viewer's research form on the play page: for each tree they decide (their
    character's; an alliance they lead; every one for the GM), the nodes they may start and the
    research they may complete. Empty for spectators and those who decide nothing."""
    if not membership.can_act:
        return ""
    data = techtree_services.techtrees_for(viewer=membership.user, campaign_id=membership.campaign_id)
    gm = membership.role == "gm"
    forms = []
    for p in data["progress"]:
        if not p["you_decide"]:
            continue
        nodes = p["tree"]["nodes"]
        available = [n for n in nodes if n["status"] == "available" and n["points"] <= p["points_left"]]
        active = next((n for n in nodes if n["status"] == "in_progress"), None)
        finishable = active if active and (gm or not active["beats_left"]) else None
        forms.append(
            {"p": p, "available": [] if active else available, "active": active, "finishable": finishable}
        )
    if not forms:
        return ""
    return render_to_string(
        "play/_techtree_controls.html", {"forms": forms, "session": session}, request=context.get("request")
    )
