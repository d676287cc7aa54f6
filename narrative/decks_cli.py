"""`gtw deck`: generate signing keys, sign story decks, verify them.

    gtw deck keygen [--out PREFIX]                   writes PREFIX.key (0600) and PREFIX.pub
    gtw deck sign DECK.json --key PREFIX.key [--out FILE]
    gtw deck verify DECK.json... [--trusted trusted_keys.json]

`deck_main` returns an exit status and never raises: 0 success, 1 a deck or key problem
(reported on one line), 2 a usage error. Output goes to the `out` / `err` streams it is given.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from narrative import decks

DEFAULT_PREFIX = "deck-signing"


class _UsageExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to the given streams and raises instead of exiting."""

    def __init__(self, *args: Any, out: IO[str], err: IO[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._out = out
        self._err = err

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        if message:
            (self._err if file is sys.stderr else self._out).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._err.write(message)
        raise _UsageExit(status)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser(out: IO[str], err: IO[str]) -> _Parser:
    parser = _Parser(prog="gtw deck", description="Sign and verify story decks.", out=out, err=err)
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=functools.partial(_Parser, out=out, err=err)
    )
    keygen = sub.add_parser("keygen", help="generate an Ed25519 signing key")
    keygen.add_argument(
        "--out", default=DEFAULT_PREFIX, metavar="PREFIX", help="write PREFIX.key and PREFIX.pub"
    )
    sign = sub.add_parser("sign", help="sign a deck (in place unless --out is given)")
    sign.add_argument("deck", metavar="DECK.json")
    sign.add_argument("--key", required=True, metavar="PREFIX.key", help="PEM private key from keygen")
    sign.add_argument("--out", metavar="FILE", help="write the signed deck here instead")
    verify = sub.add_parser("verify", help="verify signed decks")
    verify.add_argument("decks", nargs="+", metavar="DECK.json")
    verify.add_argument(
        "--trusted",
        metavar="FILE",
        help="trusted keys {key_id: public key}; default: trusted_keys.json beside each deck",
    )
    return parser


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _keygen(args: argparse.Namespace, out: IO[str]) -> int:
    key_path = Path(f"{args.out}.key")
    pub_path = Path(f"{args.out}.pub")
    private_pem, public_b64 = decks.generate_keypair()
    key_id = decks.key_id_for(public_b64)
    # O_EXCL: never overwrite an existing key; 0600 from creation, so it is never readable.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    os.chmod(key_path, 0o600)
    line = f"{key_id} {public_b64}\n"
    _write_atomic(pub_path, line)
    out.write(line)
    return 0


def _sign(args: argparse.Namespace, out: IO[str]) -> int:
    src = Path(args.deck)
    doc = decks.read_json_file(src, "deck")
    if isinstance(doc, dict) and "deck" in doc:
        extra = sorted(set(doc) - {"deck", "signature"})
        if extra:
            raise decks.DeckError(f"{src}: unknown top-level field(s): {', '.join(extra)}")
        deck = doc["deck"]
    else:
        deck = doc  # a bare deck object, never signed before
    try:
        with Path(args.key).open("rb") as handle:
            private_pem = handle.read(64 * 1024)
    except OSError as exc:
        raise decks.DeckError(f"cannot read key file {args.key}: {exc.strerror or exc}") from None
    signed = decks.sign_deck(deck, private_pem)
    dest = Path(args.out) if args.out else src
    _write_atomic(dest, json.dumps(signed, indent=2, ensure_ascii=False) + "\n")
    cards = len(signed["deck"]["cards"])
    out.write(
        f"signed {dest}: deck '{signed['deck']['slug']}' v{signed['deck']['version']}, "
        f"{cards} cards, key {signed['signature']['key_id']}\n"
    )
    return 0


def _verify(args: argparse.Namespace, out: IO[str]) -> int:
    trusted_cache: dict[Path, dict[str, str] | decks.DeckError] = {}
    status = 0
    for name in args.decks:
        path = Path(name)
        trusted_path = Path(args.trusted) if args.trusted else path.parent / "trusted_keys.json"
        try:
            if trusted_path not in trusted_cache:
                try:
                    trusted_cache[trusted_path] = decks.load_trusted_keys(trusted_path)
                except decks.DeckError as exc:
                    trusted_cache[trusted_path] = exc
            trusted = trusted_cache[trusted_path]
            if isinstance(trusted, decks.DeckError):
                raise trusted
            deck = decks.load_deck_file(path, trusted)
        except decks.DeckError as exc:
            out.write(f"FAIL {path}: {exc}\n")
            status = 1
            continue
        out.write(
            f"OK   {path}: deck '{deck.slug}' v{deck.version}, {len(deck.cards)} cards, key {deck.key_id}\n"
        )
    return status


def deck_main(argv: Sequence[str], out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run `gtw deck ...` with `argv` (without the program name); return the exit status.

    `out` / `err` default to the current sys.stdout / sys.stderr (looked up at call time).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = _build_parser(out, err)
    try:
        args = parser.parse_args(list(argv))
    except _UsageExit as exc:
        return exc.status
    try:
        if args.command == "keygen":
            return _keygen(args, out)
        if args.command == "sign":
            return _sign(args, out)
        return _verify(args, out)
    except decks.DeckError as exc:
        err.write(f"gtw deck {args.command}: {exc}\n")
        return 1
    except FileExistsError as exc:
        err.write(f"gtw deck {args.command}: {exc.filename} already exists; not overwriting a key\n")
        return 1
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        err.write(f"gtw deck {args.command}: cannot write{where}: {exc.strerror or exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(deck_main(sys.argv[1:]))
