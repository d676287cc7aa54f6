"""Table safety on the pages (issue 18, part 4): the lines-and-veils form of the campaign page
and of the play page's safety panel, and the play page's X-card. Plain forms that post and
come back (no script needed); the same services as the API (narrative/tablesafety_api.py).
A domain error (bad input, a spectator's tap, a rate limit) is a 4xx page that says why."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from campaigns import selectors
from campaigns.errors import Invalid
from campaigns.models import PlaySession
from narrative import tablesafety, xcard


def _back(request, membership) -> str:
    """Where the form came from: the play page of one of the campaign's sessions, else the
    campaign page (never an address from outside: `session` is an id we look up)."""
    raw = request.POST.get("session", "")
    if raw.isdigit():
        session = PlaySession.objects.filter(pk=int(raw), campaign_id=membership.campaign_id).first()
        if session is not None:
            name = "stage" if session.kind == PlaySession.Kind.STAGE else "play"
            return reverse(name, args=[session.pk]) + "#table-safety"
    return reverse("campaign_detail", args=[membership.campaign_id]) + "#table-safety"


@login_required
@require_POST
def table_line_add(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    tablesafety.table_line_add(
        membership=membership,
        kind=request.POST.get("kind", ""),
        text=request.POST.get("text", ""),
        private=request.POST.get("private") in ("on", "1", "true"),
    )
    return redirect(_back(request, membership))


@login_required
@require_POST
def table_line_remove(request, campaign_id: int, line_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    tablesafety.table_line_remove(membership=membership, line_id=line_id)
    return redirect(_back(request, membership))


@login_required
@require_POST
def xcard_tap(request, session_id: int):
    key = request.POST.get("idempotency_key") or ""
    if not key:
        selectors.session_membership_get(viewer=request.user, session_id=session_id)  # outsiders: 404
        raise Invalid("The X-card form lost its key; reload the page and tap again.")
    result = xcard.xcard_tap(session_id=session_id, user=request.user, idempotency_key=key)
    stage = PlaySession.objects.filter(pk=session_id, kind=PlaySession.Kind.STAGE).exists()
    page = "stage" if stage else "play"
    return redirect(reverse(page, args=[result.events[0].session_id]) + "?xcard=tapped#log")


def panel_context(*, membership, session=None) -> dict:
    """The safety panel's template context (templates/safety_tools/_panel.html)."""
    entries = tablesafety.table_lines_for(membership=membership)
    return {
        "safety_lines": [e for e in entries if e.kind == "line"],
        "safety_veils": [e for e in entries if e.kind == "veil"],
        "safety_campaign_id": membership.campaign_id,
        "safety_session": session,
        "safety_is_gm": membership.role == membership.Role.GM,
        "xcard_allowed": session is not None and xcard.may_tap(session, membership),
        "xcard_key": uuid.uuid4().hex,
    }
