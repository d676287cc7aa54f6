"""Tech trees: what players and alliances research between missions. Pure Python, no Django.

A tree is a JSON document in a content pack (content/packs/<pack>/techtrees/*.json):

    {"slug": "...", "name": "...", "kind": "player" | "alliance", "description": "...",
     "nodes": [{"id": "...", "name": "...", "description": "...",
                "cost": {"points": 3, "items": [{"item": "salvage", "qty": 1}]},
                "requires": {"all": ["a"], "any": ["b", "c"]},
                "beats": 2,
                "effects": [{"kind": "check_modifier", "attribute": "tech", "bonus": 1}, ...]}]}

`parse_tree` validates it and names the JSON path of every problem (`$.nodes[3].cost.points`).
Research time is counted in story beats (BeatChanged), never wall-clock. Effects are what the
rules engine reads (`effects_for`):

- ``check_modifier`` {attribute, bonus, skill?}: added to the skill checks on that attribute
  (only those naming `skill`, when given);
- ``unlock_tool`` {tool: "rules_skill_check", option: "advantage", attribute}: the narrator's
  check tool rolls with advantage on that attribute;
- ``unlock_item`` {item, qty?}: a prototype granted to the researcher when the node completes;
- ``drip`` {item, qty?, every}: `qty` of `item` every `every` beats after completion;
- ``dda_cap`` {shift}: moves the DDA's highest DC offset (negative: difficulty climbs less);
- ``deck_pool`` {card_kind, weight}: that kind of story-deck card comes up `weight` times as often.

Progress is the fold of the campaign's research events (`campaigns.state.research_fold`, the
same function the session reducer uses). Points: a character earns one per `XP_PER_POINT` XP
(mission and objective rewards), an alliance one per `REPUTATION_PER_POINT` reputation; what
research started has cost is spent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from campaigns.state import research_entry, research_fold

KINDS = ("player", "alliance")
ATTRIBUTES = ("might", "agility", "wits", "tech", "presence")
CARD_KINDS = ("twist", "complication", "agenda", "hazard")
TOOL_OPTIONS = {"rules_skill_check": ("advantage",)}
EFFECT_KINDS = ("check_modifier", "unlock_tool", "unlock_item", "drip", "dda_cap", "deck_pool")
MAX_NODES = 200
MAX_POINTS = 1000
MAX_BEATS = 50
MAX_BONUS = 5  # per effect, and the most all research adds to one attribute
MAX_DDA_SHIFT = 3
XP_PER_POINT = 25
REPUTATION_PER_POINT = 2


class TechTreeError(ValueError):
    """A tree document is invalid. `path` is the JSON path of the problem."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class ResearchRefused(ValueError):
    """A research request the rules refuse (locked, done, busy, too dear)."""


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    description: str
    points: int
    items: tuple[tuple[str, int], ...]
    requires_all: tuple[str, ...]
    requires_any: tuple[str, ...]
    beats: int
    effects: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "points": self.points,
            "items": [{"item": i, "qty": q} for i, q in self.items],
            "requires_all": list(self.requires_all),
            "requires_any": list(self.requires_any),
            "beats": self.beats,
            "effects": [dict(e) for e in self.effects],
        }


@dataclass(frozen=True)
class Tree:
    slug: str
    name: str
    kind: str
    description: str
    nodes: tuple[Node, ...]
    by_id: dict[str, Node] = field(compare=False, repr=False)

    def node(self, node_id: str) -> Node | None:
        return self.by_id.get(node_id)


# ---- parsing ---------------------------------------------------------------------------------


