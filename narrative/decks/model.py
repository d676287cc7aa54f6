"""A story deck's schema: the Deck, its limits, its canonical form, and `validate_deck` (the
check every deck passes before use). Pure Python, no Django."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from narrative.director import BEATS

CARD_KINDS: tuple[str, ...] = ("twist", "complication", "agenda", "hazard")
MAX_CARDS = 200
MAX_DECK_BYTES = 256 * 1024
MAX_WEIGHT = 1000
MAX_REQUIRE_VALUES = 20
TEXT_LIMITS = {"name": 120, "description": 1000, "title": 120, "text": 2000, "payoff": 1000}

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
_CLOCK_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)
_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,31}", re.ASCII)
_DECK_KEYS = frozenset({"slug", "name", "version", "description", "cards"})
_CARD_KEYS = frozenset({"id", "kind", "title", "text", "weight", "requires", "payoff"})
_REQUIRE_KEYS = ("biome", "faction", "beat", "clock_min")


class DeckError(ValueError):
    """A deck, its signature, a key, or a draw request is invalid. The message says which."""


# --- canonical form ----------------------------------------------------------------------------


def canonical_bytes(deck: Mapping[str, Any]) -> bytes:
    """The exact bytes a deck signature covers (see the module docstring)."""
    try:
        text = json.dumps(deck, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DeckError(f"deck is not plain JSON data: {exc}") from None
    except RecursionError:
        raise DeckError("deck is nested too deeply") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate (such as "\\ud800" in the JSON) is not a character UTF-8 can hold.
        raise DeckError(
            f"deck text is not valid Unicode: a lone surrogate {text[exc.start]!r} at character {exc.start}"
        ) from None


def _text(value: Any, where: str, limit: int, *, required: bool = True) -> str:
    if not required and (value is None or value == ""):
        return ""
    if not isinstance(value, str) or not value.strip():
        raise DeckError(f"{where} must be a non-empty string")
    if len(value) > limit:
        raise DeckError(f"{where} is {len(value)} characters; at most {limit} are allowed")
    return value


def _string_list(value: Any, where: str, allowed: Iterable[str] | None = None) -> list[str]:
    if not isinstance(value, list) or not value:
        raise DeckError(f"{where} must be a non-empty list of strings")
    if len(value) > MAX_REQUIRE_VALUES:
        raise DeckError(f"{where} lists {len(value)} values; at most {MAX_REQUIRE_VALUES} are allowed")
    allowed_set = None if allowed is None else set(allowed)
    for item in value:
        if not isinstance(item, str) or not SLUG_RE.fullmatch(item):
            raise DeckError(f"{where} must hold slugs (lowercase letters, digits, '-'), got {item!r}")
        if allowed_set is not None and item not in allowed_set:
            raise DeckError(
                f"{where}: unknown value {item!r}; expected one of {', '.join(sorted(allowed_set))}"
            )
    if len(set(value)) != len(value):
        raise DeckError(f"{where} lists a value twice")
    return list(value)


def _requires(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise DeckError(f"{where} must be an object")
    unknown = sorted(str(k) for k in set(value) - set(_REQUIRE_KEYS))
    if unknown:
        raise DeckError(
            f"{where} has unknown field(s): {', '.join(unknown)}; expected {', '.join(_REQUIRE_KEYS)}"
        )
    out: dict[str, Any] = {}
    for key in ("biome", "faction"):
        if key in value:
            out[key] = _string_list(value[key], f"{where}.{key}")
    if "beat" in value:
        out["beat"] = _string_list(value["beat"], f"{where}.beat", BEATS)
    if "clock_min" in value:
        clocks = value["clock_min"]
        if not isinstance(clocks, Mapping) or not clocks:
            raise DeckError(f"{where}.clock_min must be a non-empty object of clock name to minimum")
        for name, minimum in clocks.items():
            if not isinstance(name, str) or not _CLOCK_RE.fullmatch(name):
                raise DeckError(f"{where}.clock_min: clock name {name!r} is not a slug")
            if isinstance(minimum, bool) or not isinstance(minimum, int) or not 0 <= minimum <= 100:
                raise DeckError(f"{where}.clock_min.{name} must be an integer 0..100, got {minimum!r}")
        out["clock_min"] = dict(clocks)
    return out


def _card(raw: Any, index: int) -> dict[str, Any]:
    where = f"card {index}"
    if not isinstance(raw, Mapping):
        raise DeckError(f"{where} must be an object, got {type(raw).__name__}")
    card_id = raw.get("id")
    if not isinstance(card_id, str) or not SLUG_RE.fullmatch(card_id):
        raise DeckError(f"{where}: id must be a slug (lowercase letters, digits, '-'), got {card_id!r}")
    where = f"card '{card_id}'"
    unknown = sorted(str(k) for k in set(raw) - _CARD_KEYS)
    if unknown:
        raise DeckError(f"{where} has unknown field(s): {', '.join(unknown)}")
    kind = raw.get("kind")
    if kind not in CARD_KINDS:
        raise DeckError(f"{where}: unknown kind {kind!r}; expected one of {', '.join(CARD_KINDS)}")
    weight = raw.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise DeckError(f"{where}: weight must be a positive integer, got {weight!r}")
    if not 1 <= weight <= MAX_WEIGHT:
        raise DeckError(f"{where}: weight must be 1..{MAX_WEIGHT}, got {weight}")
    card: dict[str, Any] = {
        "id": card_id,
        "kind": kind,
        "title": _text(raw.get("title"), f"{where}: title", TEXT_LIMITS["title"]),
        "text": _text(raw.get("text"), f"{where}: text", TEXT_LIMITS["text"]),
        "weight": weight,
        "requires": _requires(raw["requires"], f"{where}: requires") if "requires" in raw else {},
        "payoff": _text(raw.get("payoff"), f"{where}: payoff", TEXT_LIMITS["payoff"], required=False),
    }
    return card


@dataclass(frozen=True)
class Deck:
    """A verified (or, from `validate_deck`, merely well-formed) deck."""

    slug: str
    name: str
    version: str
    cards: tuple[dict[str, Any], ...]
    description: str = ""
    key_id: str | None = None

    def card(self, card_id: str) -> dict[str, Any]:
        for card in self.cards:
            if card["id"] == card_id:
                return dict(card)
        raise DeckError(f"deck '{self.slug}' has no card '{card_id}'")

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "cards": [copy_card(c) for c in self.cards],
            "key_id": self.key_id,
        }


def copy_card(card: Mapping[str, Any]) -> dict[str, Any]:
    # Cards are nested plain data; a JSON round trip is the simplest deep copy that also
    # guarantees callers get something they can store in an event payload.
    return json.loads(json.dumps(card))


def validate_deck(deck: Any, *, key_id: str | None = None) -> Deck:
    """Check the schema of a "deck" object (no signature check) and return a Deck."""
    if not isinstance(deck, Mapping):
        raise DeckError(f"deck must be an object, got {type(deck).__name__}")
    slug = deck.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise DeckError(f"deck slug must be lowercase letters, digits and '-', got {slug!r}")
    where = f"deck '{slug}'"
    unknown = sorted(str(k) for k in set(deck) - _DECK_KEYS)
    if unknown:
        raise DeckError(f"{where} has unknown field(s): {', '.join(unknown)}")
    size = len(canonical_bytes(deck))
    if size > MAX_DECK_BYTES:
        raise DeckError(f"{where} is {size} bytes; at most {MAX_DECK_BYTES} are allowed")
    name = _text(deck.get("name"), f"{where}: name", TEXT_LIMITS["name"])
    version = deck.get("version")
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise DeckError(f"{where}: version must be a string such as '1.0.0', got {version!r}")
    description = _text(
        deck.get("description"), f"{where}: description", TEXT_LIMITS["description"], required=False
    )
    raw_cards = deck.get("cards")
    if not isinstance(raw_cards, list) or not raw_cards:
        raise DeckError(f"{where} needs a non-empty 'cards' list")
    if len(raw_cards) > MAX_CARDS:
        raise DeckError(f"{where} has {len(raw_cards)} cards; at most {MAX_CARDS} are allowed")
    cards = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_cards):
        try:
            card = _card(raw, index)
        except DeckError as exc:
            raise DeckError(f"{where}: {exc}") from None
        if card["id"] in seen:
            raise DeckError(f"{where}: duplicate card id '{card['id']}'")
        seen.add(card["id"])
        cards.append(card)
    return Deck(
        slug=slug, name=name, version=version, cards=tuple(cards), description=description, key_id=key_id
    )
