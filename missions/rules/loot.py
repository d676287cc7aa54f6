"""Weighted loot tables.

Pure Python, no Django. A table is a plain dict, as stored in a pack's ``loot.json``::

    {"name": "Salvage", "nothing": 30,
     "entries": [{"item": "medpatch", "weight": 40, "min": 1, "max": 2}, ...]}

Each draw picks an entry with probability ``weight / (sum of weights + nothing)``; the
``nothing`` weight (optional, default 0) is the chance of finding nothing. The quantity is
uniform in ``min..max``. Weights are positive integers, so the odds are exact and a table
reads the same to a designer as to the code. A pack's file holds ``{"tables": {slug: table}}``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 100
MAX_WEIGHT = 1_000_000
MAX_QTY = 10_000
MAX_DRAWS = 100
# Currency is not an item in a pack's item list but may appear in any table.
CURRENCY_ITEMS = frozenset({"credits"})

_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)


class LootError(ValueError):
    """A loot table is malformed, or a roll was asked with bad parameters."""


@dataclass(frozen=True)
class LootEntry:
    item: str
    weight: int
    min: int = 1
    max: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "weight": self.weight, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class LootTable:
    slug: str
    name: str
    entries: tuple[LootEntry, ...]
    nothing: int = 0

    @property
    def total_weight(self) -> int:
        return sum(e.weight for e in self.entries) + self.nothing

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "nothing": self.nothing, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, slug: str = "table", items: Iterable[str] | None = None
    ) -> LootTable:
        return validate_table(data, slug=slug, items=items)


def _int_field(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LootError(f"{where} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise LootError(f"{where} must be {low}..{high}, got {value}")
    return value


def validate_table(
    data: Mapping[str, Any], *, slug: str = "table", items: Iterable[str] | None = None
) -> LootTable:
    """Check a table dict and return a LootTable.

    `items`, when given, is the pack's item slugs: every entry must name one of them (or
    a currency such as ``credits``).
    """
    if not isinstance(slug, str) or not _SLUG_RE.fullmatch(slug):
        raise LootError(f"loot table slug must be lowercase letters, digits and '-', got {slug!r}")
    where = f"loot table '{slug}'"
    if not isinstance(data, Mapping):
        raise LootError(f"{where} must be an object, got {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - {"name", "nothing", "entries"})
    if unknown:
        raise LootError(f"{where} has unknown field(s): {', '.join(unknown)}")
    name = data.get("name", slug)
    if not isinstance(name, str) or not 1 <= len(name) <= 80:
        raise LootError(f"{where}: name must be a string of 1..80 characters")
    nothing = _int_field(data.get("nothing", 0), f"{where}: 'nothing' weight", 0, MAX_WEIGHT)
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise LootError(f"{where} needs a non-empty 'entries' list")
    if len(raw_entries) > MAX_ENTRIES:
        raise LootError(f"{where} has {len(raw_entries)} entries; at most {MAX_ENTRIES} are allowed")
    known = None if items is None else set(items) | CURRENCY_ITEMS
    entries: list[LootEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_entries):
        at = f"{where} entry {i}"
        if not isinstance(raw, Mapping):
            raise LootError(f"{at} must be an object, got {type(raw).__name__}")
        unknown = sorted(str(k) for k in set(raw) - {"item", "weight", "min", "max"})
        if unknown:
            raise LootError(f"{at} has unknown field(s): {', '.join(unknown)}")
        item = raw.get("item")
        if not isinstance(item, str) or not _SLUG_RE.fullmatch(item):
            raise LootError(f"{at}: item must be a slug (lowercase letters, digits, '-'), got {item!r}")
        at = f"{where} entry '{item}'"
        if item in seen:
            raise LootError(f"{where} lists '{item}' twice")
        seen.add(item)
        if known is not None and item not in known:
            raise LootError(f"{at}: unknown item '{item}' (not in the pack's items)")
        if "weight" not in raw:
            raise LootError(f"{at} is missing 'weight'")
        weight = raw["weight"]
        if isinstance(weight, int) and not isinstance(weight, bool) and weight <= 0:
            raise LootError(f"{at}: weight must be a positive integer, got {weight}")
        weight = _int_field(weight, f"{at}: weight", 1, MAX_WEIGHT)
        low = _int_field(raw.get("min", 1), f"{at}: min", 1, MAX_QTY)
        high = _int_field(raw.get("max", low), f"{at}: max", 1, MAX_QTY)
        if high < low:
            raise LootError(f"{at}: max ({high}) is less than min ({low})")
        entries.append(LootEntry(item=item, weight=weight, min=low, max=high))
    return LootTable(slug=slug, name=name, entries=tuple(entries), nothing=nothing)


def load_tables(data: Mapping[str, Any], *, items: Iterable[str] | None = None) -> dict[str, LootTable]:
    """Validate a pack's ``{"tables": {slug: table}}`` document."""
    if not isinstance(data, Mapping) or not isinstance(data.get("tables"), Mapping):
        raise LootError("a loot file must be an object with a 'tables' object")
    unknown = sorted(str(k) for k in set(data) - {"tables", "version"})
    if unknown:
        raise LootError(f"loot file has unknown field(s): {', '.join(unknown)}")
    item_list = None if items is None else list(items)
    return {slug: validate_table(table, slug=slug, items=item_list) for slug, table in data["tables"].items()}


def roll(table: LootTable | Mapping[str, Any], rng: random.Random, count: int = 1) -> list[dict[str, Any]]:
    """Draw `count` times; return the finds as ``[{"item", "qty"}]`` in draw order.

    Draws that land on "nothing" are left out, so the list may be shorter than `count`
    (or empty). `combine` merges repeated items.
    """
    if not isinstance(table, LootTable):
        table = validate_table(table)
    _int_field(count, "count", 1, MAX_DRAWS)
    finds: list[dict[str, Any]] = []
    for _ in range(count):
        pick = rng.randrange(table.total_weight)
        for entry in table.entries:
            if pick < entry.weight:
                finds.append({"item": entry.item, "qty": rng.randint(entry.min, entry.max)})
                break
            pick -= entry.weight
    return finds


def combine(finds: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Merge finds of the same item, keeping first-seen order."""
    totals: dict[str, int] = {}
    for find in finds:
        totals[find["item"]] = totals.get(find["item"], 0) + find["qty"]
    return [{"item": item, "qty": qty} for item, qty in totals.items()]
