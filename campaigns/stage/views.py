"""Stage pages: the stage itself (`/sessions/<id>/stage/`) and the campaign page's fireteam and
alliance forms. Views check through the selectors and call the same services as the API and
the stage socket; a refused form comes back as a message on the page it came from."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from campaigns import selectors, teams
from campaigns.errors import DomainError, Invalid
from campaigns.models import Event, Membership
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import services, windows
from campaigns.state import withdrawn_payload, withdrawn_seqs


@login_required
def stage_page(request, session_id: int):
    session, membership = stage_selectors.stage_get(viewer=request.user, session_id=session_id)
    services.seat_ensure(session=session, membership=membership)
    windows.window_check(session)
    roster = stage_selectors.stage_roster(session)
    username = request.user.username
    events = list(
        selectors.visible_to(Event.objects.filter(session=session), membership)
        .select_related("actor")
        .order_by("seq")
    )
    withdrawn = withdrawn_seqs(session.state)  # the X-card's: shown withdrawn, no text (issue 18)
    for event in events:
        if event.seq in withdrawn:
            event.payload = withdrawn_payload(event.payload)  # this page's copy only; never saved
    unsummarised = ((session.state or {}).get("stage") or {}).get("unsummarised") or []
    me = stage_selectors.me_context(roster, username)
    my_team = me["me"].get("team")
    is_gm = membership.role == Membership.Role.GM
    squad = [
        e for e in events if e.type == "SquadSummary" and (is_gm or e.payload.get("fireteam_id") == my_team)
    ][::-1][:8]
    is_moderator = (roster["seats"].get(username) or {}).get("role") == "moderator"
    context = {
        "session": session,
        "campaign": session.campaign,
        "membership": membership,
        "is_gm": is_gm,
        "is_moderator": is_moderator,
        "roster": roster,
        **me,
        "events": events,
        "summarising": {w["close_seq"] for w in unsummarised},
        "pending": set(),
        "squad": squad,
        "rolls": [e for e in events if e.type == "DiceRolled"][::-1][:12],
        "last_seq": session.version,
        "box_key": stage_selectors.box_key(roster, username),
        "members": [
            m
            for m in selectors.campaign_members(campaign_id=session.campaign_id)
            if m.role == Membership.Role.PLAYER
        ],
        "idempotency_key": uuid.uuid4().hex,
        "oob": False,
    }
    return render(request, "stage/stage.html", context)


@login_required
@require_POST
def stage_open(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    try:
        session = services.stage_open(membership=membership, title=request.POST.get("title", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(campaign_id)
    return redirect("stage", session.pk)


def _back(campaign_id: int):
    return redirect(reverse("campaign_detail", args=[campaign_id]) + "#teams")


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _form(request, campaign_id: int, action) -> object:
    """Run one form's service; a domain error becomes a message. Always back to the campaign."""
    try:
        done = action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if done:
            messages.success(request, done)
    return _back(campaign_id)


@login_required
@require_POST
def fireteam_create(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)

    def act():
        team = teams.fireteam_create(
            membership=membership,
            name=request.POST.get("name", ""),
            alliance_id=_int(request.POST.get("alliance")),
            voice_label=request.POST.get("voice_label", ""),
        )
        return f"Fireteam {team.name} is ready."

    return _form(request, campaign_id, act)


@login_required
@require_POST
def fireteam_update(request, fireteam_id: int):
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)

    def act():
        teams.fireteam_update(
            membership=membership,
            fireteam=fireteam,
            name=request.POST.get("name"),
            alliance_id=_int(request.POST.get("alliance")),
        )
        return f"Saved {fireteam.name}."

    return _form(request, fireteam.campaign_id, act)


@login_required
@require_POST
def fireteam_delete(request, fireteam_id: int):
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)
    name = fireteam.name

    def act():
        teams.fireteam_delete(membership=membership, fireteam=fireteam)
        return f"Fireteam {name} disbanded."

    return _form(request, fireteam.campaign_id, act)


@login_required
@require_POST
def fireteam_member(request, fireteam_id: int):
    """Add (`member` = membership id) or remove (`remove` = membership id) a member."""
    fireteam, membership = teams.fireteam_get(viewer=request.user, fireteam_id=fireteam_id)

    def act():
        removing = request.POST.get("remove")
        target = stage_selectors.target_get(
            campaign_id=fireteam.campaign_id, membership_id=_int(removing or request.POST.get("member"))
        )
        if removing:
            teams.fireteam_member_remove(membership=membership, fireteam=fireteam, target=target)
            return f"{target.user.username} left {fireteam.name}."
        teams.fireteam_member_add(membership=membership, fireteam=fireteam, target=target)
        return f"{target.user.username} joined {fireteam.name}."

    return _form(request, fireteam.campaign_id, act)


@login_required
@require_POST
def alliance_create(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)

    def act():
        alliance = teams.alliance_create(membership=membership, name=request.POST.get("name", ""))
        return f"Alliance {alliance.name} founded."

    return _form(request, campaign_id, act)


@login_required
@require_POST
def alliance_reputation(request, alliance_id: int):
    alliance, membership = teams.alliance_get(viewer=request.user, alliance_id=alliance_id)

    def act():
        delta = _int(request.POST.get("delta"))
        if delta is None:
            raise Invalid("Pick how much the reputation changes.")
        updated = teams.alliance_reputation_change(membership=membership, alliance=alliance, delta=delta)
        return f"{updated.name}: reputation {updated.reputation:+d}."

    return _form(request, alliance.campaign_id, act)
