from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from campaigns.errors import DomainError
from campaigns.models import Membership
from campaigns.selectors import membership_get
from memory import selectors, services
from memory.models import Memory
from memory.retrieval import memory_search


@login_required
def memory_page(request, campaign_id: int):
    """Browse and search what the viewer may see: the GM the campaign's memory (and players'
    private memory only when GTW_GM_OMNISCIENT is on), a player the campaign's plus their own."""
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    if request.method == "POST":
        try:
            services.memory_record(
                membership=membership,
                text=request.POST.get("text", ""),
                visibility=request.POST.get("visibility", "private"),
                tags=[t for t in request.POST.get("tags", "").split(",") if t.strip()],
            )
            messages.success(request, "Noted.")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("memory_page", campaign_id)
    q = request.GET.get("q", "").strip()
    hits = None
    if q:
        try:
            hits = memory_search(viewer=request.user, campaign_id=campaign_id, query=q, k=20)
        except DomainError as exc:
            messages.error(request, exc.message)
    context = {
        "campaign": membership.campaign,
        "membership": membership,
        "is_gm": membership.role == Membership.Role.GM,
        "q": q,
        "hits": hits,
        "memories": []
        if hits is not None
        else selectors.memory_list(viewer=request.user, membership=membership),
        "types": Memory.Type.choices,
    }
    template = "memory/memories.html#results" if request.htmx else "memory/memories.html"
    return render(request, template, context)
