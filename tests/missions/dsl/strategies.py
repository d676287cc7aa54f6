"""Hypothesis strategies for the mission language: grammar derivations, token soup, mutations of the
starter missions, and valid ASTs built directly (for round trips)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from missions.dsl import MissionError, compile_source
from missions.dsl.ast import BEATS, DECK_KINDS, KEYWORDS, WHERE_KEYS
from missions.dsl.parser import _get_parser

# The fuzzing profile: fixed examples (CI sees the same inputs every run), no per-example deadline.
FUZZ = settings(
    max_examples=1000,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
THOROUGH = settings(FUZZ, max_examples=300)

MISSIONS_DIR = Path(__file__).resolve().parents[3] / "content" / "packs" / "starter" / "missions"
STARTER = {p.stem: p.read_text(encoding="utf-8") for p in sorted(MISSIONS_DIR.glob("*.mission"))}

HEADER = 'mission fuzz "Fuzz"\nbiome ice-moon\nsummary "s"\n'

_lark = _get_parser()
KEYWORD_TOKENS = sorted({t.pattern.value for t in _lark.terminals if t.pattern.type == "str"})

NAME_POOL = [
    "a",
    "b",
    "dock",
    "core",
    "alarm",
    "reactor",
    "x2",
    "relay-core",
    "tech",
    "twist",
    "seal_bulkhead",
]
SAMPLES = {
    "NAME": NAME_POOL,
    "STRING": ['"t"', '""', '"with \\"quote\\""', '"é 🚀"', '"\\u00e9"', '"bad \\q"', '"\\u12"'],
    "INT": ["0", "1", "3", "6", "12", "13", "-1", "99999999999"],
    "TIMES": ["x1", "x2", "x0", "x100000"],
    "CMP": [">=", "<=", "!=", ">", "<"],
    "EQ": ["=="],
    "TRUE": ["true"],
    "FALSE": ["false"],
}
JUNK = [
    "\x00",
    "@",
    "=>",
    '"',
    "\\",
    "{{",
    "}",
    "\ufeff",
    "\u2028",
    "#",
    "\n",
    "\r\n",
    "é",
    "(((",
    ")))",
    "\t",
]


def outcome(text: str):
    """Compile `text`; return the CompiledMission or the MissionError (anything else propagates)."""
    try:
        return compile_source(text, "fuzz.mission")
    except MissionError as exc:
        return exc


# ---- grammar derivations -------------------------------------------------------------------------

_RULES: dict[str, list[list[tuple[bool, str]]]] = {}
for _rule in _lark.rules:
    _RULES.setdefault(_rule.origin.name, []).append([(s.is_term, s.name) for s in _rule.expansion])

# Least depth at which each nonterminal can finish: lets a derivation bottom out when it gets deep.
_COST: dict[str, int] = {}
_changed = True
while _changed:
    _changed = False
    for _name, _expansions in _RULES.items():
        for _exp in _expansions:
            if all(term or sym in _COST for term, sym in _exp):
                cost = 1 + max([_COST[sym] for term, sym in _exp if not term] or [0])
                if cost < _COST.get(_name, 10**9):
                    _COST[_name] = cost
                    _changed = True


# Mostly well-formed strings and names, so derivations get past the lexer into the validator.
_GOOD = {
    "STRING": ['"t"', '""', '"with \\"quote\\""', '"é 🚀"', '"\\u00e9"'],
    "NAME": [n for n in NAME_POOL if n != "twist"],
    "INT": ["0", "1", "3", "6", "12", "-1"],
}


def _terminal_text(rnd, name: str) -> str:
    if name in _GOOD and rnd.random() < 0.95:
        return rnd.choice(_GOOD[name])
    if name in SAMPLES:
        return rnd.choice(SAMPLES[name])
    for term in _lark.terminals:
        if term.name == name and term.pattern.type == "str":
            return term.pattern.value
    return "?"


def _derive(rnd, symbol: str, depth: int, out: list[str], budget: list[int]) -> None:
    budget[0] -= 1
    expansions = _RULES[symbol]
    if depth > 12 or budget[0] < 0:
        expansions = sorted(expansions, key=lambda e: max([_COST[s] for t, s in e if not t] or [0]))[:1]
    # longer expansions are likelier (more items, bigger conditions) until the depth budget runs out
    expansion = rnd.choices(expansions, weights=[1 + len(e) for e in expansions])[0]
    for is_term, name in expansion:
        if is_term:
            out.append(_terminal_text(rnd, name))
        else:
            _derive(rnd, name, depth + 1, out, budget)


@st.composite
def derivations(draw) -> str:
    """A random sentence of the grammar, then (sometimes) a token dropped, repeated or replaced."""
    rnd = draw(st.randoms(use_true_random=False))
    tokens: list[str] = []
    _derive(rnd, "start", 0, tokens, [400])
    for _ in range(draw(st.integers(0, 2))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "replace"]))
        if op == "drop":
            del tokens[i]
        elif op == "repeat":
            tokens.insert(i, tokens[i])
        else:
            tokens[i] = draw(st.sampled_from(KEYWORD_TOKENS + JUNK + NAME_POOL))
    seps = draw(
        st.lists(st.sampled_from([" ", "\n", "  ", "\n  "]), min_size=len(tokens), max_size=len(tokens))
    )
    return "".join(t + s for t, s in zip(tokens, seps, strict=True))


def token_soup() -> st.SearchStrategy[str]:
    """Arbitrary sequences of the language's own tokens (and a little junk), often after a header."""
    token = st.one_of(
        st.sampled_from(KEYWORD_TOKENS),
        st.sampled_from(sorted({v for vs in SAMPLES.values() for v in vs})),
        st.sampled_from(JUNK),
        st.text(max_size=4),
    )
    body = st.lists(token, max_size=60).flatmap(
        lambda toks: st.lists(st.sampled_from([" ", "\n", ""]), min_size=len(toks), max_size=len(toks)).map(
            lambda seps: "".join(t + s for t, s in zip(toks, seps, strict=True))
        )
    )
    return st.tuples(st.sampled_from(["", HEADER, HEADER + 'scene a "A"\n']), body).map("".join)


