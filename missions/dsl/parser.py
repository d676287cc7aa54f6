"""Source text -> mission AST (with private position keys), using lark's LALR parser.

`parse` raises MissionError and nothing else: lark's exceptions are turned into messages that say
what was expected in the mission's own words, and the limits (source size, condition nesting,
number size) are checked here so later passes can recurse safely.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .ast import (
    KEYWORDS,
    MAX_CONDITION_DEPTH,
    MAX_NUMBER,
    MAX_SOURCE_CHARS,
    VERSION,
    DslError,
    MissionError,
    Pos,
)

_GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
_lock = threading.Lock()
_parser: Lark | None = None

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class _Problem(Exception):
    def __init__(self, pos: Pos, message: str):
        super().__init__(message)
        self.pos = pos
        self.message = message


def _pos(tok: Token) -> Pos:
    return (tok.line or 1, tok.column or 1)


def _int(tok: Token) -> int:
    text = str(tok)
    digits = text.lstrip("-")
    if len(digits) > 10 or int(text) > MAX_NUMBER or int(text) < -MAX_NUMBER:
        raise _Problem(_pos(tok), f"number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return int(text)


def _string(tok: Token) -> str:
    raw = str(tok)[1:-1]
    out: list[str] = []
    i = 0
    line, col = _pos(tok)
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
                        raise _Problem((line, col + 1 + i), f"\\u{hexdigits} is not allowed in a string")
                    out.append(chr(code))
                    i += 6
                    continue
                raise _Problem((line, col + 1 + i), "\\u must be followed by four hex digits")
            shown = nxt if nxt.isprintable() else f"U+{ord(nxt):04X}"
            raise _Problem(
                (line, col + 1 + i),
                f"unknown escape '\\{shown}' in string (use \\\", \\\\, \\n, \\t or \\uXXXX)",
            )
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF or (code < 0x20 and ch != "\t") or code == 0x7F:
            raise _Problem((line, col + 1 + i), f"character U+{code:04X} is not allowed in a string")
        out.append(ch)
        i += 1
    return "".join(out)


def _cond(node: dict[str, Any], at: Pos, depth: int = 1) -> dict[str, Any]:
    if depth > MAX_CONDITION_DEPTH:
        raise _Problem(at, f"condition is nested too deeply (the limit is {MAX_CONDITION_DEPTH} levels)")
    node["_at"] = at
    node["_depth"] = depth
    return node


def _stmts(children: list[Any]) -> list[tuple[str, Token, Any]]:
    """The statements of a `{ ... }` body, separators dropped."""
    return [c for c in children if isinstance(c, tuple)]


def _flatten(node: dict[str, Any]) -> dict[str, Any]:
    """Merge nested same-operator groups into one and/or node. Iterative along a group (those can
    be thousands deep); recursive only across operator changes, which the depth limit bounds."""
    op = node["op"]
    if op == "not":
        node["arg"] = _flatten(node["arg"])
        return node
    if op not in ("and", "or"):
        return node
    args: list[dict[str, Any]] = []
    stack = list(reversed(node["args"]))
    while stack:
        child = stack.pop()
        if child["op"] == op:
            stack.extend(reversed(child["args"]))
        else:
            args.append(_flatten(child))
    node["args"] = args
    return node


def _flatten_all(ast: dict[str, Any]) -> None:
    def fix(holder: dict[str, Any], key: str) -> None:
        if holder.get(key) is not None:
            holder[key] = _flatten(holder[key])

    fix(ast, "complete_when")
    for scene in ast["scenes"]:
        for move in scene["transitions"]:
            fix(move, "when")
    for obj in ast["objectives"]:
        for key in ("hidden_until", "complete_when", "fail_when"):
            fix(obj, key)
    for clock in ast["clocks"]:
        for tick in clock["ticks"]:
            fix(tick, "when")
    for node in ast["twists"] + ast["fails"]:
        fix(node, "when")


def _single(node: dict[str, Any], kind: str, tok: Token, what: str) -> bool:
    """Record a 'more than one' problem when a single-valued statement repeats; True if it's the first."""
    seen = node.setdefault("_seen", set())
    if kind in seen:
        node.setdefault("_errors", []).append((_pos(tok), f"{what} has more than one '{kind}'"))
        return False
    seen.add(kind)
    return True


