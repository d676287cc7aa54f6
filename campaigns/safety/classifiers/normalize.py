# ruff: noqa: RUF001, RUF002 - look-alike letters are the point of this module
"""Text as the lexicon reads it: evasions undone. Pure: no Django.

- NFKC folds full-width and mathematical letters ("ｋｉｌｌ", "𝐤𝐢𝐥𝐥") to plain ones; casefold;
- zero-width and soft-hyphen characters dropped ("ki\u200bll");
- look-alike letters from Cyrillic and Greek mapped to Latin ("kіll" with a Cyrillic і);
- leetspeak inside words that also hold letters ("k1ll", "$uicide", "b0mb"), never in plain
  numbers ("2d6+3", "1701");
- letters spelled out one by one ("k i l l", "k.i.l.l", "k-i-l-l") joined back.

Repeated letters ("kiiiill") are handled by the lexicon's patterns, which allow any letter to
repeat.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)

# Cyrillic and Greek letters that look like Latin ones (lower case; text is casefolded first).
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
        "ɡ": "g", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
        "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ß": "ss",
    }
)  # fmt: skip

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
)
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|]+")
_HAS_LETTER = re.compile(r"[a-z]")
_HAS_LEET = re.compile(r"[0-9@$!|]")
# Three or more single letters, each followed by one separator: "k i l l", "k.i.l.l", "k-i-l-l".
_SPELLED = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-_*·]){2,}[a-z](?![a-z0-9])")
_SEPARATORS = re.compile(r"[ .\-_*·]")


def base(text: str) -> str:
    """NFKC, casefolded, zero-width characters dropped, look-alikes mapped."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).casefold()
    return text.translate(_CONFUSABLES)


def _unleet(match: re.Match[str]) -> str:
    token = match.group(0)
    if _HAS_LETTER.search(token) and _HAS_LEET.search(token):
        return token.translate(_LEET)
    return token


def variants(text: str) -> tuple[str, ...]:
    """The forms of `text` the lexicon searches: the base form, the same with leetspeak undone
    ("c4" stays findable as itself), and that with spelled-out letters joined; no repeats."""
    folded = base(text)
    plain = _LEET_TOKEN.sub(_unleet, folded)
    joined = _SPELLED.sub(lambda m: _SEPARATORS.sub("", m.group(0)), plain)
    return tuple(dict.fromkeys((folded, plain, joined)))
