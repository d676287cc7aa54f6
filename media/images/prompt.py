"""The image prompt builder and the banned-word check. Pure: no Django, no I/O.

`build_prompt(request, banned=…)` turns what the game knows — the kind of picture, the scene
(biome, location, lighting, time, the mission's scene, NPCs present), a character's archetype or
an item — plus the campaign's style tokens and a little lore into a prompt, a negative prompt and
the `parts` the offline painter composes from. It refuses (`PromptRefused`, the word named) a
prompt that contains a banned word, however it is dressed up:

- NFKC first (full-width letters, ligatures, compatibility forms), then accents stripped and
  case folded;
- look-alike characters folded to the letter they imitate (Cyrillic/Greek homoglyphs, leetspeak
  digits and symbols inside a word: ``g0re``, ``$ex``);
- invisible characters (zero-width spaces, soft hyphens) dropped;
- whole words only (``Essex`` is not ``sex``), but a word spelt out with spaces, dots or dashes
  between its letters (``g o r e``, ``g.o.r.e``, ``go-re``) is joined back together.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("scene", "portrait", "item")
MAX_SUBJECT = 500  # characters a GM, a player or the narrator may ask for
MAX_PROMPT = 1200  # the built prompt is clipped (lore last) to stay within every provider's limit
MAX_STYLE = 300

# The site list: a deployment extends it (GTW_IMAGES["banned_words"]) and each campaign adds its own.
DEFAULT_BANNED = (
    "nsfw",
    "nude",
    "nudes",
    "naked",
    "nudity",
    "topless",
    "porn",
    "porno",
    "pornographic",
    "hentai",
    "sex",
    "sexual",
    "sexy",
    "erotic",
    "genitals",
    "lingerie",
    "gore",
    "gory",
    "disembowelled",
    "disemboweled",
    "decapitated",
    "beheaded",
    "dismembered",
    "mutilated",
    "swastika",
)

DEFAULT_NEGATIVE = (
    "text, watermark, signature, logo, lowres, blurry, jpeg artifacts, deformed, extra limbs, "
    "bad anatomy, nsfw, gore"
)
DEFAULT_STYLE = "cinematic science-fiction concept art, painterly, volumetric light, rich colour"


class PromptError(ValueError):
    """The request cannot become a prompt (too long, unknown kind)."""


class PromptRefused(PromptError):
    """The prompt contains a banned word; `word` names it (as listed)."""

    def __init__(self, word: str) -> None:
        super().__init__(f"The picture was refused: it asks for the banned word '{word}'.")
        self.word = word


# ---- normalising ----------------------------------------------------------------------------

# Look-alikes that NFKC leaves alone, as (imitators, the Latin letters they imitate): Cyrillic,
# Greek and Armenian letters, then a few Latin letters of other alphabets.
_LOOKALIKES = (
    ("\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445", "abeekmhopctyx"),
    ("\u0455\u0456\u0457\u0458\u0501\u0261\u0578\u057d\u0475\u051d", "siijdgnuvw"),
    ("\u03b1\u03b2\u03b5\u03b7\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u03b3", "abenikvoptuxy"),
    ("\u00f8\u0111\u0142\u0131", "odli"),
)
_HOMOGLYPHS = str.maketrans(
    {
        **{k: v for fakes, real in _LOOKALIKES for k, v in zip(fakes, real, strict=True)},
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u0153": "oe",
    }
)
# Digits and symbols that stand for letters, but only inside a word that has letters ("g0re");
# a bare number stays a number.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l", "\u20ac": "e", "+": "t"})  # fmt: skip
_LEET_CHARS = "0134578@$!|\u20ac+"
_WORDISH = re.compile(rf"[\w{re.escape(_LEET_CHARS)}]+")


def fold(text: str) -> str:
    """NFKC, accents stripped, case folded, homoglyphs folded, invisible characters dropped."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")  # zero-width, soft hyphen
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.casefold().translate(_HOMOGLYPHS)


@dataclass(frozen=True)
class _Token:
    text: str  # look-alikes folded: "g0re" -> "gore" (and "gory!" -> "goryi")
    plain: str  # letters and digits only: "g0re!" -> "g0re"; "gory!" -> "gory"
    start: int
    end: int


