"""Simulation output → what the table's world may take from it. Pure: a window's changes are
checked against invariants and either accepted (with the line a narrator may use) or rejected
with the reason; nothing here writes anything.

Invariants: a change belongs to the window that produced it; a dead NPC does nothing more (it
cannot die twice, nor act after dying); an NPC the mission protects (one the story still needs)
never dies off-screen; hazard levels stay in bounds. The world never completes an objective on
its own: no change kind does, and an unknown kind is rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from missions.simulation.procedural import HAZARD_MAX, WindowReport

KNOWN = ("npc_died", "hazard_spread", "hazard_flare")


@dataclass(frozen=True)
class Decision:
    accepted: tuple[dict[str, Any], ...] = ()
    rejected: tuple[tuple[dict[str, Any], str], ...] = ()
    notes: tuple[str, ...] = field(default=())


def reconcile(
    report: WindowReport,
    *,
    dead: Iterable[int] = (),
    protected: Iterable[int] = (),
    sector_names: Mapping[int, str] | None = None,
) -> Decision:
    """Judge `report`'s changes. `dead`: NPCs already dead before the window; `protected`: NPCs
    the mission keeps alive."""
    dead_now, keep = set(dead), set(protected)
    names = sector_names or {}
    first, last = report.start_step, report.start_step + report.steps
    accepted, rejected, notes = [], [], []
    for change in report.changes:
        kind = change.get("kind")
        why = None
        if kind not in KNOWN:
            why = f"unknown change {kind!r}: the world changes nothing else"
        elif not first <= change.get("step", -1) < last:
            why = "outside its step window"
        elif kind == "npc_died" and change["npc"] in dead_now:
            why = "a dead NPC cannot die again"
        elif kind == "npc_died" and change["npc"] in keep:
            why = "the mission still needs this NPC"
        elif kind.startswith("hazard") and not 0 < change.get("level", 0) <= HAZARD_MAX:
            why = "hazard level out of bounds"
        if why:
            rejected.append((change, why))
            continue
        accepted.append(change)
        where = names.get(change.get("sector"), f"sector {change.get('sector')}")
        if kind == "npc_died":
            dead_now.add(change["npc"])
            notes.append(f"Word comes that someone was lost in {where}.")
        elif kind == "hazard_flare":
            notes.append(f"A hazard flares up in {where}.")
    return Decision(tuple(accepted), tuple(rejected), tuple(dict.fromkeys(notes)))
