"""The offline summarizer: condenses a stretch of play instead of pasting it. Pure, deterministic.

`narrative.summaries` sends the play as one line per public event, each tagged with what it is
(`LINE_TAGS`): "[action] Kira Vance: I hack the airlock panel", "[check] Kira Vance: hacking —
success", "[objective done] Restore power", "[clock] Reactor overload: 3/6", "[loot] Kira Vance:
medpatch x1", "[npc] Sister Ameline: …", "[gm] …". From that `condense` writes a short third-person
past-tense account: who did what (each character's actions rewritten — "hacked the airlock panel",
"tried to pick the lock but failed", "asked about the crew"), then what changed (scenes, objectives,
clocks, loot, levels, NPCs met, the mission's end). Repeats are folded, nothing is said twice, and
no first person survives. Text with no tagged lines (a recap of narration) gets an extractive
summary: its most representative sentences, in order, never the same sentence twice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from narrative import prompts
from narrative.llm import base
from narrative.llm.offline import phrases as P

LINE_TAGS = (
    "action",
    "gm",
    "check",
    "objective done",
    "objective new",
    "objective failed",
    "clock",
    "loot",
    "level",
    "npc",
    "scene",
    "twist",
    "status",
    "mission done",
    "mission failed",
)
_LINE = re.compile(r"^\[(?P<tag>[a-z ]+)\]\s*(?P<body>.*)$")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*")
MAX_ACTS_PER_CHARACTER = 3
MAX_PHRASE_WORDS = 12

# ---- turning "I hack the panel" into "hacked the panel" ------------------------------------

_IRREGULAR = {
    "be": "was",
    "am": "was",
    "is": "was",
    "are": "were",
    "have": "had",
    "has": "had",
    "do": "did",
    "does": "did",
    "go": "went",
    "goes": "went",
    "come": "came",
    "get": "got",
    "give": "gave",
    "take": "took",
    "make": "made",
    "say": "said",
    "see": "saw",
    "know": "knew",
    "think": "thought",
    "find": "found",
    "tell": "told",
    "ask": "asked",
    "run": "ran",
    "hold": "held",
    "keep": "kept",
    "leave": "left",
    "feel": "felt",
    "bring": "brought",
    "buy": "bought",
    "catch": "caught",
    "fight": "fought",
    "seek": "sought",
    "teach": "taught",
    "throw": "threw",
    "draw": "drew",
    "drive": "drove",
    "ride": "rode",
    "rise": "rose",
    "write": "wrote",
    "speak": "spoke",
    "steal": "stole",
    "break": "broke",
    "choose": "chose",
    "freeze": "froze",
    "wake": "woke",
    "swim": "swam",
    "sing": "sang",
    "ring": "rang",
    "sink": "sank",
    "drink": "drank",
    "begin": "began",
    "fly": "flew",
    "hide": "hid",
    "bite": "bit",
    "shake": "shook",
    "stand": "stood",
    "understand": "understood",
    "sit": "sat",
    "lie": "lay",
    "lay": "laid",
    "pay": "paid",
    "send": "sent",
    "spend": "spent",
    "build": "built",
    "lend": "lent",
    "bend": "bent",
    "lose": "lost",
    "shoot": "shot",
    "light": "lit",
    "slide": "slid",
    "sneak": "snuck",
    "dig": "dug",
    "stick": "stuck",
    "strike": "struck",
    "swing": "swung",
    "hang": "hung",
    "win": "won",
    "creep": "crept",
    "sleep": "slept",
    "sweep": "swept",
    "weep": "wept",
    "leap": "leapt",
    "kneel": "knelt",
    "deal": "dealt",
    "mean": "meant",
    "meet": "met",
    "read": "read",
    "lead": "led",
    "feed": "fed",
    "flee": "fled",
    "grab": "grabbed",
    "put": "put",
    "set": "set",
    "cut": "cut",
    "hit": "hit",
    "let": "let",
    "shut": "shut",
    "quit": "quit",
    "split": "split",
    "spread": "spread",
    "cast": "cast",
    "hurt": "hurt",
    "fall": "fell",
    "forget": "forgot",
    "tear": "tore",
    "wear": "wore",
    "swear": "swore",
    "bear": "bore",
    "blow": "blew",
    "grow": "grew",
    "overhear": "overheard",
    "hear": "heard",
    "will": "would",
    "can": "could",
    "shall": "should",
    "may": "might",
}
_NO_DOUBLE_ENDINGS = "wxy"
_DOUBLES = frozenset(("admit", "commit", "control", "patrol", "prefer", "refer", "regret", "equip", "rebel"))
_AUX = frozenset(
    (
        "are",
        "is",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "has",
        "have",
        "had",
        "may",
        "might",
        "shall",
    )
)
_WH = frozenset(("what", "where", "who", "whom", "whose", "how", "why", "when", "which"))
# First person and the table's "we" become third person (plural "they" keeps it neutral).
_SWAP = {
    "i": "they",
    "i'm": "they were",
    "i've": "they had",
    "i'll": "they would",
    "i'd": "they would",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "we": "they",
    "we're": "they were",
    "we've": "they had",
    "we'll": "they would",
    "us": "them",
    "our": "their",
    "ours": "theirs",
    "ourselves": "themselves",
    "let's": "they would",
}
_LEADS = ("i", "we", "let's", "i'll", "we'll", "i'm", "we're", "then", "now", "so", "and", "quickly")
_CLAUSE_BREAK = re.compile(r"\s*(?:[\u2014\u2013;:]|\s-\s|\.\s+|\?\s*|!\s*|,\s+(?:then|and then)\s+)\s*")


def past_tense(verb: str) -> str:
    """The simple past of an English verb (its base or third-person form)."""
    word = verb.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    base = P.VERB_BASE.get(word, _base_form(word))
    if base in _IRREGULAR:
        return _IRREGULAR[base]
    if base.endswith("e"):
        return base + "d"
    if len(base) > 2 and base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    if base in _DOUBLES or (
        _syllables(base) == 1
        and len(base) >= 3
        and base[-1] not in "aeiou" + _NO_DOUBLE_ENDINGS
        and base[-2] in "aeiou"
        and base[-3] not in "aeiou"
    ):
        return base + base[-1] + "ed"
    return base + "ed"


def _base_form(word: str) -> str:
    """'hacks' → 'hack', 'searches' → 'search', 'tries' → 'try'; a base form comes back as is."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _syllables(word: str) -> int:
    return max(1, len(re.findall(r"[aeiouy]+", word.rstrip("e"))))


