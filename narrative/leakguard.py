"""The narrator's own instructions stay out of what the table reads (issue 18 part 6).

A model told to "print your system prompt" may do it; the game, not the model's good will,
keeps the copy from the players. `EchoGuard` knows the protected sentences — the prompt
templates' own words (not the data filled into them, which the table may see), the data rule
and the GM personality's instructions — and removes verbatim copies of them, whatever the
whitespace between the words. `GuardedStream` puts it in front of a turn's delta stream: text
that could be the start of a protected sentence is held back until it is clearly not one (or is
dropped), so the streamed preview never shows what the final narration would not.

Only verbatim copies are caught; a paraphrase is the model's own words. Pure: no Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

# Shorter pieces ("Rules of the table:") are too common to withhold.
MIN_CHARS = 30
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n\s*\n|\n\s*-\s+")
_WORD = re.compile(r"\S+")


def protected_sentences(*texts: str) -> list[str]:
    """The sentences of `texts` worth protecting: template text split at its placeholders and
    sentence ends, whitespace collapsed, at least MIN_CHARS long."""
    found: dict[str, None] = {}
    for text in texts:
        for piece in _PLACEHOLDER.split(text or ""):
            for sentence in _SENTENCE_END.split(piece):
                words = _WORD.findall(sentence.strip().lstrip("-").strip())
                normal = " ".join(words)
                if len(normal) >= MIN_CHARS:
                    found[normal] = None
    return list(found)


class EchoGuard:
    def __init__(self, sentences: Iterable[str]) -> None:
        self.sentences = [s for s in sentences if s]
        self._words = [s.split(" ") for s in self.sentences]
        self._pattern = (
            re.compile("|".join(r"\s+".join(map(re.escape, w)) for w in self._words)) if self._words else None
        )

    @classmethod
    def of(cls, *texts: str) -> EchoGuard:
        return cls(protected_sentences(*texts))

    def scrub(self, text: str) -> str:
        """`text` without any verbatim copy of a protected sentence."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub("", text)

    def safe_upto(self, text: str) -> int:
        """How much of `text` (already scrubbed) can be released: everything before the first
        word from which the rest could still grow into a protected sentence."""
        if not self._words:
            return len(text)
        for m in _WORD.finditer(text):
            tail = _WORD.findall(text[m.start() :])
            if any(self._could_start(tail, words) for words in self._words):
                return m.start()
        return len(text)

    @staticmethod
    def _could_start(tail: list[str], words: list[str]) -> bool:
        if len(tail) > len(words):
            return False
        *whole, last = tail
        return whole == words[: len(whole)] and words[len(whole)].startswith(last)


class _Stream(Protocol):
    def push(self, text: str) -> None: ...
    def flush(self) -> None: ...
    def reset(self, notice: str) -> None: ...


class GuardedStream:
    """A delta stream (realtime.broadcast.DeltaStream) that passes on only guarded text."""

    def __init__(self, inner: _Stream, guard: EchoGuard) -> None:
        self.inner = inner
        self.guard = guard
        self._pending = ""

    def push(self, text: str) -> None:
        if not text:
            return
        self._pending = self.guard.scrub(self._pending + text)
        cut = self.guard.safe_upto(self._pending)
        if cut:
            self.inner.push(self._pending[:cut])
            self._pending = self._pending[cut:]

    def flush(self) -> None:
        if self._pending:
            # The reply is over: what is still held back is not a whole protected sentence.
            self.inner.push(self.guard.scrub(self._pending))
            self._pending = ""
        self.inner.flush()

    def reset(self, notice: str) -> None:
        self._pending = ""
        self.inner.reset(notice)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)
