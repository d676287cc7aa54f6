"""The session replay timeline (issue 17 part 6), for the session's GM and staff: every event in
order with its time, its tool calls and arguments, dice seeds with "re-roll from seed" (the
fair-dice verifier re-derives the roll and shows the same number), each turn's tokens and cost,
and "replay to here": the state folded from the first event up to a seq, by two independent
routes (from scratch, and from the latest snapshot at or before it plus the tail), its SHA-256
shown next to the stored one (the snapshot's at that seq, or the session's own at the last).

The prompts sent: each turn row says how many narrator/summarizer prompts were stored for it
(gtw_site.prompt_store: redacted, bounded, kept GTW_PROMPT_RETENTION_DAYS) and `?prompts=<seq>`
shows that turn's in full, one turn at a time so the page stays small; `?prompts=other` shows
the session's prompts that served no turn (the session summary). Players and outsiders get a
404 here: the page exists for them no more than the prompts do.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Sum
from django.http import Http404
from django.shortcuts import render

from campaigns import state as reducer
from campaigns.events import to_record
from campaigns.models import Event, Snapshot
from gtw_site.errors import DomainError, Forbidden
from gtw_site.models import ProviderCall, ProviderPrompt
from gtw_site.providers_api import session_viewer
from narrative import dice_secrets

SUMMARY_KEYS = ("text", "expression", "total", "outcome", "objective", "title", "name", "reason", "error")


def _summary(payload: dict[str, Any]) -> str:
    for key in SUMMARY_KEYS:
        value = payload.get(key)
        if isinstance(value, str | int) and str(value).strip():
            return str(value)[:300]
    return ""


def _tool_args(event: Event) -> dict[str, Any]:
    """The arguments a tool event was made from, as its payload records them."""
    payload = event.payload or {}
    args = payload.get("arguments") or payload.get("args")
    if isinstance(args, dict):
        return args
    return {
        k: v
        for k, v in payload.items()
        if k not in ("text", "engine", "state") and not isinstance(v, dict | list)
    }


def replay_check(session, upto: int) -> dict[str, Any]:
    """Fold events 1..upto from scratch and from the latest snapshot ≤ upto; compare hashes."""
    events = Event.objects.filter(session=session, seq__lte=upto).order_by("seq")
    scratch = reducer.replay(to_record(e) for e in events.iterator())
    scratch_hash = reducer.state_hash(scratch)
    snapshot = Snapshot.objects.filter(session=session, seq__lte=upto).order_by("-seq").first()
    if snapshot is not None:
        tail = events.filter(seq__gt=snapshot.seq)
        resumed_hash = reducer.state_hash(
            reducer.replay((to_record(e) for e in tail.iterator()), snapshot.state)
        )
    else:
        resumed_hash = scratch_hash
    stored = None
    where = ""
    at_snapshot = Snapshot.objects.filter(session=session, seq=upto).first()
    if at_snapshot is not None:
        stored, where = at_snapshot.sha256, f"snapshot at #{upto}"
    elif upto >= (session.state or {}).get("version", 0):
        stored, where = session.state_hash, "the session's stored state"
    else:
        stored, where = (
            resumed_hash,
            f"snapshot #{snapshot.seq} + tail" if snapshot else "replay from scratch",
        )
    return {
        "upto": upto,
        "hash": scratch_hash,
        "stored": stored,
        "where": where,
        "equal": scratch_hash == stored == resumed_hash,
    }


def _prompts(session, which: str) -> dict[str, Any]:
    """One turn's stored prompts (`which`: its action seq), or those that served no turn."""
    found = ProviderPrompt.objects.filter(session_id=session.pk).select_related("call").order_by("pk")
    if which == "other":
        found, seq = found.filter(turn_seq__isnull=True), None
    else:
        seq = int(which)  # ValueError: a 422, as for the other parameters
        found = found.filter(turn_seq=seq)
    return {"prompt_seq": seq if seq is not None else "other", "shown_prompts": list(found)}


@login_required
def session_replay(request, session_id: int):
    try:
        session = session_viewer(request.user, session_id)
    except Forbidden:
        raise Http404("No such session.") from None  # a player: the GM's page is not theirs
    except DomainError as exc:
        return render(request, "error.html", {"error": exc}, status=exc.status)
    events = list(Event.objects.filter(session=session).select_related("actor").order_by("seq"))
    per_turn = {
        row["turn_seq"]: row
        for row in ProviderCall.objects.filter(session_id=session.pk, shadow=False)
        .values("turn_seq")
        .annotate(tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost_usd"))
    }
    prompt_counts = {
        row["turn_seq"]: row["n"]
        for row in ProviderPrompt.objects.filter(session_id=session.pk)
        .values("turn_seq")
        .annotate(n=Count("pk"))
    }
    rows = []
    for event in events:
        payload = event.payload or {}
        turn = per_turn.get(event.seq) if event.type == "Action" else None
        rows.append(
            {
                "seq": event.seq,
                "time": event.created_at,
                "type": event.type,
                "actor": event.actor.username if event.actor else "",
                "summary": _summary(payload),
                "seed": event.seed,
                "dice": event.type == "DiceRolled",
                "tool_args": _tool_args(event)
                if event.type not in ("Action", "Narration", "Opening")
                else {},
                "tool_events": payload.get("tool_events") or [],
                "private": bool(event.audience),
                "turn": turn,
                "prompts": prompt_counts.get(event.seq, 0) if event.type == "Action" else 0,
            }
        )
    context: dict[str, Any] = {
        "session": session,
        "rows": rows,
        "other_prompts": prompt_counts.get(None, 0),
    }
    try:
        if request.GET.get("upto"):
            upto = int(request.GET["upto"])
            if not 1 <= upto <= (events[-1].seq if events else 0):
                raise ValueError
            context["check"] = replay_check(session, upto)
        if request.GET.get("prompts"):
            context.update(_prompts(session, request.GET["prompts"]))
        if request.GET.get("reroll"):
            context["reroll"] = dice_secrets.roll_verify(
                viewer=request.user, session_id=session.pk, seq=int(request.GET["reroll"])
            )
    except ValueError:
        return render(
            request,
            "error.html",
            {"error": {"status": 422, "message": "No such event in this session."}},
            status=422,
        )
    except DomainError as exc:
        return render(request, "error.html", {"error": exc}, status=exc.status)
    return render(request, "providers/replay.html", context)
