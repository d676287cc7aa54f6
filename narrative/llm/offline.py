"""A procedural narrator that needs no network and no model weights.

It implements the ChatProvider protocol so a campaign can run end to end offline (and so
tests have a deterministic narrator). It writes from `request.context`, which the turn
pipeline fills with the action, scene, world, objective and personality; every key may be
missing. Output is a pure function of the request: the RNG is seeded from
`request.seed` and the turn number, so replaying a turn replays its prose byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import string
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from gtw_site.providers import Usage
from narrative import prompts
from narrative.intent import Intent, analyse, check_arguments, fit
from narrative.llm import base
from narrative.llm import offline_phrases as P

TONES = ("grim", "wry", "heroic", "whimsical")
CHECK_TOOL = "rules_skill_check"
ROLL_TOOL = "rng_roll"
_AMBIENT = ("sound", "sight", "sight2", "air")
_BUDGET = {1: (2, 3), 2: (3, 5), 3: (5, 7)}
_SENTENCE_END = re.compile(r"[.!?]+[\"']?(?=\s|$)")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*")


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _i(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _possessive(noun: str) -> str:
    return noun + "'" if noun.endswith("s") else noun + "'s"


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _count_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text))


def _first_sentences(text: str, limit: int, max_words: int = 40) -> str:
    """The scene description's opening sentences, or "" when even the first one rambles."""
    result = " ".join(re.split(r"(?<=[.!?])\s+", text)[:limit])
    if not result or len(result.split()) > max_words:
        return ""
    return result if result[-1:] in ".!?" else result + "."


@dataclass
class _Ctx:
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


def _read_context(raw: Any, messages: Sequence[base.Message]) -> _Ctx:
    c = _Ctx()
    raw = _d(raw)
    action = _d(raw.get("action"))
    c.action = _s(action.get("text"))
    if not c.action:
        last_user = next((m for m in reversed(messages) if getattr(m, "role", "") == "user"), None)
        text = _s(getattr(last_user, "content", ""))
        # A full prompt is not an action; only a short user message reads as one.
        c.action = text if len(text) <= 200 else ""
    character = _d(action.get("character"))
    actor = c.actor = _s(action.get("actor"))
    name = _s(character.get("name")) or (actor[:1].upper() + actor[1:] if actor.islower() else actor)
    if name:
        c.name = name
        parts = name.split()
        if len(parts) > 1 and parts[0].lower().rstrip(".") in P.TITLES:
            c.first = f"{parts[0]} {parts[-1]}"
        else:
            c.first = parts[0]
    c.arch = _s(character.get("archetype")).lower() or c.arch
    scene = _d(raw.get("scene"))
    scene_name, biome = _s(scene.get("name")), _s(scene.get("biome"))
    c.desc = _s(scene.get("description"))
    world = _d(raw.get("world"))
    c.world = _s(world.get("name")) or c.world
    if scene_name:
        c.place = scene_name
    elif biome:
        c.place = biome if biome.lower().startswith("the ") else f"the {biome}"
    elif _s(world.get("name")):
        c.place = c.world
    c.scene_text = f"{scene_name} {biome} {c.desc}".lower()
    where = f"{biome} {scene_name}".lower()
    hits = (
        k for k, words in P.BIOME_KEYWORDS for w in words if re.search(rf"\b{w}(?:s|es|ed|ing|y)?\b", where)
    )
    c.biome_kind = next(hits, c.biome_kind)
    c.factions = [n for n in (_s(_d(f).get("name")) for f in _l(world.get("factions"))) if n]
    c.npcs = [(n, _s(_d(x).get("role"))) for x in _l(world.get("npcs")) if (n := _s(_d(x).get("name")))]
    c.objective = _s(raw.get("objective")).rstrip(".")
    personality = _d(raw.get("personality"))
    tone = _s(personality.get("tone")).lower()
    c.tone = tone if tone in TONES else c.tone
    c.verbosity = min(3, max(1, _i(personality.get("verbosity"), 2)))
    c.recent = [t for t in (_s(_d(r).get("text")) for r in _l(raw.get("recent"))) if t]
    c.turn = _i(raw.get("turn"), 0)
    mission = _d(raw.get("mission"))
    c.objectives = [
        (_s(o.get("id")), _s(o.get("text")))
        for o in map(_d, _l(mission.get("objectives")))
        if o.get("status") == "active" and _s(o.get("id"))
    ]
    c.present = [
        (_s(n.get("id")), _s(n.get("name")), _s(n.get("agenda")))
        for n in map(_d, _l(mission.get("npcs")))
        if _s(n.get("id")) and _s(n.get("name"))
    ]
    if c.present:  # the mission's NPCs in this scene are who a player can talk to
        c.npcs = [(name, "") for _, name, _ in c.present] + [
            n for n in c.npcs if n[0] not in {p[1] for p in c.present}
        ]
    c.beat = _s(raw.get("beat"))
    c.in_combat = bool(raw.get("combat"))
    return c