# ---- mutations of the starter missions -----------------------------------------------------------


@st.composite
def mutated_missions(draw) -> str:
    """A starter mission with a few lines deleted, duplicated or swapped, or tokens/chars inserted."""
    lines = STARTER[draw(st.sampled_from(sorted(STARTER)))].split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "token", "char", "truncate"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op in ("token", "char"):
            insert = (
                draw(st.sampled_from(KEYWORD_TOKENS + NAME_POOL + SAMPLES["STRING"]))
                if op == "token"
                else draw(st.one_of(st.sampled_from(JUNK), st.characters()))
            )
            col = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:col] + f" {insert} " + lines[i][col:]
        else:
            lines = lines[:i]
    return "\n".join(lines)


# ---- valid ASTs, built directly ------------------------------------------------------------------

_name_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz")
_names = st.builds(
    lambda a, b, sep: a + (sep + b if b else ""),
    st.text(_name_chars, min_size=1, max_size=6),
    st.text(st.sampled_from("abcdefghij0123456789_"), max_size=4),
    st.sampled_from(["-", "_", ""]),
).filter(lambda n: n not in KEYWORDS and n.replace("-", "").replace("_", "") != "")
# Anything but control characters the parser refuses (tab, newline, CR are fine) and surrogates.
_texts = st.text(
    st.characters(
        blacklist_categories=["Cs"],
        blacklist_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)] + ["\x7f"],
    ),
    max_size=90,
)


def _unique_names(n_min: int, n_max: int):
    return st.lists(_names, min_size=n_min, max_size=n_max, unique=True)


@st.composite
def _condition(draw, ctx: dict, depth: int = 0, parent: str | None = None):
    """A condition that the validator can see could hold: references only what's in `ctx`."""
    atoms = ["check", "flag", "flag_cmp", "turns", "beat", "turn_ended"]
    if ctx.get("objectives"):
        atoms.append("objective")
    if ctx.get("clocks"):
        atoms += ["clock", "clock_full"]
    if ctx.get("scenes"):
        atoms.append("in_scene")
    # and/or never directly inside the same operator: the parser flattens those, so they don't round-trip
    ops = atoms + ([o for o in ("and", "or", "not") if o != parent] if depth < 3 else [])
    op = draw(st.sampled_from(ops))
    if op in ("and", "or"):
        args = []
        for _ in range(draw(st.integers(2, 3))):
            child = draw(_condition(ctx, depth + 1, op))
            args.append(child)
        return {"op": op, "args": args}
    if op == "not":
        return {"op": "not", "arg": draw(_condition(ctx, depth + 1, "not"))}
    if op == "check":
        skill = draw(st.one_of(st.none(), _names))
        return {
            "op": "check",
            "skill": skill,
            "result": draw(
                st.sampled_from(["succeeded", "failed", "critically_succeeded", "critically_failed"])
            ),
        }
    if op == "flag":
        return {"op": "flag", "flag": draw(_names)}
    if op == "flag_cmp":
        cmp = draw(st.sampled_from([">=", "<=", "==", "!=", ">", "<"]))
        if cmp in ("==", "!="):
            value = draw(st.one_of(_texts, st.integers(-1000, 1000), st.booleans()))
        else:
            value = draw(st.integers(-1000, 1000))
        return {"op": "flag_cmp", "flag": draw(_names), "cmp": cmp, "value": value}
    if op == "turns":
        return {
            "op": "turns",
            "cmp": draw(st.sampled_from([">=", "<=", "==", "!=", ">", "<"])),
            "value": draw(st.integers(0, 99)),
        }
    if op == "beat":
        return {"op": "beat", "beat": draw(st.sampled_from(BEATS))}
    if op == "turn_ended":
        return {"op": "turn_ended"}
    if op == "objective":
        return {
            "op": "objective",
            "objective": draw(st.sampled_from(ctx["objectives"])),
            "state": draw(st.sampled_from(["complete", "active"])),
        }
    if op == "clock":
        cid, size = draw(st.sampled_from(ctx["clocks"]))
        return {"op": "clock", "clock": cid, "cmp": ">=", "value": draw(st.integers(0, size))}
    if op == "clock_full":
        return {"op": "clock_full", "clock": draw(st.sampled_from(ctx["clocks"]))[0]}
    return {"op": "in_scene", "scene": draw(st.sampled_from(ctx["scenes"]))}


