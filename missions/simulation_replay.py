"""Replay of a session's world simulation (issue 19): `simulation_replay` re-runs the session's
windows from its start snapshot, from the log alone, and the live state hash must come back (a
mismatch is drift: the GM's `simulation_services.simulation_verify` quarantines it)."""

from __future__ import annotations

from typing import Any

from campaigns.models import Event, PlaySession
from gtw_site.providers import ProviderError
from missions.models import SimulationSnapshot
from missions.simulation import ProceduralSimulation, SimulationError, Window
from missions.simulation_lockstep import build_provider
from missions.simulation_selectors import SIMULATION_EVENTS, snapshot_named


def simulation_replay(session_id: int, *, provider_factory=None) -> dict[str, Any]:
    """Re-run the session's simulation from the log alone: restore each start/restore snapshot
    and re-run every recorded window on a fresh provider (the procedural stepper for a
    procedural start; the campaign's provider otherwise — a remote model is asked again); every
    recorded hash must come back. Each window is seeded with the ids it ran under, read from its
    snapshot row's seed material (a branch's or an imported campaign's copied windows ran under
    their source's), and keeps the NPCs it kept alive. Returns {"windows", "hash" (the last one
    reached), "mismatches": [{seq, expected, got}]}."""
    rows = Event.objects.filter(session_id=session_id, type__in=SIMULATION_EVENTS).order_by("seq")
    session = PlaySession.objects.only("campaign_id").get(pk=session_id)
    seeds = _seed_material(session.campaign_id)
    sim = None
    windows, mismatches, last = 0, [], ""
    for event in rows.iterator():
        payload = event.payload or {}
        try:
            if event.type in ("SimulationStarted", "SimulationRestored"):
                snap = snapshot_named(session.campaign_id, payload.get("snapshot"), payload.get("hash") or "")
                if snap is None:
                    raise SimulationError(f"snapshot {payload.get('snapshot')} is not in this campaign")
                if provider_factory is not None:
                    sim = provider_factory()
                elif event.type == "SimulationRestored" and sim is not None:
                    sim = (
                        type(getattr(sim, "inner", sim))()
                        if _local(sim)
                        else build_provider(session.campaign_id)
                    )
                elif payload.get("provider", "procedural") == "procedural":
                    sim = ProceduralSimulation()
                else:
                    sim = build_provider(session.campaign_id)
                sim.restore(bytes(snap.blob), campaign_id=session.campaign_id)
                getattr(sim, "inner", sim).session_id = session_id
                got = sim.state_hash()
            elif event.type == "SimulationStepped" and sim is not None:
                shape = payload["window"]
                inner = getattr(sim, "inner", sim)
                ran_under = seeds.get((payload.get("snapshot"), payload.get("hash")))
                if ran_under is not None:
                    inner.campaign_id, inner.session_id = ran_under
                protected = tuple(shape.get("protected") or ())
                report = sim.step(Window(shape["beat_id"], shape["start_step"], shape["budget"], protected))
                windows += 1
                got = report.state_hash
            else:
                continue
        except (SimulationError, ProviderError, KeyError, TypeError) as exc:
            mismatches.append({"seq": event.seq, "expected": payload.get("hash"), "got": f"error: {exc}"})
            sim = None
            continue
        last = got
        if got != payload.get("hash"):
            mismatches.append({"seq": event.seq, "expected": payload.get("hash"), "got": got})
    return {"windows": windows, "hash": last, "mismatches": mismatches}


def _seed_material(campaign_id: int) -> dict[tuple[int, str], tuple[int, int | None]]:
    """(the id the log names a snapshot by, its state hash) -> the (campaign, session) ids the
    window that took it was seeded with."""
    out = {}
    for pk, seed, digest in SimulationSnapshot.objects.filter(campaign_id=campaign_id).values_list(
        "pk", "seed", "state_hash"
    ):
        seed = seed or {}
        copied = seed.get("copied_from")
        ref = copied if type(copied) is int else pk
        if type(seed.get("campaign_id")) is int:
            out[(ref, digest)] = (seed["campaign_id"], seed.get("session_id"))
    return out


def _local(sim) -> bool:
    return type(getattr(sim, "inner", sim)) is ProceduralSimulation