def _analyse(c: _Ctx) -> Intent:
    """The action read by the game's rule (narrative.intent), the same reading a stage uses."""
    return analyse(c.action, name=c.name, actor=c.actor, npcs=c.npcs)


class _Writer:
    """Renders templates with varied fills, never reusing a template within a reply or a recent sentence."""

    def __init__(self, rng: random.Random, c: _Ctx, slots: dict[str, str]):
        self.rng, self.c, self.slots = rng, c, slots
        self.ambience = P.AMBIENCE.get(c.biome_kind, P.AMBIENCE["void"])
        self.used: list[str] = []
        # `.` never crossed a newline in the frame regex this replaces: match line by line.
        self.recent_lines = [line.lower() for old in c.recent for line in old.split("\n")]

    @staticmethod
    @functools.cache
    def _fields(template: str) -> tuple[str, ...]:
        # Ordered, never a set: set order of strings varies per process and would reorder the RNG draws.
        return tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f))

    def _render(self, template: str) -> str:
        values: dict[str, str] = {}
        for name in self._fields(template):
            if name in _AMBIENT:
                pool = self.ambience["sight" if name == "sight2" else name]
                fresh = [p for p in pool if p not in self.used and p not in values.values()]
                values[name] = self.rng.choice(fresh or list(pool))
                self.used.append(values[name])
            else:
                values[name] = self.slots[name]
        text = template.format(**values)
        return text[:1].upper() + text[1:]

    @staticmethod
    @functools.cache
    def _frame(template: str) -> tuple[str, ...]:
        """The template's fixed text between its slots, lower-cased (see `_reuses`)."""
        return tuple(p.lower() for p in re.split(r"\{[a-z_0-9]+\}", template))

    def _reuses(self, template: str) -> bool:
        """Whether a recent line is a filling of this template (even with new names in it): its
        fixed parts in order on one line, each slot holding at least one character. The same
        test as the regex `part.+?part.+?part` (case-insensitive), as plain `str.find`s: that
        regex over every recent line was most of the narrator's time to its first word."""
        parts = self._frame(template)
        for line in self.recent_lines:
            pos = 0
            for part in parts:
                found = line.find(part, pos)
                if found < 0:
                    break
                pos = found + len(part) + 1  # the next part starts after a non-empty slot
            else:
                return True
        return False

    def pick(self, templates: Sequence[str]) -> str:
        usable = [
            t
            for t in templates
            if t not in self.used and all(f in _AMBIENT or self.slots.get(f) for f in self._fields(t))
        ]
        fallback = ""
        for template in self.rng.sample(usable, len(usable)):
            text = self._render(template)
            fallback = fallback or text
            if not self._reuses(template):
                self.used.append(template)
                return text
        return fallback


def _mid(noun: str) -> str:
    """Lower a leading "The" so a name reads right mid-sentence; sentence starts are re-capitalised."""
    return re.sub(r"^The\b", "the", noun)


