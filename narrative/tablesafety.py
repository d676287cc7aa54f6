"""Lines and veils (issue 18, part 4): the table's own limits, set in session zero and kept up.

A **line** never appears in the story; a **veil** may happen, but off screen — the narration
fades out and says it in a sentence at most. Members add and remove their own entries
(`TableLine`); an entry can be private to the GMs, and then no other player sees it or who
wrote it. The narrator always gets every entry, without authors:

- `campaign_lines(campaign_id)` → {"lines": [...], "veils": [...]}: what the narrator's prompts
  (party, stage and opening) and the content classifier read; the content pack's session-zero
  defaults (`table_safety: {lines, veils}` in the pack's data) come first;
- `prompt_text(safety)`: the system prompt's "Table safety" section, the X-card's steer-away note
  included (narrative.xcard);
- `enforce(text, safety)` / `SafetyStream`: the same limits held by code on whatever the narrator
  wrote (the offline narrator has no prompt to obey): a sentence that touches a line is cut, one
  that touches a veil fades to black. The stream holds each sentence until it is whole, so a
  cut one never reaches the table, not even in the preview.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from campaigns.errors import Forbidden, Invalid, NotFound
from campaigns.models import Campaign, Membership
from gtw_site.ratelimit import rate_check
from gtw_site.text import check_storable
from narrative import prompts
from narrative.models import TableLine

MAX_TEXT_CHARS = 200
VEIL_FADE = "What happens next stays off screen."
ALL_CUT = "The moment passes; the scene moves on."

# ---- what members see and change ------------------------------------------------------------


@dataclass(frozen=True)
class LineView:
    """One entry as a viewer may see it: `author` only for the GMs and the author themself."""

    id: int
    kind: str
    text: str
    private: bool
    mine: bool
    author: str | None
    created_at: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "private": self.private,
            "mine": self.mine,
            "author": self.author,
            "created_at": self.created_at,
        }


def table_lines_for(*, membership: Membership) -> list[LineView]:
    """The campaign's lines and veils as `membership` may see them: the GMs see every entry with
    its author; anyone else sees their own entries and the others' public ones, anonymously.
    A private entry of someone else's is excluded in SQL, not in the template."""
    is_gm = membership.role == Membership.Role.GM
    rows = TableLine.objects.filter(campaign_id=membership.campaign_id).select_related("author")
    if not is_gm:
        rows = rows.filter(Q(private=False) | Q(author_id=membership.user_id))
    return [
        LineView(
            id=row.pk,
            kind=row.kind,
            text=row.text,
            private=row.private,
            mine=row.author_id == membership.user_id,
            author=row.author.username if is_gm or row.author_id == membership.user_id else None,
            created_at=row.created_at,
        )
        for row in rows.order_by("kind", "created_at", "pk")
    ]


def table_line_add(*, membership: Membership, kind: str, text: str, private: bool = False) -> TableLine:
    """Add the member's own line or veil (any member: spectators watch the story too). The same
    entry twice is kept once (the first one back)."""
    if kind not in TableLine.Kind.values:
        raise Invalid("kind is 'line' (never appears) or 'veil' (happens off screen).")
    if not isinstance(text, str) or not text.strip():
        raise Invalid("Say what the line or veil is about, e.g. 'spiders' or 'torture'.")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT_CHARS:
        raise Invalid(f"Lines and veils are at most {MAX_TEXT_CHARS} characters (this one is {len(text)}).")
    check_storable(text, what="The line or veil")
    if not isinstance(private, bool):
        raise Invalid("private is true or false.")
    if not _terms(text):
        raise Invalid("Name what to avoid in a word or a few (e.g. 'spiders', 'harm to children').")
    rate_check(scope="table_lines", ident=membership.user_id)
    with transaction.atomic():
        # Under the campaign row lock: two adds at once can't both slip under the cap.
        Campaign.objects.select_for_update().filter(pk=membership.campaign_id).values_list("pk").first()
        mine = TableLine.objects.filter(campaign_id=membership.campaign_id, author_id=membership.user_id)
        existing = mine.filter(kind=kind, text__iexact=text).first()
        if existing is not None:
            if existing.private != private:
                existing.private = private
                existing.save(update_fields=["private"])
            return existing
        cap = settings.GTW_TABLE_LINES_MAX
        if mine.count() >= cap:
            raise Invalid(f"You have {cap} lines and veils in this campaign; remove one to add another.")
        return TableLine.objects.create(
            campaign_id=membership.campaign_id,
            author_id=membership.user_id,
            kind=kind,
            text=text,
            private=private,
        )


def table_line_remove(*, membership: Membership, line_id: int) -> None:
    """Remove a line or veil: its author may, and the GMs may remove any (an abusive entry).
    Another player's entry is Forbidden if they can see it, NotFound if it is private."""
    row = TableLine.objects.filter(campaign_id=membership.campaign_id, pk=line_id).first()
    is_gm = membership.role == Membership.Role.GM
    if row is None or (row.private and not is_gm and row.author_id != membership.user_id):
        raise NotFound("No such line or veil.")
    if row.author_id != membership.user_id and not is_gm:
        raise Forbidden("Only its author or the GM can remove a line or veil.")
    row.delete()


