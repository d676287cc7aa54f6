"""The offline narrator's prose: a template writer that never repeats itself, the slot fills,
and the narrations of an outcome, a plain action and a scavenging roll. Pure: no Django.
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Sequence
from typing import Any

from narrative.intent import Intent
from narrative.llm.offline import phrases as P
from narrative.llm.offline.context import (
    Context,
    article,
    as_int,
    as_list,
    clean,
    count_sentences,
    first_sentences,
    possessive,
)

_AMBIENT = ("sound", "sight", "sight2", "air")
_BUDGET = {1: (2, 3), 2: (3, 5), 3: (5, 7)}


class Writer:
    """Renders templates with varied fills, never reusing a template within a reply or a recent sentence."""

    def __init__(self, rng: random.Random, c: Context, slots: dict[str, str]):
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


def mid_sentence(noun: str) -> str:
    """Lower a leading "The" so a name reads right mid-sentence; sentence starts are re-capitalised."""
    return re.sub(r"^The\b", "the", noun)


# What ends a target's noun phrase: particles and adverbs ("pry the clamps open", "pull the lever
# down hard"), prepositions and conjunctions ("jack my deck into the reactor", "... with a bar").
_TARGET_ENDS = frozenset(
    re.findall(
        r"\S+",
        """open shut closed loose free apart off down up out away back aside over in on into onto to
        toward towards through inside at with using from for by hard fast quickly quietly carefully
        slowly gently again now before after while so because without and then but or""",
    )
)
_DESTINATION = frozenset(("into", "onto", "to", "toward", "towards", "through", "inside", "at"))
_POSSESSIVES = frozenset(("their", "his", "her", "my", "your", "our", "its"))
_DETERMINERS = _POSSESSIVES | {"the", "a", "an", "this", "that", "these", "those", "some"}


def tidy_target(target: str) -> str:
    """The noun phrase a template can put after "beside", "on" or "into": "the docking clamps"
    for "the docking clamps open", "the reactor" for "their deck into the reactor". "" when
    nothing but a determiner would be left."""
    words = target.split()
    for i, word in enumerate(words[1:], start=1):
        low = word.lower().strip(".,;:!?")
        if low not in _TARGET_ENDS:
            continue
        rest = words[i + 1 :]
        # Your own kit going into something: the something is what is worked on.
        own_kit = words[0].lower() in _POSSESSIVES
        if low in _DESTINATION and own_kit and rest and rest[0].lower() in _DETERMINERS:
            words = rest
            return tidy_target(" ".join(words)) or " ".join(words)
        words = words[:i]
        break
    while words and words[-1].lower() in _DETERMINERS:
        words = words[:-1]
    if len(words) == 1 and words[0].lower() in _DETERMINERS:
        return ""
    return " ".join(words)


def short_name(name: str) -> str:
    """How a sentence refers back to someone: "Sister Ameline", "Captain Hale", "Ossian"."""
    parts = name.split()
    if len(parts) > 1 and parts[0].lower().rstrip(".") in P.TITLES:
        return f"{parts[0]} {parts[-1]}"
    return parts[0] if parts else name


def fill_slots(c: Context, intent: Intent, rng: random.Random) -> dict[str, str]:
    npc = intent.npc or (rng.choice(c.npcs) if c.npcs else None)
    npc_name = mid_sentence(npc[0]) if npc else ""
    faction = rng.choice(c.factions) if c.factions else ""
    faction_bare = re.sub(r"^the\s+", "", faction, flags=re.I)
    has_article = faction_bare != faction or (faction and faction.split()[-1].lower() in P.ORG_WORDS)
    head = c.objective.split()[0].lower() if c.objective else ""
    objective = c.objective[:1].lower() + c.objective[1:] if head in P.OBJECTIVE_HEADS else c.objective
    target = tidy_target(intent.target) or P.FALLBACK_TARGET.get(intent.category, "the problem")
    listener = mid_sentence(intent.npc[0]) if intent.npc else target
    return {
        "name": c.name,
        "first": c.first,
        "first_pos": possessive(c.first),
        "arch": c.arch,
        "a_arch": article(c.arch),
        "place": mid_sentence(c.place),
        "world": mid_sentence(c.world),
        "task": intent.task or "",
        "target": target,
        "listener": listener,
        "listener_pos": possessive(listener),
        "npc": npc_name,
        # "Sister Ameline", "Captain Hale", "Ossian": never a bare title ("Sister warned ...").
        "npc_first": short_name(npc_name) if npc else "",
        "npc_role_a": (article(npc[1].lower()) if npc[1] else "a local") if npc else "",
        "faction": f"the {faction_bare}" if has_article else faction,
        "faction_bare": faction_bare,
        "objective": objective,
        "objective_lc": objective if head in P.OBJECTIVE_HEADS else "",
    }


def compose(
    w: Writer, c: Context, parts: dict[str, str], required: Sequence[str], layout: Sequence[str]
) -> str:
    """Fit the required beats and what optional ones the verbosity budget allows, in reading order.

    Which optional beats make it in is seeded, so two turns of the same kind differ in shape
    as well as wording; verbosity 1 never spends its few sentences on scenery.
    """
    low, high = _BUDGET[c.verbosity]
    target = w.rng.randint(low, high)
    chosen = [k for k in required if parts.get(k)]
    total = sum(count_sentences(parts[k]) for k in chosen)
    optional = [k for k in layout if k not in required and parts.get(k)]
    if c.verbosity == 1:
        optional = [k for k in optional if k in ("flourish", "margin", "closer")]
    first = [k for k in optional if k in ("flourish", "reply")]
    rest = [k for k in optional if k not in first]
    for key in first + w.rng.sample(rest, len(rest)):
        n = count_sentences(parts[key])
        if total + n <= target:
            chosen.append(key)
            total += n
    for i in range(3):
        if total >= low:
            break
        extra = w.pick(P.DETAIL[("any", "act")]) or w.pick(P.PROMPTS)
        if not extra:
            break
        parts[f"extra{i}"], total = extra, total + count_sentences(extra)
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


def _names(c: Context, text: str) -> bool:
    return c.first.lower() in text.lower()


def narrate_outcome(w: Writer, c: Context, intent: Intent, outcome: str, margin: int | None) -> str:
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
        # Never "within reach" while a fail clock is one tick from full (issue 13).
        "objective": w.pick(P.OBJECTIVE["neutral" if c.at_risk else polarity]) if c.objective else "",
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
    return compose(w, c, parts, ("core", "detail"), layout)


def narrate_plain(w: Writer, c: Context, intent: Intent, kind: str, reply: str = "") -> str:
    """An action with no roll. `reply`: what the NPC spoken to answers (a "talk" turn with no
    npc_speak tool to say it through); else a stock reply in the GM's tone."""
    s = w.slots
    core_key = "talk" if kind == "talk" and s["npc"] else ("talk_alone" if kind == "talk" else kind)
    cores = P.CORE.get(core_key, P.CORE["act"])
    # An act reads best when it restates what the player did, so prefer templates that can.
    with_task = [t for t in cores if "{task}" in t] if s["task"] and w.rng.random() < 0.7 else []
    parts = {"core": w.pick(with_task) or w.pick(cores) or w.pick(P.CORE["observe"])}
    desc = first_sentences(c.desc, c.verbosity)
    if kind == "talk":
        # Verbosity 1 has room for the line itself but not a stage direction after it.
        frames = P.REPLY_FRAMES[2:] if not s["npc"] else P.REPLY_FRAMES[: 1 if c.verbosity == 1 else 2]
        parts["reply"] = w.rng.choice(frames).format(reply=reply or w.pick(P.NPC_REPLIES[c.tone]))
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
    return compose(w, c, parts, required, layout)


