"""The world simulation at the table (issue 19): the GM's controls, the shell around
missions.simulation (pure). The GM starts, steps, stops, imports, verifies and chooses the
provider; players and spectators are refused (403), non-members get 404.

The shell is four modules: this one writes; missions.simulation_lockstep runs the window at a
beat boundary (the engine's hook, `boundary_events`) and for the GM's step;
missions.simulation_replay re-runs a session's windows from its start snapshot (the live state
hash must come back: a mismatch is drift too, and `simulation_verify` quarantines it);
missions.simulation_selectors reads (who may, snapshots by the id the log names them, export,
telemetry, status). Their public names are re-exported here, so `from missions import
simulation_services` reaches the whole shell.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from campaigns import events
from campaigns.errors import Conflict, Invalid
from campaigns.models import PlaySession
from gtw_site.providers import ProviderError
from missions.models import SimulationSnapshot
from missions.simulation import ProceduralSimulation, SimulationError, generate_world, step_seed
from missions.simulation_lockstep import (
    NOTICE_FALLBACK,
    boundary_events,
    build_provider,
    mission_needs,
    snapshot_take,
    window_events,
)
from missions.simulation_replay import simulation_replay
from missions.simulation_selectors import (
    REF_FIELDS,
    SIMULATION_EVENTS,
    active_session,
    check_gm,
    conf,
    log_ref,
    running_session,
    simulation_status,
    simulation_telemetry,
    snapshot_export,
    snapshot_named,
)

__all__ = [
    "MAX_IMPORT_BYTES",
    "MAX_MANUAL_BUDGET",
    "NOTICE_FALLBACK",
    "NOTICE_STARTED",
    "REF_FIELDS",
    "SIMULATION_EVENTS",
    "boundary_events",
    "build_provider",
    "check_gm",
    "conf",
    "log_ref",
    "mission_needs",
    "simulation_provider_set",
    "simulation_replay",
    "simulation_start",
    "simulation_status",
    "simulation_step",
    "simulation_stop",
    "simulation_telemetry",
    "simulation_verify",
    "snapshot_export",
    "snapshot_import",
    "snapshot_named",
    "window_events",
]

logger = logging.getLogger("missions.simulation")

NOTICE_STARTED = "The wider galaxy stirs: from now on, the Reach moves on its own between the story's beats."
MAX_IMPORT_BYTES = 16 * 1024 * 1024
MAX_MANUAL_BUDGET = 200


def simulation_start(*, viewer, campaign_id: int, entities: int | None = None) -> events.AppendResult:
    """Start the campaign's world in its running session: from the campaign's latest snapshot
    (the world goes on between sessions) or, the first time, a world generated from SHA-256 of
    the campaign and session ids."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = running_session(campaign_id)
    size = entities or int(conf()["entities"])
    if not 1 <= size <= 5000:
        raise Invalid("entities must be 1..5000")

    def derive(state, first_seq):
        if (state.get("simulation") or {}).get("status") == "running":
            raise Conflict("The simulation is already running in this session.")
        try:
            provider = build_provider(campaign_id)
        except ProviderError as exc:
            raise Conflict(f"The simulation provider cannot start: {exc}") from None
        latest = SimulationSnapshot.objects.filter(campaign_id=campaign_id).order_by("-pk").first()
        try:
            if latest is not None:
                provider.restore(bytes(latest.blob), campaign_id=campaign_id)
                getattr(provider, "inner", provider).session_id = session.pk
            else:
                seed = step_seed(campaign_id, session.pk, "genesis", 0)
                provider.start(
                    {"campaign_id": campaign_id, "session_id": session.pk}, generate_world(size, seed)
                )
        except SimulationError as exc:
            raise Conflict(f"The campaign's last world snapshot cannot be loaded: {exc}") from None
        row = snapshot_take(campaign_id, session.pk, provider.name, SimulationSnapshot.Reason.START, provider)
        return [
            events.NewEvent(
                type="SimulationStarted",
                actor_id=viewer.pk,
                payload={
                    "provider": provider.name,
                    "snapshot": row.pk,
                    "continued_from": latest.pk if latest else None,
                    "step": row.step,
                    "hash": row.state_hash,
                    "entities": len(provider.world["npcs"]),
                    "budget": int(conf()["budget"]),
                },
            ),
            events.NewEvent(type="WorldNotice", payload={"text": NOTICE_STARTED, "kind": "started"}),
        ]

    with transaction.atomic():
        return events.append(session, derive=derive)


def _running_sim(state) -> dict:
    sim = state.get("simulation") or {}
    if sim.get("status") != "running":
        raise Conflict("No simulation is running in this session: start it first.")
    return sim