def _slots(c: _Ctx, intent: Intent, rng: random.Random) -> dict[str, str]:
    npc = intent.npc or (rng.choice(c.npcs) if c.npcs else None)
    npc_name = _mid(npc[0]) if npc else ""
    faction = rng.choice(c.factions) if c.factions else ""
    faction_bare = re.sub(r"^the\s+", "", faction, flags=re.I)
    has_article = faction_bare != faction or (faction and faction.split()[-1].lower() in P.ORG_WORDS)
    head = c.objective.split()[0].lower() if c.objective else ""
    objective = c.objective[:1].lower() + c.objective[1:] if head in P.OBJECTIVE_HEADS else c.objective
    listener = _mid(intent.npc[0]) if intent.npc else intent.target
    return {
        "name": c.name,
        "first": c.first,
        "first_pos": _possessive(c.first),
        "arch": c.arch,
        "a_arch": _article(c.arch),
        "place": _mid(c.place),
        "world": _mid(c.world),
        "task": intent.task or "",
        "target": intent.target,
        "listener": listener,
        "listener_pos": _possessive(listener),
        "npc": npc_name,
        "npc_first": npc_name.split()[0] if npc else "",
        "npc_role_a": (_article(npc[1].lower()) if npc[1] else "a local") if npc else "",
        "faction": f"the {faction_bare}" if has_article else faction,
        "faction_bare": faction_bare,
        "objective": objective,
        "objective_lc": objective if head in P.OBJECTIVE_HEADS else "",
    }


def _compose(
    w: _Writer, c: _Ctx, parts: dict[str, str], required: Sequence[str], layout: Sequence[str]
) -> str:
    """Fit the required beats and what optional ones the verbosity budget allows, in reading order.

    Which optional beats make it in is seeded, so two turns of the same kind differ in shape
    as well as wording; verbosity 1 never spends its few sentences on scenery.
    """
    low, high = _BUDGET[c.verbosity]
    target = w.rng.randint(low, high)
    chosen = [k for k in required if parts.get(k)]
    total = sum(_count_sentences(parts[k]) for k in chosen)
    optional = [k for k in layout if k not in required and parts.get(k)]
    if c.verbosity == 1:
        optional = [k for k in optional if k in ("flourish", "margin", "closer")]
    first = [k for k in optional if k in ("flourish", "reply")]
    rest = [k for k in optional if k not in first]
    for key in first + w.rng.sample(rest, len(rest)):
        n = _count_sentences(parts[key])
        if total + n <= target:
            chosen.append(key)
            total += n
    for i in range(3):
        if total >= low:
            break
        extra = w.pick(P.DETAIL[("any", "act")]) or w.pick(P.PROMPTS)
        if not extra:
            break
        parts[f"extra{i}"], total = extra, total + _count_sentences(extra)
        chosen.append(f"extra{i}")
    # Filler beats go right after the required ones, before any closing line or prompt.
    cut = max(layout.index(k) for k in required) + 1
    ordered = [parts[k] for k in (*layout[:cut], "extra0", "extra1", "extra2", *layout[cut:]) if k in chosen]
    if c.verbosity == 3 and len(ordered) > 3:
        mid = (len(ordered) + 1) // 2
        return " ".join(ordered[:mid]) + "\n\n" + " ".join(ordered[mid:])
    return " ".join(ordered)


def _naming(templates: Sequence[str]) -> list[str]:
    return [t for t in templates if "{name}" in t or "{first" in t]


def _names(c: _Ctx, text: str) -> bool:
    return c.first.lower() in text.lower()


def _narrate_outcome(w: _Writer, c: _Ctx, intent: Intent, outcome: str, margin: int | None) -> str:
    polarity = "good" if outcome in ("critical_success", "success") else "bad"
    category = intent.category if intent.category in P.FALLBACK_TARGET else "wits"
    # Some of the punchiest lines don't name anyone; then the next beat must.
    core = w.pick(P.CORE[outcome])
    details = P.DETAIL[(category, polarity)]
    detail = w.pick(_naming(details) or details) if not _names(c, core) else w.pick(details)
    if not _names(c, core + detail):
        core = w.pick(_naming(P.CORE[outcome]))
    parts = {
        "opener": w.pick(P.OPENERS[c.tone]),
        "core": core,
        "detail": detail,
        "flourish": w.pick(P.CRIT_FLOURISH.get(outcome, ())),
        "hook": w.pick(P.HOOKS[polarity]),
        "objective": w.pick(P.OBJECTIVE[polarity]) if c.objective else "",
        "closer": w.pick(P.CLOSERS[(c.tone, polarity)]),
        "prompt": w.pick(P.PROMPTS) if c.verbosity == 3 else "",
    }
    if margin is not None and outcome in ("success", "failure"):
        good = polarity == "good"
        close = 0 <= margin <= 1 if good else -2 <= margin < 0
        wide = margin >= 8 if good else margin <= -8
        if close or wide:
            bucket = ("narrow_" if close else "wide_") + ("win" if good else "loss")
            parts["margin"] = w.pick(P.MARGIN[bucket])
    layout = ("opener", "core", "margin", "detail", "flourish", "hook", "objective", "closer", "prompt")
    return _compose(w, c, parts, ("core", "detail"), layout)


