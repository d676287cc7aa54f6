"""Session summaries, written by narrative: every `GTW_MEMORY["summary_every"]` narrations, the
summarizer role (offline: narrative.llm.offline.summary) condenses the public play since the last
summary — one tagged line per event (`play_line`), the engine's changes included; memory stores
it (`memory.services.summary_store`) and the play page shows the newest as its "Previously…" line
(`memory.summaries.latest_recap`). Only public events are summarised (no audience, in the query):
a summary must never carry one player's private knowledge to the table."""

from __future__ import annotations

from django.conf import settings

from campaigns.models import Event, PlaySession
from gtw_site import jobs, telemetry
from memory import services as memory_services
from memory import summaries as memory_summaries
from memory.models import Memory
from narrative import prompts
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message

MIN_EVENTS = 3  # actions and narrations since the last summary
SYSTEM = (
    "Summarise this stretch of a role-playing session for the table's notes. Each line of the play "
    "is one event, tagged: [action] a player character's action in the player's own words, [gm] the "
    "game master's narration, [check] a dice check and its outcome, [objective done|new|failed], "
    "[clock] a countdown's value, [loot], [level], [npc] an NPC who spoke, [scene], [twist], "
    "[status], [mission done|failed]. Write in the third person and the past tense: who did what "
    "(condense each character's actions, never quote them), then what changed (objectives, clocks, "
    "loot, NPCs met, where the party is). Never repeat a line, never write 'I'. Dense, factual, at "
    "most 120 words, no flourishes. " + prompts.DATA_RULE
)
# The public events a summary reads: the play and what the engine changed. Anything with an
# audience (whispers, asides, the GM-only engine room) is excluded in the query.
SUMMARY_TYPES = (
    "SessionOpened",
    "MissionStarted",
    "Action",
    "Narration",
    "Opening",
    "DiceRolled",
    "ObjectiveCompleted",
    "ObjectiveRevealed",
    "ObjectiveFailed",
    "ClockTicked",
    "RewardGranted",
    "NpcSpoke",
    "SceneChanged",
    "TwistTriggered",
    "CardDrawn",
    "StatusApplied",
    "MissionCompleted",
    "MissionFailed",
)


def _who(event: Event) -> str:
    return event.payload.get("character") or (event.actor.username if event.actor else "Someone")


def _items(items) -> str:
    return ", ".join(f"{i.get('item')} \u00d7{i.get('qty', 1)}" for i in items or [] if isinstance(i, dict))


def play_line(event: Event) -> str:
    """One public event as a tagged line (narrative.llm.offline.summary.LINE_TAGS), or ""."""
    p = event.payload or {}
    kind = event.type
    if kind == "Action":
        return f"[action] {_who(event)}: {p.get('text', '')}" if p.get("text") else ""
    if kind in ("Narration", "Opening"):
        return f"[gm] {p.get('text', '')}" if p.get("text") else ""
    if kind == "DiceRolled" and p.get("kind") == "check":
        outcome = str(p.get("outcome", "")).replace("_", " ")
        return f"[check] {p.get('character') or _who(event)}: {p.get('skill', 'check')} \u2014 {outcome}"
    if kind in ("ObjectiveCompleted", "ObjectiveRevealed", "ObjectiveFailed") and p.get("text"):
        tag = {"ObjectiveCompleted": "done", "ObjectiveRevealed": "new", "ObjectiveFailed": "failed"}[kind]
        return f"[objective {tag}] {p['text']}"
    if kind == "ClockTicked" and p.get("label"):
        return f"[clock] {p['label']}: {p.get('value')}/{p.get('size')}"
    if kind == "RewardGranted":
        lines = []
        if p.get("items"):
            holder = (p.get("holder") or {}).get("name") or "The party"
            lines.append(f"[loot] {holder}: {_items(p['items'])}")
        lines += [
            f"[level] {m.get('name')} reached level {m.get('level')}"
            for m in p.get("party") or []
            if isinstance(m, dict) and m.get("levels_gained")
        ]
        return "\n".join(lines)
    if kind == "NpcSpoke" and p.get("line"):
        return f"[npc] {p.get('name') or p.get('npc')}: {p['line']}"
    if kind == "SceneChanged" and p.get("title"):
        return f"[scene] {p['title']}"
    if kind in ("SessionOpened", "MissionStarted") and isinstance(p.get("scene"), dict):
        return f"[scene] {p['scene'].get('name')}" if p["scene"].get("name") else ""
    if kind in ("TwistTriggered", "CardDrawn") and p.get("text"):
        return f"[twist] {p['text']}"
    if kind == "StatusApplied" and p.get("label"):
        return f"[status] {p.get('character', 'Someone')} was left {str(p['label']).lower()}"
    if kind == "MissionCompleted":
        return f"[mission done] {p.get('text', '')}".strip()
    if kind == "MissionFailed":
        return f"[mission failed] {p.get('text', '')}".strip()
    return ""


def summarize_session(session_id: int) -> Memory | None:
    """Summarise the session's public play since its last summary; None when fewer than
    MIN_EVENTS actions and narrations are new or the summarizer says nothing."""
    session = PlaySession.objects.select_related("campaign").get(pk=session_id)
    upto = memory_summaries.summarized_upto(session)
    events = list(
        Event.objects.filter(session=session, seq__gt=upto, type__in=SUMMARY_TYPES, audience__isnull=True)
        .exclude(seq__in=(session.state or {}).get("withdrawn") or [])  # the X-card's (issue 18)
        .select_related("actor")
        .order_by("seq")
    )
    if sum(e.type in ("Action", "Narration") for e in events) < MIN_EVENTS:
        return None
    lines = [line for e in events if (line := play_line(e))]
    request = ChatRequest(
        messages=[
            Message(role="system", content=SYSTEM),
            # Players' actions are their own words: data, never instructions.
            Message(role="user", content=prompts.data_block("play", "\n".join(lines))),
        ],
        max_tokens=300,
        temperature=0.2,
        seed=events[-1].seq,
    )
    # A job runs outside any turn: the scope names the campaign, so its runtime provider choice
    # (issue 17) picks the summarizer, and the call's row and prompt count in the session's cost.
    with telemetry.scope(campaign_id=session.campaign_id, session_id=session.pk):
        text = registry.get("summarizer").complete(request).strip()
    if not text:
        return None
    return memory_services.summary_store(
        session=session, text=text, after_seq=upto, first_seq=events[0].seq, last_seq=events[-1].seq
    )


def on_memories_recorded(sender, *, session, events, **kwargs) -> None:
    """memory.signals.memories_recorded: after every `summary_every`-th narration, queue a
    summary on the memory cluster (its sources, the memories just recorded, exist by now)."""
    if not any(e.type == "Narration" for e in events):
        return
    narrations = (session.state.get("counts") or {}).get("Narration", 0)
    every = settings.GTW_MEMORY["summary_every"]
    if every and narrations and narrations % every == 0:
        jobs.enqueue(
            "narrative.tasks.summarize_session", session.pk, group="memory", cluster=settings.MEMORY_CLUSTER
        )
