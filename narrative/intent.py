"""What an action sets out to do, read from its words — a game rule, pure (no Django, no provider).

`analyse` sorts an action into a kind (a risky `check`, `loot`, `talk`, `observe`, `move`, `rest`
or plain `act`) with the skill and attribute a check would test, the task as an infinitive phrase
("hack the airlock panel"), its target and any NPC it names. `check_arguments` sets the
difficulty from the wording and the scene. `plan_check` puts the two together for the stage's
batch turn (narrative.turns.batch), which decides per action whether to roll, whichever provider
narrates; the offline narrator reads actions with the same functions, so an action judged risky
on its own is judged risky in a beat window too.

The vocabulary is the offline narrator's phrase tables (narrative.llm.offline.phrases: plain
data). Every function is a pure function of its arguments; randomness comes in as a seeded
`random.Random` (or, for `plan_check`, a seed whose derivation is fixed: "gtw-offline-check:<seed>",
so a replayed beat rolls against the same difficulty).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from narrative.llm.offline import phrases as P

KINDS = ("check", "loot", "talk", "observe", "move", "rest", "act")
DEFAULT_NAME = "the stranger"

_PRONOUN_RE = re.compile(r"\b(?:" + "|".join(sorted(P.PRONOUNS, key=len, reverse=True)) + r")\b(?!')", re.I)
_LOOT_SEARCH = re.compile(r"\bsearch\w*\b.*\b(?:bod|crate|locker|wreck|corpse|debris|contain|cache)", re.I)


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _i(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass
class Intent:
    kind: str  # one of KINDS
    category: str = "wits"
    attribute: str = "wits"
    skill: str = "investigation"
    task: str | None = None
    target: str = ""
    npc: tuple[str, str] | None = None


def actor_name(name: Any, actor: Any) -> str:
    """The name an action is told under: the character's name, else the player's (capitalised
    when it is all lower case), else DEFAULT_NAME."""
    actor = _s(actor)
    return _s(name) or (actor[:1].upper() + actor[1:] if actor.islower() else actor) or DEFAULT_NAME


def scene_text(scene: Any) -> str:
    """The scene's name, biome and description, lower-cased: what the difficulty nudges read."""
    scene = _d(scene)
    return f"{_s(scene.get('name'))} {_s(scene.get('biome'))} {_s(scene.get('description'))}".lower()


def swap_pronouns(phrase: str) -> str:
    """First person to third ("my rifle" -> "their rifle"), for retelling an action."""
    return _PRONOUN_RE.sub(lambda m: P.PRONOUNS[m.group(0).lower()], phrase)


def task_phrase(words: list[str]) -> str | None:
    """The action as an infinitive phrase ("hack the airlock panel"), or None if it won't read as one."""
    verb = words[0].lower().strip(".,;:!?") if words else ""
    if verb not in P.VERB_BASE:
        return None
    phrase = swap_pronouns(" ".join([P.VERB_BASE[verb], *words[1:]]))
    phrase = re.split(r"[,;:.!?]| and then | then | but ", phrase)[0].strip(" \"'*")
    return phrase if len(phrase.split()) <= 14 else None


def target_after(words: list[str], index: int) -> str:
    """The noun phrase a check verb acts on ("the airlock panel"), or "" if there isn't a clear one."""
    rest = words[index + 1 :]
    while rest and rest[0].lower() in P.PARTICLE_SET:
        rest = rest[1:]
    taken: list[str] = []
    for raw in rest[:5]:
        word = raw.strip(".,;:!?\"'*")
        if not word or word.lower() in P.STOP_SET:
            break
        taken.append(word)
        if word != raw.rstrip("\"'*"):
            break
    if not taken or not (taken[0].lower() in P.DETERMINER_SET or taken[0][:1].isupper()):
        return ""
    if taken[0].lower() in ("this", "that", "these", "those"):
        taken[0] = "the"
    return swap_pronouns(" ".join(taken))