def _narrate_plain(w: _Writer, c: _Ctx, intent: Intent, kind: str) -> str:
    s = w.slots
    core_key = "talk" if kind == "talk" and s["npc"] else ("talk_alone" if kind == "talk" else kind)
    cores = P.CORE.get(core_key, P.CORE["act"])
    # An act reads best when it restates what the player did, so prefer templates that can.
    with_task = [t for t in cores if "{task}" in t] if s["task"] and w.rng.random() < 0.7 else []
    parts = {"core": w.pick(with_task) or w.pick(cores) or w.pick(P.CORE["observe"])}
    desc = _first_sentences(c.desc, c.verbosity)
    if kind == "talk":
        # Verbosity 1 has room for the line itself but not a stage direction after it.
        frames = P.REPLY_FRAMES[2:] if not s["npc"] else P.REPLY_FRAMES[: 1 if c.verbosity == 1 else 2]
        parts["reply"] = w.rng.choice(frames).format(reply=w.pick(P.NPC_REPLIES[c.tone]))
    elif kind == "observe" and desc and not any(desc in old for old in c.recent):
        parts["detail"] = desc
    elif kind == "attempt":
        parts["detail"] = w.pick(P.DETAIL[("any", "attempt")])
    if not parts.get("detail"):
        parts["detail"] = w.pick(P.DETAIL[("any", "act")])
    parts |= {
        "opener": w.pick(P.OPENERS[c.tone]),
        "hook": w.pick(P.HOOKS["neutral"]),
        "objective": w.pick(P.OBJECTIVE["neutral"]) if c.objective else "",
        "closer": w.pick(P.CLOSERS[(c.tone, "neutral")]),
        "prompt": w.pick(P.PROMPTS),
    }
    required = ("core", "reply") if kind == "talk" else ("core", "detail")
    layout = ("opener", "core", "reply", "detail", "hook", "objective", "closer", "prompt")
    return _compose(w, c, parts, required, layout)


def _narrate_loot(w: _Writer, c: _Ctx, data: dict[str, Any]) -> str:
    total = _i(data.get("total"), 0)
    m = re.match(r"\s*([0-9]{0,6})\s*d\s*([0-9]{1,6})", _s(data.get("expression")))
    count, sides = (int(m.group(1) or 1), int(m.group(2))) if m else (2, 6)
    ratio = (total - count) / max(1, count * sides - count)
    tier = "poor" if ratio < 0.3 else ("great" if ratio >= 0.75 else "decent")
    w.slots["loot"] = w.rng.choice(P.LOOT[tier])
    polarity = {"poor": "bad", "decent": "neutral", "great": "good"}[tier]
    parts = {
        "opener": w.pick(P.OPENERS[c.tone]),
        "core": w.pick(P.LOOT_LINES[tier]),
        "closer": w.pick(P.CLOSERS[(c.tone, polarity)]),
        "prompt": w.pick(P.PROMPTS),
    }
    return _compose(w, c, parts, ("core",), ("opener", "core", "closer", "prompt"))


def _tool_result(messages: Sequence[base.Message]) -> tuple[str, dict[str, Any]] | None:
    last_user = max((i for i, m in enumerate(messages) if getattr(m, "role", "") == "user"), default=-1)
    results = [m for m in messages[last_user + 1 :] if getattr(m, "role", "") == "tool"]
    if not results:
        return None
    try:
        data = json.loads(results[-1].content)
    except (TypeError, ValueError):
        data = None
    return (results[-1].name or "", data if isinstance(data, dict) else {"error": "unreadable tool result"})