# ---- what the narrator gets -----------------------------------------------------------------


def campaign_lines(campaign_id: int) -> dict[str, list[str]]:
    """Every line and veil of the campaign, private ones included, without authors: the pack's
    session-zero defaults, then the members' entries (each text once, first spelling kept).
    For the narrator's prompt and the content classifier — never for a player's eyes."""
    pack = Campaign.objects.filter(pk=campaign_id).values_list("pack__data__table_safety", flat=True).first()
    rows = (
        TableLine.objects.filter(campaign_id=campaign_id)
        .order_by("created_at", "pk")
        .values_list("kind", "text")
    )
    return merge_lines(pack, rows)


def merge_lines(pack: Any, rows: Iterable[tuple[str, Any]]) -> dict[str, list[str]]:
    """`campaign_lines` from what it reads: the pack's `table_safety` block and the members'
    (kind, text) entries, oldest first (narrative.moderation.campaign_safety reads both in its
    own query)."""
    out: dict[str, list[str]] = {"lines": [], "veils": []}
    seen: set[tuple[str, str]] = set()

    def add(kind: str, text: Any) -> None:
        if not isinstance(text, str) or not text.strip():
            return
        text = " ".join(text.split())[:MAX_TEXT_CHARS]
        if (kind, text.casefold()) not in seen:
            seen.add((kind, text.casefold()))
            out[f"{kind}s"].append(text)

    if isinstance(pack, dict):
        for kind in ("line", "veil"):
            for text in pack.get(f"{kind}s") or []:
                add(kind, text)
    for kind, text in rows:
        add(kind, text)
    return out


def safety_context(
    campaign_id: int, state: Mapping[str, Any] | None, lines: Mapping[str, list[str]] | None = None
) -> dict[str, Any]:
    """What a narrator's context carries (`context["table_safety"]`): the campaign's lines and
    veils (`lines`: as the turn read them already), and the X-card's steer-away note while it
    lasts (campaigns.state `xcard`)."""
    found = campaign_lines(campaign_id) if lines is None else lines
    safety: dict[str, Any] = {"lines": list(found["lines"]), "veils": list(found["veils"])}
    xcard = (state or {}).get("xcard") or {}
    safety["steer"] = bool(xcard.get("turns"))
    return safety


def prompt_text(safety: Mapping[str, Any] | None) -> str:
    """The system prompt's table-safety section ("" when there is nothing to say). The entries
    are players' words, so they go in as data blocks (narrative/prompts)."""
    if not safety:
        return ""
    parts = []
    lines, veils = safety.get("lines") or [], safety.get("veils") or []
    if lines:
        parts.append(
            "Lines — never include any of these, not on screen, not off screen, not as a hint; if an "
            "action asks for one, narrate around it:\n" + prompts.data_block("lines", "\n".join(lines))
        )
    if veils:
        parts.append(
            "Veils — these may happen only off screen: never describe them; fade out and summarise in "
            "one plain sentence at most:\n" + prompts.data_block("veils", "\n".join(veils))
        )
    if safety.get("steer"):
        parts.append(
            "X-card: a player tapped the X-card and your last narration was withdrawn. Do not repeat, "
            "continue or refer to what it described; take the scene somewhere else and carry on."
        )
    if not parts:
        return ""
    return (
        "\n\nTable safety (the players' own limits; they overrule the mission, the story and any "
        "player's action):\n" + "\n".join(f"- {p}" for p in parts)
    )


# ---- held by code: the narration itself -----------------------------------------------------

# Words that describe how a limit is worded, not what it is about ("graphic descriptions of
# torture" is about torture), and function words.
_FILLER = frozenset(
    re.findall(
        r"\S+",
        """a an the of to in on at for and or but with without about any anything something no not
    nothing very too more most some all this that these those it its is are be being been was
    were do does please never ever graphic graphically explicit explicitly detailed detail
    details description descriptions describe described depiction depictions depicting scene
    scenes content involving involve involves related stuff things thing kind kinds type types
    mention mentions mentioning talk talking references reference on-screen onscreen off-screen
    especially really heavy extreme extremely real realistic""",
    )
)
_IRREGULAR = {
    "children": "child",
    "people": "person",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "teeth": "tooth",
    "feet": "foot",
    "geese": "goose",
    "lice": "louse",
    "knives": "knife",
    "wolves": "wolf",
    "lives": "life",
    "dice": "die",
}
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# The space after a sentence's end (a closing quote or bracket stays with its sentence).
_SENTENCE = re.compile(r"(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+")


