"""The world simulation in lockstep with the director (issue 19): the shell around the pure window
(missions.simulation.window) that the engine and the GM's step both run.

When the engine's director moves the beat (narrative.engine.batch, inside the append, under the
session row lock), `boundary_events` runs the authorised step window from the last snapshot with
the step budget (GTW_SIMULATION_BUDGET) and returns its events *before* the BeatChanged: the
beat advances only once the window completed (or was quarantined and fell back), and budget vs
actual steps ride on SimulationStepped.

Every window leaves a SimulationSnapshot row; its id, the window, the state hash and the
reconciliation's decisions ride on the log (SimulationStepped, GM-only), and what players may
see is a WorldChanged event in the game's words. Drift (missions.simulation.window): quarantine,
replay once, then SimulationDrifted (GM-only, with the reasons, and a log line) and WorldNotice
(players: the wider world falls quiet); the session goes on with plain narration until the GM
starts the simulation again.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from campaigns import events
from gtw_site.providers import ProviderError
from missions.models import Mission, SimulationSnapshot
from missions.simulation import Window
from missions.simulation.cast import needed_npcs
from missions.simulation.window import Outcome, run_window
from missions.simulation_selectors import conf, snapshot_named

logger = logging.getLogger("missions.simulation")

NOTICE_FALLBACK = (
    "The wider galaxy falls quiet for a while: the story carries on at the table, without news "
    "from beyond it."
)


def build_provider(campaign_id: int) -> Any:
    from missions import registry

    return registry.build(campaign_id)


@functools.lru_cache(maxsize=64)
def _mission_ast(content_hash: str) -> dict | None:
    # A mission version is immutable (its content hash is its identity): cached per process.
    return Mission.objects.filter(content_hash=content_hash).values_list("ast", flat=True).first()


def mission_needs(state: dict) -> tuple[str, ...]:
    """The NPCs (missions.simulation.cast keys) the session's running mission still needs,
    from the session's reducer state: the simulation may not kill the world NPCs they stand for."""
    mission = state.get("mission") or {}
    ast = _mission_ast(mission["hash"]) if isinstance(mission.get("hash"), str) else None
    return needed_npcs(ast, mission.get("state"))


def snapshot_take(campaign_id: int, session_id: int, provider: str, reason: str, outcome_or_sim, beat_id=""):
    """The SimulationSnapshot row of a window's `Outcome` or of a provider's current world."""
    sim = outcome_or_sim
    return SimulationSnapshot.objects.create(
        campaign_id=campaign_id,
        session_id=session_id,
        provider=provider,
        reason=reason,
        seed={"campaign_id": campaign_id, "session_id": session_id, "beat_id": beat_id},
        beat_id=beat_id[:80],
        step=sim.step_index,
        blob=sim.blob if isinstance(sim, Outcome) else sim.snapshot(),
        state_hash=sim.state_hash if isinstance(sim, Outcome) else sim.state_hash(),
    )


def window_events(
    *,
    campaign_id: int,
    session_id: int,
    sim: dict[str, Any],
    beat_id: str,
    budget: int,
    reason: str,
    needs: tuple[str, ...] = (),
) -> list[events.NewEvent]:
    """Run one authorised window of `budget` steps from the session's last snapshot and return
    the events that record it; `needs`: the mission NPCs it must keep alive (`mission_needs`).
    Never raises for drift: a failed window is quarantined, replayed once, then falls back
    (SimulationDrifted + WorldNotice). Caller holds the session row lock (inside
    events.append's derive)."""
    row = snapshot_named(campaign_id, sim.get("snapshot"), str(sim.get("hash") or ""))
    window = Window(beat_id, int(sim.get("step") or 0), budget)
    provider_name = str(sim.get("provider") or "")
    if row is None:
        outcome = Outcome(ok=False, window=window, quarantined=("the snapshot the log names is gone",))
    else:
        try:
            provider = build_provider(campaign_id)
            provider_name = provider.name
            outcome = run_window(
                provider,
                bytes(row.blob),
                str(sim.get("hash") or ""),
                window,
                campaign_id=campaign_id,
                session_id=session_id,
                errors=(ProviderError,),
                fresh=lambda: build_provider(campaign_id),
                needs=needs,
            )
        except ProviderError as exc:  # the provider could not even be built
            outcome = Outcome(ok=False, window=window, quarantined=(f"ProviderError: {exc}"[:300],))
    # `protected`: the world NPCs the mission kept alive in this window (a replay keeps them too).
    shape = {
        "beat_id": window.beat_id,
        "start_step": window.start_step,
        "budget": window.budget,
        "protected": list(outcome.window.protected),
    }
    if not outcome.ok:
        logger.warning(
            "simulation drifted in session %s (window %s): %s; falling back to plain narration",
            session_id,
            beat_id,
            "; ".join(outcome.quarantined),
        )
        return [
            events.NewEvent(
                type="SimulationDrifted",
                payload={
                    "provider": provider_name,
                    "window": shape,
                    "quarantined": list(outcome.quarantined),
                    "snapshot": sim.get("snapshot"),
                    "reason": reason,
                    "ms": round(outcome.ms, 2),
                },
            ),
            events.NewEvent(type="WorldNotice", payload={"text": NOTICE_FALLBACK, "kind": "fallback"}),
        ]
    new = snapshot_take(campaign_id, session_id, provider_name, reason, outcome, beat_id)
    stepped = events.NewEvent(
        type="SimulationStepped",
        payload={
            "provider": provider_name,
            "snapshot": new.pk,
            "previous": row.pk if row else None,
            "step": outcome.step_index,
            "hash": outcome.state_hash,
            "window": shape,
            "actual": outcome.steps,
            "ms": round(outcome.ms, 2),
            "timings": {k: round(v, 2) for k, v in outcome.timings.items()},
            "decisions": {"accepted": outcome.accepted, "rejected": [list(r) for r in outcome.rejected[:20]]},
            "quarantined": list(outcome.quarantined),
            "replayed": outcome.replayed,
            "reason": reason,
        },
    )
    result = [stepped]
    if outcome.lines:
        result.append(events.NewEvent(type="WorldChanged", payload={"lines": list(outcome.lines)}))
    return result


def boundary_events(
    *, campaign_id: int, session_id: int, state: dict, seq: int, beat: str
) -> list[events.NewEvent]:
    """The lockstep hook: called by the engine just before it appends a BeatChanged (seq: the
    first seq these events get). Nothing when the session runs no simulation."""
    sim = state.get("simulation") or {}
    if sim.get("status") != "running":
        return []
    return window_events(
        campaign_id=campaign_id,
        session_id=session_id,
        sim=sim,
        beat_id=f"{beat}-{seq}",
        budget=int(conf()["budget"]),
        reason=SimulationSnapshot.Reason.BOUNDARY,
        needs=mission_needs(state),
    )