def _tokens(folded: str) -> list[_Token]:
    out = []
    for m in _WORDISH.finditer(folded):
        raw = m.group(0).replace("_", "")
        plain = "".join(ch for ch in raw if ch.isalnum())
        if any(ch.isalpha() for ch in raw):
            raw = raw.translate(_LEET)
        raw = "".join(ch for ch in raw if ch.isalnum())
        if raw:
            out.append(_Token(raw, plain or raw, m.start(), m.end()))
    return out


def _candidates(folded: str) -> set[str]:
    """Every word, each pair/triple of adjacent words (phrases), and the words an evasion hides:
    pieces joined by punctuation with no space (``g.o.r.e``, ``go-re``) and runs of single
    letters (``g o r e``)."""
    toks = _tokens(folded)
    words = [t.text for t in toks]
    out: set[str] = set(words) | {t.plain for t in toks}
    for n in (2, 3):
        for i in range(len(words) - n + 1):
            out.add(" ".join(words[i : i + n]))
            out.add("".join(words[i : i + n]))
    # Pieces glued by punctuation only.
    i = 0
    while i < len(toks):
        j = i
        while j + 1 < len(toks) and _glued(folded[toks[j].end : toks[j + 1].start]):
            j += 1
        if j > i:
            out.update(_subjoins(words[i : j + 1]))
        i = j + 1
    # Runs of single characters, whatever separates them.
    run: list[str] = []
    for w in [*words, ""]:
        if len(w) == 1:
            run.append(w)
            continue
        if len(run) >= 2:
            out.update(_subjoins(run))
        run = []
    return out


def _glued(gap: str) -> bool:
    return bool(gap) and not any(ch.isspace() for ch in gap)


def _subjoins(pieces: Sequence[str]) -> set[str]:
    """Every contiguous join of `pieces` (a run is short: a word spelt out)."""
    pieces = list(pieces)[:40]
    return {"".join(pieces[a:b]) for a in range(len(pieces)) for b in range(a + 2, len(pieces) + 1)}


def normalise_banned(words: Iterable[str]) -> dict[str, str]:
    """Folded form → the word as listed (blank and non-string entries dropped)."""
    out: dict[str, str] = {}
    for word in words:
        if not isinstance(word, str) or not word.strip():
            continue
        key = " ".join(t.text for t in _tokens(fold(word)))
        if key:
            out.setdefault(key, word.strip())
    return out


def find_banned(text: str, banned: Iterable[str]) -> str | None:
    """The first banned word (as listed) that `text` contains, or None."""
    if not text:
        return None
    words = tuple(w for w in banned if isinstance(w, str))
    # Remembered for prompt-sized texts: a picture asked for again (the scene panel, 50
    # players) has the same prompt and list, and folding and splitting it was most of the
    # request's own work.
    return _scan_remembered(text, words) if len(text) <= 4000 else _scan(text, words)


def _scan(text: str, banned: tuple[str, ...]) -> str | None:
    table = normalise_banned(banned)
    if not table:
        return None
    found = _candidates(fold(text))
    for key, word in table.items():
        if key in found or key.replace(" ", "") in found:
            return word
    return None


_scan_remembered = functools.lru_cache(maxsize=512)(_scan)


def check_words(text: str, banned: Iterable[str]) -> None:
    word = find_banned(text, banned)
    if word is not None:
        raise PromptRefused(word)


# ---- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRequest:
    """What to picture. Everything but `kind` is optional; strings are plain text."""

    kind: str
    subject: str = ""
    biome: str = ""  # slug or name: "ice-moon"
    biome_description: str = ""
    location: str = ""  # the mission scene's title: "Thule Landing Field"
    scene_description: str = ""
    lighting: str = ""
    time_of_day: str = ""
    beat: str = ""
    mission: str = ""
    npcs: tuple[str, ...] = ()
    archetype: str = ""  # portrait: "netrunner"
    archetype_name: str = ""
    character: str = ""
    item: str = ""  # item: slug
    item_name: str = ""
    item_kind: str = ""  # weapon | gear | consumable | quest | currency
    item_description: str = ""
    lore: str = ""  # the world's tagline, a faction's line
    style: str = ""  # the campaign's style tokens


