"""The rules half of reading an action: is it a question, is it talk, and which skill its words point to.

narrative.intent combines these with the nearest labelled examples (narrative.intent_model).
The rules decide what the embedding cannot be trusted with: a question ("what made these
marks?", "Ameline, who are you?", "I ask Ossian where he is headed") and plain talk ("I hail the
cutter", "I greet the Sister") never roll; a verb from the check tables
(narrative.llm.offline.phrases) or a telling phrase ("without being seen", "open fire",
"strike a deal") points at a skill; the attribute follows the skill and the wording (athletics by
might for forcing, lifting and breaking, by agility otherwise). Pure: no Django, no model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from narrative.intent_phrases import CUES, PHRASE, PHRASES, TALK_PHRASES
from narrative.llm.offline import phrases as P

SKILLS = (
    "hacking",
    "engineering",
    "piloting",
    "athletics",
    "stealth",
    "sleight of hand",
    "marksmanship",
    "brawling",
    "persuasion",
    "deception",
    "intimidation",
    "negotiation",
    "investigation",
    "perception",
    "analysis",
    "lore",
    "navigation",
    "medicine",
)
SOCIAL = ("persuasion", "deception", "intimidation", "negotiation")
# Kinds of action that never roll (narrative.intent.KINDS less check and loot).
NO_ROLL = ("talk", "observe", "move", "rest", "act")

# skill -> (category, attribute): the category picks the narration's phrase family.
SKILL_READING: dict[str, tuple[str, str]] = {
    "hacking": ("tech", "tech"),
    "engineering": ("repair", "tech"),
    "piloting": ("pilot", "agility"),
    "athletics": ("athletics", "agility"),
    "stealth": ("stealth", "agility"),
    "sleight of hand": ("stealth", "agility"),
    "marksmanship": ("combat", "agility"),
    "brawling": ("might", "might"),
    "persuasion": ("social", "presence"),
    "deception": ("social", "presence"),
    "intimidation": ("social", "presence"),
    "negotiation": ("social", "presence"),
    "investigation": ("wits", "wits"),
    "perception": ("wits", "wits"),
    "analysis": ("wits", "wits"),
    "lore": ("wits", "wits"),
    "navigation": ("wits", "wits"),
    "medicine": ("wits", "wits"),
}

# Weights of the evidence (narrative.intent adds the examples' vote, which sums to 1).
HEAD_VERB = 1.0  # a check verb that opens the action
LATER_VERB = 0.8  # one that opens a later clause "… and hack the door"
WEAK_HEAD, WEAK_LATER = 0.45, 0.35
PLAIN_HEAD = {"move": 0.9, "observe": 0.9, "rest": 0.9, "act": 0.6}
LOOK_FOR = 1.2  # a look verb with "for": perception
CUE, CUE_CAP = 0.2, 0.45  # object and context words, per word, capped per skill


_PHRASES = tuple((row[0], re.compile(row[1]), row[2] if len(row) > 2 else PHRASE) for row in PHRASES)
_TALK_PHRASES = tuple((label, re.compile(pattern), weight) for label, pattern, weight in TALK_PHRASES)

_CUE_INDEX: dict[str, tuple[str, ...]] = {}
for _skill, _words in CUES.items():
    for _word in _words:
        _CUE_INDEX[_word] = (*_CUE_INDEX.get(_word, ()), _skill)

# Athletics by might: forcing, lifting, breaking, hauling. Everything else athletic is agility.
_MIGHT_FORMS = frozenset(
    form for table in (P.STRONG, P.WEAK) for form, hit in table.items() if hit[:3:2] == ("might", "athletics")
)
_MIGHT_RE = re.compile(
    r"\b(?:kick\w*|shoulder\w*|bash\w*) (?:in|down|open|through)\b|"
    r"\bforce\w* \w+ open\b|\bheavy\b|\bjammed\b|\bstuck\b"
)

# Questions: interrogative openers, and verbs that report one "I ask Ossian where…".
_WH = frozenset(
    (
        "what",
        "what's",
        "whats",
        "where",
        "where's",
        "who",
        "who's",
        "whom",
        "whose",
        "why",
        "how",
        "how's",
        "which",
        "when",
    )
)
_AUX = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "am",
        "can",
        "could",
        "do",
        "does",
        "did",
        "should",
        "shall",
        "will",
        "would",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "isn't",
        "aren't",
        "can't",
        "cannot",
        "won't",
        "don't",
        "doesn't",
        "didn't",
        "couldn't",
        "wouldn't",
        "shouldn't",
    ]
)
_AUX_SUBJECT = frozenset(
    [
        "i",
        "we",
        "you",
        "he",
        "she",
        "it",
        "they",
        "there",
        "this",
        "that",
        "anyone",
        "anybody",
        "someone",
        "somebody",
        "anything",
        "something",
        "the",
        "these",
        "those",
        "any",
        "our",
        "my",
        "your",
        "his",
        "her",
        "their",
        "its",
        "one",
    ]
)
# Only the actor's own asking counts ("I ask…", "ask…", "I want to ask…"), not a reported one
# "I play dumb when the inspector asks about the crates".
_ASKING = re.compile(
    r"(?:^|\b(?:i|we|to|and|then|also|,)\s+)"
    r"(?:ask|asks|asked|asking|inquire|inquires|enquire|enquires|query|queries|wonder|wonders|wondering)"
    r"(?:(?:\s+(?!about\b|what\b|where\b|who\b|why\b|how\b|which\b|"
    r"when\b|whether\b|if\b|to\b|for\b)[\w'-]+){0,4}"
    r"\s+(?:about|what|where|who|whom|why|how|which|when|whether|if)\b"
    r"|(?:\s+[\w'-]+){0,4}\s+for (?:a |an |the |any |some |more )?(?:[\w-]+ "
    r")?(?:map|"
    r"directions|information|info|details"
    r"|layout|status|report|update|list|schematics|records|news|rundown|"
    r"briefing|explanation|advice|names?)\b)"
)
_WANT_TO_KNOW = re.compile(
    r"\b(?:want|wants|need|needs|like|'d like|would like) to (?:know|find out|learn|understand)\b"
    r"|\btell (?:me|us) (?:about|what|where|who|why|how|which|when|whether|if|more)\b"
    r"|\b(?:any|no) idea (?:what|where|who|why|how|if)\b|\bdo(?:es)? (?:you|anyone) know\b"
)
_LOOK_OUT = frozenset(
    f
    for w in (
        "look",
        "watch",
        "listen",
        "peer",
        "survey",
        "glance",
        "observe",
        "scan",
        "gaze",
        "eye",
        "smell",
        "scout",
    )
    for f in (w, w + "s", w + "es", w + "ing")
)
_LOOK_INTO = frozenset(
    f
    for w in ("examine", "inspect", "study", "check", "read", "search", "comb")
    for f in (w, w + "s", w + "es")
)
# "Do I spot any snipers?" asks for a roll for noticing; "Can I hack the panel?" asks whether
# one may try, and is answered (the player then says "I hack it").
_ATTEMPT = re.compile(r"^(?:do|did|can|could)\s+(?:i|we)\s+(?:even |still )?(?P<verb>[a-z'-]+)(?P<rest>.*)$")
_ATTEMPT_VERBS = frozenset(("spot", "notice", "sense", "detect", "hear"))
# …and only when what they would notice may be hidden: "Can I see the door?" is answered.
_HIDDEN = re.compile(
    r"\b(?:any|anyone|anybody|anything|someone|something|hidden|signs?|movement|traces?|snipers?|watchers?"
    r"|ambush\w*|traps?|trip ?wires?|lookouts?|guards?|enemies|hostiles|tracks|footprints|danger)\b"
)
# Speech: double quotes, a line opening with a single quote ("'We're with the Choir,' I say"),
# or a speech tag after a closing quote or comma ("…, I say", "…' she whispers").
_QUOTED = re.compile(
    r"[\"\u201c\u201d«»]|^\s*['\u2018]|[,.!?]['\u2019]?\s+(?:i|we|he|she|they|[A-Z][\w-]+)\s+"
    r"(?:say|says|said|whisper|whispers|shout|shouts|reply|replies|ask|asks|call|calls|add|adds|mutter|mutters)\b",
    re.I,
)
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\s+[\u2014\u2013]\s+|\s+-\s+")
_VERB_SLOT_BEFORE = frozenset(
    [
        "and",
        "then",
        "to",
        "or",
        "but",
        "i",
        "we",
        "he",
        "she",
        "they",
        "so",
        "also",
        "before",
        "after",
        "while",
        "i'll",
        "we'll",
        "start",
        "starts",
        "begin",
        "begins",
        "keep",
        "keeps",
        "continue",
        "continues",
    ]
)
# A leading "Kneeling by the box, …", "Smiling, …", "With a grunt, …" sets the scene; the main
# clause after the comma ("I pull the cover") says what is attempted.
_PREFACE = re.compile(
    r"^(?:[\w'-]+(?:ing|ed|ly)|with|without|while|after|before|as|at|in|on|from|under)\b[^,]{0,60},\s+(?=\S)",
    re.I,
)


def _without_preface(text: str) -> str:
    found = _PREFACE.match(text)
    if not found:
        return text
    first = re.sub(r"[^a-z'-]", "", text.split()[0].lower())
    # "bring her in hot, no autopilot" opens with a verb that only looks like a participle.
    if first.endswith(("ing", "ed")) and P.VERB_BASE.get(first, "") == first:
        return text
    return text[found.end() :]


@dataclass
class Reading:
    """What the rules see in an action."""

    question: bool = False
    talk: bool = False
    vocative: str = ""  # the name a leading "Name, …" addresses
    head: str = ""  # the action's first word once its subject and fillers are gone
    plain: str = ""  # the no-roll kind its first word names ("move" for "walk"), if any
    scores: dict[str, float] = field(default_factory=dict)  # evidence per skill or no-roll kind
    cues: dict[str, float] = field(default_factory=dict)  # object and context words per skill
    verb_at: dict[str, int] = field(default_factory=dict)  # skill -> index of the verb that named it


def tokens(text: str) -> list[str]:
    return [t for t in (re.sub(r"[^a-z0-9'-]", "", w.lower().replace("\u2019", "'")) for w in text.split())]


def strip_subject(words: Sequence[str], names: Iterable[str] = ()) -> list[str]:
    """Drop "I try to", "Kira carefully" and the like so the verb leads; a leading capitalised
    name the caller did not know "Mira slices the lock" goes too when a verb follows it."""
    names = {n.lower() for n in names} - {"the", ""}
    out = list(words)
    if len(out) > 1 and out[0][:1].isupper() and out[0].lower() not in P.VERB_BASE:
        following = re.sub(r"[^a-z'-]", "", out[1].lower())
        if following in P.VERB_BASE or following in P.FILLER_SET or following.endswith("ly"):
            names.add(re.sub(r"[^a-z'-]", "", out[0].lower()))
    while out and (
        (w := re.sub(r"[^a-z'-]", "", out[0].lower())) in P.FILLER_SET or w in names or w.strip("',") in names
    ):
        out = out[1:]
    return out


_ADDRESS = re.compile(r"\s*(?:,|:|\s[\u2014\u2013-]\s|[\u2014\u2013])\s*")


def _split_address(text: str) -> tuple[str, str]:
    """("Sister Ameline", "who are you?") from "Sister Ameline, who are you?" (or "— who…")."""
    found = _ADDRESS.search(text)
    return (text[: found.start()], text[found.end() :]) if found else (text, "")


def _vocative(text: str, npc_names: Sequence[str]) -> str:
    """The name in a leading "Sister Ameline, …" / "Hey Ossian, …", or ""."""
    head, rest = _split_address(text)
    if not rest.strip():
        return ""
    words = head.strip(" \"'*\u201c\u201d").split()
    if words and words[0].lower() in (
        "hey",
        "hi",
        "hello",
        "oi",
        "listen",
        "look",
        "okay",
        "ok",
        "so",
        "well",
        "please",
    ):
        words = words[1:]
    if not words or len(words) > 4:
        return ""
    phrase = " ".join(words)
    low = phrase.lower()
    for name in npc_names:
        parts = name.lower().split()
        if low == name.lower() or low in parts or (parts and low.split()[-1] == parts[-1]):
            return name
    first = words[0].lower().rstrip(".")
    if first in P.TITLES or all(w[:1].isupper() for w in words):
        bare = low.split()[0]
        if len(words) == 1 and (
            bare.endswith(("ly", "ing", "ed")) or bare in P.FILLER_SET or bare in P.VERB_BASE
        ):
            return ""
        return phrase
    return ""


def _asks(sentence: str, npc_names: Sequence[str]) -> bool:
    """One sentence asks something: a "?", an interrogative opener, or a reported question."""
    if "?" in sentence:
        return True
    body = _split_address(sentence)[1] if _vocative(sentence, npc_names) else sentence
    low = " ".join(strip_subject(body.split())).lower().replace("\u2019", "'")
    if _ASKING.search(low) or _WANT_TO_KNOW.search(low):
        return True
    words = [w for w in tokens(body) if w]
    while words and words[0] in ("so", "and", "then", "okay", "ok", "well", "now", "hey", "but"):
        words = words[1:]
    if not words:
        return False
    if words[0] in _WH and not (len(words) > 1 and words[1] in ("a", "an")):  # "what a mess"
        return True
    return words[0] in _AUX and len(words) > 1 and words[1] in _AUX_SUBJECT


def sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCES.split(text)) if s]


def is_question(text: str, npc_names: Sequence[str] = ()) -> bool:
    """The action asks something, with or without "?"."""
    return any(_asks(sentence, npc_names) for sentence in sentences(text))


def attempt_in_question(text: str, npc_names: Sequence[str] = ()) -> str:
    """The part of a question that is an attempt all the same, or "": the declared action
    beside it "Anything under the boards? I pry them up and search." and the attempt asked
    as a question ("Can I hack into the registry?", "Do I spot any snipers?") when a check
    verb leads it. Whether it rolls is the caller's call, from the rules' evidence."""
    parts = []
    for sentence in sentences(text):
        if not _asks(sentence, npc_names):
            parts.append(sentence)
            continue
        found = _ATTEMPT.match(sentence.strip(" ?!.\"'*").lower())
        if found and found.group("verb") in _ATTEMPT_VERBS and _HIDDEN.search(found.group("rest")):
            parts.append("spot" + found.group("rest"))
    return " ".join(parts)


def _verb_slots(words: list[str]) -> list[int]:
    """Indices of words that open a clause: the first, and those after "and", "to", a comma…"""
    slots = [0] if words else []
    for i in range(1, len(words)):
        prev = words[i - 1]
        bare = prev.strip(",;:\u2014\u2013-\"'")
        if prev.endswith((",", ";", ":")) or prev in ("\u2014", "\u2013", "-") or bare in _VERB_SLOT_BEFORE:
            j = i
            while j < len(words) and words[j].strip(",.") in P.FILLER_SET:
                j += 1
            if j < len(words):
                slots.append(j)
    return sorted(set(slots))


_SAID = frozenset(("to", "that", "unless", "or", "if", "into", "so"))


def _evidence(words: list[str], bare: list[str], reading: Reading) -> dict[str, float]:
    """Verb, phrase and look-for evidence per label in the (lower-cased) `words`."""
    scores: dict[str, float] = {}

    def add(label: str, weight: float) -> None:
        scores[label] = scores.get(label, 0.0) + weight

    for n, i in enumerate(_verb_slots(words)):
        w = bare[i]
        head = n == 0
        if hit := P.STRONG.get(w):
            add(hit[2], HEAD_VERB if head else LATER_VERB)
            reading.verb_at.setdefault(hit[2], i)
        elif hit := P.WEAK.get(w):
            add(hit[2], WEAK_HEAD if head else WEAK_LATER)
            reading.verb_at.setdefault(hit[2], i)
        elif head:
            for kind, table in (("move", P.MOVE), ("observe", P.LOOK), ("rest", P.REST)):
                if w in table:
                    add(kind, PLAIN_HEAD[kind])
                    break
            else:
                if w in P.VERB_BASE or w in P.TALK:
                    add("act", PLAIN_HEAD["act"])
    low = " ".join(words)
    for label, pattern, weight in _PHRASES + (_TALK_PHRASES if reading.talk else ()):
        if pattern.search(low):
            add(label, weight)
    # "watch the crowd for …", "listen at the vent for voices": looking out for something
    # that may be hidden is perception; looking at what is plainly there is not a roll.
    if re.search(r"\bfor\b", low) and "investigation" not in scores:
        if reading.head in _LOOK_OUT:
            add("perception", LOOK_FOR)
        elif reading.head in _LOOK_INTO:
            add("investigation", LOOK_FOR)
    return scores


def read(text: str, *, names: Iterable[str] = (), npc_names: Sequence[str] = ()) -> Reading:
    """The rules' evidence for `text` (whitespace-normalised), its subject named by `names`."""
    reading = Reading()
    reading.question = is_question(text, npc_names)
    names = {n.lower() for n in names}
    reading.vocative = _vocative(text, npc_names)
    body = _split_address(text)[1] if reading.vocative else _without_preface(text)
    if reading.vocative and set(reading.vocative.lower().split()) & names:
        reading.vocative = ""  # "Kira: I sneak past…" names the speaker, not whom she addresses
    raw = strip_subject(body.split(), names)
    words = [w.lower().replace("\u2019", "'") for w in raw]
    bare = [re.sub(r"[^a-z'-]", "", w) for w in words]
    reading.head = bare[0] if bare else ""
    reading.plain = next(
        (k for k, t in (("move", P.MOVE), ("observe", P.LOOK), ("rest", P.REST)) if reading.head in t), ""
    )
    if not reading.plain and (
        reading.head in P.VERB_BASE and reading.head not in P.STRONG and reading.head not in P.WEAK
    ):
        reading.plain = "act"
    reading.talk = bool(reading.vocative) or bool(_QUOTED.search(text)) or reading.head in P.TALK
    scores = _evidence(words, bare, reading)
    if P.STRONG.get(reading.head, ("", "", ""))[2] in SOCIAL:
        # "I threaten to shoot him", "I convince her to let me hack it": what follows a social
        # verb is what is said, not a second attempt; only the social evidence reads past it.
        cut = next((i for i, w in enumerate(bare) if i and w in _SAID), len(bare))
        before = _evidence(words[:cut], bare[:cut], reading)
        scores = {k: v for k, v in scores.items() if k in SOCIAL or k in before} | {
            k: v for k, v in before.items() if k not in SOCIAL
        }
    cues: dict[str, float] = {}
    for w in set(bare):
        for skill in _CUE_INDEX.get(w, ()):
            cues[skill] = min(CUE_CAP, cues.get(skill, 0.0) + CUE)
    reading.cues = cues
    reading.scores = scores
    return reading


def attribute_for(skill: str, text: str) -> tuple[str, str]:
    """(category, attribute) for a check of `skill`, from its wording: athletics by might when the
    action forces, lifts, breaks or hauls, by agility otherwise."""
    category, attribute = SKILL_READING.get(skill, ("wits", "wits"))
    if skill == "athletics":
        low = text.lower()
        if any(re.sub(r"[^a-z'-]", "", w) in _MIGHT_FORMS for w in low.split()) or _MIGHT_RE.search(low):
            return "might", "might"
    return category, attribute