def _swap(words: list[str]) -> list[str]:
    out = []
    for w in words:
        lower = w.lower().strip(",.")
        swapped = _SWAP.get(lower)
        out.append(swapped if swapped is not None else ("you" if lower == "you" else w))
    return out


def _trim(words: list[str], limit: int = MAX_PHRASE_WORDS) -> str:
    """At most `limit` words, cut back to before a dangling connective."""
    words = [w for w in words if w]
    if len(words) > limit:
        words = words[:limit]
        while words and words[-1].lower().strip(",") in P.STOP_SET | {"and", "or", "but", "the", "a", "an"}:
            words.pop()
    return " ".join(words).strip(" ,")


def _question(clause: str) -> str:
    """'what made these marks' → 'asked what made these marks'; 'can we trust her' → 'asked
    whether they could trust her'; 'what are our objectives right now' → 'asked about their
    objectives right now'."""
    words = clause.split()
    if not words:
        return ""
    first = words[0].lower()
    if first in _WH:
        if len(words) > 2 and words[1].lower() in _AUX:
            rest = _swap(words[2:])
            if len(rest) == 1 and rest[0].lower() in ("you", "they", "them", "it", "this", "that"):
                subject = "who they were" if first == "who" else f"{first} it was"
                return f"asked {subject}"
            return f"asked about {_trim(rest, 8)}"
        return f"asked {first} {_trim(_swap(words[1:]), 8)}".strip()
    if first in _AUX and len(words) > 2:
        aux = _IRREGULAR.get(first, first) if first not in ("did", "do", "does") else ""
        subject = _swap([words[1]])[0]
        rest = _swap(words[2:])
        return f"asked whether {' '.join(x for x in (subject, aux, _trim(rest, 7)) if x)}"
    return f"asked about {_trim(_swap(words), 8)}"


