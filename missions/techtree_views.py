"""The play page's research form (the same services as `POST /api/tech-trees/research`): start
research on an available node, or complete it. Who may is checked by the services (a character's
player or the GM; an alliance's leader or the GM); a refusal is a clear 4xx like the API's."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from campaigns import selectors
from campaigns.errors import Invalid
from gtw_site.ratelimit import rate_check
from missions import techtree_services


def _owner(value: str) -> tuple[int | None, int | None]:
    """("character:5" | "alliance:3") -> (character_id, alliance_id)."""
    kind, _, raw = value.partition(":")
    if kind not in ("character", "alliance") or not raw.isdigit() or len(raw) > 12:
        raise Invalid("Choose whose research this is.")
    return (int(raw), None) if kind == "character" else (None, int(raw))


@login_required
@require_POST
def research(request, session_id: int):
    session, _membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    character_id, alliance_id = _owner(request.POST.get("owner", ""))
    tree, _, node = request.POST.get("node", "").partition("/")
    action = request.POST.get("action", "start")
    if action not in ("start", "complete") or not tree or not node:
        raise Invalid("Choose a node to research.")
    service = techtree_services.research_start if action == "start" else techtree_services.research_complete
    service(
        viewer=request.user,
        campaign_id=session.campaign_id,
        tree=tree[:60],
        node=node[:60],
        character_id=character_id,
        alliance_id=alliance_id,
    )
    return redirect("play", session.pk)
