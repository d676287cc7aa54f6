"""What an action sets out to do, read from its words — a game rule, pure (no Django, no provider).

`analyse` sorts an action into a kind (a risky `check`, `loot`, `talk`, `observe`, `move`, `rest`
or plain `act`) with the skill and attribute a check would test, the task as an infinitive phrase
("hack the airlock panel"), its target and any NPC it names. `check_arguments` sets the
difficulty from the wording and the scene. `plan_check` puts the two together for the stage's
batch turn (narrative.turns.batch), which decides per action whether to roll, whichever provider
narrates; the offline narrator reads actions with the same functions, so an action judged risky
on its own is judged risky in a beat window too.

How an action is read (issue 13): the rules (narrative.intent_rules, with the check, talk and
look verb tables of narrative.llm.offline.phrases and the phrases of narrative.intent_phrases)
settle questions and talk — they never roll — and weigh verbs, telling phrases and object words;
the local embedding model's nearest labelled examples (narrative.intent_model,
content/intent/examples.jsonl) vote on what the words mean. The skill with the most evidence
wins, or a no-roll kind; the attribute follows the skill and the wording. Without the model the
rules decide alone. `gtw bench intent` measures it on a held-out set.

Every function is a pure function of its arguments (the model's vote is a fixed function of the
text); randomness comes in as a seeded `random.Random` (or, for `plan_check`, a seed whose
derivation is fixed: "gtw-offline-check:<seed>", so a replayed beat rolls against the same
difficulty).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from narrative import intent_model as M
from narrative import intent_rules as R
from narrative.llm.offline import phrases as P

KINDS = ("check", "loot", "talk", "observe", "move", "rest", "act")
READ_CHARS = 600
EMBED_WORDS = 40
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
    # The action asks something ("what made these marks?", "Ameline, who are you?"): answered
    # from what the game knows (narrative.llm.offline), never rolled for.
    question: bool = False


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


_TO_GM = re.compile(r"(?:tell|ask|show|remind|describe|explain)\w* (?:me|us)\b|describe\b|explain\b")
_SEARCH_HEADS = frozenset(
    ("search", "searches", "searching", "check", "checks", "go", "goes", "look", "looks")
)
_LOOT_NOUNS = frozenset(("supplies", "pockets", "stash"))


def _looting(lowered: list[str], text: str) -> bool:
    """Scavenging for what can be carried off (rolled on the loot table, not as a check): a
    looting verb leads ("scavenge the wreck"), or a search of a body, crate, locker or stash."""
    head = lowered[0] if lowered else ""
    if (head in P.LOOT_FORMS and head not in _LOOT_NOUNS) or _LOOT_SEARCH.search(text):
        return True
    return head in _SEARCH_HEADS and any(w in _LOOT_NOUNS for w in lowered)


def _names(name: str) -> re.Pattern[str]:
    """What an action may call an NPC by: the full name, its first word ("Captain", as before),
    or any other part that is not a title ("Ameline" for "Sister Ameline")."""
    parts = name.split()
    others = [p for p in parts[1:] if len(p) > 2 and p.lower().rstrip(".") not in P.TITLES]
    alternatives = "|".join(re.escape(p) for p in (name, parts[0], *others))
    return re.compile(rf"\b(?:{alternatives})\b", re.I)


def _prepare(text: str) -> str:
    """An action as the example index sees it: lower case, its subject and fillers dropped.
    The same function embeds the examples (narrative.intent_model) and every action. Only the
    first EMBED_WORDS words count: a sentence's cost in the model grows with the square of its
    length, and an action's meaning is in its opening."""
    return " ".join(R.strip_subject(text.lower().split())[:EMBED_WORDS])


