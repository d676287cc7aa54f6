"""Checks on a parsed mission: references, duplicates, ranges, cycles, reachability, the end state.

`validate` takes the AST straight from `parser.parse` (private position keys still in place) and
returns every problem at once, sorted by position. Reachability is a least fixpoint over what
*could* happen: scenes reachable through transitions, objectives that could complete. Conditions
are judged generously (`not ...`, flags, checks and turns always could hold), so an error here means
the mission really can't get there, short of a GM override.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from .ast import (
    BEATS,
    CLOCK_SIZE_RANGE,
    DECK_KINDS,
    LOOT_COUNT_RANGE,
    MAX_FACT_CHARS,
    MAX_FACTS,
    MAX_VOICE_CHARS,
    MAX_XP,
    WHERE_KEYS,
    DslError,
    Pos,
    iter_conditions,
)

_SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def _some_value(cmp: str, value: int, top: int) -> bool:
    """Whether some clock value in 0..top makes `value <cmp> value` hold."""
    if top < 0:
        return False
    return {
        ">=": value <= top,
        ">": value < top,
        "<=": value >= 0,
        "<": value > 0,
        "==": 0 <= value <= top,
        "!=": top > 0 or value != 0,
    }[cmp]


def _suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f", did you mean '{match[0]}'?" if match else ""


class _Checker:
    def __init__(self, ast: dict[str, Any], filename: str):
        self.ast = ast
        self.filename = filename
        self.errors: list[tuple[Pos, str]] = []
        self.ids: dict[str, dict[str, dict[str, Any]]] = {}
        self.broken_refs = 0  # unknown or duplicate names: reachability would only echo them

    def error(self, pos: Pos, message: str) -> None:
        self.errors.append((pos, message))

    def pos(self, node: dict[str, Any], key: str) -> Pos:
        return node.get("_pos", {}).get(key) or node.get("_at") or (1, 1)

    # ---- names -----------------------------------------------------------------------------------
    def collect_ids(self) -> None:
        for kind, key in (
            ("scene", "scenes"),
            ("objective", "objectives"),
            ("clock", "clocks"),
            ("twist", "twists"),
            ("npc", "npcs"),
            ("fail state", "fails"),
        ):
            table: dict[str, dict[str, Any]] = {}
            for node in self.ast[key]:
                first = table.get(node["id"])
                if first is not None:
                    line = self.pos(first, "id")[0]
                    self.error(
                        self.pos(node, "id"),
                        f"duplicate {kind} '{node['id']}' (already defined on line {line})",
                    )
                    self.broken_refs += 1
                else:
                    table[node["id"]] = node
            self.ids[kind] = table

    def ref(self, kind: str, name: str, pos: Pos) -> bool:
        known = self.ids[kind]
        if name in known:
            return True
        self.error(pos, f"unknown {kind} '{name}'{_suggest(name, list(known))}")
        self.broken_refs += 1
        return False

    def beat(self, name: str, pos: Pos) -> None:
        if name not in BEATS:
            self.error(pos, f"unknown beat '{name}'{_suggest(name, BEATS)} (beats: {', '.join(BEATS)})")

    # ---- conditions ------------------------------------------------------------------------------
    def condition(self, cond: dict[str, Any] | None) -> None:
        for node in iter_conditions(cond):
            op = node["op"]
            if op == "objective":
                self.ref("objective", node["objective"], self.pos(node, "objective"))
            elif op in ("clock", "clock_full"):
                if self.ref("clock", node["clock"], self.pos(node, "clock")) and op == "clock":
                    size = self.ids["clock"][node["clock"]]["size"]
                    lo, hi = CLOCK_SIZE_RANGE
                    if lo <= size <= hi and not _some_value(node["cmp"], node["value"], size):
                        self.error(
                            self.pos(node, "value"),
                            f"clock '{node['clock']}' runs from 0 to {size}, so "
                            f"'clock {node['clock']} {node['cmp']} {node['value']}' can never hold",
                        )
            elif op == "in_scene":
                self.ref("scene", node["scene"], self.pos(node, "scene"))
            elif op == "beat":
                self.beat(node["beat"], self.pos(node, "beat"))
            elif op == "flag_cmp" and node["cmp"] not in ("==", "!=") and type(node["value"]) is not int:
                self.error(
                    self.pos(node, "cmp"),
                    f"'{node['cmp']}' compares numbers, but flag '{node['flag']}' is compared with "
                    f"{'a string' if isinstance(node['value'], str) else 'true/false'}",
                )

    # ---- blocks ----------------------------------------------------------------------------------
    def header(self) -> None:
        ast = self.ast
        if not _SLUG.fullmatch(ast["slug"]):
            self.error(
                self.pos(ast, "slug"),
                f"mission id '{ast['slug']}' must be a slug (lowercase letters, digits and hyphens)",
            )
        if not _SLUG.fullmatch(ast["biome"]):
            self.error(
                self.pos(ast, "biome"),
                f"biome '{ast['biome']}' must be a slug (lowercase letters, digits and hyphens)",
            )
        if not ast["scenes"]:
            self.error(self.pos(ast, "mission"), "the mission has no scenes: add at least one 'scene'")
        if ast["complete_when"] is None:
            self.error(
                self.pos(ast, "mission"), "the mission has no end state: add 'complete when <condition>'"
            )
        self.condition(ast["complete_when"])
        if ast["reward"] is not None:
            self.reward(ast["reward"])

    def reward(self, reward: dict[str, Any]) -> None:
        if not reward["xp"] and not reward["items"] and not reward["loot"]:
            self.error(self.pos(reward, "block"), "this reward gives nothing: add xp, loot or an item")
        if not 0 <= reward["xp"] <= MAX_XP:
            self.error(self.pos(reward, "xp"), f"xp must be between 0 and {MAX_XP}, got {reward['xp']}")
        lo, hi = LOOT_COUNT_RANGE
        for loot, pos in zip(reward["loot"], reward["_loot_pos"], strict=True):
            if not lo <= loot["count"] <= hi:
                self.error(pos["count"], f"loot count must be between {lo} and {hi}, got {loot['count']}")

    def scenes(self) -> None:
        for scene in self.ast["scenes"]:
            details = scene.get("details", [])
            self.facts(details, scene.get("_details_pos", []), f"scene '{scene['id']}'", "detail")
            for move in scene["transitions"]:
                self.ref("scene", move["to"], self.pos(move, "to"))
                self.condition(move["when"])

    def objectives(self) -> None:
        for obj in self.ast["objectives"]:
            if obj["scene"] is not None:
                self.ref("scene", obj["scene"], self.pos(obj, "scene"))
            for name, pos in zip(obj["requires"], obj["_requires_pos"], strict=True):
                self.ref("objective", name, pos)
            for key in ("hidden_until", "complete_when", "fail_when"):
                self.condition(obj[key])
            if obj["reward"] is not None:
                self.reward(obj["reward"])

    def clocks(self) -> None:
        lo, hi = CLOCK_SIZE_RANGE
        for clock in self.ast["clocks"]:
            if not lo <= clock["size"] <= hi:
                self.error(
                    self.pos(clock, "size"), f"clock size must be between {lo} and {hi}, got {clock['size']}"
                )
            for tick in clock["ticks"]:
                if tick["by"] == 0 or abs(tick["by"]) > hi:
                    self.error(
                        self.pos(tick, "by"),
                        f"tick amount must be between -{hi} and {hi} and not 0, got {tick['by']}",
                    )
                self.condition(tick["when"])

    def twists(self) -> None:
        for twist in self.ast["twists"]:
            where = f"twist '{twist['id']}'"
            if twist["beat"] is not None:
                self.beat(twist["beat"], self.pos(twist, "beat"))
            if twist["beat"] is None and twist["when"] is None:
                self.error(self.pos(twist, "id"), f"{where} needs 'when <condition>' or 'at beat <beat>'")
            if twist["text"] is None and twist["draw"] is None:
                self.error(self.pos(twist, "id"), f"{where} needs a 'text' or a 'draw'")
            self.condition(twist["when"])
            draw = twist["draw"]
            if draw is not None:
                if draw["deck"] not in DECK_KINDS:
                    self.error(
                        self.pos(draw, "deck"),
                        f"unknown deck kind '{draw['deck']}'{_suggest(draw['deck'], DECK_KINDS)} "
                        f"(kinds: {', '.join(DECK_KINDS)})",
                    )
                for key, value in draw["where"].items():
                    pos = draw["_where_pos"][key]
                    if key not in WHERE_KEYS:
                        self.error(
                            pos,
                            f"unknown 'where' key '{key}'{_suggest(key, WHERE_KEYS)} "
                            f"(keys: {', '.join(WHERE_KEYS)})",
                        )
                    elif key == "beat":
                        self.beat(value, pos)

    def npcs(self) -> None:
        for npc in self.ast["npcs"]:
            for name, pos in zip(npc["scenes"], npc["_scenes_pos"], strict=True):
                self.ref("scene", name, pos)
            facts = [f["text"] for f in npc.get("knows", ())]
            self.facts(facts, npc.get("_knows_pos", []), f"npc '{npc['id']}'", "knows")
            voice = npc.get("voice")
            if voice is not None:
                pos = self.pos(npc, "id")
                if not voice.strip():
                    self.error(pos, f"npc '{npc['id']}' has an empty 'voice': describe how they speak")
                elif len(voice) > MAX_VOICE_CHARS:
                    self.error(
                        pos,
                        f"npc '{npc['id']}' has a 'voice' of {len(voice)} characters "
                        f"(the limit is {MAX_VOICE_CHARS})",
                    )

    def facts(self, facts: list[str], positions: list[Pos], where: str, word: str) -> None:
        """Scene `detail` and npc `knows` lines: said aloud one at a time, so each is a short,
        non-empty line of its own."""
        seen: dict[str, int] = {}
        for n, (fact, pos) in enumerate(zip(facts, positions, strict=True)):
            key = " ".join(fact.lower().split())
            if not key:
                self.error(pos, f"{where} has an empty '{word}' line")
            elif len(fact) > MAX_FACT_CHARS:
                self.error(
                    pos,
                    f"{where} has a '{word}' line of {len(fact)} characters (the limit is "
                    f"{MAX_FACT_CHARS}): split it into shorter facts",
                )
            elif key in seen:
                self.error(pos, f"{where} has the same '{word}' line twice (first on line {seen[key]})")
            else:
                seen[key] = pos[0]
            if n == MAX_FACTS:
                self.error(pos, f"{where} has more than {MAX_FACTS} '{word}' lines")

    def fails(self) -> None:
        for fail in self.ast["fails"]:
            self.condition(fail["when"])

    def built_errors(self, node: Any) -> None:
        """Problems the parser noted while building nodes (repeated statements and the like)."""
        if isinstance(node, dict):
            for pos, message in node.get("_errors", ()):
                self.error(pos, message)
            for key, value in node.items():
                if not key.startswith("_") and key not in (
                    "when",
                    "complete_when",
                    "hidden_until",
                    "fail_when",
                ):
                    self.built_errors(value)
        elif isinstance(node, list):
            for value in node:
                self.built_errors(value)

    # ---- cycles and reachability -----------------------------------------------------------------
    def require_cycles(self) -> set[str]:
        """Report each cycle of `requires` once; return the ids of objectives on a cycle."""
        objectives = self.ids["objective"]
        graph = {oid: [r for r in obj["requires"] if r in objectives] for oid, obj in objectives.items()}
        on_cycle: set[str] = set()
        for component in _strongly_connected(graph):
            members = set(component)
            if len(component) == 1 and component[0] not in graph[component[0]]:
                continue
            on_cycle |= members
            first = min(component, key=lambda oid: self.pos(objectives[oid], "id"))
            if len(component) == 1:
                self.error(self.pos(objectives[first], "id"), f"objective '{first}' requires itself")
                continue
            path = _cycle_path(graph, first, members)
            shown = " -> ".join(f"'{p}'" for p in [*path, first])
            self.error(
                self.pos(objectives[first], "id"), f"objectives require each other in a cycle: {shown}"
            )
        return on_cycle

    def reachability(self, on_cycle: set[str]) -> None:
        ast = self.ast
        if not ast["scenes"]:
            return
        scenes, objectives, clocks = self.ids["scene"], self.ids["objective"], self.ids["clock"]
        start = ast["scenes"][0]["id"]
        reached = {start}
        done: set[str] = set()
        rising = {cid for cid, c in clocks.items() if any(t["by"] > 0 for t in c["ticks"])}

        def possible(cond: dict[str, Any] | None) -> bool:
            if cond is None:
                return True
            op = cond["op"]
            if op == "and":
                return all(possible(a) for a in cond["args"])
            if op == "or":
                return any(possible(a) for a in cond["args"])
            if op == "objective":
                target = objectives.get(cond["objective"])
                if target is None or cond["state"] == "active":
                    return True
                if cond["state"] == "complete":
                    return cond["objective"] in done
                return target["fail_when"] is not None
            if op in ("clock", "clock_full"):
                clock = clocks.get(cond["clock"])
                if clock is None:
                    return True
                top = clock["size"] if cond["clock"] in rising else 0
                if op == "clock_full":
                    return top >= clock["size"]
                return _some_value(cond["cmp"], cond["value"], top)
            if op == "in_scene":
                return cond["scene"] not in scenes or cond["scene"] in reached
            return True  # not, check, flag, turns, beat, turn ended: some play could make them hold

        def can_complete(obj: dict[str, Any]) -> bool:
            scene = obj["scene"]
            if scene is not None and scene in scenes and scene not in reached:
                return False
            if any(r in objectives and r not in done for r in obj["requires"]):
                return False
            return possible(obj["hidden_until"]) and possible(obj["complete_when"])

        changed = True
        while changed:
            changed = False
            for scene in ast["scenes"]:
                if scene["id"] not in reached:
                    continue
                for move in scene["transitions"]:
                    if move["to"] in scenes and move["to"] not in reached and possible(move["when"]):
                        reached.add(move["to"])
                        changed = True
            for oid, obj in objectives.items():
                if oid not in done and oid not in on_cycle and can_complete(obj):
                    done.add(oid)
                    changed = True

        for sid, scene in scenes.items():
            if sid not in reached:
                self.error(
                    self.pos(scene, "id"), f"scene '{sid}' is never reachable from the start scene '{start}'"
                )
        for oid, obj in objectives.items():
            if oid in done or oid in on_cycle:
                continue
            scene = obj["scene"]
            blocked = [r for r in obj["requires"] if r in objectives and r not in done]
            if scene is not None and scene in scenes and scene not in reached:
                why = f"its scene '{scene}' can't be reached from the start scene '{start}'"
            elif blocked:
                why = f"it requires '{blocked[0]}', which can never be completed"
            elif not possible(obj["hidden_until"]):
                why = "its 'hidden until' condition can never hold"
            else:
                why = "its 'complete when' condition can never hold"
            self.error(self.pos(obj, "id"), f"objective '{oid}' is never reachable: {why}")
        for twist in ast["twists"]:
            if not possible(twist["when"]):
                self.error(
                    self.pos(twist, "id"),
                    f"twist '{twist['id']}' can never trigger: its 'when' condition can never hold",
                )
        if ast["complete_when"] is not None and not possible(ast["complete_when"]):
            self.error(
                self.pos(ast, "complete_when"),
                "the mission can never be completed: its 'complete when' condition can never hold",
            )

    def run(self) -> list[tuple[Pos, str]]:
        self.collect_ids()
        self.built_errors(self.ast)
        self.header()
        self.scenes()
        self.objectives()
        self.clocks()
        self.twists()
        self.npcs()
        self.fails()
        on_cycle = self.require_cycles()
        if not self.broken_refs:
            self.reachability(on_cycle)
        return self.errors


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long requires-chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            edges = graph[node]
            while i < len(edges):
                nxt = edges[i]
                i += 1
                if nxt not in index:
                    work.append((node, i))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def _cycle_path(graph: dict[str, list[str]], first: str, members: set[str]) -> list[str]:
    """A path first -> ... that returns to `first`, staying inside one strongly connected component."""
    parents: dict[str, str] = {}
    queue = [first]
    seen = {first}
    while queue:
        node = queue.pop(0)
        for nxt in graph[node]:
            if nxt == first:
                path = [node]
                while path[-1] != first:
                    path.append(parents[path[-1]])
                return list(reversed(path))
            if nxt in members and nxt not in seen:
                seen.add(nxt)
                parents[nxt] = node
                queue.append(nxt)
    return [first]


def validate(ast: dict[str, Any], filename: str = "<mission>") -> list[DslError]:
    """Every problem in a parsed mission, sorted by position (empty when the mission is valid)."""
    found = _Checker(ast, filename).run()
    unique = sorted(set(found), key=lambda e: (e[0][0], e[0][1], e[1]))
    return [DslError(filename, line, col, message) for (line, col), message in unique]
