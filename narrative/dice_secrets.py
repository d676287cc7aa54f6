"""Fair dice: the per-session secret behind gtw-dice-v2 seeds (issue 11 hole 8).

A v1 seed derives from public values, so a player could compute the next d20 and time a
risky action. Now every session has a secret (narrative.models.DiceSecret) mixed into its
seeds; only its SHA-256 is published before it is used, and the secret when the session ends:

- a new PlaySession — opened, staged or branched — gets one in the transaction that creates
  it (`post_save`), applying from the seq after its last event (1 for a new session, S+1 for a
  branch of history up to S). A branch publishes no event: its commitment is on the dice
  endpoint (`dice_info`) and in every roll's `seed_from` record.
- SessionOpened carries that commitment, SessionResumed a new secret's (the old one is public
  by then), SessionEnded reveals the session's secrets (campaigns.signals.session_lifecycle,
  under the session row lock, with the event's own seq). Everything happens in the
  transaction that appends the event, so no roll can ever see a half-made commitment.
- A secret applies to seqs from its `from_seq` until the next one's; seeds are re-derived
  from (campaign, session, seq, secret), so a re-run turn gets the same seed. Sessions from
  before fair dice have no secret and keep v1 until they are resumed.

The secret is in no event payload and no session state until it is revealed; the GM can read
it at any time (`dice_info`), players and spectators only the commitment.
"""

from __future__ import annotations

import secrets as token_source
from typing import Any

from campaigns import selectors
from campaigns.errors import Invalid, NotFound
from campaigns.models import Event, Membership, PlaySession
from missions.rules import dice
from narrative.models import DiceSecret

MAX_SEQ = 2**31 - 1


def _create(session_id: int, from_seq: int) -> DiceSecret:
    secret = token_source.token_hex(32)
    return DiceSecret.objects.create(
        session_id=session_id, from_seq=from_seq, secret=secret, commitment=dice.commitment(secret)
    )


def load(session_id: int) -> tuple[tuple[int, str], ...]:
    """(from_seq, secret) pairs of the session, oldest first. Read it under the session row lock
    (inside an append) when the seed must follow a concurrent resume."""
    rows = DiceSecret.objects.filter(session_id=session_id).order_by("from_seq")
    return tuple(rows.values_list("from_seq", "secret"))


def seed_key(campaign_id: int, session_id: int, seq: int) -> dice.SeedKey:
    return dice.key_at(campaign_id, session_id, seq, load(session_id))


def seed_for(campaign_id: int, session_id: int, seq: int) -> int:
    """The seed for `seq` of a session (v2 with its secret, v1 for sessions from before)."""
    return seed_key(campaign_id, session_id, seq).seed(seq)


# ---- the lifecycle (receivers, connected in NarrativeConfig.ready) ---------------------------


def on_session_created(sender, instance: PlaySession, created: bool, raw: bool = False, **kwargs) -> None:
    """Every new session gets a secret in the transaction that creates it (a branch's copied
    history is already counted in its version)."""
    if created and not raw:
        _create(instance.pk, instance.version + 1)


def _published(row: DiceSecret) -> dict[str, Any]:
    return {"derivation": dice.V2, "commitment": row.commitment, "from_seq": row.from_seq}


def on_session_lifecycle(sender, *, session_id: int, event_type: str, seq: int, **kwargs) -> dict | None:
    """Payload fields for SessionOpened / SessionResumed (the commitment) and SessionEnded (the
    revealed secrets). Runs under the session row lock with the event's seq."""
    if event_type == "SessionOpened":
        made = DiceSecret.objects.filter(session_id=session_id, from_seq__lte=seq)
        row = made.order_by("-from_seq").first() or _create(session_id, seq)
        return {"dice": _published(row)}
    if event_type == "SessionResumed":
        # The session's secret was revealed when it ended: roll on with a fresh one.
        return {"dice": _published(_create(session_id, seq))}
    if event_type == "SessionEnded":
        hidden = list(DiceSecret.objects.filter(session_id=session_id, revealed_seq__isnull=True))
        if not hidden:
            return None
        DiceSecret.objects.filter(pk__in=[r.pk for r in hidden]).update(revealed_seq=seq)
        revealed = [{**_published(r), "secret": r.secret} for r in hidden]
        return {"dice": {"derivation": dice.V2, "revealed": revealed}}
    return None


