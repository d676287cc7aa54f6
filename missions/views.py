"""The GM's game controls on the play page: switch mission, set the beat, override the mission."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from campaigns import selectors
from campaigns.errors import Forbidden, Invalid
from campaigns.models import Membership
from narrative import engine


def gm_session(user, session_id: int):
    """The session, if `user` is its campaign's GM (404 for outsiders, 403 for players)."""
    session, membership = selectors.session_membership_get(viewer=user, session_id=session_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can change the mission or the story beat.")
    return session


@login_required
@require_POST
def mission_start(request, session_id: int):
    session = gm_session(request.user, session_id)
    engine.mission_start(session=session, slug=request.POST.get("slug", "")[:80], actor_id=request.user.pk)
    return redirect("play", session.pk)


@login_required
@require_POST
def beat_set(request, session_id: int):
    session = gm_session(request.user, session_id)
    engine.beat_set(session=session, beat=request.POST.get("beat", ""), actor_id=request.user.pk)
    return redirect("play", session.pk)


@login_required
@require_POST
def mission_override(request, session_id: int):
    session = gm_session(request.user, session_id)
    engine.gm_override(session=session, actor_id=request.user.pk, change=override_change(request.POST))
    return redirect("play", session.pk)


def override_change(data) -> dict:
    """A GmOverride from form or JSON fields: objective+status, clock+value, or scene."""
    if data.get("objective"):
        return {"objective": str(data["objective"])[:60], "status": str(data.get("status", ""))[:20]}
    if data.get("clock"):
        try:
            value = int(data.get("value", ""))
        except (TypeError, ValueError):
            raise Invalid("A clock override needs a whole-number value.") from None
        return {"clock": str(data["clock"])[:60], "value": value}
    if data.get("scene"):
        return {"scene": str(data["scene"])[:60]}
    raise Invalid("Say what to override: an objective and its status, a clock and its value, or a scene.")
