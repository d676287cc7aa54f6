"""Reading a turn's context for the offline narrator: a tolerant parse of `request.context`.

Every key may be missing or of the wrong type; the `as_*`/`clean` helpers turn anything into
the type expected (the batch writer and the narrator share them). Pure: no Django.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from narrative.intent import Intent, analyse
from narrative.llm import base
from narrative.llm.offline import phrases as P

TONES = ("grim", "wry", "heroic", "whimsical")

_SENTENCE_END = re.compile(r"[.!?]+[\"']?(?=\s|$)")


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def clean(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def possessive(noun: str) -> str:
    return noun + "'" if noun.endswith("s") else noun + "'s"


def article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def count_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text))


def first_sentences(text: str, limit: int, max_words: int = 40) -> str:
    """The scene description's opening sentences, or "" when even the first one rambles."""
    result = " ".join(re.split(r"(?<=[.!?])\s+", text)[:limit])
    if not result or len(result.split()) > max_words:
        return ""
    return result if result[-1:] in ".!?" else result + "."


@dataclass
class Context:
    action: str = ""
    actor: str = ""
    name: str = "the stranger"
    first: str = "the stranger"
    arch: str = "spacer"
    place: str = "this place"
    biome_kind: str = "void"
    scene_text: str = ""
    desc: str = ""
    world: str = "the void"
    factions: list[str] = field(default_factory=list)
    npcs: list[tuple[str, str]] = field(default_factory=list)
    objective: str = ""
    tone: str = "heroic"
    verbosity: int = 2
    recent: list[str] = field(default_factory=list)
    turn: int = 0
    # From the game engine (narrative.engine): objectives open now, NPCs present, beat, combat.
    objectives: list[tuple[str, str]] = field(default_factory=list)  # (id, text) of active ones
    present: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, agenda)
    beat: str = ""
    in_combat: bool = False
    # A clock that can end the mission stands one step from full (narrative.engine's view):
    # no "the objective looks within reach" while the mission may be lost this turn (issue 13).
    at_risk: bool = False
    # What questions are answered from (narrative.llm.offline.answers): the scene's details,
    # every visible objective, the clocks, what each NPC is and knows, recalled table memories.
    summary: str = ""
    details: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    clocks: list[tuple[str, int, int]] = field(default_factory=list)  # (label, value, size)
    people: dict[str, Person] = field(default_factory=dict)  # by name: the NPCs one may ask
    memories: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # recent actions' texts (was this asked before?)


@dataclass
class Goal:
    """A visible objective: its text, status ("active", "complete", "failed") and what it waits on."""

    id: str
    text: str
    status: str
    blocked_by: list[str] = field(default_factory=list)


@dataclass
class Person:
    """An NPC as the offline GM plays them: who they are, what they want and what they know
    (`knows`: (fact, told only when pressed)). `present`: in the scene now (they can answer)."""

    name: str
    id: str = ""
    role: str = ""
    faction: str = ""  # the faction's display name, "" when unknown
    agenda: str = ""
    voice: str = ""
    knows: list[tuple[str, bool]] = field(default_factory=list)
    present: bool = False


def read_context(raw: Any, messages: Sequence[base.Message]) -> Context:
    c = Context()
    raw = as_dict(raw)
    action = as_dict(raw.get("action"))
    c.action = clean(action.get("text"))
    if not c.action:
        last_user = next((m for m in reversed(messages) if getattr(m, "role", "") == "user"), None)
        text = clean(getattr(last_user, "content", ""))
        # A full prompt is not an action; only a short user message reads as one.
        c.action = text if len(text) <= 200 else ""
    character = as_dict(action.get("character"))
    actor = c.actor = clean(action.get("actor"))
    name = clean(character.get("name")) or (actor[:1].upper() + actor[1:] if actor.islower() else actor)
    if name:
        c.name = name
        parts = name.split()
        if len(parts) > 1 and parts[0].lower().rstrip(".") in P.TITLES:
            c.first = f"{parts[0]} {parts[-1]}"
        else:
            c.first = parts[0]
    c.arch = clean(character.get("archetype")).lower() or c.arch
    scene = as_dict(raw.get("scene"))
    scene_name, biome = clean(scene.get("name")), clean(scene.get("biome"))
    c.desc = clean(scene.get("description"))
    world = as_dict(raw.get("world"))
    c.world = clean(world.get("name")) or c.world
    if scene_name:
        c.place = scene_name
    elif biome:
        c.place = biome if biome.lower().startswith("the ") else f"the {biome}"
    elif clean(world.get("name")):
        c.place = c.world
    c.scene_text = f"{scene_name} {biome} {c.desc}".lower()
    where = f"{biome} {scene_name}".lower()
    hits = (
        k for k, words in P.BIOME_KEYWORDS for w in words if re.search(rf"\b{w}(?:s|es|ed|ing|y)?\b", where)
    )
    c.biome_kind = next(hits, c.biome_kind)
    c.factions = [n for n in (clean(as_dict(f).get("name")) for f in as_list(world.get("factions"))) if n]
    c.npcs = [
        (n, clean(as_dict(x).get("role")))
        for x in as_list(world.get("npcs"))
        if (n := clean(as_dict(x).get("name")))
    ]
    c.objective = clean(raw.get("objective")).rstrip(".")
    personality = as_dict(raw.get("personality"))
    tone = clean(personality.get("tone")).lower()
    c.tone = tone if tone in TONES else c.tone
    c.verbosity = min(3, max(1, as_int(personality.get("verbosity"), 2)))
    c.recent = [t for t in (clean(as_dict(r).get("text")) for r in as_list(raw.get("recent"))) if t]
    c.turn = as_int(raw.get("turn"), 0)
    mission = as_dict(raw.get("mission"))
    c.objectives = [
        (clean(o.get("id")), clean(o.get("text")))
        for o in map(as_dict, as_list(mission.get("objectives")))
        if o.get("status") == "active" and clean(o.get("id"))
    ]
    c.present = [
        (clean(n.get("id")), clean(n.get("name")), clean(n.get("agenda")))
        for n in map(as_dict, as_list(mission.get("npcs")))
        if clean(n.get("id")) and clean(n.get("name"))
    ]
    if c.present:  # the mission's NPCs in this scene are who a player can talk to
        c.npcs = [(name, "") for _, name, _ in c.present] + [
            n for n in c.npcs if n[0] not in {p[1] for p in c.present}
        ]
    c.beat = clean(raw.get("beat"))
    c.in_combat = bool(raw.get("combat"))
    c.at_risk = bool(mission.get("at_risk"))
    _read_lore(c, raw, world, mission)
    return c