def analyse(
    action: str, *, name: str, actor: str = "", npcs: Sequence[tuple[str, str]] = (), model: bool = True
) -> Intent:
    """What `action` (whitespace-normalised text) sets out to do. `name` and `actor` are the
    character's and the player's names (dropped when they lead the sentence); `npcs` are
    (name, role) pairs the action may address. With `model` (the default) the local embedding
    model's nearest examples vote alongside the rules; without it (or when the model cannot
    load) the rules decide alone.

    Questions and talk never roll: a question is `observe` (asked of the GM) or `talk` (asked
    of someone, `npc` set when it is one of `npcs`), with `question` set either way."""
    # What an action sets out to do is in its opening; a wall of text is read up to READ_CHARS
    # (the rules' regular expressions and the model's tokens cost grows with the length).
    text = action[:READ_CHARS].strip().strip("*")
    words = re.split(r"(?<=[.!?;])\s", text)[0].split()
    names = {*name.lower().split(), actor.lower()} - {"the", ""}
    words = R.strip_subject(words, names)
    mentioned = next((npc for npc in npcs if npc[0] and _names(npc[0]).search(text)), None)
    task = task_phrase(words)
    if not text:
        return Intent("observe", task=None, target=P.FALLBACK_TARGET["wits"])
    reading = R.read(text, names=names, npc_names=[n for n, _ in npcs])
    if reading.vocative:
        mentioned = next((npc for npc in npcs if npc[0] == reading.vocative), mentioned)
    lowered = [re.sub(r"[^a-z'-]", "", w.lower()) for w in words]
    intent = None
    if reading.question:
        # A question never rolls, unless it carries an attempt: a declared action beside it, or
        # an attempt asked as a question ("Can I hack into the registry?").
        npc_names = [n for n, _ in npcs]
        attempt = "" if reading.talk else R.attempt_in_question(text, npc_names)
        if attempt:
            declared = R.read(attempt, names=names, npc_names=npc_names)
            if not declared.talk and any(label in R.SKILL_READING for label in declared.scores):
                attempt_words = R.strip_subject(attempt.split(), names)
                found = _classify(attempt, declared, attempt_words, task_phrase(attempt_words), model=model)
                intent = found if found.kind == "check" else None
        if intent is None:
            # "Tell me about the relay" asks the GM; "I ask the guard where…" asks someone.
            to_gm = bool(_TO_GM.match(" ".join(lowered))) and not reading.vocative
            kind = "talk" if reading.talk and not to_gm else "observe"
            intent = Intent(kind, task=task)
    elif not reading.talk and _looting(lowered, text):
        intent = Intent("loot", "loot", "wits", "investigation", task)
    else:
        intent = _classify(text, reading, words, task, model=model)
    intent.npc = mentioned
    intent.question = reading.question
    if not intent.target:
        fallback = P.FALLBACK_TARGET.get(intent.category, "the problem")
        intent.target = mentioned[0] if mentioned and intent.category == "social" else fallback
    return intent


# How much the examples' vote (summing to 1) counts against the rules' evidence
# (narrative.intent_rules: a check verb opening the action is 1.0, a telling phrase 1.6).
EXAMPLE_WEIGHT = 1.0
# Talk ("I hail the cutter", quoted speech) is talk unless a social skill clearly outweighs it.
TALK_WEIGHT = 0.7
PLAIN_EXAMPLE_SHARE = 0.5
# A generic verb ("take", "use", "get") says less: what it acts on says more.
ACT_EXAMPLE_SHARE = 0.75
CUE_FLOOR = 0.15
VOTE_ONLY_FLOOR = 0.3
_PLAIN_KINDS = ("observe", "move", "rest", "act")


def _classify(text: str, reading: R.Reading, words: list[str], task: str | None, *, model: bool) -> Intent:
    scores = dict(reading.scores)
    # An action that opens with a plain verb ("walk", "look") and names no skill by verb or
    # phrase is what it says: the examples' vote, which hears mostly the objects ("…to the
    # relay core"), counts half (three quarters after a generic "take", "use", "get").
    weight = EXAMPLE_WEIGHT
    if reading.plain and not any(label in R.SKILL_READING for label in scores):
        weight *= ACT_EXAMPLE_SHARE if reading.plain == "act" else PLAIN_EXAMPLE_SHARE
    vote = M.nearest_labels(" ".join(words), _prepare) if model else None
    for label, part in (vote or {}).items():
        scores[label] = scores.get(label, 0.0) + weight * part
    if vote is None and not scores:
        # Rules alone, and no verb they know: the objects are all there is to go on
        # ("cobble a comm unit from the drones' parts" reads as engineering).
        scores = dict(reading.cues)
    else:
        # Object words tip a close call between skills the action already points at; they
        # never make a walk to the reactor a repair.
        for skill, bonus in reading.cues.items():
            if scores.get(skill, 0.0) >= CUE_FLOOR:
                scores[skill] += bonus
    if reading.talk:
        scores["talk"] = scores.get("talk", 0.0) + TALK_WEIGHT
        candidates: tuple[str, ...] = ("talk", *R.SOCIAL)
    else:
        candidates = (*R.SKILLS, *_PLAIN_KINDS)
    # Ties go to the earlier candidate: the same action reads the same way every time.
    best = max(candidates, key=lambda label: scores.get(label, 0.0))
    # With nothing the rules recognise, the examples alone must agree clearly: gibberish or an
    # action unlike any example is a plain act, not a roll.
    floor = 0.0 if reading.scores or reading.cues else VOTE_ONLY_FLOOR
    if scores.get(best, 0.0) <= floor:
        return Intent("talk" if reading.talk else "act", task=task)
    if best not in R.SKILL_READING:
        return Intent(best, task=task)
    category, attribute = R.attribute_for(best, text)
    at = reading.verb_at.get(best)
    target = target_after(words, at) if at is not None and at < len(words) else ""
    return Intent("check", category, attribute, best, task=task, target=target)


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
