"""Lark's syntax exceptions -> `file:line:col: message` DslErrors that say what was expected in the
mission's own words."""

from __future__ import annotations

from lark import Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .ast import DslError, Pos
from .grammar import get_parser
from .tokens import token_pos

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "INT": "a number",
    "TIMES": "a count like x2",
    "CMP": "a comparison (>=, <=, !=, >, <)",
    "EQ": "'=='",
    "TRUE": "true",
    "FALSE": "false",
    "GO": "'go to'",
    "HIDDEN": "'hidden until'",
    "IN": "'in scene'",
    "TURN": "'turn ended'",
    "$END": "the end of the file",
}
_TOP_LEVEL = {"SCENE", "OBJECTIVE", "CLOCK", "TWIST", "NPC", "FAIL", "REWARD", "COMPLETE"}
_TOP_LEVEL_WORDS = ["a scene, objective, clock, twist, npc, fail or reward block", "'complete when'"]
_CONDITION = {"LPAR", "NOT", "CHECK", "OBJECTIVE", "CLOCK", "FLAG", "TURNS", "BEAT", "IN", "TURN"}
_CONDITION_WORDS = [
    "a condition (check, objective, clock, flag, turns, beat, in scene, turn ended, not or '(')"
]
# Order of words in "expected ..." lists: the rest follow alphabetically.
_ORDER = ["AND", "OR", "EQ", "CMP", "NAME", "STRING", "INT", "TIMES", "LBRACE", "RBRACE", "$END"]


def _word(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    for term in get_parser().terminals:
        if term.name == name and term.pattern.type == "str":
            return f"'{term.pattern.value}'"
    return name.lower()


def _join_words(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _expected(names: set[str]) -> str:
    names = set(names) - {"SEMICOLON", "COMMENT", "WS"}
    groups: list[str] = []
    if names >= _TOP_LEVEL:
        names -= _TOP_LEVEL
        groups += _TOP_LEVEL_WORDS
    if names >= _CONDITION:
        names -= _CONDITION
        groups += _CONDITION_WORDS
    ordered = sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER) - 1, n))
    # groups go before the end-of-file / closing-brace words, after the rest
    tail = [n for n in ordered if n in ("RBRACE", "$END")]
    head = [n for n in ordered if n not in ("RBRACE", "$END")]
    words = [_word(n) for n in head] + groups + [_word(n) for n in tail]
    return _join_words(words) if words else "nothing more"


def _shown_char(ch: str) -> str:
    if ch.isprintable() and ch not in " ":
        return f"'{ch}'"
    return f"U+{ord(ch):04X}"


def _found(tok: Token) -> str:
    value = str(tok)
    if tok.type == "$END":
        return "the end of the file"
    if tok.type == "NAME":
        return f"name '{value}'"
    if tok.type == "STRING":
        short = value if len(value) <= 30 else value[:27] + '..."'
        return f"string {short}"
    if tok.type == "INT":
        return f"number {value[:20]}"
    return f"'{value}'"


def end_pos(text: str) -> Pos:
    """The line and column just past the end of `text`."""
    line = text.count("\n") + 1
    col = len(text) - (text.rfind("\n") + 1) + 1
    return (line, col)


def _expected_terminals(exc: UnexpectedInput, fallback: set[str]) -> set[str]:
    """The terminals that could really come next. LALR merges states, so the parse table's list for
    a state can include words that only fit elsewhere; replaying each candidate (callbacks off) on a
    copy of the failed parser keeps only those that fit here."""
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is None:
        return fallback
    try:
        accepted = set(interactive.accepts())
    except (LarkError, ValueError, KeyError, TypeError, IndexError, RecursionError):
        return fallback
    return accepted or fallback


def syntax_error(exc: UnexpectedInput, text: str, filename: str) -> DslError:
    """The DslError for one of lark's syntax exceptions, in the mission's own words."""
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        ch = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else ""
        if ch == '"':
            msg = 'unterminated string (a string must end with " on the same line)'
        else:
            msg = f"unexpected character {_shown_char(ch)}" if ch else "unexpected character"
            allowed = _expected_terminals(exc, set(exc.allowed or ())) - {"WS", "COMMENT"}
            if allowed:
                msg += f", expected {_expected(allowed)}"
        return DslError(filename, line, col, msg)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        line, col = end_pos(text) if tok.type == "$END" else token_pos(tok)
        expected = _expected_terminals(exc, set(exc.expected))
        return DslError(filename, line, col, f"expected {_expected(expected)}, found {_found(tok)}")
    if isinstance(exc, UnexpectedEOF):
        line, col = end_pos(text)
        return DslError(
            filename, line, col, f"unexpected end of file, expected {_expected(set(exc.expected))}"
        )
    line, col = end_pos(text)
    return DslError(filename, line, col, "could not parse the mission")