def _outcome(data: dict[str, Any]) -> tuple[str | None, int | None]:
    outcome = data.get("outcome")
    total, dc = data.get("total"), data.get("dc")
    margin = total - dc if isinstance(total, int) and isinstance(dc, int) else None
    if outcome not in P.OUTCOMES and margin is not None and "error" not in data:
        outcome = "success" if margin >= 0 else "failure"
    return (outcome if outcome in P.OUTCOMES and "error" not in data else None), margin


def _choose_tool(intent: Intent, tools: dict[str, base.ToolSpec], rng: random.Random) -> str | None:
    if intent.kind == "loot" and ROLL_TOOL in tools:
        # Scavenging is a luck roll most of the time, a wits check otherwise.
        return ROLL_TOOL if CHECK_TOOL not in tools or rng.random() < 0.75 else CHECK_TOOL
    return CHECK_TOOL if intent.kind in ("check", "loot") and CHECK_TOOL in tools else None


ADVANCE_TOOL = "mission_advance"
NPC_TOOL = "npc_speak"
DRAW_TOOL = "deck_draw"
COMBAT_TOOL = "combat_start"
STATUS_TOOL = "status_apply"
_ATTACK = re.compile(r"\b(attack|shoot|fire at|open fire|fight|charge at|strike|stab|punch|ambush)\b", re.I)
_STOP = frozenset(
    ("with", "from", "that", "this", "into", "onto", "what", "their", "there", "about", "through")
)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _TOKEN.findall(text.lower()) if len(w) > 3 and w not in _STOP}


def _matching_objective(c: _Ctx) -> tuple[str, str] | None:
    """An open objective the action is plainly about (shares a content word with it)."""
    words = _stems(c.action)
    return next(((oid, text) for oid, text in c.objectives if words & _stems(text)), None)


def _called(messages: Sequence[base.Message], name: str) -> bool:
    last_user = max((i for i, m in enumerate(messages) if getattr(m, "role", "") == "user"), default=-1)
    return any(
        getattr(call, "name", "") == name
        for m in messages[last_user + 1 :]
        for call in (getattr(m, "tool_calls", ()) or ())
    )


def _first_call(c: _Ctx, intent: Intent, tools: dict[str, base.ToolSpec], rng: random.Random):
    """The game tool an action calls for before any dice: a present NPC speaks, a fight starts,
    or a twist-beat look around turns up a card. (name, arguments, lead-in) or None."""
    if intent.kind == "talk" and intent.npc and NPC_TOOL in tools:
        npc = next((p for p in c.present if p[1] == intent.npc[0]), None)
        if npc:
            agenda = npc[2].rstrip(".") or "Keep your voice down"
            line = rng.choice(P.NPC_AGENDA_LINES).format(agenda=agenda[:1].lower() + agenda[1:])
            return NPC_TOOL, {"npc": npc[0], "line": line[:300]}, ""
    if _ATTACK.search(c.action) and not c.in_combat and COMBAT_TOOL in tools:
        foe = (
            intent.target if intent.target and intent.target not in P.FALLBACK_TARGET.values() else "hostiles"
        )
        return COMBAT_TOOL, {"foes": [{"name": foe[:40]}]}, ""
    if (
        intent.kind == "observe"
        and c.beat in ("Twist", "Climax")
        and DRAW_TOOL in tools
        and rng.random() < 0.5
    ):
        return DRAW_TOOL, {"kind": "complication", "reason": f"{c.name} looks around"}, ""
    return None


def _narrate_card(w: _Writer, c: _Ctx, data: dict[str, Any]) -> str:
    title, text = _s(data.get("title")), _s(data.get("text"))
    if not text or "error" in data:
        return _narrate_plain(w, c, Intent("observe"), "observe")
    return f"{w.pick(P.OPENERS[c.tone])} {title}: {text}".strip()


def _aside_item(text: str, max_words: int = 30) -> str:
    """One piece of private knowledge as a sentence: whitespace tidied, at most `max_words`."""
    words = _s(text).split()
    clipped = " ".join(words[:max_words]) + ("…" if len(words) > max_words else "")
    return clipped if clipped[-1:] in ".!?…\"'”" else clipped + "."