class _Build(Transformer):
    """Inline LALR callbacks: each returns a finished node, so the parse never recurses."""

    def NAME(self, tok):
        if str(tok) in KEYWORDS:
            raise _Problem(_pos(tok), f"'{tok}' is a reserved word and can't be used as a name")
        return tok

    # ---- shared pieces ----------------------------------------------------------------------------
    def text(self, c):
        return ("".join(_string(t) for t in c), _pos(c[0]))

    def names(self, c):
        return [(str(t), _pos(t)) for t in c if t.type == "NAME"]

    def sep(self, c):
        return None

    # ---- header and top level ---------------------------------------------------------------------
    def header(self, c):
        summary, _ = c[6]
        return {
            "slug": str(c[1]),
            "title": _string(c[2]),
            "biome": str(c[4]),
            "summary": summary,
            "_pos": {"slug": _pos(c[1]), "biome": _pos(c[4]), "mission": _pos(c[0])},
        }

    def start(self, c):
        ast: dict[str, Any] = {"version": VERSION, **c[0]}
        ast.update(scenes=[], objectives=[], clocks=[], twists=[], npcs=[], fails=[], reward=None)
        ast["complete_when"] = None
        ast["_errors"] = []
        for kind, tok, node in c[1:]:
            if kind == "reward":
                if ast["reward"] is not None:
                    ast["_errors"].append((_pos(tok), "the mission has more than one 'reward on complete'"))
                else:
                    ast["reward"] = node
                    ast["_pos"]["reward"] = _pos(tok)
            elif kind == "complete_when":
                if ast["complete_when"] is not None:
                    ast["_errors"].append((_pos(tok), "the mission has more than one 'complete when'"))
                else:
                    ast["complete_when"] = node
                    ast["_pos"]["complete_when"] = _pos(tok)
            else:
                ast[kind].append(node)
        for n, fail in enumerate(ast["fails"], start=1):
            if fail["id"] is None:
                fail["id"] = f"fail-{n}"
        _flatten_all(ast)
        return ast

    def end_state(self, c):
        return ("complete_when", c[0], c[2])

    # ---- scenes -----------------------------------------------------------------------------------
    def scene(self, c):
        node: dict[str, Any] = {"id": str(c[1]), "title": _string(c[2]), "description": "", "transitions": []}
        node["_pos"] = {"id": _pos(c[1])}
        for kind, tok, value in c[3] if len(c) > 3 else []:
            if kind == "description":
                if _single(node, "description", tok, f"scene '{node['id']}'"):
                    node["description"] = value[0]
            else:
                node["transitions"].append(value)
        node.pop("_seen", None)
        return ("scenes", c[0], node)

    def scene_body(self, c):
        return _stmts(c)

    def description(self, c):
        return ("description", c[0], c[1])

    def go(self, c):
        return ("go", c[0], {"to": str(c[2]), "when": c[4], "_pos": {"to": _pos(c[2])}})

    # ---- objectives -------------------------------------------------------------------------------
    def objective(self, c):
        node: dict[str, Any] = {
            "id": str(c[1]),
            "text": _string(c[2]),
            "scene": None,
            "requires": [],
            "hidden_until": None,
            "complete_when": None,
            "fail_when": None,
            "reward": None,
        }
        node["_pos"] = {"id": _pos(c[1])}
        node["_requires_pos"] = []
        what = f"objective '{node['id']}'"
        for kind, tok, value in c[3] if len(c) > 3 else []:
            if kind == "requires":
                for name, pos in value:
                    node["requires"].append(name)
                    node["_requires_pos"].append(pos)
                continue
            label = {"scene": "in scene", "hidden_until": "hidden until", "complete_when": "complete when"}
            label |= {"fail_when": "fail when", "reward": "reward"}
            if not _single(node, label[kind], tok, what):
                continue
            if kind == "scene":
                node["scene"] = value[0]
                node["_pos"]["scene"] = value[1]
            else:
                node[kind] = value
        node.pop("_seen", None)
        return ("objectives", c[0], node)

    def objective_body(self, c):
        return _stmts(c)

    def in_scene(self, c):
        return ("scene", c[0], (str(c[2]), _pos(c[2])))

    def requires(self, c):
        return ("requires", c[0], c[1])

    def hidden_until(self, c):
        return ("hidden_until", c[0], c[2])

    def complete_when(self, c):
        return ("complete_when", c[0], c[2])

    def fail_when(self, c):
        return ("fail_when", c[0], c[2])

    def objective_reward(self, c):
        return ("reward", c[0], c[1])

    # ---- clocks -----------------------------------------------------------------------------------
    def clock(self, c):
        node: dict[str, Any] = {"id": str(c[1]), "label": _string(c[2]), "size": _int(c[4]), "ticks": []}
        node["_pos"] = {"id": _pos(c[1]), "size": _pos(c[4])}
        for _kind, _tok, value in c[5] if len(c) > 5 else []:
            node["ticks"].append(value)
        return ("clocks", c[0], node)

    def clock_body(self, c):
        return _stmts(c)

    def tick(self, c):
        return ("tick", c[0], {"by": _int(c[1]), "when": c[3], "_pos": {"by": _pos(c[1])}})

    # ---- twists -----------------------------------------------------------------------------------
    def twist(self, c):
        node: dict[str, Any] = {"id": str(c[1]), "beat": None, "when": None, "text": None, "draw": None}
        node["_pos"] = {"id": _pos(c[1])}
        what = f"twist '{node['id']}'"
        for kind, tok, value in c[2]:
            label = {"beat": "at beat", "when": "when", "text": "text", "draw": "draw"}[kind]
            if not _single(node, label, tok, what):
                continue
            if kind == "beat":
                node["beat"] = value[0]
                node["_pos"]["beat"] = value[1]
            elif kind == "text":
                node["text"] = value[0]
            else:
                node[kind] = value
        node.pop("_seen", None)
        return ("twists", c[0], node)

    def twist_body(self, c):
        return _stmts(c)

    def at_beat(self, c):
        return ("beat", c[0], c[2])

    def beat_name(self, c):
        return (str(c[0]), _pos(c[0]))

    def twist_when(self, c):
        return ("when", c[0], c[1])

    def twist_text(self, c):
        return ("text", c[0], c[1])

    def draw(self, c):
        node: dict[str, Any] = {"deck": str(c[1]), "where": {}, "_pos": {"deck": _pos(c[1])}}
        node["_errors"] = []
        node["_where_pos"] = {}
        for key, key_pos, value in c[3] if len(c) > 3 else []:
            if key in node["where"]:
                node["_errors"].append((key_pos, f"'where' names '{key}' more than once"))
                continue
            node["where"][key] = value
            node["_where_pos"][key] = key_pos
        return ("draw", c[0], node)

    def deck(self, c):
        return c[0]

    def where(self, c):
        return [x for x in c if isinstance(x, tuple)]

    def where_pair(self, c):
        return (str(c[0]), _pos(c[0]), _string(c[2]))

    def where_key(self, c):
        return c[0]

    # ---- npcs -------------------------------------------------------------------------------------
    def npc(self, c):
        node: dict[str, Any] = {
            "id": str(c[1]),
            "name": _string(c[2]),
            "faction": None,
            "role": None,
            "agenda": None,
            "scenes": [],
        }
        node["_pos"] = {"id": _pos(c[1])}
        node["_scenes_pos"] = []
        what = f"npc '{node['id']}'"
        for kind, tok, value in c[3] if len(c) > 3 else []:
            if kind == "scenes":
                for name, pos in value:
                    node["scenes"].append(name)
                    node["_scenes_pos"].append(pos)
                continue
            if not _single(node, kind, tok, what):
                continue
            if kind == "faction":
                node["faction"] = value[0]
                node["_pos"]["faction"] = value[1]
            else:
                node[kind] = value[0]
        node.pop("_seen", None)
        return ("npcs", c[0], node)

    def npc_body(self, c):
        return _stmts(c)

    def faction(self, c):
        return ("faction", c[0], (str(c[1]), _pos(c[1])))

    def role(self, c):
        return ("role", c[0], c[1])

    def agenda(self, c):
        return ("agenda", c[0], c[1])

    def npc_scenes(self, c):
        return ("scenes", c[0], c[2])

    # ---- fail states and rewards ------------------------------------------------------------------
    def fail(self, c):
        if c[1].type == "NAME":
            fail_id: str | None = str(c[1])
            pos = _pos(c[1])
            text_tok, cond = c[2], c[4]
        else:
            fail_id, pos = None, _pos(c[0])
            text_tok, cond = c[1], c[3]
        node = {"id": fail_id, "text": _string(text_tok), "when": cond, "_pos": {"id": pos}}
        return ("fails", c[0], node)

    def reward(self, c):
        return ("reward", c[0], c[3])

    def reward_block(self, c):
        node: dict[str, Any] = {"xp": 0, "items": [], "loot": []}
        node["_pos"] = {"block": _pos(c[0])}
        node["_loot_pos"] = []
        node["_items_pos"] = []
        for kind, tok, value in _stmts(c):
            if kind == "xp":
                if _single(node, "xp", tok, "a reward"):
                    node["xp"] = value[0]
                    node["_pos"]["xp"] = value[1]
            elif kind == "item":
                node["items"].append(value[0])
                node["_items_pos"].append(value[1])
            else:
                node["loot"].append(value[0])
                node["_loot_pos"].append(value[1])
        node.pop("_seen", None)
        return node

    def xp(self, c):
        return ("xp", c[0], (_int(c[1]), _pos(c[1])))

    def item(self, c):
        return ("item", c[0], (str(c[1]), _pos(c[1])))

    def loot(self, c):
        count_pos = _pos(c[2]) if len(c) > 2 else _pos(c[1])
        count = 1
        if len(c) > 2:
            digits = str(c[2])[1:]
            if len(digits) > 4:
                raise _Problem(count_pos, f"loot count {str(c[2])[:12]} is too large")
            count = int(digits)
        table = {"table": str(c[1]), "count": count}
        return ("loot", c[0], (table, {"table": _pos(c[1]), "count": count_pos}))

    # ---- conditions -------------------------------------------------------------------------------
    def _join(self, op: str, c: list[Any]) -> dict[str, Any]:
        # `a and (b and c)` is one `and` of three: a same-operator group adds no depth. The groups are
        # merged once the whole tree is built (`_flatten`): merging here would copy ever-longer
        # argument lists at each of thousands of nested parentheses.
        args = [child for child in c if not isinstance(child, Token)]
        depth = max(a["_depth"] if a["op"] == op else a["_depth"] + 1 for a in args)
        return _cond({"op": op, "args": args}, args[0]["_at"], depth)

    def or_cond(self, c):
        return self._join("or", c)

    def and_cond(self, c):
        return self._join("and", c)

    def not_(self, c):
        return _cond({"op": "not", "arg": c[1]}, _pos(c[0]), c[1]["_depth"] + 1)

    def paren(self, c):
        return c[1]

    def check(self, c):
        skill = None
        pos: dict[str, Pos] = {}
        if isinstance(c[1], Token) and c[1].type == "NAME":
            skill = str(c[1])
            pos["skill"] = _pos(c[1])
        result = c[-1]
        return _cond({"op": "check", "skill": skill, "result": result, "_pos": pos}, _pos(c[0]))

    def check_result(self, c):
        return "_".join(str(t) for t in c)

    def objective_state(self, c):
        return str(c[0])

    def objective_is(self, c):
        node = {"op": "objective", "objective": str(c[1]), "state": c[2], "_pos": {"objective": _pos(c[1])}}
        return _cond(node, _pos(c[0]))

    def clock_cmp(self, c):
        node = {"op": "clock", "clock": str(c[1]), "cmp": str(c[2]), "value": _int(c[3])}
        node["_pos"] = {"clock": _pos(c[1]), "value": _pos(c[3])}
        return _cond(node, _pos(c[0]))

    def clock_full(self, c):
        return _cond({"op": "clock_full", "clock": str(c[1]), "_pos": {"clock": _pos(c[1])}}, _pos(c[0]))

    def flag(self, c):
        return _cond({"op": "flag", "flag": str(c[1]), "_pos": {"flag": _pos(c[1])}}, _pos(c[0]))

    def flag_cmp(self, c):
        tok = c[3]
        value: str | int | bool
        if tok.type == "STRING":
            value = _string(tok)
        elif tok.type == "INT":
            value = _int(tok)
        else:
            value = tok.type == "TRUE"
        node = {"op": "flag_cmp", "flag": str(c[1]), "cmp": str(c[2]), "value": value}
        node["_pos"] = {"flag": _pos(c[1]), "cmp": _pos(c[2])}
        return _cond(node, _pos(c[0]))

    def turns(self, c):
        return _cond({"op": "turns", "cmp": str(c[1]), "value": _int(c[2])}, _pos(c[0]))

    def beat(self, c):
        name, pos = c[1]
        return _cond({"op": "beat", "beat": name, "_pos": {"beat": pos}}, _pos(c[0]))

    def in_scene_cond(self, c):
        return _cond({"op": "in_scene", "scene": str(c[2]), "_pos": {"scene": _pos(c[2])}}, _pos(c[0]))

    def turn_ended(self, c):
        return _cond({"op": "turn_ended"}, _pos(c[0]))


