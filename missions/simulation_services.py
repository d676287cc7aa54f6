"""The world simulation at the table (issue 19): the shell around missions.simulation (pure).

Lockstep with the director: when the engine's director moves the beat (narrative.engine.batch,
inside the append, under the session row lock), `boundary_events` runs the authorised step
window from the last snapshot with the step budget (GTW_SIMULATION_BUDGET) and returns its
events *before* the BeatChanged: the beat advances only once the window completed (or was
quarantined and fell back), and budget vs actual steps ride on SimulationStepped.

Every window leaves a SimulationSnapshot row; its id, the window, the state hash and the
reconciliation's decisions ride on the log (SimulationStepped, GM-only), and what players may
see is a WorldChanged event in the game's words. Drift (missions.simulation.window): quarantine,
replay once, then SimulationDrifted (GM-only, with the reasons, and a log line) and WorldNotice
(players: the wider world falls quiet); the session goes on with plain narration until the GM
starts the simulation again. `simulation_replay` re-runs a session's windows from its start
snapshot: the live state hash must come back (a mismatch is drift too).

Who: the GM starts, steps, stops, exports, imports, verifies and chooses the provider; players
and spectators are refused (403), non-members get 404.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from campaigns import events, selectors
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound
from campaigns.models import Event, Membership, PlaySession
from gtw_site.providers import ProviderError
from missions.models import Mission, SimulationSnapshot
from missions.simulation import ProceduralSimulation, SimulationError, Window, generate_world, step_seed
from missions.simulation.cast import needed_npcs
from missions.simulation.window import Outcome, run_window

logger = logging.getLogger("missions.simulation")

SIMULATION_EVENTS = (
    "SimulationStarted",
    "SimulationStepped",
    "SimulationRestored",
    "SimulationStopped",
    "SimulationDrifted",
)
NOTICE_FALLBACK = (
    "The wider galaxy falls quiet for a while: the story carries on at the table, without news "
    "from beyond it."
)
NOTICE_STARTED = "The wider galaxy stirs: from now on, the Reach moves on its own between the story's beats."
MAX_IMPORT_BYTES = 16 * 1024 * 1024
MAX_MANUAL_BUDGET = 200
# The payload fields in which the simulation's events name a snapshot.
REF_FIELDS = ("snapshot", "previous", "continued_from")


def conf() -> dict[str, Any]:
    return settings.GTW_SIMULATION


def build_provider(campaign_id: int) -> Any:
    from missions import registry

    return registry.build(campaign_id)


# ---- who may ----------------------------------------------------------------------------------


def check_gm(*, viewer, campaign_id: int) -> Membership:
    """The viewer's GM membership; NotFound for a non-member, Forbidden for players/spectators."""
    membership = selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM runs the world simulation.")
    return membership


def _running_session(campaign_id: int) -> PlaySession:
    session = (
        PlaySession.objects.filter(campaign_id=campaign_id, status=PlaySession.Status.ACTIVE)
        .order_by("-number")
        .first()
    )
    if session is None:
        raise Conflict("The simulation runs at the table: open a session first.")
    return session


# ---- snapshots by the id the log names them ---------------------------------------------------


def log_ref(row: SimulationSnapshot) -> int:
    """The id a campaign's event log names `row` by: its own, or, for a copy a branch, clone or
    import made (missions.simulation_copies), the id of the row it was copied from."""
    copied = (row.seed or {}).get("copied_from")
    return copied if type(copied) is int else row.pk


def snapshot_named(campaign_id: int, ref: Any, state_hash: str = "") -> SimulationSnapshot | None:
    """The campaign's snapshot its log names `ref`: the row with that id, or a copy of the row
    with that id. Should two rows answer (an imported file's id equal to one of this site's),
    the one with the recorded `state_hash` wins (the world the log means), then the row's own."""
    if type(ref) is not int:
        return None
    rows = SimulationSnapshot.objects.filter(campaign_id=campaign_id).filter(
        Q(pk=ref) | Q(seed__copied_from=ref)
    )
    found = list(rows[:4])
    found.sort(key=lambda r: (r.state_hash != state_hash, r.pk != ref))
    return found[0] if found else None


# ---- what the running mission needs kept alive ------------------------------------------------


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


# ---- the window (shared by beat boundaries and the GM's step) ---------------------------------


def _snapshot_row(campaign_id: int, session_id: int, provider: str, reason: str, outcome_or_sim, beat_id=""):
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
    new = _snapshot_row(campaign_id, session_id, provider_name, reason, outcome, beat_id)
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


# ---- the GM's controls ------------------------------------------------------------------------


