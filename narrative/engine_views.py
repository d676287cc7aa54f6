"""The engine's controls on the play page (the GM's forms): switch mission, set the beat,
override the mission, and the choices after a mission's end (retry, next mission, free play).
Each counts against the GM's "gm_control" rate limit, as through the API
(narrative/engine_api.py). Moved here from missions/views.py with the same URLs and names."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from campaigns import selectors
from gtw_site.ratelimit import rate_check
from missions.services import override_from_fields
from narrative import engine


@login_required
@require_POST
def mission_start(request, session_id: int):
    session = selectors.session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.mission_start(
        session=session,
        slug=request.POST.get("slug", ""),  # checked there: a malformed id is a 422, not a 500
        content_hash=request.POST.get("content_hash") or None,
        actor_id=request.user.pk,
    )
    return redirect("play", session.pk)


@login_required
@require_POST
def beat_set(request, session_id: int):
    session = selectors.session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.beat_set(session=session, beat=request.POST.get("beat", ""), actor_id=request.user.pk)
    return redirect("play", session.pk)


@login_required
@require_POST
def mission_override(request, session_id: int):
    session = selectors.session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.gm_override(session=session, actor_id=request.user.pk, change=override_from_fields(request.POST))
    return redirect("play", session.pk)


@login_required
@require_POST
def mission_retry(request, session_id: int):
    """The GM's "Retry the mission" after a mission's end."""
    session = selectors.session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.mission_retry(session=session, actor_id=request.user.pk)
    return redirect("play", session.pk)


@login_required
@require_POST
def mission_next(request, session_id: int):
    """The GM's "Next mission": the one picked (another of the pack's), or the next in order."""
    session = selectors.session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.mission_next(session=session, actor_id=request.user.pk, slug=request.POST.get("slug") or None)
    return redirect("play", session.pk)


@login_required
@require_POST
def free_play(request, session_id: int):
    """The GM's "Free play": the mission is set aside, the story goes on."""
    session = selectors.session_gm_get(viewer=request.user, session_id=session_id)
    rate_check(scope="gm_control", ident=request.user.pk)
    engine.free_play(session=session, actor_id=request.user.pk)
    return redirect("play", session.pk)
