"""The world simulation's reads (issue 19): who may run it, the snapshots by the id the log names
them, and the GM's telemetry and status. The writes are missions.simulation_services; the window
at a beat boundary is missions.simulation_lockstep.

Who: the GM reads the engine room; players and spectators are refused (403), non-members get 404.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q

from campaigns import selectors
from campaigns.errors import Conflict, Forbidden, NotFound
from campaigns.models import Event, Membership, PlaySession
from missions.models import SimulationSnapshot

SIMULATION_EVENTS = (
    "SimulationStarted",
    "SimulationStepped",
    "SimulationRestored",
    "SimulationStopped",
    "SimulationDrifted",
)
# The payload fields in which the simulation's events name a snapshot.
REF_FIELDS = ("snapshot", "previous", "continued_from")


def conf() -> dict[str, Any]:
    return settings.GTW_SIMULATION


def check_gm(*, viewer, campaign_id: int) -> Membership:
    """The viewer's GM membership; NotFound for a non-member, Forbidden for players/spectators."""
    membership = selectors.membership_get(viewer=viewer, campaign_id=campaign_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM runs the world simulation.")
    return membership


def active_session(campaign_id: int) -> PlaySession | None:
    """The campaign's active session (the newest), or None."""
    return (
        PlaySession.objects.filter(campaign_id=campaign_id, status=PlaySession.Status.ACTIVE)
        .order_by("-number")
        .first()
    )


def running_session(campaign_id: int) -> PlaySession:
    """The campaign's active session (the newest); Conflict when none is open."""
    session = active_session(campaign_id)
    if session is None:
        raise Conflict("The simulation runs at the table: open a session first.")
    return session


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


def simulation_status(*, viewer, campaign_id: int) -> dict[str, Any]:
    """The GM's view of the campaign's simulation: the running session's state, the provider in
    force and the latest snapshot."""
    from missions import registry

    check_gm(viewer=viewer, campaign_id=campaign_id)
    session = active_session(campaign_id)
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
