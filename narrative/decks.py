"""Signed story decks: twists, complications, NPC agendas and hazards the director can draw.

Pure Python, no Django. A deck file is JSON::

    {"deck": {"slug", "name", "version", "description"?, "cards": [card, ...]},
     "signature": {"alg": "ed25519", "key_id": "<16 hex>", "sig": "<base64>"}}

    card = {"id", "kind": "twist" | "complication" | "agenda" | "hazard", "title", "text",
            "weight": int > 0, "payoff"?: str,
            "requires"?: {"biome"?: [...], "faction"?: [...], "beat"?: [...], "clock_min"?: {name: n}}}

The signature is Ed25519 over the *canonical form* of the "deck" object:
``json.dumps(deck, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")``.
A key is named by its key_id: the first 16 hex characters of the SHA-256 of the raw 32-byte
public key. A deck is only ever used after `verify_deck` has checked it against a trusted
key set ``{key_id: base64 raw public key}``; a deck that is unsigned, signed by an unknown key,
or changed after signing is refused with a `DeckError` saying which.

Draws are seeded: `draw` takes the caller's `random.Random` (and the seed that built it, to
record in the provenance), filters cards by their prerequisites against the scene context,
multiplies each card's weight by the personality's sampling weight for its kind, and picks one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from narrative.director import BEATS

CARD_KINDS: tuple[str, ...] = ("twist", "complication", "agenda", "hazard")
SIGNATURE_ALG = "ed25519"
MAX_CARDS = 200
MAX_DECK_BYTES = 256 * 1024
MAX_FILE_BYTES = 512 * 1024
MAX_WEIGHT = 1000
MAX_REQUIRE_VALUES = 20
TEXT_LIMITS = {"name": 120, "description": 1000, "title": 120, "text": 2000, "payoff": 1000}

_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
_CLOCK_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)
_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,31}", re.ASCII)
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}", re.ASCII)
_DECK_KEYS = frozenset({"slug", "name", "version", "description", "cards"})
_CARD_KEYS = frozenset({"id", "kind", "title", "text", "weight", "requires", "payoff"})
_REQUIRE_KEYS = ("biome", "faction", "beat", "clock_min")
_CONTEXT_KEYS = frozenset({"biome", "faction", "beat", "clocks"})
_WHERE_KEYS = ("id", "kind", "biome", "faction", "beat")


class DeckError(ValueError):
    """A deck, its signature, a key, or a draw request is invalid. The message says which."""


# --- canonical form and keys ---------------------------------------------------------------


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


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise DeckError(f"{what} must be a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise DeckError(f"{what} is not valid base64") from None


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_for(public_b64: str) -> str:
    """The key_id of a base64 raw Ed25519 public key: sha256(raw)[:16 hex]."""
    raw = _b64decode(public_b64, "public key")
    if len(raw) != 32:
        raise DeckError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair() -> tuple[bytes, str]:
    """A new signing key: (PKCS#8 PEM private key, base64 raw public key)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, base64.b64encode(_raw_public(private.public_key())).decode("ascii")


def _load_private(private_pem: bytes) -> Ed25519PrivateKey:
    if isinstance(private_pem, str):
        private_pem = private_pem.encode("utf-8")
    if not isinstance(private_pem, bytes):
        raise DeckError(f"private key must be PEM bytes, got {type(private_pem).__name__}")
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise DeckError("private key is not an unencrypted PEM key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DeckError("private key is not an Ed25519 key")
    return key


def parse_trusted(data: Any) -> dict[str, str]:
    """Validate a trusted-key set ``{key_id: base64 raw public key}``.

    Each key_id must be the key's own id, so a trust file cannot name one key and hold another.
    """
    if not isinstance(data, Mapping):
        raise DeckError(f"trusted keys must be an object of key_id to public key, got {type(data).__name__}")
    trusted: dict[str, str] = {}
    for key_id, public_b64 in data.items():
        if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
            raise DeckError(f"trusted key id {key_id!r} is not 16 lowercase hex characters")
        actual = key_id_for(public_b64)
        if actual != key_id:
            raise DeckError(f"trusted key '{key_id}' holds a different public key (its id is '{actual}')")
        trusted[key_id] = public_b64
    return trusted


def load_trusted_keys(path: str | Path) -> dict[str, str]:
    """Read and validate a ``trusted_keys.json`` file."""
    return parse_trusted(read_json_file(Path(path), "trusted keys"))


# --- schema ---------------------------------------------------------------------------------


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
        if not isinstance(item, str) or not _SLUG_RE.fullmatch(item):
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
    if not isinstance(card_id, str) or not _SLUG_RE.fullmatch(card_id):
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
            "cards": [_copy_card(c) for c in self.cards],
            "key_id": self.key_id,
        }


def _copy_card(card: Mapping[str, Any]) -> dict[str, Any]:
    # Cards are nested plain data; a JSON round trip is the simplest deep copy that also
    # guarantees callers get something they can store in an event payload.
    return json.loads(json.dumps(card))


def validate_deck(deck: Any, *, key_id: str | None = None) -> Deck:
    """Check the schema of a "deck" object (no signature check) and return a Deck."""
    if not isinstance(deck, Mapping):
        raise DeckError(f"deck must be an object, got {type(deck).__name__}")
    slug = deck.get("slug")
    if not isinstance(slug, str) or not _SLUG_RE.fullmatch(slug):
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


# --- signing and verification ---------------------------------------------------------------


def sign_deck(deck: Mapping[str, Any], private_pem: bytes) -> dict[str, Any]:
    """Validate `deck` (the inner "deck" object) and return the signed document."""
    validate_deck(deck)
    key = _load_private(private_pem)
    public_b64 = base64.b64encode(_raw_public(key.public_key())).decode("ascii")
    signature = key.sign(canonical_bytes(deck))
    return {
        # A deep copy in the author's key order: the file stays readable, and the signature
        # covers the canonical form whatever the order.
        "deck": json.loads(json.dumps(deck, ensure_ascii=False)),
        "signature": {
            "alg": SIGNATURE_ALG,
            "key_id": key_id_for(public_b64),
            "sig": base64.b64encode(signature).decode("ascii"),
        },
    }


def _deck_name(doc: Mapping[str, Any]) -> str:
    deck = doc.get("deck")
    slug = deck.get("slug") if isinstance(deck, Mapping) else None
    return slug if isinstance(slug, str) and _SLUG_RE.fullmatch(slug) else "?"


def verify_deck(doc: Any, trusted: Mapping[str, str]) -> Deck:
    """Check a signed deck document against `trusted` ({key_id: base64 raw public key}).

    Returns the Deck (with its `key_id`) or raises DeckError: unsigned, wrong algorithm,
    untrusted key, signature mismatch, or a schema problem.
    """
    if not isinstance(doc, Mapping):
        raise DeckError(f"a deck file must hold a JSON object, got {type(doc).__name__}")
    if not isinstance(doc.get("deck"), Mapping):
        raise DeckError("a deck file must have a 'deck' object")
    unknown = sorted(str(k) for k in set(doc) - {"deck", "signature"})
    if unknown:
        raise DeckError(f"deck file has unknown top-level field(s): {', '.join(unknown)}")
    name = _deck_name(doc)
    signature = doc.get("signature")
    if signature is None:
        raise DeckError(f"deck '{name}' is unsigned")
    if not isinstance(signature, Mapping):
        raise DeckError(f"deck '{name}': signature must be an object with alg, key_id and sig")
    unknown = sorted(str(k) for k in set(signature) - {"alg", "key_id", "sig"})
    if unknown:
        raise DeckError(f"deck '{name}': signature has unknown field(s): {', '.join(unknown)}")
    alg = signature.get("alg")
    if alg != SIGNATURE_ALG:
        raise DeckError(f"deck '{name}': unsupported signature algorithm {alg!r}; only 'ed25519' is accepted")
    key_id = signature.get("key_id")
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise DeckError(
            f"deck '{name}': signature key_id must be 16 lowercase hex characters, got {key_id!r}"
        )
    if not isinstance(trusted, Mapping):
        raise DeckError(
            f"trusted keys must be a mapping of key_id to public key, got {type(trusted).__name__}"
        )
    if key_id not in trusted:
        raise DeckError(f"deck '{name}' is signed by untrusted key '{key_id}'")
    if key_id_for(trusted[key_id]) != key_id:
        raise DeckError(f"trusted key '{key_id}' holds a different public key")
    sig = _b64decode(signature.get("sig"), f"deck '{name}': signature")
    if len(sig) != 64:
        raise DeckError(f"deck '{name}': an Ed25519 signature is 64 bytes, got {len(sig)}")
    payload = canonical_bytes(doc["deck"])
    if len(payload) > MAX_DECK_BYTES:
        raise DeckError(f"deck '{name}' is {len(payload)} bytes; at most {MAX_DECK_BYTES} are allowed")
    try:
        public = Ed25519PublicKey.from_public_bytes(_b64decode(trusted[key_id], f"trusted key '{key_id}'"))
        public.verify(sig, payload)
    except (InvalidSignature, ValueError):
        raise DeckError(
            f"deck '{name}': signature does not match: the deck was modified after signing"
        ) from None
    return validate_deck(doc["deck"], key_id=key_id)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys silently; in a signed file that would let a
    # reader see one value and the verifier another. Refuse instead.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DeckError(f"duplicate key {key!r} in a JSON object")
        obj[key] = value
    return obj


def parse_json_bytes(data: bytes, label: str) -> Any:
    """Parse JSON bytes strictly (UTF-8, no duplicate keys); errors name `label` and the position."""
    if len(data) > MAX_FILE_BYTES:
        raise DeckError(f"{label}: {len(data)} bytes; at most {MAX_FILE_BYTES} are allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeckError(f"{label}: not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise DeckError(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except DeckError as exc:
        raise DeckError(f"{label}: {exc}") from None
    except RecursionError:
        raise DeckError(f"{label}: JSON nested too deeply") from None


def read_json_file(path: Path, label: str) -> Any:
    """Read a JSON file of at most MAX_FILE_BYTES strictly; every failure is a DeckError."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DeckError(f"cannot read {label} file {path}: {exc.strerror or exc}") from None
    return parse_json_bytes(data, str(path))


def load_deck_file(path: str | Path, trusted: Mapping[str, str]) -> Deck:
    """Read a deck file and verify it; every failure is a DeckError naming the problem."""
    return verify_deck(read_json_file(Path(path), "deck"), trusted)


# --- drawing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draw:
    card: dict[str, Any]
    provenance: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"card": _copy_card(self.card), "provenance": dict(self.provenance)}


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
    return Draw(card=_copy_card(card), provenance=provenance)
