"""Server-rendered pages. Views check (via selectors) and call the same services as the API."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from campaigns import selectors, services
from campaigns.errors import Conflict, DomainError
from campaigns.links import invite_url
from campaigns.models import ContentPack, Membership, PersonalityPreset, PlaySession
from gtw_site.models import ApiToken
from gtw_site.tokens import token_issue, token_revoke


@login_required
def dashboard(request):
    return render(
        request,
        "campaigns/dashboard.html",
        {
            # Archived campaigns are hidden here (templates/campaigns/_lifecycle_dashboard.html lists them).
            "campaigns": selectors.campaign_list(viewer=request.user, archived=False),
            "packs": ContentPack.objects.order_by("name"),
            "personalities": PersonalityPreset.objects.all(),
        },
    )


@login_required
@require_POST
def campaign_create(request):
    try:
        campaign = services.campaign_create(
            user=request.user,
            name=request.POST.get("name", ""),
            pack_slug=request.POST.get("pack", ""),
            personality_slug=request.POST.get("personality") or None,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard")
    return redirect("campaign_detail", campaign.pk)


@login_required
@require_POST
def invite_code_submit(request):
    """The dashboard's 'join by invite' box accepts a code or a whole invite URL."""
    value = request.POST.get("code", "").strip().rstrip("/")
    code = value.rsplit("/", 1)[-1] if value else ""
    if not code:
        messages.error(request, "Paste the invite link or code your GM sent you.")
        return redirect("dashboard")
    return redirect("invite_accept", code)


@login_required
def campaign_detail(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    campaign = membership.campaign
    characters = campaign.characters.select_related("owner", "campaign__pack").order_by("created_at")
    mine = next((c for c in characters if c.owner_id == request.user.pk), None)
    return render(
        request,
        "campaigns/campaign.html",
        {
            "campaign": campaign,
            "membership": membership,
            "is_gm": membership.role == Membership.Role.GM,
            "members": selectors.campaign_members(campaign_id=campaign.pk),
            "characters": characters,
            "my_character": mine,
            "archetypes": campaign.pack.archetypes,
            "attribute_names": campaign.pack.data.get("attribute_rules", {}).get("names", []),
            # Stage sessions are listed under "Stage & fireteams", with a link to the stage page.
            "sessions": campaign.sessions.filter(kind=PlaySession.Kind.PARTY).order_by("-number"),
            "personalities": PersonalityPreset.objects.all(),
        },
    )


@login_required
@require_POST
def invite_create(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    invite = services.invite_create(membership=membership, role=request.POST.get("role", "player"))
    url = invite_url(request, invite.code)
    return render(request, "campaigns/campaign.html#invite-link", {"invite": invite, "invite_url": url})


# The invite page's status for each state of its code: a dead link says so before any click.
_INVITE_STATUS = {"unknown": 404, "used": 410, "expired": 410, "member": 200, "open": 200}


@require_http_methods(["GET", "POST"])
def invite_accept(request, code: str):
    """Open to visitors who are not signed in (they get Sign in / Create an account links that
    bring them back here); Accept itself needs an account."""
    preview = selectors.invite_preview(code=code, viewer=request.user)
    if request.method == "POST" and preview.state == "open":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = services.invite_accept(code=code, user=request.user)
        messages.success(request, f"Welcome to {membership.campaign.name}! Create your character to play.")
        return redirect("campaign_detail", membership.campaign_id)
    context = {"invite": preview, "next": request.path if preview.state == "open" else ""}
    return render(request, "campaigns/invite.html", context, status=_INVITE_STATUS[preview.state])


@login_required
@require_POST
def character_create(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    attributes = {}
    for name in membership.campaign.pack.data.get("attribute_rules", {}).get("names", []):
        raw = request.POST.get(f"attr_{name}", "").strip()
        if raw:
            try:
                attributes[name] = int(raw)
            except ValueError:
                messages.error(request, f"{name} must be a whole number.")
                return redirect("campaign_detail", campaign_id)
    try:
        services.character_create(
            membership=membership,
            name=request.POST.get("name", ""),
            archetype=request.POST.get("archetype", ""),
            attributes=attributes or None,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("campaign_detail", campaign_id)


@login_required
@require_POST
def personality_set(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    services.campaign_set_personality(
        membership=membership, personality_slug=request.POST.get("personality", "")
    )
    return redirect("campaign_detail", campaign_id)


@login_required
@require_POST
def session_open(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    session = services.session_open(membership=membership, title=request.POST.get("title", ""))
    return redirect("play", session.pk)


@login_required
@require_POST
def session_resume(request, session_id: int):
    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    services.session_resume(session=session, membership=membership)
    return redirect("play", session.pk)


@login_required
@require_POST
def session_end(request, session_id: int):
    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    with contextlib.suppress(Conflict):  # already ended (a double click, a second tab)
        services.session_end(session=session, membership=membership)
    return redirect("play", session.pk)


@login_required
@require_POST
def session_branch(request, session_id: int):
    from campaigns.branching import campaign_branch

    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    try:
        at_seq = int(request.POST.get("at_seq", ""))
    except ValueError:
        messages.error(request, "Pick the event number to branch from.")
        return redirect("play", session_id)
    new_session = campaign_branch(membership=membership, session=session, at_seq=at_seq)
    messages.success(request, f"Branched into “{new_session.campaign.name}”.")
    return redirect("play", new_session.pk)


@login_required
def tokens(request):
    new_token = None
    if request.method == "POST":
        if request.POST.get("revoke"):
            token_revoke(user=request.user, token_id=request.POST["revoke"])
        else:
            _, new_token = token_issue(user=request.user, name=request.POST.get("name", ""))
    response = render(
        request,
        "account/tokens.html",
        {"tokens": ApiToken.objects.filter(user=request.user), "new_token": new_token},
    )
    response["Cache-Control"] = "no-store"  # a new token is on this page, once
    return response