def write_aside(raw: Any, rng: random.Random, tone: str = "heroic") -> str:
    """A private aside from `context["aside"]["items"]` (what only the actor knows, most
    relevant first): "Only you recall: …", a second item if there is one, and a closing line
    in the GM's tone. "" when there is nothing to tell."""
    items = [t for t in (_s(x) for x in _l(_d(_d(raw).get("aside")).get("items"))) if t]
    if not items:
        return ""
    parts = [f"{P.ASIDE_LEAD} {_aside_item(items[0])}"]
    if len(items) > 1:
        parts.append(f"{P.ASIDE_ALSO} {_aside_item(items[1], 20)}")
    parts.append(rng.choice(P.ASIDE_CLOSERS.get(tone) or P.ASIDE_CLOSERS["heroic"]))
    return " ".join(parts)


class OfflineNarrator:
    """Procedural, deterministic sci-fi narration; calls `rules_skill_check` when an action is risky."""

    name = "offline"

    def __init__(self, *, model: str = "procedural-v1", word_delay_s: float = 0.0):
        self.model = model
        self.word_delay_s = word_delay_s

    def _rng(self, request: base.ChatRequest, c: _Ctx) -> random.Random:
        seed = request.seed
        if not isinstance(seed, int):
            seed = int.from_bytes(hashlib.sha256(c.action.encode()).digest()[:8], "big")
        # String seeds hash through SHA-512, so this is stable across processes and Python runs.
        return random.Random(f"gtw-offline:{seed}:{c.turn}")

    def stream(self, request: base.ChatRequest) -> Iterator[base.StreamEvent]:
        if isinstance(request.context, dict) and "batch" in request.context:
            from narrative.llm import offline_batch  # stage mode: one summary for a beat window

            yield from offline_batch.stream_batch(request, self.word_delay_s)
            return
        if isinstance(request.context, dict) and "aside" in request.context:
            yield from self._stream_aside(request)  # a private aside (narrative.asides)
            return
        messages = list(request.messages or [])
        c = _read_context(request.context, messages)
        rng = self._rng(request, c)
        intent = _analyse(c)
        w = _Writer(rng, c, _slots(c, intent, rng))
        tools = {t.name: t for t in (request.tools or []) if getattr(t, "name", None)}
        result = _tool_result(messages)
        # A risky action narrated without a roll stays unresolved rather than inventing an outcome.
        fallback_kind = "attempt" if intent.kind in ("check", "loot") else intent.kind
        call: base.ToolCall | None = None
        first = _first_call(c, intent, tools, rng) if result is None else None
        if result is not None:
            tool_name, data = result
            outcome, margin = _outcome(data)
            if tool_name == ADVANCE_TOOL:
                # The roll was narrated last round; say only whether the job is done.
                done = "error" not in data
                text = w.pick(P.ADVANCE_LINES["done" if done else "not_yet"])
            elif tool_name == DRAW_TOOL:
                text = _narrate_card(w, c, data)
            elif tool_name == STATUS_TOOL:
                text = (
                    ""
                    if "error" in data
                    else w.pick(P.STATUS_LINES).format(label=_s(data.get("label")).lower())
                )
            elif tool_name in (NPC_TOOL, COMBAT_TOOL):
                text = _narrate_plain(w, c, intent, "talk" if tool_name == NPC_TOOL else fallback_kind)
                if tool_name == COMBAT_TOOL and "error" not in data:
                    text = f"{w.pick(P.COMBAT_LINES)} {text}"
            elif (tool_name == ROLL_TOOL or "expression" in data) and "error" not in data:
                text = _narrate_loot(w, c, data)
            elif outcome:
                text = _narrate_outcome(w, c, intent, outcome, margin)
                target = _matching_objective(c)
                if (
                    outcome == "critical_failure"
                    and STATUS_TOOL in tools
                    and not _called(messages, STATUS_TOOL)
                ):
                    # A natural 1 leaves a mark the rules can carry into the next checks.
                    args = {"character": c.name, "effect": "shaken", "reason": f"{c.name} fumbles"}
                    n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
                    call = base.ToolCall(
                        id=f"call_{n}", name=STATUS_TOOL, arguments=args, raw_arguments=json.dumps(args)
                    )
                succeeded = outcome in ("success", "critical_success")
                if succeeded and target and ADVANCE_TOOL in tools and not _called(messages, ADVANCE_TOOL):
                    args = {"objective": target[0], "reason": f"{c.name}: {c.action[:150]}"}
                    n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
                    call = base.ToolCall(
                        id=f"call_{n}", name=ADVANCE_TOOL, arguments=args, raw_arguments=json.dumps(args)
                    )
            else:
                text = _narrate_plain(w, c, intent, fallback_kind)
        elif first is not None:
            tool, args, text = first
            key = "social" if tool == NPC_TOOL else ("combat" if tool == COMBAT_TOOL else intent.category)
            text = text or w.pick(P.LEAD_INS.get(key) or P.LEAD_INS["wits"])
            n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
            call = base.ToolCall(id=f"call_{n}", name=tool, arguments=args, raw_arguments=json.dumps(args))
        elif tool := _choose_tool(intent, tools, rng):
            lead = w.pick(P.LEAD_INS["loot" if tool == ROLL_TOOL else intent.category])
            tension = w.pick(P.TENSION[c.tone]) if c.verbosity > 1 and rng.random() < 0.6 else ""
            text = f"{lead} {tension}".strip()
            schema = _d(tools[tool].parameters)
            if tool == ROLL_TOOL:
                args = fit({"expression": "2d6", "reason": f"{c.name} scavenges in {c.place}"}, schema)
            else:
                args = check_arguments(
                    action=c.action, name=c.name, scene=c.scene_text, intent=intent, rng=rng, schema=schema
                )
            n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
            call = base.ToolCall(id=f"call_{n}", name=tool, arguments=args, raw_arguments=json.dumps(args))
        else:
            text = _narrate_plain(w, c, intent, fallback_kind)
        chunks = re.findall(r"\S+\s*", text)
        for i, chunk in enumerate(chunks):
            if i and self.word_delay_s > 0:
                time.sleep(self.word_delay_s)
            yield base.TextDelta(chunk)
        if call is not None:
            yield base.ToolCallEvent(call)
        tokens_in = sum(len(_s(getattr(m, "content", "")).split()) for m in messages) + len(c.action.split())
        usage = Usage(tokens_in=tokens_in, tokens_out=len(chunks) + (10 if call else 0))
        yield base.StreamEnd(stop_reason="tool_calls" if call else "stop", usage=usage)

    def _stream_aside(self, request: base.ChatRequest) -> Iterator[base.StreamEvent]:
        c = _read_context(request.context, [])
        text = write_aside(request.context, self._rng(request, c), c.tone)
        for chunk in re.findall(r"\S+\s*", text):
            yield base.TextDelta(chunk)
        yield base.StreamEnd(stop_reason="stop", usage=Usage(tokens_out=len(text.split())))

    def complete(self, request: base.ChatRequest) -> str:
        """An extractive summary of the last user message: its most representative sentences, in order."""
        user = next((m for m in reversed(request.messages or []) if getattr(m, "role", "") == "user"), None)
        # Data blocks (narrative.prompts) fence the text; the summary is of what is inside.
        content = getattr(user, "content", "")
        text = _s(prompts.unwrap(content) if isinstance(content, str) else "")
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        if len(sentences) <= 3:
            return text
        freq = Counter(w for w in _TOKEN.findall(text.lower()) if len(w) > 3)

        def score(s: str) -> float:
            words = [w for w in _TOKEN.findall(s.lower()) if len(w) > 3]
            return sum(freq[w] for w in words) / (len(words) + 2)

        best = sorted(range(1, len(sentences)), key=lambda i: (-score(sentences[i]), i))[:2]
        picked = [sentences[i] for i in sorted([0, *best])]
        limit = max(20, int(request.max_tokens * 0.75))
        words = " ".join(picked).split()
        return " ".join(words[:limit]) + ("…" if len(words) > limit else "")
