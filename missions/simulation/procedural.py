"""The `procedural` simulation: a small deterministic sandbox that makes the world move between
player actions. Pure Python, no Django, integers only (no floats: byte-identical on any machine).

The world (plain JSON data, so it can be snapshotted and hashed):

- ``sectors``: a ring of sectors, each with the factions' influence (0..100) and a hazard level
  (0..9) that spreads to neighbours and decays;
- ``npcs``: each in a sector, of a faction, alive or not, with an agenda that advances; a
  finished agenda raises its faction's influence where the NPC stands (and the NPC may move on);
  a living NPC in a sector at hazard 6+ may die;
- ``market``: per item, stock and price; stock moves with supply and demand (never negative), the
  price follows scarcity.

Every step is seeded exactly by SHA-256 of ``campaign:session:beat:step`` (`step_seed`), so the
same ids and world give the same bytes everywhere. A step window (`step`) runs `budget` steps
from `start_step`; `snapshot()` is canonical JSON carrying the campaign, the step reached and the
world's SHA-256, and `restore` refuses a blob that was tampered with, truncated, or made for
another campaign.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMAT = 1
# Providers whose snapshots carry this same world format (a campaign may switch between them).
WORLD_KINDS = ("procedural", "remote")
FACTIONS = ("helix", "warden", "choir")
ITEMS = (("medpatch", 40), ("breach-charge", 120), ("spore-filter", 25), ("fuel-cell", 60))
MAX_BUDGET = 10_000
AGENDA_DONE = 10
HAZARD_MAX = 9
DEADLY_HAZARD = 6


class SimulationError(ValueError):
    """A bad start, window or snapshot (tampered, truncated, another campaign's)."""


def step_seed(campaign_id: int, session_id: int, beat_id: str | int, step_index: int) -> int:
    """The seed of one step: the first 8 bytes of SHA-256 of the four ids, big-endian."""
    material = f"{campaign_id}:{session_id}:{beat_id}:{step_index}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big")


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def world_hash(world: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(world)).hexdigest()


