from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from campaigns.errors import DomainError
from campaigns.models import Membership
from campaigns.selectors import membership_get
from gtw_site.ratelimit import rate_check
from memory import importer, selectors, services
from memory.models import Memory, MemoryImport
from memory.retrieval import memory_search

RECENT_IMPORTS = 3


@login_required
def memory_page(request, campaign_id: int):
    """Browse and search what the viewer may see: the GM the campaign's memory (and players'
    private memory only when GTW_GM_OMNISCIENT is on), a player the campaign's plus their own.
    Entries read as who / what / when, grouped by session with its summaries on top, repeats
    folded into one "xN" line (memory.folding); search scores only in the GM view.
    Also where a member writes a note and uploads a bulk import (which runs in the background;
    the page polls `?imports=1` for its progress while one is running)."""
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    if request.method == "POST":
        if request.POST.get("form") == "import":
            _import(request, membership)
        else:
            _note(request, membership)
        return redirect("memory_page", campaign_id)
    recent = MemoryImport.objects.defer("data").filter(campaign_id=campaign_id, created_by=request.user)
    imports = [importer.import_status(job) for job in recent[:RECENT_IMPORTS]]
    context = {
        "campaign": membership.campaign,
        "membership": membership,
        "imports": imports,
        "importing": any(i["status"] in ("queued", "running") for i in imports),
    }
    if request.htmx and request.GET.get("imports"):
        return render(request, "memory/memories.html#imports", context)
    q = request.GET.get("q", "").strip()
    hits, search_error = None, None
    if q:
        try:
            rate_check(scope="memory_query", ident=request.user.pk)
            found = memory_search(viewer=request.user, campaign_id=campaign_id, query=q, k=20)
            hits = selectors.search_entries(campaign_id=campaign_id, hits=found)
        except DomainError as exc:
            search_error = exc.message
    context |= {
        # Scores and their parts are the engine room: shown to GMs only (issue 13).
        "is_gm": membership.role == Membership.Role.GM,
        "q": q,
        "hits": hits,
        "search_error": search_error,
        "groups": []
        if hits is not None or search_error
        else selectors.memory_page_groups(viewer=request.user, membership=membership),
        "types": Memory.Type.choices,
        "import_max_lines": settings.GTW_MEMORY["import_max_lines"],
    }
    template = "memory/memories.html#results" if request.htmx else "memory/memories.html"
    return render(request, template, context)


def _note(request, membership: Membership) -> None:
    try:
        rate_check(scope="memory_note", ident=request.user.pk)
        services.memory_record(
            membership=membership,
            text=request.POST.get("text", ""),
            visibility=request.POST.get("visibility", "private"),
            tags=[t for t in request.POST.get("tags", "").split(",") if t.strip()],
        )
        messages.success(request, "Noted.")
    except DomainError as exc:
        messages.error(request, exc.message)


def _import(request, membership: Membership) -> None:
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a .jsonl file to import (one memory per line).")
        return
    try:
        importer.check_size(upload.size)
        rate_check(scope="memory_import", ident=request.user.pk)
        job = importer.import_queue(membership=membership, data=upload.read(), filename=upload.name or "")
        messages.success(request, f"Importing {job.total_lines:,} lines; progress is shown below.")
    except DomainError as exc:
        messages.error(request, exc.message)