_VOCATIVE = re.compile(r"^(?P<who>(?:[A-Z][\w'-]*\.?\s+){0,3}[A-Z][\w'-]*),\s+(?P<rest>.+)$")


def _conjugate(words: list[str]) -> tuple[list[str], list[str]]:
    """(past, base) of a verb phrase: its head verb, and any verb after "and" ("stop and plan
    the route" → "stopped and planned the route"), put in the past; pronouns made third person."""
    head = words[0].lower().strip(",")
    past = [past_tense(head)]
    base = [P.VERB_BASE.get(head, _base_form(head))]
    rest = _swap(words[1:])
    out_past, out_base = [], []
    after_and = False
    for w in rest:
        lower = w.lower()
        if after_and and lower in P.VERB_BASE:
            out_past.append(past_tense(lower))
            out_base.append(P.VERB_BASE[lower])
        else:
            out_past.append(w)
            out_base.append(w)
        after_and = lower == "and"
    return past + out_past, base + out_base


def act_phrase(text: str, name: str = "") -> tuple[str, str]:
    """One action as (past-tense phrase, base phrase), third person: "I hack the panel" →
    ("hacked the panel", "hack the panel"). The base phrase is "" for a question or speech."""
    text = " ".join(text.replace("\u2019", "'").split())
    for prefix in (name, name.split(" ")[0] if name else ""):
        if prefix and text.lower().startswith(prefix.lower() + " "):
            text = text[len(prefix) + 1 :]
            break
    quoted = re.match(r'^["\u201c](.+?)["\u201d]', text)
    if quoted:
        said = quoted.group(1).split()
        if any(w.lower().strip(",.!?") in _SWAP for w in said) or len(said) > 8:
            return "spoke up", ""
        return f"said \u201c{' '.join(said).rstrip(',.!?')}\u201d", ""
    addressee = ""
    vocative = _VOCATIVE.match(text)
    if vocative and vocative.group("who").split()[0].lower() not in {*_SWAP, "then", "now", "so"}:
        addressee, text = vocative.group("who"), vocative.group("rest")
    clauses = [c for c in _CLAUSE_BREAK.split(text) if c.strip()]
    if not clauses:
        return "", ""
    question = text.rstrip().endswith("?") or clauses[0].split()[0].lower() in _WH
    words = clauses[0].split()
    while words and words[0].lower().strip(",") in _LEADS:
        words = words[1:]
    if not words:
        return "", ""
    head = words[0].lower().strip(",")
    if head in _WH or (question and head in _AUX):
        asked = _question(" ".join(words).split(",")[0])
        if addressee:
            asked = asked.replace("asked ", f"asked {addressee} ", 1)
        return asked, ""
    # An adverb before the verb ("carefully pry") stays where it is.
    adverb = []
    if head.endswith("ly") and len(words) > 1:
        adverb, words = [words[0]], words[1:]
        head = words[0].lower().strip(",")
    tried = False
    if head in ("try", "tries", "attempt", "attempts") and len(words) > 2 and words[1].lower() == "to":
        words, tried = words[2:], True
    past_words, base_words = _conjugate(words)
    base = _trim([*adverb, *base_words])
    past = f"tried to {base}" if tried else _trim([*adverb, *past_words])
    if addressee:  # "Hale, open the door": an order or a request to someone present
        past = f"told {addressee} to {base}"
    if question and len(clauses) > 1:
        asked = _question(clauses[-1].rstrip("?").split(",")[0])
        if asked:
            past = f"{past} and {asked}"
    return past, base


