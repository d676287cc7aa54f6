"""The GM's opening narration: when a session opens, and when a mission starts in one, the GM
opens the scene — the mission's title, the scene and its description, the open objective, who is
present — in the personality's tone (issue 13).

    SessionOpened / MissionStarted [commit]
      → event-store listener `schedule_for_openings` (after the broadcast, like a retried turn:
        the MissionStarted entry opens the preview the opening streams into)
      → django-q2 task `run_opening(session_id, of_seq)` on the turn cluster (players wait for
        it), never in the request that opened the session
      → the narrator streams it (deltas keyed by `of_seq`, `broadcast.DeltaStream`); the offline
        narrator writes it procedurally (narrative.llm.offline.opening), a real model from
        prompts/narrator_opening.txt — and should that model fail, the offline writer steps in
      → one `Opening` event [commit], idempotency key `opening:<of_seq>`, payload {"of_seq",
        "action_seq" (= of_seq: the preview it closes), "text", "mission", "provider", "model"}
      → broadcast to every open page and kept for catch-up like any event.

Exactly once: the idempotency key makes a second append a replay, whatever races; an advisory
lock per session keeps two workers (or a retry) from both calling the model and streaming. A
crash loses nothing: until the Opening is committed, `missing_opening` finds it, and it is
scheduled again by the session's resume button (`session_resume_requested`) and by `gtw up` at
start and every 45 s after (`resume_all_openings`, beside the turns' own recovery). Only the
newest SessionOpened / MissionStarted is narrated, and only while the GM has narrated nothing
after it: a late opening for a scene the table has already played is noise, not a story.

Stage sessions get the same opening (it is an ordinary event, so the stage page renders it with
the play page's log-entry partial). A session's first opening lands whole on the pages that load
it (no page is open before the session exists); a mission started mid-session streams into the
preview its MissionStarted entry opens (templates/play/play.html, live updates only).
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from campaigns import events
from campaigns.models import Character, Event, PlaySession
from gtw_site import jobs, telemetry
from gtw_site.providers import ProviderError
from narrative import dice_secrets, director, engine, leakguard, prompts, tablesafety
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message
from narrative.llm.offline.opening import write_opening
from narrative.turns import runner
from narrative.turns.context import personality_context
from narrative.turns.prompts import game_text, prompt_template
from realtime import broadcast

logger = logging.getLogger(__name__)

SOURCES = ("SessionOpened", "MissionStarted")
EVENT_TYPE = "Opening"
# Advisory-lock namespace: next to the party turn's 0x67747701 and the batch turn's 0x67747702.
LOCK_NAMESPACE = 0x67747703
WORD_LIMIT = 160


def key(of_seq: int) -> str:
    return f"opening:{of_seq}"


# ---- scheduling (listeners, connected in NarrativeConfig.ready) -----------------------------


def schedule_for_openings(session_id: int, new_events: list) -> None:
    """Event-store listener (ORDER_AFTER_BROADCAST; SessionOpened, MissionStarted): queue the
    opening of the newest one."""
    schedule(session_id, new_events[-1].seq)


def check_openings(session_id: int) -> None:
    """Queue again the opening a crash lost, if the session still owes one."""
    of_seq = missing_opening(session_id)
    if of_seq is not None:
        schedule(session_id, of_seq)


def on_session_resume_requested(sender, *, session_id: int, **kwargs) -> None:
    """campaigns.signals.session_resume_requested: the resume button, which is how a table
    re-runs what a crash left undone, re-queues a lost opening too."""
    check_openings(session_id)


def schedule(session_id: int, of_seq: int) -> None:
    # One waiting task per opening: a burst of triggers takes one place in the queue.
    jobs.enqueue_once(
        f"opening-{session_id}-{of_seq}",
        "narrative.opening.run_opening",
        session_id,
        of_seq,
        task_name=f"opening-{session_id}-{of_seq}",
        group="turns",
    )


def _owed(session_id: int, last_narration_seq: int | None) -> int | None:
    """The newest opening source after the GM's last narration, if its opening isn't written.
    Reads only the tail of the log after that narration (the (session, seq) index)."""
    of_seq = (
        Event.objects.filter(session_id=session_id, seq__gt=last_narration_seq or 0, type__in=SOURCES)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if of_seq is None or Event.objects.filter(session_id=session_id, idempotency_key=key(of_seq)).exists():
        return None
    return of_seq


def _active(session_ids=None):
    rows = PlaySession.objects.filter(status=PlaySession.Status.ACTIVE)
    if session_ids is not None:
        rows = rows.filter(pk__in=session_ids)
    return rows.values_list("pk", "state__last_narration_seq")


def missing_opening(session_id: int) -> int | None:
    """The seq of the session's newest SessionOpened / MissionStarted if its opening is still
    owed (not written, the session active, and the GM has narrated nothing since); else None."""
    row = _active([session_id]).first()
    return _owed(*row) if row else None


def resume_all_openings() -> int:
    """`gtw up` (at start, then periodically): queue every opening a crash left unwritten.
    Returns how many."""
    owed = [(pk, seq) for pk, last in _active() if (seq := _owed(pk, last)) is not None]
    for session_id, of_seq in owed:
        schedule(session_id, of_seq)
    return len(owed)


# ---- the task ------------------------------------------------------------------------------


def run_opening(session_id: int, of_seq: int) -> int | None:
    """The django-q2 task: write the opening of event `of_seq`. Returns the Opening's seq, or
    None when there is nothing to do (written already, superseded, another worker on it)."""
    jobs.started(f"opening-{session_id}-{of_seq}")
    if not runner.try_lock(LOCK_NAMESPACE, session_id):
        return None  # another worker is writing this session's opening right now
    try:
        return write(session_id, of_seq)
    finally:
        runner.unlock(LOCK_NAMESPACE, session_id)


def write(session_id: int, of_seq: int) -> int | None:
    """Write the opening of `of_seq` unless it is written or no longer owed. Caller holds the
    session's opening lock."""
    existing = events.find_replay(session_id, key(of_seq))
    if existing is not None:
        return existing.events[0].seq if existing.events else None
    if missing_opening(session_id) != of_seq:
        return None  # the session ended, a newer mission started, or the table has moved on
    session = PlaySession.objects.select_related("campaign", "campaign__pack", "campaign__personality").get(
        pk=session_id
    )
    context = opening_context(session)
    # Issue 17: the campaign's provider choice, and its rows name the session (gtw_site.telemetry).
    with telemetry.scope(campaign_id=session.campaign_id, session_id=session.pk, turn_seq=of_seq):
        text, provider_name, model = _narrate(session, of_seq, context)
    text = director.enforce_window(text, WORD_LIMIT)
    payload = {
        "of_seq": of_seq,
        "action_seq": of_seq,  # the preview it closes (deltas are keyed by it)
        "text": text,
        "mission": (context.get("mission") or {}).get("title") or "",
        "provider": provider_name,
        "model": model,
    }
    result = events.append(
        session.pk, [events.NewEvent(type=EVENT_TYPE, payload=payload)], idempotency_key=key(of_seq)
    )  # broadcast on commit by the broadcast listener, like every event
    return result.events[0].seq if result.events else None