def analyse(action: str, *, name: str, actor: str = "", npcs: Sequence[tuple[str, str]] = ()) -> Intent:
    """What `action` (whitespace-normalised text) sets out to do. `name` and `actor` are the
    character's and the player's names (dropped when they lead the sentence); `npcs` are
    (name, role) pairs the action may address."""
    text = action.strip().strip("*")
    words = re.split(r"(?<=[.!?;])\s", text)[0].split()
    # Drop "I try to", "Kira carefully" and the like so the verb leads.
    names = {*name.lower().split(), actor.lower()} - {"the", ""}
    while words and (words[0].lower() in P.FILLER_SET or words[0].lower().strip(",:") in names):
        words = words[1:]
    lowered = [re.sub(r"[^a-z'-]", "", w.lower()) for w in words]
    head = lowered[0] if lowered else ""
    named = ((npc, rf"\b({re.escape(npc[0])}|{re.escape(npc[0].split()[0])})\b") for npc in npcs)
    mentioned = next((npc for npc, pattern in named if re.search(pattern, text, re.I)), None)
    task = task_phrase(words)
    is_question = text.endswith("?")
    is_talk = head in P.TALK or '"' in text
    intent = None
    if any(w in P.LOOT_FORMS for w in lowered) or _LOOT_SEARCH.search(text):
        intent = Intent("loot", "loot", "wits", "investigation", task)
    for table in (P.STRONG, P.WEAK):
        for pos, w in enumerate(lowered):
            hit = table.get(w)
            if intent is None and hit and not is_question and (not is_talk or hit[0] == "social"):
                intent = Intent("check", *hit, task=task, target=target_after(words, pos))
    if intent is None:
        kind = "act" if text else "observe"
        if is_talk:
            kind = "talk"
        elif is_question or head in P.LOOK:
            kind = "observe"
        elif head in P.MOVE:
            kind = "move"
        elif head in P.REST:
            kind = "rest"
        intent = Intent(kind, task=task)
    intent.npc = mentioned
    if not intent.target:
        fallback = P.FALLBACK_TARGET.get(intent.category, "the problem")
        intent.target = mentioned[0] if mentioned and intent.category == "social" else fallback
    return intent


def phrase_hit(text: str, phrases: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(p)}", text) for p in phrases)


def check_arguments(
    *, action: str, name: str, scene: str, intent: Intent, rng: random.Random, schema: dict[str, Any]
) -> dict[str, Any]:
    """The skill check an action calls for: skill and attribute from `intent`, a difficulty from
    the wording and the scene text (`scene_text`), fitted to the check tool's `schema`."""
    low = action.lower()
    nudge = sum(n for phrase, n in P.DC_NUDGES if phrase_hit(low, (phrase,)))
    hazards = min(2, sum(1 for w in P.SCENE_NUDGES if w in scene))
    dc = min(20, max(8, P.BASE_DC + max(-4, min(8, nudge)) + hazards + rng.choice((-1, 0, 0, 1))))
    props = _d(schema.get("properties"))
    dc_schema = _d(props.get("dc"))
    dc = min(_i(dc_schema.get("maximum"), 30), max(_i(dc_schema.get("minimum"), 5), dc))
    reason = f"{name} tries to {intent.task}" if intent.task else f"{name}: {action[:120]}"
    args = {
        "skill": intent.skill,
        "attribute": intent.attribute,
        "dc": dc,
        "advantage": phrase_hit(low, P.ADVANTAGE_WORDS),
        "disadvantage": phrase_hit(low, P.DISADVANTAGE_WORDS),
        "reason": reason,
    }
    return fit(args, schema)


def fit(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Keep only the arguments the advertised schema names, as a remote model would."""
    props = _d(schema.get("properties"))
    return {k: v for k, v in args.items() if k in props} if props else args


def plan_check(
    *, text: str, name: str, actor: str = "", scene: Any = None, schema: dict[str, Any], seed: int
) -> dict[str, Any] | None:
    """Skill-check arguments (fitted to `schema`) when the action is risky, else None — the same
    call the offline narrator makes for that action on its own."""
    action, actor = _s(text), _s(actor)
    who = actor_name(name, actor)
    intent = analyse(action, name=who, actor=actor)
    if intent.kind not in ("check", "loot"):
        return None
    rng = random.Random(f"gtw-offline-check:{seed}")
    return check_arguments(
        action=action, name=who, scene=scene_text(scene), intent=intent, rng=rng, schema=schema
    )