def _str(value: Any, path: str, *, max_len: int = 200, slug: bool = False, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TechTreeError(path, f"must be a string, got {type(value).__name__}")
    if not value.strip() and not empty:
        raise TechTreeError(path, "must not be empty")
    if len(value) > max_len:
        raise TechTreeError(path, f"is longer than {max_len} characters")
    if slug and not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise TechTreeError(path, f"{value!r} is not a slug (letters, digits, - and _)")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TechTreeError(path, f"must be a whole number, got {value!r}")
    if value < 0 and low >= 0:
        raise TechTreeError(path, f"must not be negative, got {value}")
    if not low <= value <= high:
        raise TechTreeError(path, f"must be {low}..{high}, got {value}")
    return value


def _num(value: Any, path: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise TechTreeError(path, f"must be a number, got {value!r}")
    if not low <= value <= high:
        raise TechTreeError(path, f"must be {low}..{high}, got {value}")
    return float(value)


def _object(value: Any, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TechTreeError(path, f"must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise TechTreeError(f"{path}.{unknown[0]}", "is not a known key")
    return value


def _list(value: Any, path: str, max_len: int = MAX_NODES) -> list[Any]:
    if not isinstance(value, list):
        raise TechTreeError(path, f"must be a list, got {type(value).__name__}")
    if len(value) > max_len:
        raise TechTreeError(path, f"has more than {max_len} entries")
    return value


def _one_of(value: Any, path: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise TechTreeError(path, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _effect(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise TechTreeError(path, f"must be an object, got {type(raw).__name__}")
    kind = _one_of(raw.get("kind"), f"{path}.kind", EFFECT_KINDS)
    if kind == "check_modifier":
        e = _object(raw, path, ("kind", "attribute", "bonus", "skill"))
        out: dict[str, Any] = {
            "kind": kind,
            "attribute": _one_of(e.get("attribute"), f"{path}.attribute", ATTRIBUTES),
            "bonus": _int(e.get("bonus"), f"{path}.bonus", -MAX_BONUS, MAX_BONUS),
        }
        if out["bonus"] == 0:
            raise TechTreeError(f"{path}.bonus", "must not be 0")
        if "skill" in e:
            out["skill"] = _str(e["skill"], f"{path}.skill", max_len=60).strip().lower()
        return out
    if kind == "unlock_tool":
        e = _object(raw, path, ("kind", "tool", "option", "attribute"))
        tool = _one_of(e.get("tool"), f"{path}.tool", TOOL_OPTIONS)
        return {
            "kind": kind,
            "tool": tool,
            "option": _one_of(e.get("option"), f"{path}.option", TOOL_OPTIONS[tool]),
            "attribute": _one_of(e.get("attribute"), f"{path}.attribute", ATTRIBUTES),
        }
    if kind in ("unlock_item", "drip"):
        keys = ("kind", "item", "qty") + (("every",) if kind == "drip" else ())
        e = _object(raw, path, keys)
        out = {
            "kind": kind,
            "item": _str(e.get("item"), f"{path}.item", max_len=60, slug=True),
            "qty": _int(e.get("qty", 1), f"{path}.qty", 1, 100),
        }
        if kind == "drip":
            out["every"] = _int(e.get("every"), f"{path}.every", 1, MAX_BEATS)
        return out
    if kind == "dda_cap":
        e = _object(raw, path, ("kind", "shift"))
        shift = _int(e.get("shift"), f"{path}.shift", -MAX_DDA_SHIFT, MAX_DDA_SHIFT)
        if shift == 0:
            raise TechTreeError(f"{path}.shift", "must not be 0")
        return {"kind": kind, "shift": shift}
    e = _object(raw, path, ("kind", "card_kind", "weight"))
    return {
        "kind": kind,
        "card_kind": _one_of(e.get("card_kind"), f"{path}.card_kind", CARD_KINDS),
        "weight": _num(e.get("weight"), f"{path}.weight", 0.1, 5.0),
    }


def _ids(value: Any, path: str) -> tuple[str, ...]:
    items = _list(value, path)
    return tuple(_str(v, f"{path}[{i}]", max_len=60, slug=True) for i, v in enumerate(items))


def _node(raw: Any, path: str) -> Node:
    n = _object(raw, path, ("id", "name", "description", "cost", "requires", "beats", "effects"))
    cost = _object(n.get("cost", {}), f"{path}.cost", ("points", "items"))
    items = []
    for i, item in enumerate(_list(cost.get("items", []), f"{path}.cost.items", 10)):
        ipath = f"{path}.cost.items[{i}]"
        item = _object(item, ipath, ("item", "qty"))
        items.append(
            (
                _str(item.get("item"), f"{ipath}.item", max_len=60, slug=True),
                _int(item.get("qty", 1), f"{ipath}.qty", 1, 100),
            )
        )
    requires = _object(n.get("requires", {}), f"{path}.requires", ("all", "any"))
    effects = _list(n.get("effects", []), f"{path}.effects", 10)
    if not effects:
        raise TechTreeError(f"{path}.effects", "a node must do something: give it at least one effect")
    return Node(
        id=_str(n.get("id"), f"{path}.id", max_len=60, slug=True),
        name=_str(n.get("name"), f"{path}.name", max_len=80),
        description=_str(n.get("description", ""), f"{path}.description", max_len=500, empty=True),
        points=_int(cost.get("points", 0), f"{path}.cost.points", 0, MAX_POINTS),
        items=tuple(items),
        requires_all=_ids(requires.get("all", []), f"{path}.requires.all"),
        requires_any=_ids(requires.get("any", []), f"{path}.requires.any"),
        beats=_int(n.get("beats", 1), f"{path}.beats", 0, MAX_BEATS),
        effects=tuple(_effect(e, f"{path}.effects[{i}]") for i, e in enumerate(effects)),
    )


def parse_tree(document: Any) -> Tree:
    """Validate a tree document; raise TechTreeError naming the JSON path of the first problem."""
    doc = _object(document, "$", ("slug", "name", "kind", "description", "nodes"))
    nodes_raw = _list(doc.get("nodes"), "$.nodes")
    if not nodes_raw:
        raise TechTreeError("$.nodes", "a tree needs at least one node")
    nodes = [_node(raw, f"$.nodes[{i}]") for i, raw in enumerate(nodes_raw)]
    index: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.id in index:
            raise TechTreeError(
                f"$.nodes[{i}].id", f"{node.id!r} is already the id of $.nodes[{index[node.id]}]"
            )
        index[node.id] = i
    for i, node in enumerate(nodes):
        for part, ids in (("all", node.requires_all), ("any", node.requires_any)):
            for j, ref in enumerate(ids):
                if ref not in index:
                    raise TechTreeError(f"$.nodes[{i}].requires.{part}[{j}]", f"unknown prerequisite {ref!r}")
                if ref == node.id:
                    raise TechTreeError(f"$.nodes[{i}].requires.{part}[{j}]", "a node cannot require itself")
    _check_acyclic(nodes, index)
    return Tree(
        slug=_str(doc.get("slug"), "$.slug", max_len=60, slug=True),
        name=_str(doc.get("name"), "$.name", max_len=80),
        kind=_one_of(doc.get("kind"), "$.kind", KINDS),
        description=_str(doc.get("description", ""), "$.description", max_len=1000, empty=True),
        nodes=tuple(nodes),
        by_id={n.id: n for n in nodes},
    )


def _check_acyclic(nodes: list[Node], index: dict[str, int]) -> None:
    # Depth-first with colours; a back edge is a cycle, reported at the node that closes it.
    colour: dict[str, int] = {}
    for start in nodes:
        if colour.get(start.id):
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start.id, iter(_prereqs(nodes[index[start.id]])))]
        colour[start.id] = 1
        trail = [start.id]
        while stack:
            current, children = stack[-1]
            child = next(iter(children), None)
            if child is None:
                colour[current] = 2
                stack.pop()
                trail.pop()
                continue
            if colour.get(child) == 1:
                cycle = " -> ".join([*trail[trail.index(child) :], child])
                raise TechTreeError(
                    f"$.nodes[{index[current]}].requires", f"prerequisites form a cycle: {cycle}"
                )
            if not colour.get(child):
                colour[child] = 1
                trail.append(child)
                stack.append((child, iter(_prereqs(nodes[index[child]]))))


def _prereqs(node: Node) -> tuple[str, ...]:
    return node.requires_all + node.requires_any


# ---- progress --------------------------------------------------------------------------------


def owner_key(owner_kind: str, owner_id: int, tree_slug: str) -> str:
    return f"{owner_kind}:{owner_id}:{tree_slug}"


def fold(records: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The research progress of (type, payload) records in order (research and BeatChanged)."""
    research: dict[str, Any] = {}
    for type_, payload in records:
        research_fold(research, type_, payload)
    return research


def entry_of(research: Mapping[str, Any], key: str) -> dict[str, Any]:
    return research.get(key) or research_entry()


def node_status(tree: Tree, entry: Mapping[str, Any], node: Node) -> str:
    """done | in_progress | available | locked."""
    if node.id in entry["done"]:
        return "done"
    if entry["active"] and entry["active"]["node"] == node.id:
        return "in_progress"
    done = set(entry["done"])
    if not set(node.requires_all) <= done:
        return "locked"
    if node.requires_any and not done & set(node.requires_any):
        return "locked"
    return "available"


def points_earned(owner_kind: str, *, xp: int = 0, reputation: int = 0) -> int:
    if owner_kind == "player":
        return max(0, xp) // XP_PER_POINT
    return max(0, reputation) // REPUTATION_PER_POINT


def check_start(
    tree: Tree, entry: Mapping[str, Any], node_id: str, *, points: int, held: Mapping[str, int]
) -> Node:
    """The node research may start on, or ResearchRefused saying why not. `points`: what the
    owner has left; `held`: the items the owner holds (slug -> qty)."""
    node = tree.node(node_id)
    if node is None:
        raise KeyError(node_id)
    status = node_status(tree, entry, node)
    if status == "done":
        raise ResearchRefused(f"{node.name} is already researched.")
    if status == "in_progress":
        raise ResearchRefused(f"{node.name} is already being researched.")
    if entry["active"]:
        busy = tree.node(entry["active"]["node"])
        raise ResearchRefused(
            f"{busy.name if busy else 'Another project'} is still being researched; one at a time."
        )
    if status == "locked":
        missing = [tree.by_id[r].name for r in node.requires_all if r not in entry["done"]]
        if missing:
            raise ResearchRefused(f"{node.name} is locked: it needs {', '.join(missing)} first.")
        options = " or ".join(tree.by_id[r].name for r in node.requires_any)
        raise ResearchRefused(f"{node.name} is locked: it needs {options} first.")
    if node.points > points:
        raise ResearchRefused(f"{node.name} costs {node.points} research points; you have {points}.")
    for item, qty in node.items:
        if held.get(item, 0) < qty:
            raise ResearchRefused(f"{node.name} needs {qty} x {item}; you hold {held.get(item, 0)}.")
    return node


def check_complete(tree: Tree, entry: Mapping[str, Any], node_id: str, *, by_gm: bool) -> Node:
    """The node to complete now: the active one whose beats have run out, or (the GM) any
    active one early. ResearchRefused otherwise."""
    node = tree.node(node_id)
    if node is None:
        raise KeyError(node_id)
    if node.id in entry["done"]:
        raise ResearchRefused(f"{node.name} is already researched.")
    active = entry["active"]
    if not active or active["node"] != node.id:
        raise ResearchRefused(f"{node.name} is not being researched.")
    if active["beats_left"] > 0 and not by_gm:
        raise ResearchRefused(
            f"{node.name} needs {active['beats_left']} more beat(s); only the GM can finish it early."
        )
    return node


def due(entry: Mapping[str, Any]) -> str | None:
    """The active node whose research time has run out, if any."""
    active = entry["active"]
    return active["node"] if active and active["beats_left"] <= 0 else None


def drips_due(tree: Tree, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The drips the entry's last beat pays: each done node's drip every `every` beats after it
    completed."""
    out = []
    for node_id in entry["done"]:
        node = tree.node(node_id)
        if node is None:
            continue
        since = entry["beats"] - entry["done_at"].get(node_id, entry["beats"])
        for e in node.effects:
            if e["kind"] == "drip" and since > 0 and since % e["every"] == 0:
                out.append({"node": node_id, "item": e["item"], "qty": e["qty"]})
    return out


@dataclass(frozen=True)
class Effects:
    """What completed research adds to the rules for one character (or the whole table)."""

    check: dict[str, list[tuple[str | None, int]]] = field(default_factory=dict)  # attr -> [(skill, bonus)]
    advantage: frozenset[str] = frozenset()  # attributes the check tool rolls with advantage on
    dda_shift: int = 0
    card_weights: dict[str, float] = field(default_factory=dict)

    def modifier(self, attribute: str, skill: str | None = None) -> int:
        skill = (skill or "").strip().lower()
        total = sum(b for s, b in self.check.get(attribute, []) if s is None or s == skill)
        return max(-MAX_BONUS, min(MAX_BONUS, total))


def effects_for(trees: Iterable[tuple[Tree, Iterable[str]]]) -> Effects:
    """Combine the effects of the done nodes of each (tree, done ids)."""
    check: dict[str, list[tuple[str | None, int]]] = {}
    advantage: set[str] = set()
    shift = 0
    weights: dict[str, float] = {}
    for tree, done in trees:
        for node_id in done:
            node = tree.node(node_id)
            for e in node.effects if node else ():
                if e["kind"] == "check_modifier":
                    check.setdefault(e["attribute"], []).append((e.get("skill"), e["bonus"]))
                elif e["kind"] == "unlock_tool":
                    advantage.add(e["attribute"])
                elif e["kind"] == "dda_cap":
                    shift += e["shift"]
                elif e["kind"] == "deck_pool":
                    weights[e["card_kind"]] = weights.get(e["card_kind"], 1.0) * e["weight"]
    shift = max(-MAX_DDA_SHIFT, min(MAX_DDA_SHIFT, shift))
    return Effects(check=check, advantage=frozenset(advantage), dda_shift=shift, card_weights=weights)


def view(tree: Tree, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The tree as the pages and the API show it: each node with its status and beats left."""
    active = entry["active"]
    nodes = []
    for node in tree.nodes:
        status = node_status(tree, entry, node)
        nodes.append(
            {
                **node.to_dict(),
                "status": status,
                "beats_left": active["beats_left"] if status == "in_progress" and active else None,
            }
        )
    counts = {
        k: sum(1 for n in nodes if n["status"] == k) for k in ("done", "in_progress", "available", "locked")
    }
    return {
        "slug": tree.slug,
        "name": tree.name,
        "kind": tree.kind,
        "description": tree.description,
        "nodes": nodes,
        "counts": counts,
    }
