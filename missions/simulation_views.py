"""The GM's world-simulation page (issue 19): its telemetry — step budgets vs actual, snapshot
ids, the hash timeline, reconciliation decisions, drift alerts — and the controls (start, a step
window, stop, verify by replay, import a snapshot; export is the API's download). The same
services as /api/simulation; a player gets 404 like on every GM page, an outsider too."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from campaigns.errors import DomainError, Forbidden
from gtw_site.ratelimit import rate_check
from missions import simulation_services


@login_required
@require_http_methods(["GET", "POST"])
def simulation_page(request, session_id: int):
    try:
        data = simulation_services.simulation_telemetry(viewer=request.user, session_id=session_id)
    except Forbidden:
        raise Http404("No such session.") from None  # a player: the GM's page is not theirs
    campaign_id = data["campaign"].pk
    message = None
    if request.method == "POST":
        rate_check(scope="gm_control", ident=request.user.pk)
        action = request.POST.get("action", "")
        try:
            if action == "start":
                simulation_services.simulation_start(viewer=request.user, campaign_id=campaign_id)
            elif action == "step":
                budget = request.POST.get("budget", "10")
                simulation_services.simulation_step(
                    viewer=request.user,
                    campaign_id=campaign_id,
                    budget=int(budget) if budget.isdigit() and len(budget) < 4 else 0,
                )
            elif action == "stop":
                simulation_services.simulation_stop(viewer=request.user, campaign_id=campaign_id)
            elif action == "verify":
                report = simulation_services.simulation_verify(viewer=request.user, campaign_id=campaign_id)
                if report["mismatches"]:
                    message = (
                        "error",
                        f"Replay mismatch at {len(report['mismatches'])} window(s): quarantined.",
                    )
                else:
                    message = (
                        "success",
                        f"Replay of {report['windows']} window(s) reproduced the live hash.",
                    )
            elif action == "import" and request.FILES.get("snapshot"):
                upload = request.FILES["snapshot"]
                blob = upload.read(simulation_services.MAX_IMPORT_BYTES + 1)
                row = simulation_services.snapshot_import(
                    viewer=request.user, campaign_id=campaign_id, blob=blob
                )
                message = ("success", f"Snapshot #{row.pk} imported (step {row.step}).")
            else:
                message = ("error", "Choose an action.")
        except DomainError as exc:
            message = ("error", exc.message)
        if message is None:
            return redirect("session_simulation", session_id)
        data = simulation_services.simulation_telemetry(viewer=request.user, session_id=session_id)
    status = 200 if message is None or message[0] == "success" else 422
    return render(request, "missions/simulation.html", {**data, "message": message}, status=status)
