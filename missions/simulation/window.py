"""One authorised step window at a beat boundary, end to end and pure: restore the last
snapshot, check it is the world the log says it is, run the window, check the world's
invariants and the provider's hash, snapshot, reconcile, and word what players may see.

Everything the table keeps comes back as data (`Outcome`); the service around it (missions.
simulation_lockstep) stores the snapshot and appends the events. A provider is anything with
`restore(blob, campaign_id=)`, `step(Window)`, `snapshot()`, `state_hash()` and a `world` and
`step_index` (missions.simulation.procedural, missions.simulation_remote).

Drift: a restored world whose hash is not the one recorded, a report whose hash is not the hash
of the world it left, a world that breaks an invariant (negative stock, a sector out of bounds,
…), an NPC the mission protects (`needs`, missions.simulation.cast) dead after the window, or a
provider failure. `run_window` quarantines the attempt, replays the window once from the
same snapshot, and reports `drifted` if the replay fails too: the caller then falls back to
plain narration (and tells the players, in the game's words).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from missions.simulation.cast import protected_indices
from missions.simulation.procedural import FACTIONS, SimulationError, Window, check_world
from missions.simulation.reconcile import Decision, reconcile

SECTOR_NAMES = (
    "the Vesper Drift",
    "Halcyon Spur",
    "the Ashen Belt",
    "Coriolis Gate",
    "the Lantern Reach",
    "Marrow Station",
    "the Quiet Shoals",
    "Tannhaus Deep",
)
FACTION_NAMES = {"helix": "the Helix Syndicate", "warden": "the Wardens", "choir": "the Choir"}
PLURAL_FACTIONS = frozenset({"warden"})
# A price move players hear about: at least this many percent.
PRICE_NOTICE_PCT = 10
# Faction influence summed over the map: a shift of at least this much is news.
INFLUENCE_NOTICE = 3
MAX_WINDOW_TRIES = 3  # a provider that returns a short window is asked for the rest, this often


def sector_name(index: int) -> str:
    base = SECTOR_NAMES[index % len(SECTOR_NAMES)]
    return base if index < len(SECTOR_NAMES) else f"{base} {index // len(SECTOR_NAMES) + 1}"


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def summarize(world: Mapping[str, Any]) -> dict[str, Any]:
    """What a table can notice of a world: influence per faction (summed), prices, which sectors
    are hazardous, who is alive."""
    influence = {f: 0 for f in FACTIONS}
    hazards = []
    for i, sector in enumerate(world["sectors"]):
        for f, v in sector["influence"].items():
            influence[f] = influence.get(f, 0) + v
        if sector["hazard"]:
            hazards.append(i)
    return {
        "influence": influence,
        "prices": {item: m["price"] for item, m in sorted(world["market"].items())},
        "hazards": hazards,
        "dead": [i for i, npc in enumerate(world["npcs"]) if not npc["alive"]],
    }


def world_lines(before: Mapping[str, Any], after: Mapping[str, Any], decision: Decision) -> list[str]:
    """The player-facing "the world moves" lines: influence shifts, prices, hazards spreading,
    and the accepted changes' own notes. In the game's words: no steps, hashes or scores."""
    lines: list[str] = []
    shifts = sorted(
        ((after["influence"].get(f, 0) - before["influence"].get(f, 0), f) for f in after["influence"]),
        reverse=True,
    )
    gained = [f for d, f in shifts if d >= INFLUENCE_NOTICE]
    if gained:
        verb = "gain" if gained[0] in PLURAL_FACTIONS else "gains"
        name = _first_upper(FACTION_NAMES.get(gained[0], gained[0]))
        lines.append(f"{name} {verb} ground across the Reach.")
    # The market's biggest move only (a table hears the news, not the ticker).
    moves = sorted(
        (
            (abs(price - old) * 100 // old, item, old, price)
            for item, price in after["prices"].items()
            if (old := before["prices"].get(item))
        ),
        reverse=True,
    )
    if moves and moves[0][0] >= PRICE_NOTICE_PCT:
        _pct, item, old, price = moves[0]
        name = _first_upper(item.replace("-", " "))
        if price > old:
            lines.append(f"{name} prices climb to {price} credits.")
        else:
            lines.append(f"{name} gets cheaper: {price} credits.")
    spread = sorted(set(after["hazards"]) - set(before["hazards"]))
    if spread:
        names = [sector_name(s) for s in spread[:2]]
        where = (
            f"{', '.join(names)} and {len(spread) - 2} more sector{'s' if len(spread) > 3 else ''}"
            if len(spread) > 2
            else " and ".join(names)
        )
        lines.append(f"A hazard spreads into {where}.")
    lines += [n for n in decision.notes if n not in lines]
    return lines[:6]


@dataclass(frozen=True)
class Outcome:
    """A window's result. `ok`: the window completed and checked out; then `blob`, `state_hash`,
    `steps` and `lines` are the new world's. `quarantined`: why an attempt was set aside (one per
    failed attempt); `drifted`: the replay failed too — fall back to plain narration."""

    ok: bool
    window: Window
    steps: int = 0
    state_hash: str = ""
    blob: bytes = b""
    step_index: int = 0
    accepted: int = 0
    rejected: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()
    quarantined: tuple[str, ...] = ()
    ms: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return not self.ok

    @property
    def replayed(self) -> bool:
        return self.ok and bool(self.quarantined)


def _attempt(
    provider: Any,
    blob: bytes,
    expected_hash: str,
    window: Window,
    *,
    campaign_id: int,
    session_id: int,
    needs: tuple[str, ...] = (),
) -> Outcome:
    provider.restore(blob, campaign_id=campaign_id)
    # A campaign's world goes on in each new session (through a telemetry wrapper, if any).
    getattr(provider, "inner", provider).session_id = session_id
    if provider.state_hash() != expected_hash:
        raise SimulationError("the restored world is not the one the log recorded (hash mismatch at replay)")
    if provider.step_index != window.start_step:
        raise SimulationError("the restored world is at another step than the window's")
    # The world NPCs the mission's needed NPCs stand for: nobody kills them in this window.
    protected = protected_indices(needs, provider.world["npcs"])
    window = Window(window.beat_id, window.start_step, window.budget, protected)
    before = summarize(provider.world)
    t0 = time.perf_counter()
    steps, changes = 0, []
    report = None
    for _ in range(MAX_WINDOW_TRIES):
        rest = Window(window.beat_id, window.start_step + steps, window.budget - steps, protected)
        report = provider.step(rest)
        if report.steps < 0 or report.steps > rest.budget:
            raise SimulationError(f"the provider ran {report.steps} steps of a {rest.budget}-step window")
        steps += report.steps
        changes += report.changes
        if steps >= window.budget:
            break
    t1 = time.perf_counter()
    check_world(provider.world)  # the invariants: stock never negative, sectors in bounds, …
    npcs = provider.world["npcs"]
    if lost := [i for i in protected if i >= len(npcs) or not npcs[i]["alive"]]:
        raise SimulationError(f"the provider killed NPC {lost[0]}, whom the mission protects")
    if steps < window.budget:
        raise SimulationError(f"the window ran {steps} of {window.budget} steps")
    # Our own hash of the world the provider left: a provider whose claim differs has drifted.
    mine = provider.state_hash()
    if report is None or report.state_hash != mine:
        raise SimulationError("the provider's state hash does not match its world (drift)")
    snap = provider.snapshot()
    t2 = time.perf_counter()
    whole = type(report)(window.beat_id, window.start_step, window.budget, steps, tuple(changes), mine)
    names = {c["sector"]: sector_name(c["sector"]) for c in changes if type(c.get("sector")) is int}
    decision = reconcile(whole, dead=before["dead"], protected=protected, sector_names=names)
    lines = world_lines(before, summarize(provider.world), decision)
    t3 = time.perf_counter()
    return Outcome(
        ok=True,
        window=window,
        steps=steps,
        state_hash=mine,
        blob=snap,
        step_index=provider.step_index,
        accepted=len(decision.accepted),
        rejected=tuple((str(c.get("kind")), why) for c, why in decision.rejected),
        lines=tuple(lines),
        timings={
            "window_ms": (t1 - t0) * 1000,
            "snapshot_ms": (t2 - t1) * 1000,
            "reconcile_ms": (t3 - t2) * 1000,
        },
    )


def run_window(
    provider: Any,
    blob: bytes,
    expected_hash: str,
    window: Window,
    *,
    campaign_id: int,
    session_id: int,
    errors: tuple[type[BaseException], ...] = (),
    fresh: Callable[[], Any] | None = None,
    needs: tuple[str, ...] = (),
) -> Outcome:
    """Run `window` from the snapshot `blob` (whose recorded state hash is `expected_hash`).
    `needs`: the mission NPCs (missions.simulation.cast keys) the window must keep alive; the
    Outcome's window names the world NPCs they stand for (`protected`), for the log.
    An attempt that drifts (SimulationError, or one of `errors`: the provider's failures) is
    quarantined and the window replayed once from the same snapshot, on a `fresh()` provider if
    given. Never raises for drift: the Outcome says what happened."""
    started = time.perf_counter()
    quarantined: list[str] = []
    for attempt in range(2):
        target = provider if attempt == 0 or fresh is None else fresh()
        try:
            outcome = _attempt(
                target,
                blob,
                expected_hash,
                window,
                campaign_id=campaign_id,
                session_id=session_id,
                needs=needs,
            )
        except (SimulationError, ValueError, KeyError, TypeError, *errors) as exc:
            quarantined.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        ms = (time.perf_counter() - started) * 1000
        return Outcome(**{**outcome.__dict__, "quarantined": tuple(quarantined), "ms": ms})
    return Outcome(
        ok=False, window=window, quarantined=tuple(quarantined), ms=(time.perf_counter() - started) * 1000
    )