def _get_parser() -> Lark:
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
        transformer=_Build(),
        maybe_placeholders=False,
    )


# ---- error messages -------------------------------------------------------------------------------

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
    for term in _get_parser().terminals:
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


def _end_pos(text: str) -> Pos:
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


def _syntax_error(exc: UnexpectedInput, text: str, filename: str) -> DslError:
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
        line, col = _end_pos(text) if tok.type == "$END" else _pos(tok)
        expected = _expected_terminals(exc, set(exc.expected))
        return DslError(filename, line, col, f"expected {_expected(expected)}, found {_found(tok)}")
    if isinstance(exc, UnexpectedEOF):
        line, col = _end_pos(text)
        return DslError(
            filename, line, col, f"unexpected end of file, expected {_expected(set(exc.expected))}"
        )
    line, col = _end_pos(text)
    return DslError(filename, line, col, "could not parse the mission")


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
    parser = _get_parser()
    try:
        return parser.parse(text)
    except _Problem as problem:
        raise MissionError([DslError(filename, problem.pos[0], problem.pos[1], problem.message)]) from None
    except UnexpectedInput as exc:
        raise MissionError([_syntax_error(exc, text, filename)]) from None
    except (LarkError, RecursionError, ValueError, IndexError, KeyError, TypeError) as exc:
        # Defensive: a bug in a callback must still come out as a MissionError, never a traceback.
        line, col = _end_pos(text)
        msg = f"could not parse the mission ({type(exc).__name__})"
        raise MissionError([DslError(filename, line, col, msg)]) from None
