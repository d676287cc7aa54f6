"""Splits streamed narration into sentences as the deltas arrive. Pure: no Django.

A sentence is complete once its end mark (. ! ? … or a line break) is followed by whitespace,
so "3.5 metres" and a stream cut at "Dr." mid-delta wait for the next delta instead of being
spoken in halves. Titles and initials ("Capt. Hale", "J. Osei") do not end a sentence. A run
with no end mark is cut at a clause boundary past MAX_CHARS, so a model that never writes a full
stop still starts speaking.
"""

from __future__ import annotations

import re

MAX_CHARS = 240
FIRST_CLAUSE_CHARS = 24
# An end mark, then closing quotes or brackets (straight and curly), then whitespace.
_END = re.compile("[.!?\u2026]+[\"'\u201d\u2019)\\]]*(?=\\s)|\n+")
_CLAUSE = re.compile("[,;:\u2014\u2013]\\s")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "capt", "cpt", "lt", "sgt", "cmdr", "col", "gen", "adm", "prof"}
    | {"rev", "jr", "sr", "vs", "etc", "no", "approx", "dept", "est", "fig"}
)


class SentenceSplitter:
    """`eager_first`: the first piece may end at a clause (", " "; " " — ") once it is
    FIRST_CLAUSE_CHARS long — the table hears the GM start a clause sooner, and the pause a
    comma makes anyway hides the seam. Later pieces are whole sentences."""

    def __init__(self, max_chars: int = MAX_CHARS, *, eager_first: bool = False) -> None:
        self.max_chars = max_chars
        self.pending = ""
        self.eager = eager_first

    def feed(self, text: str) -> list[str]:
        """Add a delta; the sentences it completed, in order."""
        self.pending += text
        done: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            sentence, self.pending = self.pending[:cut], self.pending[cut:]
            if sentence.strip():
                done.append(clean(sentence))
                self.eager = False
        return done

    def end(self) -> list[str]:
        """The stream is over (or paused for a tool call): what is left is a sentence."""
        rest, self.pending = self.pending, ""
        self.eager = self.eager and not rest.strip()
        return [clean(rest)] if rest.strip() else []

    def reset(self) -> None:
        self.pending = ""

    def _next_cut(self) -> int | None:
        sentence = self._sentence_end()
        if self.eager:
            limit = sentence if sentence is not None else len(self.pending)
            for match in _CLAUSE.finditer(self.pending, 0, limit):
                if match.start() >= FIRST_CLAUSE_CHARS:
                    return match.end()
        if sentence is not None:
            return sentence
        if len(self.pending) > self.max_chars:
            clauses = [m.end() for m in _CLAUSE.finditer(self.pending, 0, self.max_chars)]
            if clauses:
                return clauses[-1]
            space = self.pending.rfind(" ", 0, self.max_chars)
            return space if space > 0 else self.max_chars
        return None

    def _sentence_end(self) -> int | None:
        start = 0
        while True:
            match = _END.search(self.pending, start)
            if match is None:
                return None
            if match.group(0)[0] == "." and self._is_abbreviation(match.start()):
                start = match.end()
                continue
            return match.end()

    def _is_abbreviation(self, dot: int) -> bool:
        word = re.search(r"([A-Za-z]+)$", self.pending[:dot])
        if word is None:
            return False
        token = word.group(1)
        return token.lower() in _ABBREVIATIONS or (len(token) == 1 and token.isupper())


def clean(sentence: str) -> str:
    """One line, no markdown emphasis marks (a TTS voice would read "asterisk")."""
    text = re.sub(r"[*_`#>]+", "", sentence)
    return " ".join(text.split())


def split_all(text: str) -> list[str]:
    """Every sentence of a finished text (an NPC line, a summary)."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.end()
