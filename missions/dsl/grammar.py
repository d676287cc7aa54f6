"""The mission language's LALR parser: grammar.lark compiled once (thread-safe) with the AST builder
wired in as its inline transformer."""

from __future__ import annotations

import threading
from pathlib import Path

from lark import Lark

from .transformer import MissionBuilder

_GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
_lock = threading.Lock()
_parser: Lark | None = None


def get_parser() -> Lark:
    """The shared parser, built on first use."""
    global _parser
    with _lock:
        if _parser is None:
            _parser = _make_parser()
    return _parser


def _make_parser() -> Lark:
    return Lark(
        _GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        keep_all_tokens=True,
        transformer=MissionBuilder(),
        maybe_placeholders=False,
    )