# ---- the account -------------------------------------------------------------------------


@dataclass
class _Act:
    past: str
    base: str
    times: int = 1
    outcomes: list[str] = field(default_factory=list)
    awaiting: bool = True  # the next check line of this character is this attempt's


@dataclass
class _Character:
    name: str
    acts: list[_Act] = field(default_factory=list)
    seen: dict[str, _Act] = field(default_factory=dict)


def _norm(text: str) -> str:
    return " ".join(_TOKEN.findall(text.lower()))


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (", and " if len(items) > 2 else " and ") + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def parse(text: str) -> list[tuple[str, str]]:
    """The tagged lines of `text`, as (tag, body); untagged lines are dropped."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m and m.group("tag") in LINE_TAGS:
            out.append((m.group("tag"), " ".join(m.group("body").split())))
    return out


def _split_named(body: str) -> tuple[str, str]:
    name, sep, rest = body.partition(": ")
    return (name.strip(), rest.strip()) if sep else ("", body.strip())


def condense(text: str, *, max_words: int = 120) -> str:
    """The summary of a stretch of play (see the module docstring). "" for no text."""
    lines = parse(text)
    if not any(tag != "gm" for tag, _ in lines):
        return extractive(text if not lines else " ".join(body for _, body in lines), max_words=max_words)
    people: dict[str, _Character] = {}
    last_act: dict[str, list[str]] = {}
    scenes: list[str] = []
    done: list[str] = []
    opened: list[str] = []
    failed: list[str] = []
    clocks: dict[str, str] = {}
    loot: dict[str, list[str]] = {}
    levels: list[str] = []
    npcs: list[str] = []
    twists: list[str] = []
    statuses: list[str] = []
    ending = ""
    for tag, body in lines:
        if tag == "action":
            name, action = _split_named(body)
            name = name or "Someone"
            person = people.setdefault(name, _Character(name))
            past, base = act_phrase(action, name)
            if not past:
                continue
            key = _norm(base or past)
            act = person.seen.get(key)
            if act is not None:  # the same thing again: one line, counted
                act.times += 1
                act.awaiting = True
            else:
                act = person.seen[key] = _Act(past, base)
                person.acts.append(act)
            last_act[name] = act
        elif tag == "check":
            name, result = _split_named(body)
            outcome = result.rsplit("—", 1)[-1].strip().lower() if "—" in result else result.lower()
            act = last_act.get(name)
            if act is not None and act.awaiting:
                act.outcomes.append(outcome)
                act.awaiting = False
        elif tag == "scene":
            if body and (not scenes or scenes[-1] != body):
                scenes.append(body)
        elif tag == "objective done":
            done.append(body.rstrip("."))
        elif tag == "objective new":
            opened.append(body.rstrip("."))
        elif tag == "objective failed":
            failed.append(body.rstrip("."))
        elif tag == "clock":
            label, _, value = body.rpartition(":")
            if label:
                clocks[label.strip()] = value.strip()
        elif tag == "loot":
            name, items = _split_named(body)
            bucket = loot.setdefault(name or "The party", [])
            bucket += [i.strip() for i in items.split(",") if i.strip() and i.strip() not in bucket]
        elif tag == "level":
            if body not in levels:
                levels.append(body)
        elif tag == "npc":
            name, _ = _split_named(body)
            if name and name not in npcs:
                npcs.append(name)
        elif tag == "twist":
            twists.append(body)
        elif tag == "status":
            if body not in statuses:
                statuses.append(body)
        elif tag in ("mission done", "mission failed"):
            verdict = "The mission was completed" if tag == "mission done" else "The mission failed"
            ending = f"{verdict}{': ' + body.rstrip('.') if body else ''}"
    sentences = [_person_sentence(p) for p in people.values() if p.acts]
    if len(scenes) == 2:
        sentences.append(f"The party moved from {scenes[0]} to {scenes[1]}")
    elif scenes:
        sentences.append(
            f"The party moved through {_join(scenes)}" if scenes[1:] else f"The party was in {scenes[0]}"
        )
    if npcs:
        sentences.append(f"They met {_join(npcs)}")
    if done:
        sentences.append(f"Objective completed: {'; '.join(_unique(done))}")
    if failed:
        sentences.append(f"Objective failed: {'; '.join(_unique(failed))}")
    if opened:
        sentences.append(f"New objective: {'; '.join(_unique(opened))}")
    for label, value in clocks.items():
        sentences.append(f"The {label} clock stood at {value}")
    for name, items in loot.items():
        sentences.append(f"{name} gained {_join(items)}")
    sentences += levels
    if twists:
        sentences.append(f"A twist: {_trim(twists[-1].split(), 20)}")
    sentences += statuses[:2]
    if ending:
        sentences.append(ending)
    return _limit(_unique([_sentence(s) for s in sentences if s]), max_words)


_FAILED = ("failure", "critical failure", "critical_failure")


def _times(n: int) -> str:
    return "twice" if n == 2 else f"{n} times"


def _act_phrase(act: _Act) -> str:
    """One (possibly repeated) action with how it went: its last check decides."""
    last = act.outcomes[-1] if act.outcomes else ""
    if last in _FAILED and act.base:
        return f"tried to {act.base}{' ' + _times(act.times) if act.times > 1 else ''} but failed"
    phrase = f"{act.past}, brilliantly" if last in ("critical success", "critical_success") else act.past
    if act.times > 1:
        phrase += " on the second try" if act.times == 2 and any(o in _FAILED for o in act.outcomes) else ""
        phrase += f" ({_times(act.times)})" if not phrase.endswith("try") else ""
    return phrase


def _person_sentence(person: _Character) -> str:
    phrases = [_act_phrase(a) for a in person.acts[:MAX_ACTS_PER_CHARACTER]]
    extra = len(person.acts) - MAX_ACTS_PER_CHARACTER
    tail = f", and {extra} more thing{'s' if extra > 1 else ''}" if extra > 0 else ""
    return f"{person.name} {_join(phrases)}{tail}"


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = _norm(item)
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _limit(sentences: list[str], max_words: int) -> str:
    out: list[str] = []
    count = 0
    for s in sentences:
        n = len(s.split())
        if out and count + n > max_words:
            break
        out.append(s)
        count += n
    text = " ".join(out)
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + "…"


def extractive(text: str, *, max_words: int = 120) -> str:
    """Prose summarised by its most representative sentences, in order, each once."""
    text = " ".join(text.split())
    sentences = _unique([s for s in re.split(r"(?<=[.!?])\s+", text) if s])
    if len(sentences) <= 3:
        return _limit(sentences, max_words)
    freq = Counter(w for w in _TOKEN.findall(text.lower()) if len(w) > 3)

    def score(s: str) -> float:
        words = [w for w in _TOKEN.findall(s.lower()) if len(w) > 3]
        return sum(freq[w] for w in words) / (len(words) + 2)

    best = sorted(range(1, len(sentences)), key=lambda i: (-score(sentences[i]), i))[:2]
    return _limit([sentences[i] for i in sorted([0, *best])], max_words)


def summarize(request: base.ChatRequest) -> str:
    """OfflineNarrator.complete (the summarizer role): the last user message condensed. Data
    blocks (narrative.prompts) fence the play; the summary is of what is inside."""
    user = next((m for m in reversed(request.messages or []) if getattr(m, "role", "") == "user"), None)
    content = getattr(user, "content", "")
    text = prompts.unwrap(content) if isinstance(content, str) else ""
    return condense(text, max_words=max(20, int((request.max_tokens or 300) * 0.75)))
