"""Token values for the mission parser: positions, numbers and strings, checked as they are read.

A value that breaks a rule (a number too large, a bad escape, a control character) raises
`ParseProblem` with its position; `parse` turns that into a `file:line:col: message` MissionError.
"""

from __future__ import annotations

from lark import Token

from .ast import MAX_NUMBER, Pos

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class ParseProblem(Exception):
    """A rule broken inside the parse, at `pos`; `parse` reports it as a MissionError."""

    def __init__(self, pos: Pos, message: str):
        super().__init__(message)
        self.pos = pos
        self.message = message


def token_pos(tok: Token) -> Pos:
    return (tok.line or 1, tok.column or 1)


def token_int(tok: Token) -> int:
    text = str(tok)
    digits = text.lstrip("-")
    if len(digits) > 10 or int(text) > MAX_NUMBER or int(text) < -MAX_NUMBER:
        raise ParseProblem(
            token_pos(tok), f"number {text[:20]}{'...' if len(text) > 20 else ''} is too large"
        )
    return int(text)


def token_string(tok: Token) -> str:
    raw = str(tok)[1:-1]
    out: list[str] = []
    i = 0
    line, col = token_pos(tok)
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1]  # the STRING terminal guarantees a character after a backslash
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u":
                hexdigits = raw[i + 2 : i + 6]
                if len(hexdigits) == 4 and all(c in "0123456789abcdefABCDEF" for c in hexdigits):
                    code = int(hexdigits, 16)
                    if 0xD800 <= code <= 0xDFFF or (code < 0x20 and code not in (9, 10, 13)):
                        raise ParseProblem((line, col + 1 + i), f"\\u{hexdigits} is not allowed in a string")
                    out.append(chr(code))
                    i += 6
                    continue
                raise ParseProblem((line, col + 1 + i), "\\u must be followed by four hex digits")
            shown = nxt if nxt.isprintable() else f"U+{ord(nxt):04X}"
            raise ParseProblem(
                (line, col + 1 + i),
                f"unknown escape '\\{shown}' in string (use \\\", \\\\, \\n, \\t or \\uXXXX)",
            )
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF or (code < 0x20 and ch != "\t") or code == 0x7F:
            raise ParseProblem((line, col + 1 + i), f"character U+{code:04X} is not allowed in a string")
        out.append(ch)
        i += 1
    return "".join(out)
