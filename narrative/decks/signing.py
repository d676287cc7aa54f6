"""Signing and verifying story decks (Ed25519 over the canonical form), trusted key sets,
and the strict reading of deck and key files. Pure Python, no Django."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from narrative.decks.model import MAX_DECK_BYTES, SLUG_RE, Deck, DeckError, canonical_bytes, validate_deck

SIGNATURE_ALG = "ed25519"
MAX_FILE_BYTES = 512 * 1024
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}", re.ASCII)


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
    return slug if isinstance(slug, str) and SLUG_RE.fullmatch(slug) else "?"


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
