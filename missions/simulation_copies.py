"""A campaign's simulated worlds travel with its history: a branch, a clone with history and a
campaign file (export, import) carry the SimulationSnapshot rows their copied event logs name.
Receivers of campaigns.signals.campaign_branched and campaigns.lifecycle's campaign_cloned /
campaign_exporting / campaign_importing (connected in missions.apps), run inside the copying
service's transaction: a receiver that raises rolls the whole copy back.

A copy is a new row of the new campaign, its blob re-owned by it (missions.simulation.rebind:
same world, same state hash). The copied log still names the source's snapshot ids, so a copy
remembers the id it is named by in `seed["copied_from"]`, and the shell finds a snapshot by
either (simulation_services.snapshot_named). Its seed material (`seed` campaign_id and
session_id) stays the source's: the windows the copied log records were seeded with those ids,
and `simulation_replay` seeds each window from its snapshot row's, so a branch or an import
replays to the very hashes its log records; the windows played after the copy are seeded with
the new campaign's and session's ids, so a branch's world goes its own way.

A branch at seq S gets the snapshots the session's log names up to S, plus the newest
snapshot of the campaign's other sessions taken no later than event S (the world the campaign
had, if this session never ran it): never one taken after S, so a simulation started or running
in the branch goes on from the world as it was at S.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import zlib
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from campaigns.branching import BATCH, keep_created_at
from campaigns.errors import Invalid
from campaigns.models import Campaign, Event, PlaySession
from missions.models import SimulationSnapshot
from missions.simulation import ProceduralSimulation, SimulationError, rebind
from missions.simulation_selectors import REF_FIELDS, SIMULATION_EVENTS, log_ref

logger = logging.getLogger("missions.simulation")

SECTION = "simulation_snapshots"
# A snapshot in the file: zlib-compressed, base64 (a world's JSON shrinks about tenfold).
MAX_BLOB_BYTES = 16 * 1024 * 1024
HEX64 = re.compile(r"[0-9a-f]{64}")
REASONS = frozenset(SimulationSnapshot.Reason.values)


def _copy(row: SimulationSnapshot, campaign_id: int, session_id: int | None) -> SimulationSnapshot | None:
    try:
        blob = rebind(bytes(row.blob), campaign_id)
    except SimulationError as exc:
        # A broken source row is left behind (the copy's window that needs it falls back to
        # plain narration, as it would have in the source): the rest of the copy goes on.
        logger.warning("simulation snapshot %s not copied: %s", row.pk, exc)
        return None
    return SimulationSnapshot(
        campaign_id=campaign_id,
        session_id=session_id,
        provider=row.provider,
        reason=row.reason,
        seed={**(row.seed or {}), "copied_from": log_ref(row)},
        beat_id=row.beat_id,
        step=row.step,
        blob=blob,
        state_hash=row.state_hash,
    )


def _save(pairs: list[tuple[SimulationSnapshot, datetime]]) -> int:
    copies = SimulationSnapshot.objects.bulk_create([c for c, _ in pairs], batch_size=BATCH)
    keep_created_at(copies, [when for _, when in pairs])
    return len(copies)


# ---- branch and clone -------------------------------------------------------------------------


def on_campaign_branched(
    sender, *, session: PlaySession, new_session: PlaySession, at_seq: int, cutoff: datetime, **kwargs
) -> None:
    """The snapshots of the world as it was at seq S (see the module's docstring)."""
    refs: set[int] = set()
    payloads = Event.objects.filter(session=session, seq__lte=at_seq, type__in=SIMULATION_EVENTS)
    for payload in payloads.values_list("payload", flat=True):
        refs |= {v for k in REF_FIELDS if type(v := (payload or {}).get(k)) is int}
    parent = SimulationSnapshot.objects.filter(campaign_id=session.campaign_id)
    named = parent.filter(Q(pk__in=refs) | Q(seed__copied_from__in=list(refs))) if refs else parent.none()
    # The rows the log names: by their own id, or a copy by the id it was copied from.
    rows = {r.pk: r for r in named if r.pk in refs or log_ref(r) in refs}
    elsewhere = parent.exclude(session=session).filter(created_at__lte=cutoff).order_by("-pk").first()
    if elsewhere is not None:
        rows.setdefault(elsewhere.pk, elsewhere)
    pairs = []
    # Copied oldest first, this session's own last: the branch's newest is the world at S.
    for row in sorted(rows.values(), key=lambda r: (r.session_id == session.pk, r.pk)):
        copy = _copy(row, new_session.campaign_id, new_session.pk if row.session_id == session.pk else None)
        if copy is not None:
            pairs.append((copy, row.created_at))
    _save(pairs)


def on_campaign_cloned(
    sender, *, campaign: Campaign, clone: Campaign, sessions: dict[int, int], **kwargs
) -> None:
    """Every snapshot of `campaign`, for a clone with its history."""
    pairs = []
    for row in SimulationSnapshot.objects.filter(campaign=campaign).order_by("pk").iterator(chunk_size=100):
        copy = _copy(row, clone.pk, sessions.get(row.session_id))
        if copy is not None:
            pairs.append((copy, row.created_at))
    _save(pairs)


# ---- the campaign file ------------------------------------------------------------------------


def on_campaign_exporting(
    sender, *, campaign: Campaign, sessions: dict[int, int], **kwargs
) -> tuple[str, list[dict[str, Any]]] | None:
    """The campaign's snapshots as the file's "simulation_snapshots" section (None: it has none,
    and the file stays as it was). Sessions are named by number; `seed` keeps the ids the
    windows were seeded with (seed material, not references)."""
    out = []
    for row in SimulationSnapshot.objects.filter(campaign=campaign).order_by("pk").iterator(chunk_size=100):
        out.append(
            {
                "ref": log_ref(row),
                "session": sessions.get(row.session_id),
                "provider": row.provider,
                "reason": row.reason,
                "seed": {k: v for k, v in (row.seed or {}).items() if k != "copied_from"},
                "beat_id": row.beat_id,
                "step": row.step,
                "state_hash": row.state_hash,
                "blob": base64.b64encode(zlib.compress(bytes(row.blob), 9)).decode("ascii"),
                "created_at": row.created_at.isoformat(),
            }
        )
    return (SECTION, out) if out else None


def on_campaign_importing(
    sender, *, campaign: Campaign, sections: dict[str, Any], sessions: dict[int, int], **kwargs
) -> str | None:
    """The file's snapshots, re-owned by the imported campaign. Invalid (the whole import rolls
    back) on any snapshot that is malformed, tampered with, or not the world its hash says."""
    rows = sections.get(SECTION)
    if rows is None:
        return None
    if not isinstance(rows, list):
        raise Invalid("The file's simulation snapshots are not a list.", code="bad_file")
    pairs = [(_imported(row, i, campaign, sessions), _when(row)) for i, row in enumerate(rows, start=1)]
    count = _save(pairs)
    return f"{count} world simulation snapshot{'' if count == 1 else 's'} restored."


def _imported(row: Any, i: int, campaign: Campaign, sessions: dict[int, int]) -> SimulationSnapshot:
    def bad(what: str) -> Invalid:
        return Invalid(f"Simulation snapshot {i} in the file is not valid: {what}.", code="bad_file")

    if not isinstance(row, dict):
        raise bad("not an object")
    ref, number, seed = row.get("ref"), row.get("session"), row.get("seed")
    if type(ref) is not int or not 1 <= ref < 2**63:
        raise bad("its ref is not a positive integer")
    if number is not None and number not in sessions:
        raise bad("it names a session the file does not have")
    if row.get("reason") not in REASONS:
        raise bad("unknown reason")
    if not isinstance(row.get("provider"), str) or not 0 < len(row["provider"]) <= 40:
        raise bad("no provider")
    if not isinstance(row.get("beat_id"), str) or len(row["beat_id"]) > 80:
        raise bad("bad beat id")
    if not isinstance(seed, dict) or not all(
        type(seed.get(k)) is int or (k == "session_id" and seed.get(k) is None)
        for k in ("campaign_id", "session_id")
    ):
        raise bad("its seed material needs campaign_id and session_id")
    step, digest, text = row.get("step"), row.get("state_hash"), row.get("blob")
    if type(step) is not int or step < 0 or not isinstance(digest, str) or not HEX64.fullmatch(digest):
        raise bad("bad step or state hash")
    if not isinstance(text, str) or not text or len(text) > MAX_BLOB_BYTES:
        raise bad("no snapshot, or one that is too big")
    try:
        blob = rebind(_inflate(text), campaign.pk)
        world = ProceduralSimulation()
        world.restore(blob, campaign_id=campaign.pk)
    except SimulationError as exc:
        raise bad(str(exc)) from None
    if world.state_hash() != digest or world.step_index != step:
        raise bad("the world is not the one its state hash names")
    return SimulationSnapshot(
        campaign=campaign,
        session_id=sessions.get(number) if number is not None else None,
        provider=row["provider"],
        reason=row["reason"],
        seed={
            "campaign_id": seed["campaign_id"],
            "session_id": seed["session_id"],
            "beat_id": str(seed.get("beat_id", ""))[:80],
            "copied_from": ref,
        },
        beat_id=row["beat_id"],
        step=step,
        blob=blob,
        state_hash=digest,
    )


def _inflate(text: str) -> bytes:
    """The snapshot bytes of the file's base64 zlib text, at most MAX_BLOB_BYTES of them."""
    try:
        inflater = zlib.decompressobj()
        blob = inflater.decompress(base64.b64decode(text, validate=True), MAX_BLOB_BYTES)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise SimulationError("the snapshot is not readable (not base64 zlib)") from exc
    if inflater.unconsumed_tail:
        raise SimulationError("the snapshot is too big")
    return blob


def _when(row: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(row.get("created_at")) if isinstance(row, dict) else None
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        return timezone.now()
    return moment
