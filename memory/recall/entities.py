"""Names in a question — pure, no Django.

Two sources of names, both matched exactly (whole words, case-insensitive for known names):

- **known names**: the characters, NPCs, factions, places and items the game state and the
  running mission name (memory/recall/search.py gathers them). A known name is also found by
  any one of its distinctive words ("Hale" finds "Captain Mira Hale"), unless that word is
  common English or a title;
- **proper nouns in the question itself**: capitalised words not at the start of a sentence,
  and runs of them ("Vashti Ring"), plus tokens that look like codes ("V4-2140", "12.5").

The caller boosts memories that contain them, fetches a memory list per name for the second
round (multi-hop), and counts how much of a question a memory covers (`content_terms`) for the
re-ranker and the confidence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# Words that start a question or a sentence, and titles that do not name anyone by themselves.
STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves did didn't doesn't don't isn't
    wasn't weren't won't can't couldn't shouldn't wouldn't let tell say said says also ever still
    last first time again us one two three get got go went going come came know knew think thought
    see saw seen meet met give gave given take took made make want wanted need needed like
    captain commander lieutenant doctor dr mr mrs ms sir madam lord lady agent officer chief
    the a an yes no ok okay please thanks hey hi hello""".split()  # noqa: SIM905 - a word list reads better as prose
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[A-Za-z]|[A-Za-z]")
_CODE = re.compile(r"(?<![\w.-])(?=[\w.-]*\d)[A-Za-z0-9][\w.-]*[A-Za-z0-9](?![\w-])|\b\d\b")
_CAPS_RUN = re.compile(r"\b[A-Z][\w'\u2019-]*(?:\s+(?:of\s+the\s+|of\s+|the\s+)?[A-Z][\w'\u2019-]*)*")


def _norm(word: str) -> str:
    return word.lower().replace("\u2019", "'").removesuffix("'s")