@dataclass(frozen=True)
class BuiltPrompt:
    kind: str
    subject: str
    prompt: str
    negative: str
    style: str
    parts: dict[str, Any] = field(default_factory=dict)


_BEAT_LIGHT = {
    "inciting": "cold dawn light",
    "rising": "low amber light",
    "twist": "harsh red emergency light",
    "climax": "blazing rim light and deep shadow",
    "resolution": "soft golden light",
}


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _clean(text: str, limit: int) -> str:
    return " ".join(str(text or "").split())[:limit]


def build_prompt(
    req: ImageRequest, *, banned: Iterable[str] = DEFAULT_BANNED, negative_extra: str = ""
) -> BuiltPrompt:
    """The prompt, negative prompt and painter parts for `req`; PromptRefused on a banned word,
    PromptError on an unknown kind or a subject over MAX_SUBJECT characters."""
    if req.kind not in KINDS:
        raise PromptError(f"Unknown picture type '{req.kind}' (choose one of: {', '.join(KINDS)}).")
    if len(req.subject or "") > MAX_SUBJECT:
        raise PromptError(f"The subject is too long ({len(req.subject)} characters; at most {MAX_SUBJECT}).")
    if len(req.style or "") > MAX_STYLE:
        raise PromptError(f"The style is too long ({len(req.style)} characters; at most {MAX_STYLE}).")
    subject = _clean(req.subject, MAX_SUBJECT)
    style = _clean(req.style, MAX_STYLE) or DEFAULT_STYLE
    biome = _clean(req.biome, 60).replace("-", " ")
    lighting = _clean(req.lighting, 80) or _BEAT_LIGHT.get(_clean(req.beat, 20).lower(), "")
    head: list[str] = []
    if req.kind == "scene":
        place = _clean(req.location, 80)
        head.append(
            subject
            or (f"{place}, on {_a(biome)}" if place and biome else place or _a(biome or "frontier system"))
        )
        if subject and place:
            head.append(place)
        if biome and biome not in head[0]:
            head.append(_a(biome))
        head.append("wide establishing shot")
        if req.npcs:
            head.append("figures: " + ", ".join(_clean(n, 40) for n in req.npcs[:4]))
    elif req.kind == "portrait":
        who = _clean(req.character, 60)
        arch = _clean(req.archetype_name or req.archetype, 40)
        head.append(
            f"portrait of {who}, {_a(arch)}" if who and arch else f"portrait of {_a(arch or 'spacer')}"
        )
        if subject:
            head.append(subject)
        head.append("head and shoulders, dramatic rim light, dark background")
    else:
        name = _clean(req.item_name or req.item, 60)
        head.append(f"{name or subject or 'artifact'}, {_a(_clean(req.item_kind, 20) or 'gear')} item")
        if subject and name:
            head.append(subject)
        if req.item_description:
            head.append(_clean(req.item_description, 160))
        head.append("game item icon, centred object, glowing edges, dark background")
    if lighting:
        head.append(lighting)
    if req.time_of_day:
        head.append(_clean(req.time_of_day, 30))
    tail = [
        t
        for t in (
            _clean(req.scene_description, 300),
            _clean(req.biome_description, 200),
            _clean(req.lore, 200),
        )
        if t
    ]
    prompt = ", ".join([*head, style])
    for extra in tail:
        if len(prompt) + len(extra) + 2 > MAX_PROMPT:
            break
        prompt = f"{prompt}. {extra}"
    prompt = prompt[:MAX_PROMPT]
    check_words(prompt, banned)
    negative = DEFAULT_NEGATIVE + (f", {_clean(negative_extra, 300)}" if negative_extra else "")
    parts = {
        "kind": req.kind,
        "biome": _clean(req.biome, 60).lower(),
        "location": _clean(req.location, 80),
        "beat": _clean(req.beat, 20).lower(),
        "archetype": _clean(req.archetype, 40).lower(),
        "item": _clean(req.item or req.item_name, 60).lower(),
        "item_kind": _clean(req.item_kind, 20).lower(),
        "subject": subject[:120],
        "npcs": len(req.npcs),
    }
    return BuiltPrompt(
        kind=req.kind, subject=subject, prompt=prompt, negative=negative, style=style, parts=parts
    )


def request_hash(canonical: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical request (sorted keys, no spaces, UTF-8): the cache key."""
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