def simulation_step(*, viewer, campaign_id: int, budget: int) -> events.AppendResult:
    """A window the GM asks for between beats (a key event): `budget` steps, recorded like a
    boundary's."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    if not 1 <= budget <= MAX_MANUAL_BUDGET:
        raise Invalid(f"budget must be 1..{MAX_MANUAL_BUDGET}")
    session = running_session(campaign_id)

    def derive(state, first_seq):
        sim = _running_sim(state)
        return window_events(
            campaign_id=campaign_id,
            session_id=session.pk,
            sim=sim,
            beat_id=f"gm-{first_seq}",
            budget=budget,
            reason=SimulationSnapshot.Reason.STEP,
            needs=mission_needs(state),
        )

    with transaction.atomic():
        return events.append(session, derive=derive)


def simulation_stop(*, viewer, campaign_id: int) -> events.AppendResult:
    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = running_session(campaign_id)

    def derive(state, first_seq):
        sim = state.get("simulation") or {}
        if sim.get("status") not in ("running", "fallback"):
            raise Conflict("No simulation is running in this session.")
        return [
            events.NewEvent(
                type="SimulationStopped",
                actor_id=viewer.pk,
                payload={"snapshot": sim.get("snapshot"), "step": sim.get("step"), "hash": sim.get("hash")},
            )
        ]

    with transaction.atomic():
        return events.append(session, derive=derive)


def snapshot_import(*, viewer, campaign_id: int, blob: bytes) -> SimulationSnapshot:
    """Load an exported snapshot as the campaign's world. A blob that was tampered with, cut
    short, or made for another campaign is refused (Invalid, with the reason) and nothing
    changes. With a simulation running in the session, the next window goes on from it."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    if not blob or len(blob) > MAX_IMPORT_BYTES:
        raise Invalid(f"a snapshot is 1 byte to {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    probe = ProceduralSimulation()
    try:
        probe.restore(blob, campaign_id=campaign_id)
    except SimulationError as exc:
        raise Invalid(f"Snapshot refused: {exc}.") from None
    session = active_session(campaign_id)
    with transaction.atomic():
        if session is not None:
            # The session row first, then the campaign's (the row's foreign key): the order every
            # append and research decision takes them in.
            PlaySession.objects.select_for_update(of=("self",)).filter(pk=session.pk).values_list(
                "pk"
            ).first()
        row = SimulationSnapshot.objects.create(
            campaign_id=campaign_id,
            session_id=session.pk if session else None,
            provider=probe.kind,
            reason=SimulationSnapshot.Reason.IMPORT,
            seed={
                "campaign_id": campaign_id,
                "session_id": session.pk if session else None,
                "beat_id": "import",
            },
            beat_id="import",
            step=probe.step_index,
            blob=probe.snapshot(),
            state_hash=probe.state_hash(),
        )
        if session is not None:
            events.append(
                session,
                [
                    events.NewEvent(
                        type="SimulationRestored",
                        actor_id=viewer.pk,
                        payload={
                            "snapshot": row.pk,
                            "step": row.step,
                            "hash": row.state_hash,
                            "reason": "import",
                        },
                    )
                ],
            )
    return row


def simulation_verify(*, viewer, campaign_id: int) -> dict[str, Any]:
    """The GM's check: replay the running session's simulation; on a mismatch, quarantine it
    (SimulationDrifted, WorldNotice: plain narration from now on)."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = running_session(campaign_id)
    report = simulation_replay(session.pk)
    if report["mismatches"]:

        def derive(state, first_seq):
            sim = state.get("simulation") or {}
            if sim.get("status") != "running":
                return []
            reasons = [
                f"replay of seq {m['seq']}: expected {m['expected']}, got {m['got']}"
                for m in report["mismatches"]
            ]
            logger.warning("simulation replay mismatch in session %s: %s", session.pk, "; ".join(reasons))
            return [
                events.NewEvent(
                    type="SimulationDrifted",
                    payload={
                        "provider": sim.get("provider"),
                        "quarantined": reasons[:10],
                        "snapshot": sim.get("snapshot"),
                        "reason": "replay",
                    },
                ),
                events.NewEvent(type="WorldNotice", payload={"text": NOTICE_FALLBACK, "kind": "fallback"}),
            ]

        with transaction.atomic():
            events.append(session, derive=derive)
    return report


def simulation_provider_set(*, viewer, campaign_id: int, provider: str, base_url: str = "", model: str = ""):
    """The GM's choice of simulation provider for their campaign (the runtime selection, role
    "simulation"); "" goes back to the site's. A remote server's address is checked like every
    GM-chosen server (public only, unless the operator allows private ones)."""
    from gtw_site.providers import services as provider_services

    check_gm(viewer=viewer, campaign_id=campaign_id)
    if not provider:
        provider_services.choice_clear(role="simulation", campaign_id=campaign_id)
        return None
    options = {k: v for k, v in (("base_url", base_url), ("model", model)) if v}
    return provider_services.choice_set(
        role="simulation", provider=provider, options=options, campaign_id=campaign_id, user=viewer
    )