def _read_lore(c: Context, raw: dict[str, Any], world: dict[str, Any], mission: dict[str, Any]) -> None:
    """The answerable knowledge: the mission view (objectives, clocks, NPCs present), the lore
    the turn pipeline adds (`lore`: the scene's details, the present NPCs' `knows` and `voice`),
    the pack's world NPCs and factions, and the recalled memories (the table's only: the turn
    pipeline never puts a player's private memory in a narration's context)."""
    c.summary = clean(as_dict(mission.get("mission")).get("summary"))
    c.goals = [
        Goal(
            clean(o.get("id")),
            clean(o.get("text")),
            clean(o.get("status")),
            [clean(b) for b in as_list(o.get("blocked_by")) if clean(b)],
        )
        for o in map(as_dict, as_list(mission.get("objectives")))
        if clean(o.get("id")) and clean(o.get("text"))
    ]
    c.clocks = [
        (clean(k.get("label")), as_int(k.get("value"), 0), as_int(k.get("size"), 0))
        for k in map(as_dict, as_list(mission.get("clocks")))
        if clean(k.get("label")) and as_int(k.get("size"), 0) > 0
    ]
    lore = as_dict(raw.get("lore"))
    c.details = [d for d in (clean(x) for x in as_list(lore.get("details"))) if d]
    factions: dict[str, str] = {}
    for f in map(as_dict, as_list(world.get("factions"))):
        name = clean(f.get("name"))
        for key in (clean(f.get("slug")), name.lower()):
            if key and name:
                factions[key] = name
    known = {clean(n.get("id")): n for n in map(as_dict, as_list(lore.get("npcs"))) if clean(n.get("id"))}
    people: dict[str, Person] = {}
    sources = [(n, False) for n in map(as_dict, as_list(world.get("npcs")))]
    sources += [(n, True) for n in map(as_dict, as_list(mission.get("npcs")))]
    for entry, present in sources:
        name = clean(entry.get("name"))
        if not name:
            continue
        npc_id = clean(entry.get("id"))
        extra = as_dict(known.get(npc_id)) if npc_id else {}
        person = people.get(name) or Person(name)
        person.id = npc_id or person.id
        person.role = clean(entry.get("role")) or person.role
        faction = clean(entry.get("faction"))
        person.faction = factions.get(faction) or factions.get(faction.lower()) or person.faction
        person.agenda = clean(entry.get("agenda")) or person.agenda
        person.voice = clean(extra.get("voice")) or person.voice
        facts = [
            (clean(k.get("text")), bool(k.get("pressed")))
            for k in map(as_dict, as_list(extra.get("knows")))
            if clean(k.get("text"))
        ]
        person.knows = facts or person.knows
        person.present = person.present or present
        people[name] = person
    c.people = people
    c.memories = [m for m in (clean(x) for x in as_list(raw.get("memories"))) if m]
    c.asked = [
        t
        for r in map(as_dict, as_list(raw.get("recent")))
        if r.get("type") == "Action" and (t := clean(r.get("text")))
    ]


def read_intent(c: Context) -> Intent:
    """The action read by the game's rule (narrative.intent), the same reading a stage uses."""
    return analyse(c.action, name=c.name, actor=c.actor, npcs=c.npcs)
