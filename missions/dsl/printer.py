"""AST -> canonical mission source.

`compile_source(to_source(m.ast)).ast == m.ast` for every compiled mission `m`: the printer writes
each construct in one fixed order and spelling, so printing is also the formatter.
"""

from __future__ import annotations

from typing import Any

_WRAP = 72  # long texts are split into adjacent "..." pieces of about this many characters

_PRECEDENCE = {"or": 1, "and": 2, "not": 3}


def quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _text(text: str, indent: str) -> str:
    """A long text as adjacent string pieces (the parser joins them), split after spaces."""
    if len(text) <= _WRAP:
        return quote(text)
    pieces: list[str] = []
    rest = text
    while len(rest) > _WRAP:
        cut = rest.rfind(" ", 0, _WRAP) + 1
        if cut <= 0:
            cut = rest.find(" ", _WRAP) + 1
            if cut <= 0:
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return f"\n{indent}  ".join(quote(p) for p in pieces)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return quote(value)


def condition(cond: dict[str, Any], parent: int = 0) -> str:
    op = cond["op"]
    if op in ("and", "or"):
        text = f" {op} ".join(condition(a, _PRECEDENCE[op]) for a in cond["args"])
        return f"({text})" if parent >= _PRECEDENCE[op] else text
    if op == "not":
        return f"not {condition(cond['arg'], _PRECEDENCE['not'])}"
    if op == "check":
        skill = f" {cond['skill']}" if cond["skill"] is not None else ""
        return f"check{skill} {cond['result'].replace('_', ' ')}"
    if op == "objective":
        return f"objective {cond['objective']} {cond['state']}"
    if op == "clock":
        return f"clock {cond['clock']} {cond['cmp']} {cond['value']}"
    if op == "clock_full":
        return f"clock {cond['clock']} full"
    if op == "flag":
        return f"flag {cond['flag']}"
    if op == "flag_cmp":
        return f"flag {cond['flag']} {cond['cmp']} {_value(cond['value'])}"
    if op == "turns":
        return f"turns {cond['cmp']} {cond['value']}"
    if op == "turns_each":
        return f"turns each {cond['cmp']} {cond['value']}"
    if op == "beat":
        return f"beat {cond['beat']}"
    if op == "in_scene":
        return f"in scene {cond['scene']}"
    if op == "turn_ended":
        return "turn ended"
    raise ValueError(f"unknown condition op {op!r}")


def _block(head: str, lines: list[str]) -> list[str]:
    if not lines:
        return [head]
    return [f"{head} {{", *(f"  {line}" for line in lines), "}"]


def _reward(reward: dict[str, Any]) -> str:
    parts = []
    if reward["xp"]:
        parts.append(f"xp {reward['xp']}")
    for loot in reward["loot"]:
        parts.append(f"loot {loot['table']}" + (f" x{loot['count']}" if loot["count"] != 1 else ""))
    parts.extend(f"item {item}" for item in reward["items"])
    return "{ " + "; ".join(parts) + " }" if parts else "{ }"


def to_source(ast: dict[str, Any]) -> str:
    """Canonical source for a mission AST (as found in CompiledMission.ast)."""
    out = [
        f"mission {ast['slug']} {quote(ast['title'])}",
        f"biome {ast['biome']}",
        f"summary {_text(ast['summary'], '')}",
    ]
    for scene in ast["scenes"]:
        lines = []
        if scene["description"]:
            lines.append(f"description {_text(scene['description'], '  ')}")
        lines.extend(f"detail {_text(detail, '  ')}" for detail in scene.get("details", ()))
        lines.extend(f"go to {m['to']} when {condition(m['when'])}" for m in scene["transitions"])
        out += ["", *_block(f"scene {scene['id']} {quote(scene['title'])}", lines)]
    for obj in ast["objectives"]:
        lines = []
        if obj["scene"] is not None:
            lines.append(f"in scene {obj['scene']}")
        if obj["requires"]:
            lines.append(f"requires {', '.join(obj['requires'])}")
        for key, words in (("hidden_until", "hidden until"), ("complete_when", "complete when")):
            if obj[key] is not None:
                lines.append(f"{words} {condition(obj[key])}")
        if obj["fail_when"] is not None:
            lines.append(f"fail when {condition(obj['fail_when'])}")
        if obj["reward"] is not None:
            lines.append(f"reward {_reward(obj['reward'])}")
        out += ["", *_block(f"objective {obj['id']} {quote(obj['text'])}", lines)]
    for clock in ast["clocks"]:
        lines = [f"tick {t['by']} when {condition(t['when'])}" for t in clock["ticks"]]
        out += ["", *_block(f"clock {clock['id']} {quote(clock['label'])} size {clock['size']}", lines)]
    for twist in ast["twists"]:
        lines = []
        if twist["beat"] is not None:
            lines.append(f"at beat {twist['beat']}")
        if twist["when"] is not None:
            lines.append(f"when {condition(twist['when'])}")
        if twist["text"] is not None:
            lines.append(f"text {_text(twist['text'], '  ')}")
        if twist["draw"] is not None:
            draw = twist["draw"]
            where = " and ".join(f"{k} == {quote(v)}" for k, v in sorted(draw["where"].items()))
            lines.append(f"draw {draw['deck']}" + (f" where {where}" if where else ""))
        out += ["", f"twist {twist['id']} {{", *(f"  {line}" for line in lines), "}"]
    for npc in ast["npcs"]:
        lines = []
        if npc["faction"] is not None:
            lines.append(f"faction {npc['faction']}")
        if npc["role"] is not None:
            lines.append(f"role {_text(npc['role'], '  ')}")
        if npc["agenda"] is not None:
            lines.append(f"agenda {_text(npc['agenda'], '  ')}")
        if npc.get("voice") is not None:
            lines.append(f"voice {_text(npc['voice'], '  ')}")
        if npc["scenes"]:
            lines.append(f"in scene {', '.join(npc['scenes'])}")
        for fact in npc.get("knows", ()):
            lines.append(f"knows {_text(fact['text'], '  ')}" + (" when pressed" if fact["pressed"] else ""))
        out += ["", *_block(f"npc {npc['id']} {quote(npc['name'])}", lines)]
    if ast["fails"]:
        out.append("")
        out += [f"fail {f['id']} {quote(f['text'])} when {condition(f['when'])}" for f in ast["fails"]]
    if ast["reward"] is not None:
        out += ["", f"reward on complete {_reward(ast['reward'])}"]
    if ast["complete_when"] is not None:
        out += ["", f"complete when {condition(ast['complete_when'])}"]
    return "\n".join(out) + "\n"
