"""Source text -> mission AST (with private position keys), using lark's LALR parser.

`parse` raises MissionError and nothing else: lark's exceptions are turned into messages that say
what was expected in the mission's own words, and the limits (source size, condition nesting,
number size) are checked here so later passes can recurse safely.

The pieces: grammar.py (the compiled parser), transformer.py (the AST builder), tokens.py (token
values), syntax_errors.py (lark exception -> message).
"""

from __future__ import annotations

from typing import Any

from lark.exceptions import LarkError, UnexpectedInput

from .ast import MAX_SOURCE_CHARS, DslError, MissionError
from .grammar import get_parser
from .syntax_errors import end_pos, syntax_error
from .tokens import ParseProblem

# Kept under its old name: the DSL tests read the grammar's terminals through it.
_get_parser = get_parser


def parse(text: str, filename: str = "<mission>") -> dict[str, Any]:
    """Parse `text` into an AST that still carries private position keys. Raises only MissionError."""
    if not isinstance(text, str):
        raise MissionError(
            [DslError(filename, 1, 1, f"mission source must be text, got {type(text).__name__}")]
        )
    if len(text) > MAX_SOURCE_CHARS:
        raise MissionError(
            [
                DslError(
                    filename,
                    1,
                    1,
                    f"mission source is too large ({len(text)} characters, the limit is {MAX_SOURCE_CHARS})",
                )
            ]
        )
    parser = get_parser()
    try:
        return parser.parse(text)
    except ParseProblem as problem:
        raise MissionError([DslError(filename, problem.pos[0], problem.pos[1], problem.message)]) from None
    except UnexpectedInput as exc:
        raise MissionError([syntax_error(exc, text, filename)]) from None
    except (LarkError, RecursionError, ValueError, IndexError, KeyError, TypeError) as exc:
        # Defensive: a bug in a callback must still come out as a MissionError, never a traceback.
        line, col = end_pos(text)
        msg = f"could not parse the mission ({type(exc).__name__})"
        raise MissionError([DslError(filename, line, col, msg)]) from None
