"""Playing a session over HTTP: a player's action (party or stage) and the retry of a failed
turn. The same services as the play socket (narrative.turns); the URLs are those the campaigns
router had, so clients see no change. Domain errors map to HTTP once, in gtw_site/api.py."""

from ninja import Router, Status

from campaigns import selectors
from campaigns.schemas import ActionIn, ActionOut, SessionOut
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import windows
from narrative import turns

router = Router(tags=["play"])


@router.post("/sessions/{session_id}/actions", response={202: ActionOut})
def action_submit(request, session_id: int, data: ActionIn):
    result = turns.submit_action(
        session_id=session_id, user=request.user, text=data.text, idempotency_key=data.idempotency_key
    )
    return Status(202, {"seq": result.events[0].seq, "replayed": result.replayed})


@router.post("/sessions/{session_id}/actions/{action_seq}/retry", response={202: SessionOut})
def action_retry(request, session_id: int, action_seq: int):
    turns.retry_turn(session_id=session_id, user=request.user, action_seq=action_seq)
    session, _ = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    return Status(202, session)


@router.post("/stage/{session_id}/actions", response={202: ActionOut}, tags=["stage"])
def stage_action_submit(request, session_id: int, data: ActionIn):
    # A stage session only (a party session's actions go to /sessions/{id}/actions); lazily
    # closes a window whose time is up, so the action lands in the right one or is refused.
    session, _ = stage_selectors.stage_get(viewer=request.user, session_id=session_id)
    windows.window_check(session)
    result = turns.submit_action(
        session_id=session_id, user=request.user, text=data.text, idempotency_key=data.idempotency_key
    )
    return Status(202, {"seq": result.events[0].seq, "replayed": result.replayed})