@st.composite
def _reward(draw):
    reward = {
        "xp": draw(st.integers(0, 500)),
        "items": draw(st.lists(_names, max_size=2)),
        "loot": [{"table": t, "count": draw(st.integers(1, 5))} for t in draw(st.lists(_names, max_size=2))],
    }
    if not reward["xp"] and not reward["items"] and not reward["loot"]:
        reward["xp"] = 10
    return reward


@st.composite
def valid_asts(draw) -> dict:
    """A valid mission AST: a chain of scenes, objectives that only require earlier ones, clocks that
    can rise, and conditions that only mention what can happen (so validation passes)."""
    scene_ids = draw(_unique_names(1, 4))
    objective_ids = draw(_unique_names(0, 4))
    clock_ids = draw(_unique_names(0, 3))
    clocks_ctx = [(cid, draw(st.integers(1, 12))) for cid in clock_ids]
    base = {"clocks": clocks_ctx}
    scenes = []
    for i, sid in enumerate(scene_ids):
        transitions = []
        if i + 1 < len(scene_ids):
            transitions.append({"to": scene_ids[i + 1], "when": draw(_condition(base))})
        if i > 0 and draw(st.booleans()):
            transitions.append({"to": scene_ids[i - 1], "when": draw(_condition(base))})
        scenes.append(
            {"id": sid, "title": draw(_texts), "description": draw(_texts), "transitions": transitions}
        )
    objectives = []
    for i, oid in enumerate(objective_ids):
        earlier = objective_ids[:i]
        ctx = {"clocks": clocks_ctx, "scenes": scene_ids, "objectives": earlier}
        objectives.append(
            {
                "id": oid,
                "text": draw(_texts),
                "scene": draw(st.one_of(st.none(), st.sampled_from(scene_ids))),
                "requires": draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2))
                if earlier
                else [],
                "hidden_until": draw(st.one_of(st.none(), _condition(ctx))),
                "complete_when": draw(st.one_of(st.none(), _condition(ctx))),
                "fail_when": draw(st.one_of(st.none(), _condition(ctx))),
                "reward": draw(st.one_of(st.none(), _reward())),
            }
        )
    full = {"clocks": clocks_ctx, "scenes": scene_ids, "objectives": objective_ids}
    clocks = []
    for cid, size in clocks_ctx:
        ticks = [{"by": draw(st.integers(1, 12)), "when": draw(_condition(full))}]
        ticks += [
            {"by": draw(st.integers(-12, 12).filter(bool)), "when": draw(_condition(full))}
            for _ in range(draw(st.integers(0, 2)))
        ]
        clocks.append({"id": cid, "label": draw(_texts), "size": size, "ticks": ticks})
    twists = []
    for tid in draw(_unique_names(0, 2)):
        beat = draw(st.one_of(st.none(), st.sampled_from(BEATS)))
        when = draw(_condition(full)) if beat is None or draw(st.booleans()) else None
        text = draw(st.one_of(st.none(), _texts))
        draw_ = None
        if text is None or draw(st.booleans()):
            where = draw(st.dictionaries(st.sampled_from(WHERE_KEYS), _texts, max_size=3))
            if "beat" in where:
                where["beat"] = draw(st.sampled_from(BEATS))
            draw_ = {"deck": draw(st.sampled_from(DECK_KINDS)), "where": where}
        twists.append({"id": tid, "beat": beat, "when": when, "text": text, "draw": draw_})
    npcs = [
        {
            "id": nid,
            "name": draw(_texts),
            "faction": draw(st.one_of(st.none(), _names)),
            "role": draw(st.one_of(st.none(), _texts)),
            "agenda": draw(st.one_of(st.none(), _texts)),
            "scenes": draw(st.lists(st.sampled_from(scene_ids), max_size=2)),
        }
        for nid in draw(_unique_names(0, 2))
    ]
    fails = [
        {"id": fid, "text": draw(_texts), "when": draw(_condition(full))} for fid in draw(_unique_names(0, 2))
    ]
    return {
        "version": 1,
        # Not a keyword ("at", "to", ...): a reserved word is no mission id.
        "slug": draw(
            st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4}){0,2}", fullmatch=True).filter(
                lambda s: s not in KEYWORDS
            )
        ),
        "title": draw(_texts),
        "biome": draw(st.sampled_from(["derelict-station", "ice-moon", "jungle-world", "gas-giant"])),
        "summary": draw(_texts),
        "scenes": scenes,
        "objectives": objectives,
        "clocks": clocks,
        "twists": twists,
        "npcs": npcs,
        "fails": fails,
        "reward": draw(st.one_of(st.none(), _reward())),
        "complete_when": draw(_condition(full)),
    }