def opening_context(session: PlaySession) -> dict[str, Any]:
    """What the opening may say: the public state of the session, nothing private."""
    campaign = session.campaign
    state = session.state or {}
    pack = campaign.pack.data if campaign.pack else {}
    archetypes = {a.get("slug"): a.get("name") for a in pack.get("archetypes", []) if isinstance(a, dict)}
    view = engine.mission_view(state)
    scene = dict(state.get("scene") or {})
    if view and view.get("scene", {}).get("title"):
        scene.setdefault("name", view["scene"]["title"])
        scene.setdefault("description", view["scene"].get("description", ""))
    party = [
        {"name": c.name, "archetype": archetypes.get(c.archetype, c.archetype)}
        for c in Character.objects.filter(campaign=campaign).order_by("pk")
    ]
    return {
        "mission": (view or {}).get("mission")
        or ({"title": state["mission"].get("title")} if state.get("mission") else None),
        "view": view,
        "scene": scene,
        "objective": engine.active_objective(view, state),
        "party": party,
        "npcs": (view or {}).get("npcs") or [],
        "world": pack.get("world", {}),
        "personality": personality_context(campaign.personality),
        "kind": session.kind,
        "table_safety": tablesafety.safety_context(campaign.pk, state),  # lines, veils (issue 18)
    }