def generate_world(entities: int, seed: int) -> dict[str, Any]:
    """A world of about `entities` entities (NPCs, plus a sector per ten of them and the market),
    from `seed` alone."""
    if not 1 <= entities <= 1_000_000:
        raise SimulationError(f"entities must be 1..1000000, got {entities}")
    rng = random.Random(seed)
    n_sectors = max(3, entities // 10)
    sectors = [
        {
            "influence": {f: rng.randrange(0, 40) for f in FACTIONS},
            "hazard": rng.randrange(0, HAZARD_MAX + 1) if rng.randrange(10) == 0 else 0,
        }
        for _ in range(n_sectors)
    ]
    npcs = [
        {
            "sector": rng.randrange(n_sectors),
            "faction": FACTIONS[rng.randrange(len(FACTIONS))],
            "agenda": rng.randrange(AGENDA_DONE),
            "alive": True,
        }
        for _ in range(entities)
    ]
    market = {item: {"stock": 50 + rng.randrange(50), "price": base, "base": base} for item, base in ITEMS}
    return {"sectors": sectors, "npcs": npcs, "market": market}


def check_world(world: Any) -> None:
    """The invariants every world keeps (SimulationError names the first one broken)."""
    if not isinstance(world, Mapping) or not {"sectors", "npcs", "market"} <= set(world):
        raise SimulationError("a world has sectors, npcs and market")
    n = len(world["sectors"])
    if n < 1:
        raise SimulationError("a world has at least one sector")
    for i, s in enumerate(world["sectors"]):
        if not 0 <= s["hazard"] <= HAZARD_MAX or any(not 0 <= v <= 100 for v in s["influence"].values()):
            raise SimulationError(f"sector {i} is out of bounds")
    for i, npc in enumerate(world["npcs"]):
        if not 0 <= npc["sector"] < n:
            raise SimulationError(f"npc {i} stands in no sector")
    for item, m in world["market"].items():
        if m["stock"] < 0 or m["price"] < 1:
            raise SimulationError(f"{item}: negative stock or a price below 1")


@dataclass(frozen=True)
class Window:
    """An authorised step window: `budget` steps from `start_step`, at beat `beat_id`.
    `protected`: world NPC indices that must not die in it (the ones the running mission still
    needs: missions.simulation.cast)."""

    beat_id: str
    start_step: int
    budget: int
    protected: tuple[int, ...] = ()


@dataclass(frozen=True)
class WindowReport:
    beat_id: str
    start_step: int
    budget: int
    steps: int
    changes: tuple[dict[str, Any], ...]
    state_hash: str


class ProceduralSimulation:
    """start(seed material, world) / step(window) / snapshot() / restore(blob) / state_hash()."""

    kind = "procedural"
    name = "procedural"  # the provider registry's telemetry reads `name` and `model`
    model = ""

    def __init__(self) -> None:
        self.campaign_id: int | None = None
        self.session_id: int | None = None
        self.world: dict[str, Any] = {}
        self.step_index = 0

    def start(self, seed_material: Mapping[str, int], world: Mapping[str, Any]) -> None:
        try:
            self.campaign_id = int(seed_material["campaign_id"])
            self.session_id = int(seed_material["session_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SimulationError("seed material needs campaign_id and session_id") from exc
        check_world(world)
        self.world = copy.deepcopy(dict(world))
        self.step_index = 0

    def step(self, window: Window) -> WindowReport:
        if self.campaign_id is None:
            raise SimulationError("start the simulation first")
        if not 0 <= window.budget <= MAX_BUDGET:
            raise SimulationError(f"a window's budget is 0..{MAX_BUDGET}, got {window.budget}")
        if window.start_step != self.step_index:
            raise SimulationError(
                f"the window starts at step {window.start_step}; the world is at {self.step_index}"
            )
        changes: list[dict[str, Any]] = []
        protected = frozenset(window.protected)
        for i in range(window.budget):
            index = window.start_step + i
            rng = random.Random(step_seed(self.campaign_id, self.session_id or 0, window.beat_id, index))
            changes += _advance(self.world, rng, index, protected)
            self.step_index = index + 1
        return WindowReport(
            window.beat_id, window.start_step, window.budget, window.budget, tuple(changes), self.state_hash()
        )

    def state_hash(self) -> str:
        return world_hash({"step": self.step_index, "world": self.world})

    def snapshot(self) -> bytes:
        body = {
            "format": FORMAT,
            "kind": self.kind,
            "campaign_id": self.campaign_id,
            "session_id": self.session_id,
            "step": self.step_index,
            "world": self.world,
        }
        return canonical({**body, "sha256": hashlib.sha256(canonical(body)).hexdigest()})

    def restore(self, blob: bytes, *, campaign_id: int) -> None:
        """Load a snapshot of `campaign_id`'s simulation; refuse anything else."""
        try:
            data = json.loads(blob)
        except (ValueError, TypeError) as exc:
            raise SimulationError("the snapshot is not readable (truncated or not a snapshot)") from exc
        if not isinstance(data, dict) or "sha256" not in data:
            raise SimulationError("the snapshot has no checksum")
        claimed = data.pop("sha256")
        if hashlib.sha256(canonical(data)).hexdigest() != claimed:
            raise SimulationError("the snapshot's checksum does not match: it was changed")
        if data.get("format") != FORMAT or data.get("kind") not in WORLD_KINDS:
            raise SimulationError("the snapshot is of another format or provider")
        if data.get("campaign_id") != campaign_id:
            raise SimulationError("the snapshot belongs to another campaign")
        check_world(data["world"])
        self.campaign_id, self.session_id = data["campaign_id"], data["session_id"]
        self.step_index, self.world = data["step"], data["world"]


def rebind(blob: bytes, campaign_id: int) -> bytes:
    """The same snapshot, owned by `campaign_id`: what a branch, a clone or an imported campaign
    file gets of its source's worlds. The blob is checked first (checksum, format, the world's
    invariants: SimulationError otherwise); only its campaign and checksum change, so its state
    hash stays the one the copied log records."""
    try:
        owner = json.loads(blob)["campaign_id"]
    except (ValueError, TypeError, KeyError) as exc:
        raise SimulationError("the snapshot is not readable (truncated or not a snapshot)") from exc
    ProceduralSimulation().restore(blob, campaign_id=owner)
    data = json.loads(blob)
    data.pop("sha256")
    data["campaign_id"] = campaign_id
    return canonical({**data, "sha256": hashlib.sha256(canonical(data)).hexdigest()})


def _advance(
    world: dict[str, Any], rng: random.Random, index: int, protected: frozenset[int] = frozenset()
) -> list[dict[str, Any]]:
    """One step of the world, in place; returns what a table would notice. A `protected` NPC
    survives what would have killed it (the draw is still made, so the rest of the step is
    the same)."""
    sectors, npcs, market = world["sectors"], world["npcs"], world["market"]
    # `randrange(n)` for a positive int n is exactly `_randbelow(n)` (CPython's random.py), minus
    # the argument checks that were most of a step's cost: the same numbers, the same hashes.
    below = rng._randbelow
    n = len(sectors)
    changes: list[dict[str, Any]] = []
    # Agendas: each living NPC advances; a finished one raises its faction where it stands.
    for i, npc in enumerate(npcs):
        if not npc["alive"]:
            continue
        npc["agenda"] += below(3)
        if npc["agenda"] >= AGENDA_DONE:
            npc["agenda"] = 0
            influence = sectors[npc["sector"]]["influence"]
            influence[npc["faction"]] = min(100, influence[npc["faction"]] + 1)
            if below(4) == 0:
                npc["sector"] = (npc["sector"] + (1 if below(2) else -1)) % n
        elif sectors[npc["sector"]]["hazard"] >= DEADLY_HAZARD and below(200) == 0 and i not in protected:
            npc["alive"] = False
            changes.append({"step": index, "kind": "npc_died", "npc": i, "sector": npc["sector"]})
    # Hazards spread to a neighbour and decay.
    spread = []
    for s, sector in enumerate(sectors):
        level = sector["hazard"]
        if level and below(HAZARD_MAX + 3) < level:
            spread.append(((s + (1 if below(2) else -1)) % n, level - 1))
        if level and below(6) == 0:
            sector["hazard"] = level - 1
    for s, level in spread:
        if level > sectors[s]["hazard"]:
            sectors[s]["hazard"] = level
            changes.append({"step": index, "kind": "hazard_spread", "sector": s, "level": level})
    if below(20) == 0:  # a new hazard somewhere
        s = below(n)
        sectors[s]["hazard"] = min(HAZARD_MAX, sectors[s]["hazard"] + 3)
        changes.append({"step": index, "kind": "hazard_flare", "sector": s, "level": sectors[s]["hazard"]})
    # Supply and prices: stock never below zero; scarcity raises the price.
    for item in sorted(market):
        m = market[item]
        m["stock"] = max(0, m["stock"] + below(6) - below(6))
        m["price"] = max(1, m["base"] * 100 // (50 + min(m["stock"], 150)))
    return changes
