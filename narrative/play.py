"""The play page (`/sessions/<id>/play/`): the log, the mission panel, the party, the dice tray
and the shared notes of a party session, rendered as the socket will keep them. It lives with
the narrative layer it shows (campaigns is the tenant layer below it and never imports this)."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from campaigns import selectors
from campaigns.models import Event, Membership, PlaySession
from campaigns.state import withdrawn_payload
from campaigns.state import withdrawn_seqs as state_withdrawn_seqs
from memory.summaries import latest_recap
from missions.services import missions_latest
from narrative import opening
from narrative.engine import mission_ast, pack_missions, panel_context
from realtime.crdt import shared_docs_for


def _game_panel(session: PlaySession, membership: Membership) -> dict:
    panel = panel_context(session.state or {})
    ref = (session.state or {}).get("mission") or {}
    ast = mission_ast(ref.get("hash"))
    is_gm = membership.role == Membership.Role.GM
    return {
        **panel,
        "missions": missions_latest(session.campaign) if is_gm else [],
        "panel_mission_slug": ref.get("slug"),
        # The GM may override hidden objectives too, so list them all from the mission.
        "mission_objectives": ast["objectives"] if ast and is_gm else [],
        # The GM's "next mission" choice after a mission's end: the pack's other missions.
        "next_missions": [m for m in pack_missions(session.campaign) if m.slug != ref.get("slug")]
        if is_gm
        else [],
    }


@login_required
def play(request, session_id: int):
    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    if session.kind == PlaySession.Kind.STAGE:
        return redirect("stage", session.pk)  # a stage has its own page and socket
    events = list(
        selectors.visible_to(Event.objects.filter(session=session), membership)
        .select_related("actor")
        .order_by("seq")
    )
    # A narration the X-card withdrew shows as withdrawn, without its text (issue 18).
    withdrawn = state_withdrawn_seqs(session.state)
    for event in events:
        if event.seq in withdrawn:
            event.payload = withdrawn_payload(event.payload)  # this page's copy only; never saved
    pending = set(session.state.get("pending") or [])
    rolls = [e for e in events if e.type == "DiceRolled"][::-1][:12]
    context = {
        "session": session,
        "campaign": session.campaign,
        "membership": membership,
        "can_act": membership.can_act,
        "is_gm": membership.role == Membership.Role.GM,
        "events": events,
        "pending": pending,
        # The GM's opening still being written streams into a preview after its source entry.
        "opening_owed": opening.missing_opening(session.pk),
        "rolls": rolls,
        "last_seq": session.version,
        "idempotency_key": uuid.uuid4().hex,
        "recap": latest_recap(session),
        **selectors.party_context(session.pk, []),
        **_game_panel(session, membership),
        # Notes, inventory and map, rendered before the socket syncs them.
        "shared_docs": shared_docs_for(viewer=request.user, session_id=session.pk),
    }
    context["oob"] = False
    return render(request, "play/play.html", context)
