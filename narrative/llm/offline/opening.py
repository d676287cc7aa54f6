"""The offline GM's opening narration for a session or a newly started mission. Pure, no Django.

`narrative.opening` builds the context (mission title and summary, the scene and its
description, the open objective, the party, the NPCs in the scene, the personality) and, when the
narrator is the offline one, asks `write_opening` for the text; a real model gets
prompts/narrator_opening.txt instead. The text is a pure function of the context and the seeded
RNG, so a retried job writes the same opening. Every name comes from the context; a missing
piece is left out rather than invented.
"""

from __future__ import annotations

import random
from typing import Any

from narrative.llm.offline import phrases as P
from narrative.llm.offline.context import TONES, article, as_dict, as_list, clean, first_sentences

HEADS: dict[str, tuple[str, ...]] = {
    "grim": (
        "{mission} begins the way bad jobs always do: quietly.",
        "Nobody chose {mission}. It chose them.",
        "{mission}. The odds were never good, and they are not getting better.",
    ),
    "wry": (
        "So. {mission}. What could possibly go wrong?",
        "{mission}: the brief was short, which is never a good sign.",
        "Welcome to {mission}, where the coffee is cold and the stakes are not.",
    ),
    "heroic": (
        "{mission} begins — and somewhere out there, the galaxy is holding its breath.",
        "This is {mission}, and it starts now.",
        "The stars turn, and {mission} begins.",
    ),
    "whimsical": (
        "Once upon a hyperlane, {mission} began.",
        "The cosmos hiccups politely, and {mission} is underway.",
        "{mission} begins, with a wink from the nearest nebula.",
    ),
}
NO_MISSION_HEADS: dict[str, tuple[str, ...]] = {
    "grim": ("Another session begins. The void has not forgotten you.",),
    "wry": ("Another session, another chance to make questionable decisions.",),
    "heroic": ("A new session begins, and the story picks up where courage left it.",),
    "whimsical": ("A new session tumbles out of the starlight.",),
}
PLACE_LINES = ("The scene opens in {place}.", "You are in {place}.", "It starts in {place}.")
PARTY_LINES = (
    "{party} {are} here.",
    "{party} {are} here, and ready.",
    "Present: {party}.",
)
NPC_LINES = ("{npcs} {are} here too.", "Not alone: {npcs} {are} close by.")
OBJECTIVE_LINES: dict[str, tuple[str, ...]] = {
    "grim": (
        "The job: {objective}. Nobody said it would be clean.",
        "The job is simple to say: {objective}.",
    ),
    "wry": ("The job, officially: {objective}. Unofficially, survive it.", "On the list: {objective}."),
    "heroic": ("Your task: {objective}.", "The task before you: {objective}."),
    "whimsical": ("Today's little errand: {objective}.", "The task, should you fancy it: {objective}."),
}
CLOSERS: dict[str, tuple[str, ...]] = {
    "grim": ("What do you do?", "Choose carefully. What do you do?"),
    "wry": ("Well? What do you do?", "Your move. What do you do?"),
    "heroic": ("What do you do?", "The first move is yours. What do you do?"),
    "whimsical": ("What do you do?", "Go on, then — what do you do?"),
}


# Verbs an objective commonly opens with, beside the narrator's own verb list.
TASK_VERBS = frozenset(
    [
        "get",
        "board",
        "bring",
        "deliver",
        "defend",
        "destroy",
        "escape",
        "find",
        "free",
        "keep",
        "learn",
        "make",
        "protect",
        "reach",
        "recover",
        "rescue",
        "restore",
        "retrieve",
        "return",
        "save",
        "secure",
        "stop",
        "survive",
        "take",
        "warn",
        "win",
    ]
)


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _party(raw: Any) -> list[str]:
    people = []
    for member in as_list(raw):
        m = as_dict(member)
        name = clean(m.get("name"))
        if not name:
            continue
        role = clean(m.get("archetype")).lower()
        people.append(f"{name} ({role})" if role and role not in name.lower() else name)
    return people[:6]


def _npcs(raw: Any) -> list[str]:
    out = []
    for npc in as_list(raw):
        n = as_dict(npc)
        name = clean(n.get("name"))
        if not name:
            continue
        role = clean(n.get("role")).rstrip(".")
        role = role[:1].lower() + role[1:]
        if role and role.split()[0] not in ("a", "an", "the", "his", "her", "their"):
            role = article(role)
        out.append(f"{name} ({role})" if role and len(role.split()) <= 6 else name)
    return out[:3]


def _task(text: str) -> str:
    """An objective as the tail of a sentence: "Get aboard the relay" → "get aboard the relay"
    (a verb leads it), "Vesper Relay must not fall" stays as it is."""
    text = clean(text).rstrip(".")
    first = text.split(" ", 1)[0] if text else ""
    if first[1:2].islower() and (first.lower() in P.VERB_BASE or first.lower() in TASK_VERBS):
        return text[:1].lower() + text[1:]
    return text


def write_opening(context: dict[str, Any], rng: random.Random) -> str:
    """The opening: the mission (or a new session), the scene and what it looks like, who is
    present, the open objective, and the question every turn ends on — in the GM's tone."""
    raw = as_dict(context)
    tone = clean(as_dict(raw.get("personality")).get("tone")).lower()
    tone = tone if tone in TONES else "heroic"
    mission = as_dict(raw.get("mission"))
    title = clean(mission.get("title"))
    scene = as_dict(raw.get("scene"))
    place = clean(scene.get("name")) or clean(scene.get("title"))
    parts = [rng.choice(HEADS[tone]).format(mission=title) if title else rng.choice(NO_MISSION_HEADS[tone])]
    summary = first_sentences(clean(mission.get("summary")), 1, max_words=30)
    if summary:
        parts.append(summary)
    if place:
        parts.append(rng.choice(PLACE_LINES).format(place=place))
    description = first_sentences(clean(scene.get("description")), 2, max_words=45)
    if description:
        parts.append(description)
    party = _party(raw.get("party"))
    if party:
        line = rng.choice(PARTY_LINES)
        parts.append(line.format(party=_join(party), are="is" if len(party) == 1 else "are"))
    npcs = _npcs(raw.get("npcs"))
    if npcs:
        parts.append(rng.choice(NPC_LINES).format(npcs=_join(npcs), are="is" if len(npcs) == 1 else "are"))
    objective = _task(raw.get("objective"))
    if objective:
        parts.append(rng.choice(OBJECTIVE_LINES[tone]).format(objective=objective))
    parts.append(rng.choice(CLOSERS[tone]))
    return " ".join(p for p in parts if p)