def opening_messages(context: dict[str, Any]) -> list[Message]:
    """The prompt for a real model; content authors' and players' text goes in as data blocks."""
    party = "\n".join(f"- {p['name']} ({p['archetype']})" for p in context["party"]) or "(nobody yet)"
    system = prompt_template("narrator_opening.txt").format(
        personality=(context.get("personality") or {}).get(
            "system_prompt", "You are a fair, vivid game master."
        ),
        occasion="mission" if context.get("view") else "session",
        word_limit=WORD_LIMIT,
        data_rule=prompts.DATA_RULE,
        game=prompts.data_block(
            "game",
            game_text({**context, "mission": context.get("view")})
            + f"\nOpen objective: {context.get('objective') or 'none yet'}",
        ),
        party=prompts.data_block("party", party),
    )
    system += tablesafety.prompt_text(context.get("table_safety"))  # issue 18
    return [Message(role="system", content=system), Message(role="user", content="Open the scene.")]


def _narrate(session: PlaySession, of_seq: int, context: dict[str, Any]) -> tuple[str, str, str]:
    """(text, provider, model), the text streamed to the table as it is written."""
    seed = dice_secrets.seed_for(session.campaign_id, session.pk, of_seq)
    # The table's lines and veils hold for the preview and the final text alike (issue 18).
    safety = context.get("table_safety")
    stream = tablesafety.guarded(broadcast.DeltaStream(session.pk, of_seq), safety)
    provider = registry.get("narrator")
    if provider.name != "offline":
        request = ChatRequest(
            messages=opening_messages(context), tools=[], seed=seed, max_tokens=400, context=context
        )
        # Issue 18: a model that copies out its instructions shows the table none of them.
        guard = leakguard.EchoGuard.of(
            prompt_template("narrator_opening.txt"),
            prompts.DATA_RULE,
            (context.get("personality") or {}).get("system_prompt") or "",
            tablesafety.prompt_text(safety),  # the table-safety section (issue 18)
        )
        guarded = leakguard.GuardedStream(stream, guard)
        # Issue 18: a sentence the campaign's policy holds waits for the GM's review.
        from narrative import moderation

        guarded = moderation.ModeratedStream(guarded, campaign=session.campaign, source="opening")
        try:
            text, _calls = runner.stream_with_retry(provider, request, guarded, who="opening narrator")
            guarded.flush()
            text = tablesafety.enforce(guard.scrub(guarded.withhold(text)), safety)
            guarded.queue(session=session, of_seq=of_seq)
            if text.strip():
                return text.strip(), provider.name, provider.model
        except ProviderError as exc:
            logger.warning("opening for session %s failed (%s); the offline GM writes it", session.pk, exc)
        stream.reset("")
    text = tablesafety.enforce(write_opening(context, random.Random(f"gtw-opening:{seed}")), safety)
    delay = float(getattr(provider, "word_delay_s", 0.0) or 0.0) if provider.name == "offline" else 0.0
    for i, chunk in enumerate(re.findall(r"\S+\s*", text)):
        if i and delay > 0:
            time.sleep(delay)
        stream.push(chunk)
    stream.flush()
    return text, "offline", "procedural-v1"
