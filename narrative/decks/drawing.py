"""Seeded draws from verified decks: prerequisites against the scene context, `where` filters,
the personality's sampling weights per kind, and the draw's provenance. Pure Python, no Django."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from narrative.decks.model import CARD_KINDS, Deck, DeckError, copy_card
from narrative.director import BEATS

_CONTEXT_KEYS = frozenset({"biome", "faction", "beat", "clocks"})
_WHERE_KEYS = ("id", "kind", "biome", "faction", "beat")


@dataclass(frozen=True)
class Draw:
    card: dict[str, Any]
    provenance: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"card": copy_card(self.card), "provenance": dict(self.provenance)}


def _strings(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _check_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise DeckError(f"draw context must be an object, got {type(context).__name__}")
    unknown = sorted(str(k) for k in set(context) - _CONTEXT_KEYS)
    if unknown:
        raise DeckError(
            f"unknown draw context field(s): {', '.join(unknown)}; "
            f"expected {', '.join(sorted(_CONTEXT_KEYS))}"
        )
    for key in ("biome", "beat"):
        value = context.get(key)
        if value is not None and not isinstance(value, str):
            raise DeckError(f"draw context {key} must be a string, got {value!r}")
    faction = context.get("faction")
    if faction is not None and not isinstance(faction, str) and not _strings(faction):
        raise DeckError(f"draw context faction must be a string or a list of strings, got {faction!r}")
    if context.get("beat") is not None and context["beat"] not in BEATS:
        raise DeckError(f"draw context beat {context['beat']!r} is not one of {', '.join(BEATS)}")
    clocks = context.get("clocks")
    if clocks is not None:
        if not isinstance(clocks, Mapping):
            raise DeckError("draw context clocks must be an object of clock name to value")
        for name, value in clocks.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DeckError(f"draw context clock {name!r} must be a number, got {value!r}")
    return dict(context)


def _context_values(ctx: Mapping[str, Any], key: str) -> set[str]:
    """The context's values for `key` as a set (faction may list every faction in the scene)."""
    value = ctx.get(key)
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def prerequisites_met(card: Mapping[str, Any], context: Mapping[str, Any] | None) -> bool:
    """True when the scene `context` satisfies every prerequisite of `card`.

    A card that requires a biome, faction or beat is only eligible when the context names one
    of the listed values (an unknown biome does not satisfy "ice-moon"; the context's faction may
    be a list, the factions present, and any one of them will do); ``clock_min`` needs each named
    clock at or above its minimum (a missing clock counts as 0).
    """
    ctx = _check_context(context)
    requires = card.get("requires") or {}
    for key in ("biome", "faction", "beat"):
        if key in requires and not _context_values(ctx, key) & set(requires[key]):
            return False
    clocks = ctx.get("clocks") or {}
    return all(clocks.get(name, 0) >= minimum for name, minimum in requires.get("clock_min", {}).items())


def _where_values(key: str, value: Any) -> list[str]:
    wanted = [value] if isinstance(value, str) else value
    if not isinstance(wanted, list) or not wanted or not all(isinstance(v, str) for v in wanted):
        raise DeckError(f"where {key} must be a string or a non-empty list of strings, got {value!r}")
    return wanted


