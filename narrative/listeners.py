"""What narrative hears from the tenant layer (connected in NarrativeConfig.ready).

campaigns says what happened — an Action committed, a session resumed, a beat window closed, a
campaign created or branched — and never imports us (DESIGN "Layout and layers"). Turns are
scheduled here: a new Action's turn before its broadcast (what players wait for), a retried
turn's after it (its TurnRetried opens the preview the deltas stream into).
"""

from __future__ import annotations

from campaigns.models import PlaySession
from missions.services import campaign_mission
from narrative import engine, turns


def _state(session_id: int) -> dict:
    return PlaySession.objects.values_list("state", flat=True).get(pk=session_id) or {}


def _has_pending(session_id: int) -> bool:
    return bool(_state(session_id).get("pending"))


def schedule_for_actions(session_id: int, events: list) -> None:
    """Event-store listener (ORDER_SCHEDULE; Action, SessionResumed): start the session's turn
    runner, handing it the new action's text so it embeds that for recall while it loads.
    A stage action (`batched`) waits for its beat window instead."""
    actions = [e for e in events if e.type == "Action" and not (e.payload or {}).get("batched")]
    if actions:
        turns.schedule_turns(session_id, query=actions[0].payload.get("text"))
    elif any(e.type == "SessionResumed" for e in events) and _has_pending(session_id):
        turns.schedule_turns(session_id)  # turns a crash left pending before the session ended


def schedule_for_retry(session_id: int, events: list) -> None:
    """Event-store listener (ORDER_AFTER_BROADCAST; TurnRetried): run the turn again, after the
    TurnRetried has gone out — it opens the preview the turn's deltas stream into."""
    turns.schedule_turns(session_id)


def schedule_for_windows(session_id: int, events: list) -> None:
    """Event-store listener (ORDER_SCHEDULE; BatchWindowClosed, BatchWindowOpened): a closed
    window's batch turn first, as everyone waits for it; a new window while an earlier beat's
    summary never landed (a crashed worker) answers that one before this one ends."""
    closed = any(e.type == "BatchWindowClosed" for e in events)
    if closed or ((_state(session_id).get("stage") or {}).get("unsummarised")):
        turns.schedule_batches(session_id)


def on_session_resume_requested(sender, *, session_id: int, **kwargs) -> None:
    """campaigns.signals.session_resume_requested: resuming an active session re-runs turns a
    crash left pending."""
    if _has_pending(session_id):
        turns.schedule_turns(session_id)


def on_campaign_created(sender, *, campaign, **kwargs) -> None:
    """campaigns.signals.campaign_created: pin the pack's mission as installed right now, so a
    later upload of the slug won't change it."""
    campaign_mission(campaign=campaign)


def on_session_opening(sender, *, campaign, **kwargs) -> dict | None:
    """campaigns.signals.session_opening: the campaign's pinned mission version starts with the
    session when it is installed (the GM can switch); never simply the newest upload."""
    return engine.mission_opening(campaign=campaign)
