"""Where granted items go, and how they read.

Pure (no Django): the events that grant items say whom they grant them to, and this module reads
that back the same way for the projections (`engine.apply_projections`), the branch rewind
(`narrative.branching`) and the narration. Two kinds of holder:

- a character (``("character", id)``): what one character found (a scavenging roll: LootFound);
- the party (``("party", None)``): what the whole party earned (mission and objective rewards:
  RewardGranted), kept on the campaign as its shared stash.

Credits are an item like any other (slug ``credits``), so a find of 43 credits is
``{"item": "credits", "qty": 43}``; the sheet shows them apart from the gear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from missions.rules import loot

CURRENCY = "credits"
# One holder's count of one item never passes this (a bad or hostile payload can't overflow it).
MAX_HELD = 1_000_000

Holder = tuple[str, int | None]


def clean_items(items: Any) -> list[dict[str, Any]]:
    """The well-formed `{"item", "qty"}` entries of a payload's item list (others are dropped)."""
    if not isinstance(items, list):
        return []
    out = []
    for entry in items:
        if not isinstance(entry, Mapping):
            continue
        item, qty = entry.get("item"), entry.get("qty")
        if not isinstance(item, str) or not item or len(item) > 64:
            continue
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            continue
        out.append({"item": item, "qty": min(qty, MAX_HELD)})
    return out


def grants(event_type: str, payload: Mapping[str, Any]) -> list[tuple[Holder, list[dict[str, Any]]]]:
    """Whom an event gives items to, and which: ``[(holder, items)]`` (empty for other events).

    RewardGranted before issue 13 named one `holder` character; since then it names the party
    (``"to": "party"``). LootFound names the finder (``character_id``) or the party."""
    if event_type not in ("RewardGranted", "LootFound"):
        return []
    items = clean_items(payload.get("items"))
    if not items:
        return []
    if payload.get("to") == "party":
        return [(("party", None), items)]
    if event_type == "RewardGranted":
        holder = payload.get("holder") or {}
        character_id = holder.get("character_id") if isinstance(holder, Mapping) else None
    else:
        character_id = payload.get("character_id")
    if isinstance(character_id, bool) or not isinstance(character_id, int):
        return []
    return [(("character", character_id), items)]


def add(held: Sequence[Mapping[str, Any]] | None, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`held` plus `items`, one entry per item, sorted by slug (the stored form)."""
    totals = {e["item"]: e["qty"] for e in clean_items(list(held or []))}
    for entry in clean_items(list(items)):
        totals[entry["item"]] = min(totals.get(entry["item"], 0) + entry["qty"], MAX_HELD)
    return [{"item": k, "qty": v} for k, v in sorted(totals.items())]


def remove(
    held: Sequence[Mapping[str, Any]] | None, items: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`held` less `items` (never below zero; what runs out is dropped)."""
    totals = {e["item"]: e["qty"] for e in clean_items(list(held or []))}
    for entry in clean_items(list(items)):
        totals[entry["item"]] = totals.get(entry["item"], 0) - entry["qty"]
    return [{"item": k, "qty": v} for k, v in sorted(totals.items()) if v > 0]


def item_names(pack: Mapping[str, Any] | None) -> dict[str, str]:
    """Item slug -> display name, from a content pack's item list (credits included)."""
    names = {CURRENCY: "credits"}
    for item in (pack or {}).get("items") or []:
        if isinstance(item, Mapping) and isinstance(item.get("slug"), str):
            names[item["slug"]] = str(item.get("name") or item["slug"])
    return names


def name_of(slug: str, names: Mapping[str, str]) -> str:
    return names.get(slug) or slug.replace("-", " ")


def named(items: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Items with their display names: ``[{"item", "qty", "name"}]``."""
    return [{**e, "name": name_of(e["item"], names)} for e in clean_items(list(items))]


def _ratio(total: int, expression_min: int, expression_max: int) -> float:
    return (total - expression_min) / max(1, expression_max - expression_min)


def draws_for(total: int, expression_min: int, expression_max: int) -> int:
    """How many draws from a loot table a search roll earns: two on a great roll (the top 25 %
    of the dice's range), one otherwise."""
    return 2 if _ratio(total, expression_min, expression_max) >= 0.75 else 1


def sure_find(total: int, expression_min: int, expression_max: int) -> bool:
    """Whether the roll was good enough that the search turns up something for sure: on a poor
    roll (the bottom 30 % of the range) the table's "nothing" weight counts; above it, the roll
    already said the search paid off, so the draws skip it."""
    return _ratio(total, expression_min, expression_max) >= 0.3


def search(table: loot.LootTable, rng, draws: int, *, sure: bool = False) -> list[dict[str, Any]]:
    """The finds of `draws` draws from `table` (combined; empty when nothing turned up). With
    `sure`, the table's "nothing" weight is left out."""
    if draws <= 0:
        return []
    if sure and table.nothing:
        table = replace(table, nothing=0)
    return loot.combine(loot.roll(table, rng, draws))


# A search that names no table ("any") draws from this one when the pack has it, else from the
# pack's first table by slug.
DEFAULT_SEARCH_TABLE = "salvage"
ANY_TABLE = "any"


def search_table(requested: str, tables: Mapping[str, Any]) -> str | None:
    """The loot table a search draws from: the one named, or for "any" the default; None when
    the pack has no tables (the search then finds nothing)."""
    if requested != ANY_TABLE:
        return requested if requested in tables else None
    if DEFAULT_SEARCH_TABLE in tables:
        return DEFAULT_SEARCH_TABLE
    return min(tables) if tables else None


def describe(items: Sequence[Mapping[str, Any]]) -> str:
    """ "a medpatch, 2 spore filters and 43 credits" — named items as the narration says them
    ("" for nothing)."""
    parts = []
    for entry in items:
        name = str(entry.get("name") or entry["item"])
        qty = entry["qty"]
        if entry["item"] == CURRENCY:
            parts.append(f"{qty} credit{'s' if qty != 1 else ''}")
        elif qty == 1:
            lowered = name[:1].lower() + name[1:]
            parts.append(f"{'an' if lowered[:1] in 'aeiou' else 'a'} {lowered}")
        else:
            lowered = name[:1].lower() + name[1:]
            parts.append(f"{qty} {lowered if lowered.endswith('s') else lowered + 's'}")
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"