def simulation_start(*, viewer, campaign_id: int, entities: int | None = None) -> events.AppendResult:
    """Start the campaign's world in its running session: from the campaign's latest snapshot
    (the world goes on between sessions) or, the first time, a world generated from SHA-256 of
    the campaign and session ids."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = _running_session(campaign_id)
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
        row = _snapshot_row(campaign_id, session.pk, provider.name, SimulationSnapshot.Reason.START, provider)
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
    session = _running_session(campaign_id)

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
    session = _running_session(campaign_id)

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


def snapshot_export(*, viewer, campaign_id: int, snapshot_id: int | None = None) -> SimulationSnapshot:
    """A snapshot of the campaign's world (the latest, or `snapshot_id`), for download."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    if snapshot_id is not None:
        row = snapshot_named(campaign_id, snapshot_id)
    else:
        row = SimulationSnapshot.objects.filter(campaign_id=campaign_id).order_by("-pk").first()
    if row is None:
        raise NotFound("No such snapshot in this campaign.")
    return row


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
    session = (
        PlaySession.objects.filter(campaign_id=campaign_id, status=PlaySession.Status.ACTIVE)
        .order_by("-number")
        .first()
    )
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


# ---- replay: the live hash must come back -----------------------------------------------------


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


def simulation_verify(*, viewer, campaign_id: int) -> dict[str, Any]:
    """The GM's check: replay the running session's simulation; on a mismatch, quarantine it
    (SimulationDrifted, WorldNotice: plain narration from now on)."""
    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = _running_session(campaign_id)
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


# ---- telemetry (the GM's simulation page) -----------------------------------------------------


def simulation_telemetry(*, viewer, session_id: int) -> dict[str, Any]:
    """Step budgets vs actual, snapshot ids, the hash timeline, reconciliation decisions and
    drift alerts of one session, for its GM (players: 403, non-members: 404)."""
    session, membership = selectors.session_membership_get(viewer=viewer, session_id=session_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("The simulation's engine room is the GM's.")
    rows = []
    for e in Event.objects.filter(session_id=session_id, type__in=SIMULATION_EVENTS).order_by("seq"):
        p = e.payload or {}
        window = p.get("window") or {}
        rows.append(
            {
                "seq": e.seq,
                "type": e.type,
                "at": e.created_at,
                "provider": p.get("provider", ""),
                "snapshot": p.get("snapshot"),
                "step": p.get("step"),
                "hash": p.get("hash") or "",
                "beat_id": window.get("beat_id", ""),
                "budget": window.get("budget"),
                "actual": p.get("actual"),
                "ms": p.get("ms"),
                "accepted": (p.get("decisions") or {}).get("accepted"),
                "rejected": (p.get("decisions") or {}).get("rejected") or [],
                "quarantined": p.get("quarantined") or [],
                "replayed": p.get("replayed", False),
                "reason": p.get("reason", ""),
                "protected": len(window.get("protected") or ()),
            }
        )
    state = (session.state or {}).get("simulation") or {}
    return {
        "session": session,
        "campaign": session.campaign,
        "state": state,
        "rows": rows,
        "drifts": [r for r in rows if r["type"] == "SimulationDrifted" or r["quarantined"]],
        # A copy (a branch's, a clone's, an import's) says which snapshot it was copied from.
        "snapshots": [
            {
                **{k: v for k, v in row.items() if k != "seed"},
                "copied_from": (row["seed"] or {}).get("copied_from"),
            }
            for row in SimulationSnapshot.objects.filter(campaign_id=session.campaign_id)
            .order_by("-pk")
            .values("pk", "reason", "step", "state_hash", "beat_id", "provider", "created_at", "seed")[:20]
        ],
        "budget": int(conf()["budget"]),
    }


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


def simulation_status(*, viewer, campaign_id: int) -> dict[str, Any]:
    """The GM's view of the campaign's simulation: the running session's state, the provider in
    force and the latest snapshot."""
    from missions import registry

    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = (
        PlaySession.objects.filter(campaign_id=campaign_id, status=PlaySession.Status.ACTIVE)
        .order_by("-number")
        .first()
    )
    chosen = registry.SIMULATION.selection("simulation", campaign_id)
    latest = SimulationSnapshot.objects.filter(campaign_id=campaign_id).order_by("-pk").first()
    return {
        "session_id": session.pk if session else None,
        "state": ((session.state or {}).get("simulation") or {}) if session else {},
        "provider": chosen.provider if chosen else registry.SIMULATION.provider_name("simulation"),
        "providers": sorted(registry.SIMULATION.providers),
        "latest_snapshot": latest.pk if latest else None,
        "budget": int(conf()["budget"]),
    }
