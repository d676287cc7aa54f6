"""Encryption of provider API keys at rest: Fernet keys with an id, so they rotate.

The keyring is read from `GTW_PROVIDER_KEYS` ("id:base64key,id:base64key", the first one seals)
or else from the file `<data dir>/provider_keys` (one "id:base64key" a line, first one seals,
mode 0600). It is independent of SECRET_KEY: rotating one never makes the other unreadable.

A stored key is "<id>:<fernet token>". Opening it takes the key with that id (MultiFernet over
the rest as a fallback, for a token whose prefix was lost); when the keyring is missing or lacks
the id, `KeyUnavailable` is raised — callers fail closed (the provider is not built, nothing
falls back to an unencrypted value). Sealing a key when no keyring exists creates the file.

Plain keys never leave this module except to the adapter that needs them: messages name the
key by its label and last four characters only.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENV = "GTW_PROVIDER_KEYS"
FILE_NAME = "provider_keys"
# A key pasted into a form: printable, no spaces, bounded. Vendors' keys are 20 to 200 characters.
MIN_KEY_LENGTH = 8
MAX_KEY_LENGTH = 400


class KeyUnavailable(Exception):
    """The keyring is missing, or lacks the key a value was sealed with."""


class MalformedKey(ValueError):
    """A provider key that cannot be one (empty, spaces, control characters, too long)."""


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (id, fernet key); the first one seals
    source: str  # "env" or the file's path

    @property
    def primary_id(self) -> str:
        return self.keys[0][0]

    def fernet(self, key_id: str) -> Fernet | None:
        for kid, key in self.keys:
            if kid == key_id:
                return Fernet(key)
        return None

    def multi(self) -> MultiFernet:
        return MultiFernet([Fernet(key) for _, key in self.keys])


def key_file() -> Path:
    from django.conf import settings

    return Path(settings.DATA_DIR) / FILE_NAME


def _parse(text: str, source: str) -> Keyring:
    keys: list[tuple[str, bytes]] = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kid, sep, key = line.partition(":")
        if not sep or not kid.isalnum():
            raise KeyUnavailable(f"the provider keyring ({source}) has a line that is not 'id:key'")
        try:
            Fernet(key.encode())
        except ValueError:
            raise KeyUnavailable(f"the provider keyring ({source}) has an invalid key for id {kid}") from None
        keys.append((kid, key.encode()))
    if not keys:
        raise KeyUnavailable(f"the provider keyring ({source}) is empty")
    return Keyring(tuple(keys), source)


def keyring() -> Keyring:
    """The keyring in use; KeyUnavailable when there is none (fail closed)."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return _parse(env, "env")
    path = key_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KeyUnavailable(
            f"no provider keyring: set {ENV} or restore {path} (stored keys cannot be read without it)"
        ) from None
    return _parse(text, str(path))


def new_key_id() -> str:
    return "k" + secrets.token_hex(3)


def _write_file(path: Path, keys: list[tuple[str, bytes]]) -> None:
    """Write the keyring file atomically, readable by its owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{kid}:{key.decode()}\n" for kid, key in keys))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_keyring() -> Keyring:
    """The keyring, creating the file with one fresh key when neither it nor the env exists."""
    try:
        return keyring()
    except KeyUnavailable:
        if os.environ.get(ENV, "").strip() or key_file().exists():
            raise  # there is one, and it is broken: never paper over it with a new key
    path = key_file()
    _write_file(path, [(new_key_id(), Fernet.generate_key())])
    return keyring()


def add_primary_key() -> str:
    """Put a fresh key first in the keyring file (the old ones stay, to open older values).
    Returns its id. The env keyring is the operator's to edit."""
    ring = keyring()
    if ring.source == "env":
        raise KeyUnavailable(f"the keyring comes from {ENV}: put a new key first there, then rotate")
    kid = new_key_id()
    _write_file(Path(ring.source), [(kid, Fernet.generate_key()), *ring.keys])
    return kid


def drop_keys_except(keep: set[str]) -> list[str]:
    """Remove keys not in `keep` from the keyring file. Returns the ids dropped."""
    ring = keyring()
    if ring.source == "env":
        raise KeyUnavailable(f"the keyring comes from {ENV}: remove old keys there")
    kept = [(kid, key) for kid, key in ring.keys if kid in keep or kid == ring.primary_id]
    _write_file(Path(ring.source), kept)
    kept_ids = {kid for kid, _ in kept}
    return [kid for kid, _ in ring.keys if kid not in kept_ids]


def check_plain(plain: str) -> str:
    """`plain` stripped, or MalformedKey saying what is wrong (never quoting the key)."""
    value = plain.strip() if isinstance(plain, str) else ""
    if not value:
        raise MalformedKey("the key is empty")
    if len(value) < MIN_KEY_LENGTH:
        raise MalformedKey(f"the key is too short (at least {MIN_KEY_LENGTH} characters)")
    if len(value) > MAX_KEY_LENGTH:
        raise MalformedKey(f"the key is too long (at most {MAX_KEY_LENGTH} characters)")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise MalformedKey("the key contains spaces or control characters")
    return value


def seal(plain: str, ring: Keyring | None = None) -> str:
    ring = ring or ensure_keyring()
    token = Fernet(ring.keys[0][1]).encrypt(check_plain(plain).encode()).decode()
    return f"{ring.primary_id}:{token}"


def open_sealed(sealed: str, ring: Keyring | None = None) -> str:
    """The plain key; KeyUnavailable when it cannot be opened (never the ciphertext itself)."""
    ring = ring or keyring()
    kid, _, token = sealed.partition(":")
    fernet = ring.fernet(kid)
    try:
        if fernet is not None:
            return fernet.decrypt(token.encode()).decode()
        return ring.multi().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnavailable(
            f"a stored provider key (sealed with key id {kid or '?'}) cannot be opened with this keyring"
        ) from None


def reseal(sealed: str, ring: Keyring) -> str:
    """The same plain key sealed with the keyring's primary key."""
    return seal(open_sealed(sealed, ring), ring)


def last4(plain: str) -> str:
    return plain.strip()[-4:]


def masked(last_four: str) -> str:
    return f"…{last_four}" if last_four else ""