# ---- reads: the dice endpoint and verify -----------------------------------------------------


def _is_gm_of(viewer, campaign_id: int) -> bool:
    return Membership.objects.filter(campaign_id=campaign_id, user=viewer, role=Membership.Role.GM).exists()


def dice_info(*, viewer, session_id: int) -> dict[str, Any]:
    """The session's commitments for members; the secrets too once revealed, or for the GM."""
    session, membership = selectors.session_membership_get(viewer=viewer, session_id=session_id)
    is_gm = membership.role == Membership.Role.GM
    commitments = []
    for row in DiceSecret.objects.filter(session=session).order_by("from_seq"):
        item = {**_published(row), "revealed": row.revealed, "secret": None}
        if row.revealed or is_gm:
            item["secret"] = row.secret
        commitments.append(item)
    return {
        "session": session.pk,
        "derivation": dice.V2 if commitments else dice.V1,
        "status": session.status,
        "commitments": commitments,
    }


def roll_verify(*, viewer, session_id: int, seq: int) -> dict[str, Any]:
    """Re-derive DiceRolled event `seq` from public data (v1, or v2 once its secret is
    revealed) — or, for the GM, with the secret at any time. NotFound for non-members and
    for rolls the viewer can't see."""
    if not 0 < seq <= MAX_SEQ:  # a PositiveIntegerField: a bigger number would be a 500, not a 404
        raise NotFound(f"There is no dice roll #{seq} in this session.")
    session, membership = selectors.session_membership_get(viewer=viewer, session_id=session_id)
    roll = (
        selectors.visible_to(Event.objects.filter(session=session, seq=seq, type="DiceRolled"), membership)
        .only("seq", "payload", "seed")
        .first()
    )
    if roll is None:
        raise NotFound(f"There is no dice roll #{seq} in this session.")
    try:
        record = dice.record_of(roll.payload, campaign_id=session.campaign_id, session_id=session.pk)
    except dice.DiceError as exc:
        raise Invalid(f"Roll #{seq} can't be verified: {exc}.") from None
    answer: dict[str, Any] = {
        "seq": seq,
        "derivation": record["derivation"],
        "commitment": record.get("commitment"),
        "seed": roll.seed,
        "secret": None,
    }
    secret = None
    if record["derivation"] == dice.V2:
        row = DiceSecret.objects.select_related("session").filter(commitment=record["commitment"]).first()
        if row is None:
            return {
                **answer,
                "status": "unknown",
                "ok": False,
                "message": f"Roll #{seq} names a dice secret this server doesn't hold: it can't be verified.",
            }
        if not row.revealed and not _is_gm_of(viewer, row.session.campaign_id):
            return {
                **answer,
                "status": "not_yet",
                "ok": False,
                "message": (
                    f"Roll #{seq} can be verified when the session ends (the secret is revealed then); "
                    f"commitment {row.commitment}."
                ),
            }
        secret = row.secret
        if row.revealed:
            answer["secret"] = secret
    try:
        result = dice.verify_roll(
            roll.payload, seq=seq, recorded_seed=roll.seed, record=record, secret=secret
        )
    except dice.DiceError as exc:
        raise Invalid(f"Roll #{seq} can't be verified: {exc}.") from None
    faces = " and ".join(str(f) for f in result.faces)
    if result.ok:
        how = "the revealed secret" if answer["secret"] else "the session's secret (GM view)"
        if record["derivation"] == dice.V1:
            how = "public values only (a roll from before fair dice)"
        message = f"Roll #{seq} checks out: seed {result.seed}, derived from {how}, rolls {faces}."
    else:
        message = f"Roll #{seq} does not match: " + "; ".join(result.problems) + "."
    return {
        **answer,
        "status": "ok" if result.ok else "mismatch",
        "ok": result.ok,
        "message": message,
        "faces": list(result.faces),
        "total": result.total,
        "problems": list(result.problems),
    }