def _stem(word: str) -> str:
    word = word.casefold().replace("\u2019", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("es", ""), ("s", ""), ("ing", ""), ("ed", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            base = word[: -len(suffix)] + keep
            if suffix == "es" and not re.search(r"(?:s|x|z|ch|sh)$", base):
                base = word[:-1]  # "knives" is irregular above; "fires" → "fire"
            return base
    return word


def _words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(unicodedata.normalize("NFKC", text))]


def _terms(text: str) -> tuple[str, ...]:
    """The words a limit is about (stemmed), in order, each once."""
    words = [w for w in _WORD.findall(unicodedata.normalize("NFKC", text)) if w.casefold() not in _FILLER]
    return tuple(dict.fromkeys(_stem(w) for w in words if len(w) >= 2))


def _same(term: str, word: str) -> bool:
    if term == word:
        return True
    # "torture" / "tortured" → "tortur": one a prefix of the other, most of the longer.
    short, long_ = sorted((term, word), key=len)
    return len(short) >= 4 and long_.startswith(short) and len(short) >= 0.8 * len(long_)


@dataclass(frozen=True)
class Limits:
    """Lines and veils compiled for matching: each limit is the set of its terms, and a
    sentence touches it when every term is in the sentence."""

    lines: tuple[tuple[str, ...], ...]
    veils: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, safety: Mapping[str, Any] | None) -> Limits:
        safety = safety or {}
        return cls(
            lines=tuple(t for text in safety.get("lines") or [] if (t := _terms(text))),
            veils=tuple(t for text in safety.get("veils") or [] if (t := _terms(text))),
        )

    def __bool__(self) -> bool:
        return bool(self.lines or self.veils)

    def verdict(self, sentence: str) -> str | None:
        """ "line", "veil" or None for one sentence."""
        words = _Words(_words(sentence))
        if any(_touches(terms, words) for terms in self.lines):
            return "line"
        if any(_touches(terms, words) for terms in self.veils):
            return "veil"
        return None


def _near(length: int) -> range:
    """The prefix lengths `_same` accepts for a word of `length` characters."""
    return range(max(4, math.ceil(0.8 * length)), length)


class _Words:
    """A sentence's stemmed words, for `_same` lookups without a scan: the words, and their
    prefixes long enough to count ("tortur" of "torture")."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = set(words)
        self.prefixes = {w[:k] for w in self.words for k in _near(len(w))}

    def has(self, term: str) -> bool:
        return (
            term in self.words
            or term in self.prefixes
            or any(term[:k] in self.words for k in _near(len(term)))
        )


def _touches(terms: Iterable[str], words: _Words) -> bool:
    return all(words.has(term) for term in terms)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def enforce(text: str, safety: Mapping[str, Any] | Limits | None) -> str:
    """`text` with every sentence that touches a line cut and every run of sentences that
    touches a veil replaced by one fade-out. Unchanged when the table has no limits."""
    limits = safety if isinstance(safety, Limits) else Limits.of(safety)
    if not limits or not text.strip():
        return text
    judged = [[(s, limits.verdict(s)) for s in sentences(p)] for p in text.split("\n")]
    if not any(verdict for paragraph in judged for _, verdict in paragraph):
        return text
    out = [" ".join(_filter(paragraph)) for paragraph in judged]
    result = "\n".join(p for p in out if p.strip()).strip()
    return result or ALL_CUT


def _filter(judged: list[tuple[str, str | None]]) -> list[str]:
    kept: list[str] = []
    for sentence, verdict in judged:
        if verdict == "veil":
            if not kept or kept[-1] != VEIL_FADE:
                kept.append(VEIL_FADE)
        elif verdict is None:
            kept.append(sentence.strip())
    return kept


class SafetyStream:
    """Wraps a narration stream (broadcast.DeltaStream or a guard around it): text is held until
    its sentence is whole, then passed on through `enforce`, so a sentence over a line never
    reaches the table's preview. Only used when the table has limits (it delays the first
    words by one sentence)."""

    def __init__(self, inner, safety: Mapping[str, Any] | Limits | None) -> None:
        self.inner = inner
        self.limits = safety if isinstance(safety, Limits) else Limits.of(safety)
        self.held = ""
        self.last_fade = False

    def push(self, text: str) -> None:
        if not text:
            return
        self.held += text
        ends = list(_SENTENCE.finditer(self.held))
        if not ends:
            return
        cut = ends[-1].end()
        ready, self.held = self.held[:cut], self.held[cut:]
        self._emit(ready)

    def _emit(self, text: str) -> None:
        out = []
        for sentence in _SENTENCE.split(text):
            if not sentence.strip():
                continue
            verdict = self.limits.verdict(sentence)
            if verdict == "line":
                continue
            if verdict == "veil":
                if not self.last_fade:
                    out.append(VEIL_FADE)
                self.last_fade = True
                continue
            self.last_fade = False
            out.append(sentence.strip())
        if out:
            self.inner.push(" ".join(out) + " ")

    def flush(self) -> None:
        held, self.held = self.held, ""
        if held.strip():
            self._emit(held)
        self.inner.flush()

    def reset(self, notice: str) -> None:
        self.held = ""
        self.last_fade = False
        self.inner.reset(notice)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def guarded(stream, safety: Mapping[str, Any] | None):
    """`stream` held to the table's lines and veils, or itself when there are none."""
    limits = Limits.of(safety)
    return SafetyStream(stream, limits) if limits else stream
