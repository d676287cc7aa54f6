"""The campaign lifecycle's page forms (the GM's clone, archive and export buttons on the
campaign page; import on the dashboard). The same services as campaigns/lifecycle_api.py."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from campaigns import lifecycle, lifecycle_export, selectors
from campaigns.errors import DomainError
from campaigns.lifecycle_api import read_upload


@login_required
@require_POST
def campaign_clone(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    try:
        clone = lifecycle.campaign_clone(
            membership=membership,
            name=request.POST.get("name", ""),
            history=request.POST.get("history") == "on",
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        messages.error(request, exc.message)
        return redirect("campaign_detail", campaign_id)
    messages.success(request, f"Cloned into “{clone.name}”. Its schedule is off until you set one.")
    return redirect("campaign_detail", clone.pk)


@login_required
@require_POST
def campaign_archive(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    archive = request.POST.get("action", "archive") != "unarchive"
    try:
        campaign = lifecycle.campaign_archive(membership=membership, archived=archive)
    except DomainError as exc:
        if exc.status == 404:
            raise
        messages.error(request, exc.message)
        return redirect("campaign_detail", campaign_id)
    if campaign.archived:
        messages.success(
            request, f"“{campaign.name}” is archived: read-only, and off dashboards and calendars."
        )
        return redirect("dashboard")
    messages.success(request, f"“{campaign.name}” is back: you can open sessions again.")
    return redirect("campaign_detail", campaign.pk)


@login_required
@require_GET
def campaign_export(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    body = lifecycle_export.campaign_export(membership=membership)
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, indent=1), content_type="application/json; charset=utf-8"
    )
    name = lifecycle_export.export_filename(membership.campaign)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def campaign_import(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a campaign file (.gtw.json) to import.")
        return redirect("dashboard")
    try:
        report = lifecycle_export.campaign_import(
            user=request.user, data=read_upload(upload), name=request.POST.get("name", "")
        )
    except DomainError as exc:
        messages.error(request, f"Nothing was imported: {exc.message}")
        return redirect("dashboard")
    done = f"Imported “{report.campaign.name}” with {len(report.sessions)} session(s)."
    messages.success(request, " ".join([done, *report.notes]))
    return redirect("campaign_detail", report.campaign.pk)