def matches(card: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """Does `card` fit a DSL ``where`` filter such as ``{"biome": "ice-moon", "kind": "hazard"}``?

    Keys: id, kind, biome, faction, beat; each value a string or a list (any of). ``id`` and
    ``kind`` compare with the card's own fields. ``biome``, ``faction`` and ``beat`` ask whether
    the card may be played there: a card with no requirement on that key fits anywhere, one
    with a requirement fits when it lists one of the values.
    """
    if not isinstance(where, Mapping):
        raise DeckError(f"a where filter must be an object, got {type(where).__name__}")
    for key, value in where.items():
        if key not in _WHERE_KEYS:
            raise DeckError(f"unknown where key {key!r}; expected one of {', '.join(_WHERE_KEYS)}")
        wanted = _where_values(key, value)
        if key in ("id", "kind"):
            if card.get(key) not in wanted:
                return False
            continue
        allowed = (card.get("requires") or {}).get(key)
        if allowed is not None and not set(allowed) & set(wanted):
            return False
    return True


def where_context(where: Mapping[str, Any] | None, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The draw context under a DSL ``where`` filter.

    ``where faction == "helix"`` asks for a helix card, so it brings helix into play: a card that
    requires helix becomes eligible even when no helix NPC is in the scene. The context's other
    fields are left as they are.
    """
    ctx = _check_context(context)
    if not isinstance(where, Mapping) or where.get("faction") is None:
        return ctx
    wanted = _where_values("faction", where["faction"])
    ctx["faction"] = sorted(_context_values(ctx, "faction") | set(wanted))
    return ctx


def card_key(deck_slug: str, card_id: str) -> str:
    """How a drawn card is remembered across decks: ``"deck:card"`` (see `candidates`' exclude)."""
    return f"{deck_slug}:{card_id}"


def _check_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return {}
    if not isinstance(weights, Mapping):
        raise DeckError(f"deck weights must be an object of kind to weight, got {type(weights).__name__}")
    out = {}
    for kind, weight in weights.items():
        if kind not in CARD_KINDS:
            raise DeckError(f"deck weights: unknown kind {kind!r}; expected one of {', '.join(CARD_KINDS)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise DeckError(f"deck weight for {kind} must be a number, got {weight!r}")
        if not 0 <= weight <= 100:
            raise DeckError(f"deck weight for {kind} must be 0..100, got {weight}")
        out[kind] = float(weight)
    return out


def _excluded(deck: Deck, card: Mapping[str, Any], excluded: set[str]) -> bool:
    # A bare card id excludes that card in every deck; "deck:card" (card_key) only in its deck.
    return card["id"] in excluded or card_key(deck.slug, card["id"]) in excluded


def candidates(
    decks: Deck | Sequence[Deck],
    *,
    kind: str | None = None,
    context: Mapping[str, Any] | None = None,
    weights: Mapping[str, float] | None = None,
    exclude: Iterable[str] = (),
) -> list[tuple[Deck, dict[str, Any], float]]:
    """The cards a `draw` could pick, in deck then card order, with their effective weights."""
    deck_list = [decks] if isinstance(decks, Deck) else list(decks)
    if not all(isinstance(d, Deck) for d in deck_list):
        raise DeckError("draw needs verified Deck values (see verify_deck / load_deck_file)")
    if kind is not None and kind not in CARD_KINDS:
        raise DeckError(f"unknown card kind {kind!r}; expected one of {', '.join(CARD_KINDS)}")
    ctx = _check_context(context)
    kind_weights = _check_weights(weights)
    if isinstance(exclude, str):
        raise DeckError("exclude must be a collection of card ids, not a single string")
    excluded = set(exclude)
    found = []
    for deck in deck_list:
        for card in deck.cards:
            if _excluded(deck, card, excluded) or (kind is not None and card["kind"] != kind):
                continue
            if not prerequisites_met(card, ctx):
                continue
            effective = card["weight"] * kind_weights.get(card["kind"], 1.0)
            if effective > 0:
                found.append((deck, card, effective))
    return found


def draw(
    decks: Deck | Sequence[Deck],
    rng: random.Random,
    *,
    kind: str | None = None,
    context: Mapping[str, Any] | None = None,
    weights: Mapping[str, float] | None = None,
    exclude: Iterable[str] = (),
    seed: int | None = None,
) -> Draw | None:
    """Draw one eligible card, or None when nothing fits.

    `context`: ``{"biome", "faction", "beat", "clocks": {name: value}}`` (all optional;
    ``faction`` may be a list: the factions present in the scene).
    `weights`: the personality's sampling weight per kind (default 1.0; 0 disables a kind).
    `exclude`: cards already drawn, as ``"deck:card"`` keys (`card_key`, what the engine
    records) or bare card ids (that id in any deck). `seed`, when given, is stored in the provenance so the
    draw can be replayed with ``random.Random(seed)``.
    """
    if not isinstance(rng, random.Random):
        raise DeckError(f"rng must be a random.Random, got {type(rng).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise DeckError(f"seed must be an integer, got {seed!r}")
    found = candidates(decks, kind=kind, context=context, weights=weights, exclude=exclude)
    if not found:
        return None
    deck, card, _ = rng.choices(found, weights=[w for _, _, w in found], k=1)[0]
    provenance: dict[str, Any] = {"deck": deck.slug, "version": deck.version, "card": card["id"]}
    if deck.key_id is not None:
        provenance["key_id"] = deck.key_id
    if seed is not None:
        provenance["seed"] = seed
    return Draw(card=copy_card(card), provenance=provenance)
