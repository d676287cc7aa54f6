"""Reading questions and matching facts, for the offline GM's answers (narrative.llm.offline.answers).

An action splits into clauses ("what made these marks", "how fresh are they"); each clause that
asks something is matched against facts by word overlap on crude stems, weighted by rarity in the
pool, plus concept groups that bridge a question's words and a fact's ("marks" ~ "scored",
"fresh" ~ "hours") and what the wording wants ("how fresh" wants an age, "what made" a cause).
Cheap and deterministic: no model to load. Pure: no Django.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from narrative.llm.offline.context import Person, clean


def _wordlist(text: str) -> list[str]:
    return text.split()


_WORD = re.compile(r"[a-z0-9]+(?:['\u2019-][a-z0-9]+)*")
_STOP = frozenset(
    _wordlist(
        "a an the of to in on at by for from with and or but is are was were be been being am do does "
        "did doing have has had i i'm me my mine we us our you your yours he him his she her it its "
        "they them their this that these those there here what what's who who's whom whose which when "
        "where why how can could would should will shall may might must just so very about into onto "
        "over under off again then than too also any some all each every no not nor only "
        "own same now tell know see look looks please okay ok hey well yes like get got let let's "
        "thing things something anything right really still ask asks say says said way lot bit"
    )
)
_IRREGULAR = {
    "made": "make",
    "did": "do",
    "done": "do",
    "left": "leave",
    "went": "go",
    "gone": "go",
    "took": "take",
    "taken": "take",
    "saw": "see",
    "seen": "see",
    "died": "die",
    "dead": "die",
    "death": "die",
    "men": "man",
    "women": "woman",
    "people": "person",
    "children": "child",
}


def stem(word: str) -> str:
    w = word.lower().replace("\u2019", "'").strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    w = _IRREGULAR.get(w, w)
    for suffix in ("ings", "ing", "edly", "ed", "ies", "es", "s", "ly"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + ("y" if suffix == "ies" else "")
            if suffix in ("ing", "ings", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
                w = w[:-1]  # dragged -> drag, running -> run
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w[:7]


# Verbs that carry no topic once stemmed ("where did the crew go" vs "the relay went quiet").
_STOP_STEMS = frozenset(("go", "come", "get", "be", "have", "do", "happen", "take", "put", "want"))


def stems(text: str) -> set[str]:
    found = (stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1)
    return {s for s in found if s not in _STOP_STEMS}


# Words that answer the same kind of question though they share no stem.
_CONCEPT_WORDS = {
    "marks": "mark marks scored scoring score scratch gouge gouges groove grooves line lines scrape dent "
    "claw furrow track tracks trail scar scorch burn",
    "age": "fresh recent recently old new age ago hour hours day days week minute frost dust warm "
    "still yesterday since long when time",
    "cause": "make cause caused do cut drag dragged tear rip claw weapon tool machine loader clamp "
    "clamps who whoever responsible behind happened",
    "crew": "crew team survey people person staff worker workers personnel survivor survivors everyone "
    "colonist colonists miner miners pilgrim pilgrims",
    "power": "power reactor energy core generator fuel coolant battery grid restart start boot online scram",
    "danger": "danger dangerous threat safe risk hazard trap kill die",
    "way": "way route path exit door airlock hatch passage lift shaft tunnel corridor entrance",
    "ship": "ship cutter vessel shuttle craft freighter",
    "signal": "signal song hymn transmit transmitter transmission broadcast static message voice",
    "cargo": "crate cargo box container package shipment sealed",
}
_CONCEPTS: dict[str, set[str]] = {}
for _concept, _words in _CONCEPT_WORDS.items():
    for _w in _words.split():
        _CONCEPTS.setdefault(stem(_w), set()).add(_concept)


def concepts(word_stems: set[str]) -> set[str]:
    return {c for s in word_stems for c in _CONCEPTS.get(s, ())}


_QWORD = re.compile(
    r"\b(what|what's|whats|who|who's|whose|where|where's|when|why|how|which|is there|are there|"
    r"do you|did you|can you|could you|have you|tell (?:me|us)|explain|describe|show (?:me|us)|"
    r"i (?:want|need) to know|i wonder|any idea)\b",
    re.I,
)
_ASKING = re.compile(r"\b(ask|asks|asking|wonder|wonders|inquire|inquires|enquire|enquires)\b", re.I)
_AUX_START = re.compile(r"^(is|are|was|were|do|does|did|can|could|will|would|have|has|had|should)\b", re.I)
_SPLIT = re.compile(
    r"[?;:]+|\s[\u2014\u2013-]{1,2}\s|\u2014|\u2013|,?\s+and\s+(?=(?:what|who|where|when|why|how|which|is|are|was|were|do|does|"
    r"did|can|could|will)\b)|,\s*(?=(?:what|who|where|when|why|how|which)\b)|\.\s+",
    re.I,
)
SELF = re.compile(
    r"\b(who (?:are|r) (?:you|ya)|what(?:'s| is) your name|your name|who you are|introduce yourself|"
    r"tell (?:me|us) about yourself|what are you)\b",
    re.I,
)
WANT = re.compile(
    r"\b(what do you (?:want|need|seek|after)|what are you after|why are you here|what are you doing|"
    r"what brings you|your business|what(?:'s| is) in it for you|what do you plan)\b",
    re.I,
)
GOALS = re.compile(
    r"\b(objectives?|goals?|missions?|tasks?|orders|to-?do|what (?:now|next)|what (?:should|do|can|must) "
    r"(?:we|i) do|where (?:should|do|can|must) (?:we|i) go|how do (?:we|i) (?:win|finish|get out)|"
    r"what(?:'s| is) (?:the|our) plan|next step|what are we (?:doing|here for))\b",
    re.I,
)
CLOCKS = re.compile(
    r"\b(how (?:long|much time)|time (?:left|remaining)|how (?:bad|close|near)|countdown|clocks?|"
    r"before (?:it|the \w+) (?:blows|goes|fails|breaches|fills))\b",
    re.I,
)
HERE = re.compile(
    r"\b(who(?:'s| is| else is)? (?:here|around|present|with us|nearby|in (?:here|the room))|"
    r"any(?:one|body) (?:here|around|else|nearby)|is (?:any|some)(?:one|body))\b",
    re.I,
)
PAST = re.compile(r"\b(remember|recall|last time|earlier|before|previously|did we|have we|so far)\b", re.I)
_CAUSE = re.compile(
    r"\b(what (?:made|caused|did|happened)|who (?:made|did|caused|left|cut|is behind)|why)\b", re.I
)
_AGE = re.compile(r"\b(how (?:fresh|old|new|recent|long ago|long)|when)\b", re.I)
_PRESS = re.compile(
    r"(\b(press|presses|pressing|insist|insists|demand|demands|the truth|level with|come clean|don'?t lie|"
    r"stop lying|aren'?t (?:you )?telling|hiding|i need to know|tell me everything|or else|spill|"
    r"intimidate|threaten|lean on|grab)\b|!)",
    re.I,
)  # A question about the scene as a whole: the most telling detail is its answer.
GENERAL = re.compile(
    r"\b(what happened|what(?:'s| is) (?:going on|this place|here|around)|what do (?:i|we) see|"
    r"anything (?:unusual|interesting|strange|odd|useful|out of place)|what(?:'s| is) (?:special|wrong))\b",
    re.I,
)

YOU = re.compile(r"\b(you|your|yours|yourself)\b", re.I)
VERBISH = frozenset(
    _wordlist(
        "keep find move bring get make protect stop save learn sell buy escape reach hold guard "
        "deliver recover destroy understand take see leave return finish win open close seal break "
        "smuggle hide expose warn lead help end start run"
    )
)


@dataclass
class Clause:
    text: str
    stems: set[str]
    question: bool


@dataclass
class Ask:
    """An action read as questions: its clauses, all its content words (the topic a pronoun
    like "they" points back to), and whether it presses for an answer."""

    clauses: list[Clause]
    topic: set[str]
    pressed: bool
    questions: list[Clause] = field(default_factory=list)


def read_ask(text: str, skip: set[str] = frozenset()) -> Ask:
    """Split an action into clauses and mark the ones that ask something. `skip`: stems of
    names (the addressee) that say nothing about the topic."""
    clean_text = clean(text).strip("*")
    parts = [p.strip(" ,.!\"'“”") for p in _SPLIT.split(clean_text)]
    ends_with_q = clean_text.rstrip("\"'”* ").endswith("?")
    clauses = []
    for part in (p for p in parts if p):
        # "What made these marks", "tell me about the crate", "is it safe": a clause that opens
        # like a question. Mid-clause question words count only in a question or after "ask":
        # "I check what's inside the crate" asks nothing; "I ask Hale what happened" does.
        opens = _QWORD.match(part) or _AUX_START.match(part)
        asking = (ends_with_q or _ASKING.search(part)) and _QWORD.search(part)
        clauses.append(Clause(part, stems(part) - skip, bool(opens or asking)))
    if ends_with_q and clauses and not any(c.question for c in clauses):
        clauses[-1].question = True
    topic = set().union(*(c.stems for c in clauses)) if clauses else set()
    ask = Ask(clauses, topic, bool(_PRESS.search(clean_text)))
    questions = [c for c in clauses if c.question]
    # "Tell me the truth: what's in the crate?" asks one thing; a clause with nothing of its
    # own to ask about ("tell me the truth", "well?") only sets the tone of the next one.
    meaningful = [
        c
        for c in questions
        if c.stems or wants(c) or SELF.search(c.text) or WANT.search(c.text) or asks_game(c.text)
    ]
    ask.questions = meaningful or questions[-1:]
    return ask


def asks_game(text: str) -> bool:
    return bool(GOALS.search(text) or HERE.search(text) or CLOCKS.search(text))


# ---- facts and their relevance -----------------------------------------------------------------


@dataclass
class Fact:
    text: str
    source: str  # detail, scene, summary, memory, person, knows
    weight: float = 1.0
    person: Person | None = None
    pressed: bool = False


def sentence(text: str) -> str:
    text = clean(text)
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?…\"'”" else text + "."


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", clean(text)) if s]


def wants(clause: Clause) -> set[str]:
    """The kind of fact a question asks for, from its wording ("how fresh" wants an age)."""
    out = set()
    if _CAUSE.search(clause.text):
        out.add("cause")
    if _AGE.search(clause.text):
        out.add("age")
    return out


def rank(clause: Clause, topic: set[str], facts: list[Fact]) -> list[tuple[float, int, Fact]]:
    """Facts by relevance to one question (best first; only those that share something)."""
    pool = [stems(f.text) for f in facts]
    df: dict[str, int] = {}
    for fs in pool:
        for s in fs:
            df[s] = df.get(s, 0) + 1
    n = len(facts) or 1
    own = clause.stems
    near = topic - own
    asked_concepts, near_concepts, wanted = concepts(own), concepts(near), wants(clause)
    scored = []
    for i, (fact, fs) in enumerate(zip(facts, pool, strict=True)):
        idf = {s: math.log(1 + n / df[s]) for s in fs}
        fc = concepts(fs)
        hits = sum(idf[s] for s in own & fs)
        hits += 0.5 * sum(idf[s] for s in near & fs)
        hits += 0.7 * len(asked_concepts & fc) + 0.3 * len((near_concepts - asked_concepts) & fc)
        if not hits and own:
            continue
        # "When did you get here?" names nothing; what it wants (a time) still picks the fact.
        hits += (0.8 if hits else 1.0) * len(wanted & fc)
        if not hits:
            continue
        scored.append((hits * fact.weight, -i, fact))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return scored


THRESHOLD = 0.9