def narrate_loot(w: Writer, c: Context, data: dict[str, Any]) -> str:
    """A search roll's narration. It names only what the game granted: the LootFound among the
    roll's consequences (its `text`, e.g. "a medpatch and 43 credits"); a search that found
    nothing, or a roll that granted nothing, finds nothing worth keeping."""
    found = next(
        (
            f
            for f in as_list(data.get("consequences"))
            if isinstance(f, dict) and f.get("type") == "LootFound"
        ),
        None,
    )
    loot = clean((found or {}).get("text"))
    items = [i for i in as_list((found or {}).get("items")) if isinstance(i, dict)]
    if not loot:
        tier = "nothing"
    else:
        tier = "great" if len(items) > 1 or any(as_int(i.get("qty"), 1) > 1 for i in items) else "decent"
        w.slots["loot"] = loot
    polarity = {"nothing": "bad", "decent": "neutral", "great": "good"}[tier]
    parts = {
        "opener": w.pick(P.OPENERS[c.tone]),
        "core": w.pick(P.LOOT_NOTHING if tier == "nothing" else P.LOOT_LINES[tier]),
        "closer": w.pick(P.CLOSERS[(c.tone, polarity)]),
        "prompt": w.pick(P.PROMPTS),
    }
    return compose(w, c, parts, ("core",), ("opener", "core", "closer", "prompt"))
