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

The package: `model` (the schema, validate_deck), `signing` (keys, signatures, files) and
`drawing` (seeded draws). Every name is re-exported here.
"""

from narrative.decks.drawing import (
    Draw,
    candidates,
    card_key,
    draw,
    matches,
    prerequisites_met,
    where_context,
)
from narrative.decks.model import (
    CARD_KINDS,
    MAX_CARDS,
    MAX_DECK_BYTES,
    MAX_REQUIRE_VALUES,
    MAX_WEIGHT,
    TEXT_LIMITS,
    Deck,
    DeckError,
    canonical_bytes,
    validate_deck,
)
from narrative.decks.signing import (
    MAX_FILE_BYTES,
    SIGNATURE_ALG,
    generate_keypair,
    key_id_for,
    load_deck_file,
    load_trusted_keys,
    parse_json_bytes,
    parse_trusted,
    read_json_file,
    sign_deck,
    verify_deck,
)

__all__ = [
    "CARD_KINDS",
    "MAX_CARDS",
    "MAX_DECK_BYTES",
    "MAX_FILE_BYTES",
    "MAX_REQUIRE_VALUES",
    "MAX_WEIGHT",
    "SIGNATURE_ALG",
    "TEXT_LIMITS",
    "Deck",
    "DeckError",
    "Draw",
    "candidates",
    "canonical_bytes",
    "card_key",
    "draw",
    "generate_keypair",
    "key_id_for",
    "load_deck_file",
    "load_trusted_keys",
    "matches",
    "parse_json_bytes",
    "parse_trusted",
    "prerequisites_met",
    "read_json_file",
    "sign_deck",
    "validate_deck",
    "verify_deck",
    "where_context",
]
