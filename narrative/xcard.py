"""The X-card (issue 18, part 4): any player may tap it, no questions asked.

A tap appends two events in one append, under the session row lock:

- `XCardTapped` — public, no actor: "Someone tapped the X-card". `narration_seq` is the
  narration it withdraws (the table's newest narration or opening that is not withdrawn yet;
  None when there is none, and the tap only steers); `steer_turns` how many narrations the
  narrator's steer-away note lasts. The reducer (campaigns.state) adds the seq to `withdrawn`:
  the row stays, replay reproduces the state, and every reader shows it as withdrawn.
- `XCardTappedBy` — for the GMs only (an empty audience): who tapped.

The scene goes on: nothing else stops, the next turns' prompts carry the steer-away note
(narrative.tablesafety.prompt_text), and the withdrawn text leaves the narrator's recent
context, the recap, the session summaries and the memory.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from campaigns import events
from campaigns import state as reducer
from campaigns.errors import Conflict, Forbidden, Invalid
from campaigns.models import Event, Membership, PlaySession
from campaigns.selectors import session_membership_get
from gtw_site.ratelimit import rate_check
from narrative.turns.party import IDEMPOTENCY_KEY_RE

NARRATION_TYPES = ("Narration", "Opening")
TAPPED = "XCardTapped"
TAPPED_BY = "XCardTappedBy"


def xcard_tap(*, session_id: int, user, idempotency_key: str) -> events.AppendResult:
    """Tap the X-card in a session. Players and GMs of the campaign (on a stage: speakers,
    moderators and fireteam members — whoever may act there); spectators are refused, outsiders
    get NotFound. A replayed key returns the first tap, uncharged."""
    # Who asks first: an outsider learns nothing, not even that their form was malformed.
    session, membership = session_membership_get(viewer=user, session_id=session_id)
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise Invalid("idempotency_key must be 1 to 80 characters of letters, digits, '.', '_', ':' or '-'.")
    if not membership.can_act:
        raise Forbidden("Spectators can't tap the X-card; ask a player or the GM.")
    # The key is stored on the public event: hashed, so it can't say who tapped.
    key = "xcard:" + hashlib.sha256(f"{user.pk}:{idempotency_key}".encode()).hexdigest()[:40]
    replay = events.find_replay(session.pk, key)
    if replay is not None:
        return replay
    if session.status != PlaySession.Status.ACTIVE:
        raise Conflict("This session has ended; there is nothing to withdraw.")
    if session.kind == PlaySession.Kind.STAGE and membership.role != Membership.Role.GM:
        _check_on_stage(session, membership)
    rate_check(scope="xcard", ident=user.pk)
    steer = max(0, settings.GTW_XCARD_STEER_TURNS)
    who = _who(session, membership)

    def derive(state, next_seq):
        withdrawn = reducer.withdrawn_seqs(state)
        last = (
            Event.objects.filter(session_id=session.pk, type__in=NARRATION_TYPES, audience__isnull=True)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        target = last if last is not None and last not in withdrawn else None
        return [
            events.NewEvent(type=TAPPED, payload={"narration_seq": target, "steer_turns": steer}),
            events.NewEvent(
                type=TAPPED_BY,
                payload={"tap_seq": next_seq, "narration_seq": target, **who},
                actor_id=user.pk,
                audience=[],  # the GMs only
            ),
        ]

    return events.append(session.pk, derive=derive, idempotency_key=key)  # broadcast on commit


def may_tap(session: PlaySession, membership: Membership) -> bool:
    """Whether the X-card is offered to this member here (the page's question; `xcard_tap`
    checks again)."""
    if session.status != PlaySession.Status.ACTIVE or not membership.can_act:
        return False
    if session.kind != PlaySession.Kind.STAGE or membership.role == Membership.Role.GM:
        return True
    try:
        _check_on_stage(session, membership)
    except Forbidden:
        return False
    return True


def _who(session: PlaySession, membership: Membership) -> dict[str, str | None]:
    character = (
        session.campaign.characters.filter(owner_id=membership.user_id)
        .order_by("pk")
        .values_list("name", flat=True)
    ).first()
    return {"username": membership.user.username, "character": character}


def _check_on_stage(session: PlaySession, membership: Membership) -> None:
    from campaigns.models import StageSeat

    seat = StageSeat.objects.filter(session=session, membership=membership).only("role", "team_id").first()
    on_stage = seat is not None and (
        seat.role in (StageSeat.Role.SPEAKER, StageSeat.Role.MODERATOR) or seat.team_id is not None
    )
    if not on_stage:
        raise Forbidden("The X-card is for speakers and fireteams on this stage; raise your hand first.")
