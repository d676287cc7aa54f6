"""The `gtw` command: `gtw up`, `gtw doctor`, `gtw bench …`, `gtw memory …`, `gtw mission validate`,
`gtw deck …`. This module parses the arguments; each subcommand lives in its own module here:
up.py (the game server) with supervisor.py (its children), doctor.py, bench.py (dispatch to
gtw_site/bench/), content.py (memory, mission and deck tools).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from gtw_site.cli.bench import add_bench_parser
from gtw_site.cli.common import fail
from gtw_site.cli.content import cmd_deck, cmd_memory, cmd_mission
from gtw_site.cli.doctor import cmd_doctor
from gtw_site.cli.keys import add_keys_parser
from gtw_site.cli.up import cmd_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gtw", description="Galactic Tale Weaver")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the game server (web + tasks + embedded services)")
    # Defaults from the environment are read after parsing, so a bad one never breaks --help.
    up.add_argument("--port", type=_port, help="default: GTW_PORT or 8000")
    up.add_argument("--host", default=os.environ.get("GTW_HOST", "127.0.0.1"))
    up.add_argument(
        "--trusted-lan",
        action="store_true",
        help="serve on a network address even with settings only safe on one machine (or GTW_TRUSTED_LAN=1)",
    )
    up.add_argument("--web-workers", type=_at_least_one, help="default: GTW_WEB_WORKERS or 1")
    up.set_defaults(func=cmd_up)
    doctor = sub.add_parser("doctor", help="check the database, pgvector, Redis and providers")
    doctor.set_defaults(func=cmd_doctor)
    memory = sub.add_parser("memory", help="import memories (JSONL) or re-embed them all")
    memory.add_argument("action", choices=["import", "reembed"])
    memory.add_argument("file", nargs="?")
    memory.add_argument("--campaign", type=int)
    memory.add_argument("--user", help="whose membership the import runs as")
    memory.set_defaults(func=cmd_memory)
    add_bench_parser(sub)
    add_keys_parser(sub)
    mission = sub.add_parser("mission", help="check mission files (no database needed)")
    mission_sub = mission.add_subparsers(dest="action", required=True)
    validate = mission_sub.add_parser("validate", help="compile .mission files and report every error")
    validate.add_argument("files", nargs="+", metavar="FILE")
    mission.set_defaults(func=cmd_mission)
    # `gtw deck` has its own parser (narrative.decks_cli): everything after `deck` goes to it,
    # `--help` included, so this one must not add its own.
    deck = sub.add_parser("deck", help="keygen | sign | verify story decks", add_help=False)
    deck.add_argument("deck_args", nargs=argparse.REMAINDER)
    deck.set_defaults(func=cmd_deck)
    args, unknown = parser.parse_known_args(argv)
    if args.command == "deck":
        # parse_known_args leaves options before deck's own subcommand (`gtw deck --help`) here.
        args.deck_args = unknown + args.deck_args
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "up":
        args.port = _from_env(args.port, "GTW_PORT", "8000", _port)
        args.web_workers = _from_env(args.web_workers, "GTW_WEB_WORKERS", "1", _at_least_one)
    return _run(args)


def _run(args) -> int:
    """Configuration mistakes (environment, DATABASE_URL) read as one line, not a traceback."""
    from dj_database_url import UnknownSchemeError
    from django.core.exceptions import ImproperlyConfigured
    from django.db.utils import OperationalError

    try:
        return args.func(args)
    except (ImproperlyConfigured, UnknownSchemeError) as exc:
        fail(f"configuration error: {exc}")
    except OperationalError as exc:
        fail(f"cannot use the database: {' '.join(str(exc).split())}")
    except OverflowError as exc:
        fail(f"a number is out of range: {exc}")


def _port(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {value}")
    return value


def _at_least_one(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _from_env(given, name: str, default: str, convert: Callable[[str], int]) -> int:
    """The option's value if given, else the environment variable's (checked the same way)."""
    if given is not None:
        return given
    try:
        return convert(os.environ.get(name, "").strip() or default)
    except argparse.ArgumentTypeError as exc:
        fail(f"{name} {exc}")
