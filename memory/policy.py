"""What gets remembered, and by whom — pure, no Django.

Takes committed events (value objects) and returns memory drafts. Each draft lands in exactly
one namespace: `campaign:<id>` for what the table shares, `player:<user id>` for what only one
player's character saw or was told. Anything with an audience (a whisper, a private
discovery) is written once per recipient into their own namespace, never into the campaign's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_CHUNK_CHARS = 600
CRITICAL = ("critical_success", "critical_failure")


@dataclass(frozen=True)
class EventView:
    seq: int
    type: str
    actor_id: int | None
    payload: Mapping[str, Any]
    audience: tuple[int, ...] | None = None  # None: everyone at the table


@dataclass(frozen=True)
class Draft:
    namespace: str
    type: str
    text: str
    importance: float
    source_seq: int
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


def namespaces_for(campaign_id: int, audience: Iterable[int] | None) -> list[str]:
    if audience is None:
        return [f"campaign:{campaign_id}"]
    return [f"player:{uid}" for uid in sorted(set(audience))]


def chunk(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Split prose at sentence ends into pieces of at most `limit` characters (a sentence
    longer than that is cut at a space)."""
    sentences = re.split(r"(?<=[.!?…])\s+", text.strip())
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def decide(campaign_id: int, events: Iterable[EventView], names: Mapping[int, str]) -> list[Draft]:
    """Memory drafts for a batch of committed events. `names` maps user id → character or
    player name, so memories read like the story ("Kira hacked…"), not like ids."""
    drafts: list[Draft] = []
    for event in events:
        who = names.get(event.actor_id or -1, "Someone")
        spaces = namespaces_for(campaign_id, event.audience)
        payload = event.payload
        if event.type == "Action" and payload.get("text"):
            text = f"{payload.get('character') or who} acted: {payload['text']}"
            drafts += _each(spaces, "episodic", text, 0.4, event, ("action",))
        elif event.type == "Narration" and payload.get("text"):
            for piece in chunk(payload["text"]):
                drafts += _each(spaces, "episodic", piece, 0.5, event, ("narration",))
        elif event.type == "DiceRolled" and payload.get("kind") == "check":
            outcome = payload.get("outcome", "")
            if outcome in CRITICAL or (outcome == "success" and payload.get("dc", 0) >= 18):
                character = payload.get("character") or who
                text = (
                    f"{character} got a {outcome.replace('_', ' ')} on a {payload.get('skill')} check "
                    f"(rolled {payload.get('total')} against DC {payload.get('dc')})."
                )
                drafts += _each(spaces, "episodic", text, 0.6, event, ("dice", outcome))
        elif event.type == "Whisper" and payload.get("text"):
            text = f"{payload.get('from_name') or who} whispered: {payload['text']}"
            drafts += _each(spaces, "episodic", text, 0.8, event, ("whisper",))
        elif event.type == "SessionOpened" and payload.get("scene"):
            scene = payload["scene"]
            text = f"Scene: {scene.get('name')}. {scene.get('description', '')}".strip()
            drafts += _each(spaces, "semantic", text, 0.5, event, ("scene", "location"))
        elif event.type == "ObjectiveSet" and payload.get("objective"):
            drafts += _each(
                spaces, "semantic", f"Objective: {payload['objective']}", 0.7, event, ("objective",)
            )
        elif event.type in _GAME_EVENTS and (text := _game_text(event.type, payload)):
            importance, tags = _GAME_EVENTS[event.type]
            drafts += _each(spaces, "episodic", text, importance, event, tags)
    return drafts


def withdrawn_by(events: Iterable[EventView]) -> list[int]:
    """The seqs of the narrations these events withdrew (the X-card, issue 18): what was
    remembered of them is forgotten, and they are never remembered again."""
    return [
        seq
        for event in events
        if event.type == "XCardTapped" and type(seq := event.payload.get("narration_seq")) is int
    ]


# The game engine's events worth remembering: (importance, tags).
_GAME_EVENTS = {
    "NpcSpoke": (0.6, ("npc", "dialogue")),
    "CardDrawn": (0.7, ("twist", "card")),
    "TwistTriggered": (0.7, ("twist",)),
    "ObjectiveCompleted": (0.7, ("objective", "progress")),
    "ObjectiveRevealed": (0.6, ("objective",)),
    "SceneChanged": (0.5, ("scene", "location")),
    "MissionCompleted": (0.9, ("mission",)),
    "MissionFailed": (0.9, ("mission",)),
    "RewardGranted": (0.5, ("reward", "loot")),
    # The living world (issue 19): research the table completed, and the world's moves in the
    # game's words. The simulation's engine room (Simulation*) is GM-only: its empty audience
    # gives it no namespace, so it never reaches anyone's memory.
    "ResearchCompleted": (0.6, ("research", "progress")),
    "WorldChanged": (0.5, ("world",)),
}


def _game_text(kind: str, payload: Mapping) -> str:
    if kind == "NpcSpoke" and payload.get("line"):
        return f"{payload.get('name') or payload.get('npc')} said: \u201c{payload['line']}\u201d"
    if kind == "CardDrawn" and payload.get("text"):
        return f"Twist — {payload.get('title')}: {payload['text']}"
    if kind == "TwistTriggered" and payload.get("text"):
        return f"Twist: {payload['text']}"
    if kind == "ObjectiveCompleted" and payload.get("text"):
        return f"Objective complete: {payload['text']}"
    if kind == "ObjectiveRevealed" and payload.get("text"):
        return f"New objective: {payload['text']}"
    if kind == "SceneChanged" and payload.get("title"):
        description = (payload.get("scene_info") or {}).get("description", "")
        return f"Scene: {payload['title']}. {description}".strip()
    if kind == "MissionCompleted":
        return "The mission was completed."
    if kind == "MissionFailed":
        return f"The mission failed: {payload.get('text', '')}".strip()
    if kind == "ResearchCompleted" and payload.get("name"):
        who = payload.get("owner_label") or "The party"
        return f"{who} completed research: {payload['name']}."
    if kind == "WorldChanged" and isinstance(payload.get("lines"), list):
        lines = [line for line in payload["lines"] if isinstance(line, str) and line]
        return f"News from the wider galaxy: {' '.join(lines)}"[:MAX_CHUNK_CHARS] if lines else ""
    if kind == "RewardGranted" and payload.get("items"):
        items = ", ".join(f"{i['item']} x{i['qty']}" for i in payload["items"])
        holder = (payload.get("holder") or {}).get("name") or "the party"
        return f"{holder} received {items}."
    return ""


def _each(spaces, kind, text, importance, event: EventView, tags) -> list[Draft]:
    return [
        Draft(
            namespace=ns,
            type=kind,
            text=text,
            importance=importance,
            source_seq=event.seq,
            tags=tags,
            metadata={"event_type": event.type},
        )
        for ns in spaces
    ]
