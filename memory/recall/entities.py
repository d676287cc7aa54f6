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


_KIN = "sister|brother|partner|mentor|son|daughter|wife|husband|cousin|father|mother|boss|contact"
_LINK = re.compile(
    r"\b(?:and (?:who|where|what|when|which|how|whose)|the (?:person|one|man|woman|ship|crew) (?:who|that)|"
    r"some(?:one|body)|whoever|their|they|them|that (?:ship|person|crate)|"
    r"it (?:really )?(?:was )?(?:meant|for)|"
    rf"(?:{_KIN}) of|'s (?:old )?(?:{_KIN})|"
    r"on its way|end(?:ed)? up|headed|bound)\b",
    re.I,
)


def asks_for_link(text: str) -> bool:
    """Whether a question needs two memories joined by someone or something the first names:
    "who sold us the crate, and who was it for?", "where does Hale's sister drink?"."""
    return _LINK.search(text.replace("\u2019", "'")) is not None