def words(text: str) -> list[str]:
    return [_norm(w) for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """A light suffix strip so "hid"/"hides", "ships"/"ship" meet; not a real stemmer."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if (
            len(word) > len(suffix) + (2 if suffix == "s" else 3)
            and word.endswith(suffix)
            and not word.endswith("ss")
        ):
            root = word[: -len(suffix)]
            if suffix in ("ing", "ed") and len(root) > 3 and root[-1] == root[-2] and root[-1] not in "lsz":
                root = root[:-1]  # "slipped" -> "slip", but "passed" -> "pass"
            return root
    return word


# ~8 KB per entry (a memory of ~100 distinct words): 2,048 texts hold about 16 MB per process.
@functools.lru_cache(maxsize=2048)
def stems(text: str) -> frozenset[str]:
    """A memory's words, stemmed. Cached per text: a campaign's memories come back query after
    query, and stemming the candidates' words was most of the re-ranker's time."""
    return frozenset(stem(w) for w in words(text))


def content_terms(text: str) -> list[str]:
    """The question's words that carry meaning (stop words out), stemmed, de-duplicated."""
    return list(dict.fromkeys(stem(w) for w in words(text) if w not in STOP and len(w) > 1))


def codes(text: str) -> list[str]:
    """Tokens with a digit in them: docking codes, coordinates, prices, dates."""
    return list(dict.fromkeys(m.group(0).rstrip(".") for m in _CODE.finditer(text)))


def proper_nouns(text: str) -> list[str]:
    """Capitalised runs in `text` that are not just a sentence's first (stop) word."""
    out: list[str] = []
    for m in _CAPS_RUN.finditer(text):
        run = m.group(0).strip()
        parts = run.split()
        while parts and _norm(parts[0]) in STOP:  # "When", "The", "Captain" are not names
            parts = parts[1:]
        while parts and parts[-1].lower() in ("of", "the"):
            parts = parts[:-1]
        if not parts:
            continue
        name = " ".join(parts)
        start = m.start() + run.find(parts[0])
        sentence_start = start == 0 or re.search(r"[.!?:;\"“]\s*$", text[:start]) is not None
        if sentence_start and len(parts) == 1 and _norm(parts[0]) in STOP:
            continue
        out.append(name.removesuffix("'s").removesuffix("\u2019s"))
    return list(dict.fromkeys(out))


def aliases(names: Iterable[str]) -> dict[str, str]:
    """lower-case alias → canonical name: each name itself and its distinctive words."""
    out: dict[str, str] = {}
    by_word: dict[str, set[str]] = {}
    for name in names:
        name = name.strip()
        if len(name) < 2:
            continue
        out.setdefault(name.lower(), name)
        for w in words(name):
            if w not in STOP and len(w) > 2:
                by_word.setdefault(w, set()).add(name)
    for w, owners in by_word.items():
        if len(owners) == 1:  # a word two names share picks neither
            out.setdefault(w, next(iter(owners)))
    return out


def find(text: str, known: Iterable[str] = ()) -> list[str]:
    """The names in `text`: known names (by name or a distinctive word) first, longest first,
    then proper nouns that are not part of a known name already found."""
    table = aliases(known)
    low = " " + " ".join(words(text)) + " "
    found: list[str] = []
    for alias in sorted(table, key=len, reverse=True):
        if f" {' '.join(words(alias))} " in low and table[alias] not in found:
            found.append(table[alias])
    covered = " ".join(found).lower()
    for noun in proper_nouns(text):
        if noun.lower() not in covered and noun not in found:
            found.append(noun)
    return found


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as whole words (case-insensitive)."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.I) is not None


_SPEAKER = re.compile(r"^([^:\n]{1,60}?)\s+(?:acted|said|says|whispered|noted|wrote)\s*:\s*")
_DETERMINER = re.compile(r"\b(?:a|an|the|his|her|their|its|my|our|your)\s+", re.I)
_PHRASE_WORD = re.compile(r"\s*([A-Za-z][\w'\u2019-]*)")
PHRASE_WORDS = 3


def noun_phrases(text: str) -> list[str]:
    """What follows a determiner, up to the first stop word: "a drive coil at the Brass Compass"
    gives "drive coil" and "Brass Compass". Items and places are often written in lower case, so
    the second round cannot find them as proper nouns."""
    out: list[str] = []
    for m in _DETERMINER.finditer(text):
        pos, parts = m.end(), []
        while len(parts) < PHRASE_WORDS and (w := _PHRASE_WORD.match(text, pos)) is not None:
            if _norm(w.group(1)) in STOP or (parts and parts[0][0].isupper() != w.group(1)[0].isupper()):
                break  # a stop word, or a name after a common noun ("my sister Ulla"): two things
            parts.append(w.group(1))
            pos = w.end()
            if pos < len(text) and text[pos] not in " \t":
                break  # punctuation ends the phrase
        phrase = " ".join(parts).removesuffix("'s").removesuffix("\u2019s")
        if phrase and (len(parts) > 1 or len(phrase) > 3):
            out.append(phrase)
    return list(dict.fromkeys(out))


def body(text: str) -> str:
    """What a memory says, without who said or did it, normalised ("Hale said: “Watch your
    pockets.”" and "Vex said: “Watch your pockets.”" say the same)."""
    m = _SPEAKER.match(text)
    return " ".join(words(text[m.end() :] if m else text))


def link_names(text: str) -> list[str]:
    """The names and things a memory could link a question to another memory through: proper
    nouns and noun phrases of what was said or done, then whoever said or did it ("Hale said: my
    sister Ulla…" links on to Ulla first)."""
    m = _SPEAKER.match(text)
    body, speaker = (text[m.end() :], m.group(1)) if m else (text, "")
    out: list[str] = []
    for name in [*proper_nouns(body), *noun_phrases(body), *proper_nouns(speaker)]:
        if name.lower() not in {o.lower() for o in out}:
            out.append(name)
    return out


def _near(a: str, b: str) -> bool:
    """The same word, give or take a stem or one slip of the keyboard (a letter swapped,
    dropped, doubled or changed) in words of four letters or more."""
    if a == b or stem(a) == stem(b):
        return True
    if min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def said_in(name: str, question_words: Iterable[str]) -> bool:
    """Whether the question already says `name`: a proper name by any of its distinctive words
    (typos forgiven: "Birx" is Brix), a lower-case phrase by all of its words."""
    asked = [w for w in question_words if w not in STOP]
    mine = [w for w in words(name) if w not in STOP and len(w) > 1]
    if not mine:
        return True
    hits = [any(_near(w, q) for q in asked) for w in mine]
    return any(hits) if name[:1].isupper() else all(hits)


_ASK = re.compile(r"(?:;|\s[\u2014\u2013-]\s|,\s*and\b|,\s*(?=(?:who|where|what|when|which|how)\b))", re.I)
_TOKEN = re.compile(r"[\w'\u2019-]+|[^\w\s]")


def rest_of(question: str, answered: str) -> str:
    """What is left of a two-part question once a memory has answered its first part: the last
    clause ("…owes the Cartel; where are they holed up?" -> "where are they holed up?"), or
    without one, the question less the words the memory shares with it (typos forgiven)."""
    parts = _ASK.split(question)
    if len(parts) > 1 and len(words(parts[-1])) >= 2:
        return parts[-1].strip()
    said = set(words(answered)) | {c.lower() for c in codes(answered)}
    kept = [
        t for t in _TOKEN.findall(question) if _norm(t) in STOP or not any(_near(_norm(t), w) for w in said)
    ]
    return " ".join(kept)


_KIN = "sister|brother|partner|mentor|son|daughter|wife|husband|cousin|father|mother|boss|contact"
_LINK = re.compile(
    r"\b(?:and (?:who|where|what|when|which|how|whose)|the (?:person|one|man|woman|ship|crew) (?:who|that)|"
    r"some(?:one|body)|whoever|their|they|them|that (?:ship|person|crate)|"
    r"it (?:really )?(?:was )?(?:meant|for)|"
    rf"(?:{_KIN}) of|'s (?:old )?(?:{_KIN})|"
    r"on its way|end(?:ed)? up|headed|bound)\b",
    re.I,
)


_ROLE = re.compile(r"\bis an? ((?:[a-z][\w-]*\s?){1,3}?)(?=\s+(?:who|that|from|on|at|in|for)\b|[,.;]|$)")


def names_by_role(question: str, text: str) -> bool:
    """Whether the question names someone by the role `text` gives them: "the arms dealer"
    when the memory says "Gilda Embry is a arms dealer who…". Then the question is a link too:
    the rest of it is about Gilda Embry, in memories that never say "arms dealer"."""
    low = " " + " ".join(words(question)) + " "
    return any(f" the {' '.join(words(role))} " in low for role in _ROLE.findall(text))


def asks_for_link(text: str) -> bool:
    """Whether a question needs two memories joined by someone or something the first names:
    "who sold us the crate, and who was it for?", "where does Hale's sister drink?"."""
    return _LINK.search(text.replace("\u2019", "'")) is not None
