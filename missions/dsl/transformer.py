"""The lark Transformer that builds the mission AST (with private position keys) during the parse.

Its callbacks run inline in the LALR parser, so each returns a finished node and the parse never
recurses; a broken rule (a reserved word as a name, a repeated single-valued statement, a condition
nested too deeply) raises `ParseProblem` or is recorded under the node's `_errors`.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer

from .ast import MAX_CONDITION_DEPTH, RESERVED, VERSION, Pos
from .tokens import ParseProblem, token_int, token_pos, token_string


def _cond(node: dict[str, Any], at: Pos, depth: int = 1) -> dict[str, Any]:
    if depth > MAX_CONDITION_DEPTH:
        raise ParseProblem(at, f"condition is nested too deeply (the limit is {MAX_CONDITION_DEPTH} levels)")
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
        node.setdefault("_errors", []).append((token_pos(tok), f"{what} has more than one '{kind}'"))
        return False
    seen.add(kind)
    return True


class MissionBuilder(Transformer):
    """Inline LALR callbacks: each returns a finished node, so the parse never recurses."""

    def NAME(self, tok):
        if str(tok) in RESERVED:
            raise ParseProblem(token_pos(tok), f"'{tok}' is a reserved word and can't be used as a name")
        return tok

    # ---- shared pieces ----------------------------------------------------------------------------
    def text(self, c):
        return ("".join(token_string(t) for t in c), token_pos(c[0]))

    def names(self, c):
        return [(str(t), token_pos(t)) for t in c if t.type == "NAME"]

    def sep(self, c):
        return None

    # ---- header and top level ---------------------------------------------------------------------
    def header(self, c):
        summary, _ = c[6]
        return {
            "slug": str(c[1]),
            "title": token_string(c[2]),
            "biome": str(c[4]),
            "summary": summary,
            "_pos": {"slug": token_pos(c[1]), "biome": token_pos(c[4]), "mission": token_pos(c[0])},
        }

    def start(self, c):
        ast: dict[str, Any] = {"version": VERSION, **c[0]}
        ast.update(scenes=[], objectives=[], clocks=[], twists=[], npcs=[], fails=[], reward=None)
        ast["complete_when"] = None
        ast["_errors"] = []
        for kind, tok, node in c[1:]:
            if kind == "reward":
                if ast["reward"] is not None:
                    ast["_errors"].append(
                        (token_pos(tok), "the mission has more than one 'reward on complete'")
                    )
                else:
                    ast["reward"] = node
                    ast["_pos"]["reward"] = token_pos(tok)
            elif kind == "complete_when":
                if ast["complete_when"] is not None:
                    ast["_errors"].append((token_pos(tok), "the mission has more than one 'complete when'"))
                else:
                    ast["complete_when"] = node
                    ast["_pos"]["complete_when"] = token_pos(tok)
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
        node: dict[str, Any] = {
            "id": str(c[1]),
            "title": token_string(c[2]),
            "description": "",
            "transitions": [],
        }
        node["_pos"] = {"id": token_pos(c[1])}
        for kind, tok, value in c[3] if len(c) > 3 else []:
            if kind == "description":
                if _single(node, "description", tok, f"scene '{node['id']}'"):
                    node["description"] = value[0]
            elif kind == "detail":
                # Lore keys are absent when unused, so a mission without them keeps its content hash.
                node.setdefault("details", []).append(value[0])
                node.setdefault("_details_pos", []).append(value[1])
            else:
                node["transitions"].append(value)
        node.pop("_seen", None)
        return ("scenes", c[0], node)

    def scene_body(self, c):
        return _stmts(c)

    def description(self, c):
        return ("description", c[0], c[1])

    def detail(self, c):
        return ("detail", c[0], c[1])

    def go(self, c):
        return ("go", c[0], {"to": str(c[2]), "when": c[4], "_pos": {"to": token_pos(c[2])}})

    # ---- objectives -------------------------------------------------------------------------------
    def objective(self, c):
        node: dict[str, Any] = {
            "id": str(c[1]),
            "text": token_string(c[2]),
            "scene": None,
            "requires": [],
            "hidden_until": None,
            "complete_when": None,
            "fail_when": None,
            "reward": None,
        }
        node["_pos"] = {"id": token_pos(c[1])}
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
        return ("scene", c[0], (str(c[2]), token_pos(c[2])))

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
        node: dict[str, Any] = {
            "id": str(c[1]),
            "label": token_string(c[2]),
            "size": token_int(c[4]),
            "ticks": [],
        }
        node["_pos"] = {"id": token_pos(c[1]), "size": token_pos(c[4])}
        for _kind, _tok, value in c[5] if len(c) > 5 else []:
            node["ticks"].append(value)
        return ("clocks", c[0], node)

    def clock_body(self, c):
        return _stmts(c)

    def tick(self, c):
        return ("tick", c[0], {"by": token_int(c[1]), "when": c[3], "_pos": {"by": token_pos(c[1])}})

    # ---- twists -----------------------------------------------------------------------------------
    def twist(self, c):
        node: dict[str, Any] = {"id": str(c[1]), "beat": None, "when": None, "text": None, "draw": None}
        node["_pos"] = {"id": token_pos(c[1])}
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
        return (str(c[0]), token_pos(c[0]))

    def twist_when(self, c):
        return ("when", c[0], c[1])

    def twist_text(self, c):
        return ("text", c[0], c[1])

    def draw(self, c):
        node: dict[str, Any] = {"deck": str(c[1]), "where": {}, "_pos": {"deck": token_pos(c[1])}}
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
        return (str(c[0]), token_pos(c[0]), token_string(c[2]))

    def where_key(self, c):
        return c[0]

    # ---- npcs -------------------------------------------------------------------------------------
    def npc(self, c):
        node: dict[str, Any] = {
            "id": str(c[1]),
            "name": token_string(c[2]),
            "faction": None,
            "role": None,
            "agenda": None,
            "scenes": [],
        }
        node["_pos"] = {"id": token_pos(c[1])}
        node["_scenes_pos"] = []
        what = f"npc '{node['id']}'"
        for kind, tok, value in c[3] if len(c) > 3 else []:
            if kind == "scenes":
                for name, pos in value:
                    node["scenes"].append(name)
                    node["_scenes_pos"].append(pos)
                continue
            if kind == "knows":
                text, pos, pressed = value
                node.setdefault("knows", []).append({"text": text, "pressed": pressed})
                node.setdefault("_knows_pos", []).append(pos)
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
        return ("faction", c[0], (str(c[1]), token_pos(c[1])))

    def role(self, c):
        return ("role", c[0], c[1])

    def agenda(self, c):
        return ("agenda", c[0], c[1])

    def npc_scenes(self, c):
        return ("scenes", c[0], c[2])

    def knows(self, c):
        text, pos = c[1]
        return ("knows", c[0], (text, pos, len(c) > 2))

    def knows_pressed(self, c):
        return True

    def voice(self, c):
        return ("voice", c[0], c[1])

    # ---- fail states and rewards ------------------------------------------------------------------
    def fail(self, c):
        if c[1].type == "NAME":
            fail_id: str | None = str(c[1])
            pos = token_pos(c[1])
            text_tok, cond = c[2], c[4]
        else:
            fail_id, pos = None, token_pos(c[0])
            text_tok, cond = c[1], c[3]
        node = {"id": fail_id, "text": token_string(text_tok), "when": cond, "_pos": {"id": pos}}
        return ("fails", c[0], node)

    def reward(self, c):
        return ("reward", c[0], c[3])

    def reward_block(self, c):
        node: dict[str, Any] = {"xp": 0, "items": [], "loot": []}
        node["_pos"] = {"block": token_pos(c[0])}
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
        return ("xp", c[0], (token_int(c[1]), token_pos(c[1])))

    def item(self, c):
        return ("item", c[0], (str(c[1]), token_pos(c[1])))

    def loot(self, c):
        count_pos = token_pos(c[2]) if len(c) > 2 else token_pos(c[1])
        count = 1
        if len(c) > 2:
            digits = str(c[2])[1:]
            if len(digits) > 4:
                raise ParseProblem(count_pos, f"loot count {str(c[2])[:12]} is too large")
            count = int(digits)
        table = {"table": str(c[1]), "count": count}
        return ("loot", c[0], (table, {"table": token_pos(c[1]), "count": count_pos}))

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
        return _cond({"op": "not", "arg": c[1]}, token_pos(c[0]), c[1]["_depth"] + 1)

    def paren(self, c):
        return c[1]

    def check(self, c):
        skill = None
        pos: dict[str, Pos] = {}
        if isinstance(c[1], Token) and c[1].type == "NAME":
            skill = str(c[1])
            pos["skill"] = token_pos(c[1])
        result = c[-1]
        return _cond({"op": "check", "skill": skill, "result": result, "_pos": pos}, token_pos(c[0]))

    def check_result(self, c):
        return "_".join(str(t) for t in c)

    def objective_state(self, c):
        return str(c[0])

    def objective_is(self, c):
        node = {
            "op": "objective",
            "objective": str(c[1]),
            "state": c[2],
            "_pos": {"objective": token_pos(c[1])},
        }
        return _cond(node, token_pos(c[0]))

    def clock_cmp(self, c):
        node = {"op": "clock", "clock": str(c[1]), "cmp": str(c[2]), "value": token_int(c[3])}
        node["_pos"] = {"clock": token_pos(c[1]), "value": token_pos(c[3])}
        return _cond(node, token_pos(c[0]))

    def clock_full(self, c):
        return _cond(
            {"op": "clock_full", "clock": str(c[1]), "_pos": {"clock": token_pos(c[1])}}, token_pos(c[0])
        )

    def flag(self, c):
        return _cond({"op": "flag", "flag": str(c[1]), "_pos": {"flag": token_pos(c[1])}}, token_pos(c[0]))

    def flag_cmp(self, c):
        tok = c[3]
        value: str | int | bool
        if tok.type == "STRING":
            value = token_string(tok)
        elif tok.type == "INT":
            value = token_int(tok)
        else:
            value = tok.type == "TRUE"
        node = {"op": "flag_cmp", "flag": str(c[1]), "cmp": str(c[2]), "value": value}
        node["_pos"] = {"flag": token_pos(c[1]), "cmp": token_pos(c[2])}
        return _cond(node, token_pos(c[0]))

    def turns(self, c):
        return _cond({"op": "turns", "cmp": str(c[1]), "value": token_int(c[2])}, token_pos(c[0]))

    def turns_each(self, c):
        return _cond({"op": "turns_each", "cmp": str(c[2]), "value": token_int(c[3])}, token_pos(c[0]))

    def beat(self, c):
        name, pos = c[1]
        return _cond({"op": "beat", "beat": name, "_pos": {"beat": pos}}, token_pos(c[0]))

    def in_scene_cond(self, c):
        return _cond(
            {"op": "in_scene", "scene": str(c[2]), "_pos": {"scene": token_pos(c[2])}}, token_pos(c[0])
        )

    def turn_ended(self, c):
        return _cond({"op": "turn_ended"}, token_pos(c[0]))
