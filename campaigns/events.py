"""The event store: append with an expected version, idempotency keys, snapshots.

One writer per session at a time. An append locks the session row (`SELECT … FOR UPDATE`),
folds the new events through the pure reducer, inserts them at version+1… and moves the row
forward, all in one transaction. A second writer waits for the lock, then reads the version the
first one left: without `expected_version` its events follow on; with a stale one it gets
VersionConflict. (The (session, seq) unique index stays as the last line of defence.)

A replayed idempotency key returns the events it first created, untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from campaigns import state as reducer
from campaigns.errors import Conflict
from campaigns.models import Event, PlaySession, Snapshot

logger = logging.getLogger(__name__)

Listener = Callable[[int, list[Event]], None]


@dataclass(frozen=True)
class _Subscription:
    listener: Listener
    types: frozenset[str] | None
    order: int


# The layers above subscribe in their AppConfig.ready (DESIGN: a lower layer never calls up);
# the event store imports none of them. Kept sorted by `order` (ties: registration order).
_listeners: list[_Subscription] = []

# The orders in use (docs/ARCHITECTURE.md "Listeners" lists who sits where).
ORDER_SCHEDULE = 10  # narrative: start the turn a new Action (or a resume) waits for
ORDER_BROADCAST = 20  # realtime: the one broadcast of every committed event
ORDER_AFTER_BROADCAST = 30  # narrative: a retried turn, whose TurnRetried opens the preview
ORDER_RECORD = 40  # memory: queue the memory writes


def add_listener(listener: Listener, *, types: Iterable[str] | None = None, order: int = 50) -> None:
    """Call `listener(session_id, events)` after every append's transaction commits, with the
    events that append created, in seq order, once (a replayed idempotency key calls nobody).

    `types`: only these event types (a listener whose types none of the events have is not
    called; it gets only the matching ones). `order`: listeners run in ascending order — ties
    in registration order — each isolated from the others' exceptions (logged, not raised).
    Appends in one transaction call their listeners append by append, so every listener still
    sees events in seq order. Registering the same listener again replaces its subscription.
    """
    global _listeners
    wanted = frozenset(types) if types is not None else None
    kept = [s for s in _listeners if s.listener != listener]
    _listeners = sorted([*kept, _Subscription(listener, wanted, order)], key=lambda s: s.order)


def remove_listener(listener: Listener) -> None:
    global _listeners
    _listeners = [s for s in _listeners if s.listener != listener]


def listeners() -> list[tuple[Listener, frozenset[str] | None, int]]:
    """The subscriptions in the order they run (for docs and tests)."""
    return [(s.listener, s.types, s.order) for s in _listeners]


def _notify(session_id: int, created: list[Event]) -> None:
    for sub in list(_listeners):
        chosen = created if sub.types is None else [e for e in created if e.type in sub.types]
        if not chosen:
            continue
        try:
            sub.listener(session_id, chosen)
        except Exception:
            # One subscriber's failure (a lost broadcast) must not cost the others (the turn).
            logger.exception("event listener %r failed for session %s", sub.listener, session_id)


ARCHIVED_MESSAGE = "This campaign is archived (read-only). Its GM can restore it from the campaign page."


class VersionConflict(Exception):
    """The session moved on since the caller read it."""

    def __init__(self, expected: int, actual: int):
        super().__init__(f"expected version {expected}, session is at {actual}")
        self.expected = expected
        self.actual = actual


@dataclass
class NewEvent:
    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    actor_id: int | None = None
    seed: int | None = None
    # Called with the seq the event will get, for payloads that depend on it (dice seeds
    # derive from the seq). Runs under the session row lock, so the seq is final.
    build: Callable[[int], tuple[dict[str, Any], int | None]] | None = None
    audience: list[int] | None = None

    def __post_init__(self):
        if self.audience is None and self.type in GM_ONLY_TYPES:
            self.audience = []  # nobody but the GMs (selectors.visible_to / may_see)


# The engine room: a refused GM tool call and why difficulty moved are for the GMs only. An
# empty audience reaches no player on any path (the play page, the events API, the socket, the
# memory), while the GMs see every event.
GM_ONLY_TYPES = frozenset(
    {
        "ToolRefused",
        "DifficultyAdjusted",
        # The world simulation's engine room (snapshot ids, hashes, budgets, drift reasons);
        # players see its WorldChanged / WorldNotice lines instead (issue 19).
        "SimulationStarted",
        "SimulationStepped",
        "SimulationRestored",
        "SimulationStopped",
        "SimulationDrifted",
    }
)


@dataclass
class AppendResult:
    events: list[Event]
    version: int
    replayed: bool = False


def to_record(event: Event) -> reducer.EventRecord:
    return reducer.EventRecord(
        seq=event.seq, type=event.type, actor_id=event.actor_id, payload=event.payload, seed=event.seed
    )


Derive = Callable[[Mapping[str, Any], int], Sequence[NewEvent]]


def append(
    session: PlaySession | int,
    new_events: Sequence[NewEvent] = (),
    *,
    derive: Derive | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> AppendResult:
    """Append events atomically. The idempotency key (if any) is stored on the first event.

    `derive(state, next_seq)`, instead of `new_events`, computes the events from the session's
    state as it is inside the append's transaction, with the session row locked (game rules
    that read and change state: the mission runtime, the director). Returning no events
    appends nothing.

    Runs in its own transaction (a savepoint if the caller has one open), so callers may use
    `transaction.on_commit` after it for broadcasts.
    """
    session_id = session if isinstance(session, int) else session.pk
    if derive is not None:
        new_events = derive
    if not new_events:
        if idempotency_key and (existing := find_replay(session_id, idempotency_key)) is not None:
            return existing
        current = PlaySession.objects.values_list("version", flat=True).get(pk=session_id)
        if expected_version is not None and expected_version != current:
            raise VersionConflict(expected_version, current)
        return AppendResult(events=[], version=current)
    try:
        result = _append_locked(session_id, new_events, expected_version, idempotency_key)
    except IntegrityError:
        # Only a writer that went around the row lock can collide with us; a replayed key is
        # still a replay.
        if idempotency_key and (existing := find_replay(session_id, idempotency_key)) is not None:
            return existing
        raise
    if not result.replayed and result.events:
        created = result.events
        transaction.on_commit(lambda: _notify(session_id, created))
    return result


def _append_locked(session_id, new_events, expected_version, idempotency_key) -> AppendResult:
    with transaction.atomic():
        row = (
            PlaySession.objects.select_for_update(of=("self",))
            .values("version", "state", "campaign__archived")
            .get(pk=session_id)
        )
        # After the lock, in a statement of its own: under READ COMMITTED it sees an append
        # with the same key that committed while we waited.
        if idempotency_key and (existing := find_replay(session_id, idempotency_key)) is not None:
            return existing
        if row["campaign__archived"]:
            # An archived campaign is read-only (campaigns.lifecycle): nothing is appended to it.
            raise Conflict(ARCHIVED_MESSAGE, code="archived")
        version = row["version"]
        if expected_version is not None and expected_version != version:
            raise VersionConflict(expected_version, version)
        state = row["state"] or reducer.initial_state()
        if callable(new_events):
            new_events = list(new_events(state, version + 1))
            if not new_events:
                return AppendResult(events=[], version=version)
        created: list[Event] = []
        seq = version
        for i, new in enumerate(new_events):
            seq += 1
            payload, seed = new.build(seq) if new.build else (new.payload, new.seed)
            event = Event(
                session_id=session_id,
                seq=seq,
                type=new.type,
                actor_id=new.actor_id,
                payload=payload,
                seed=seed,
                idempotency_key=idempotency_key if i == 0 else None,
                audience=new.audience,
            )
            state = reducer.apply(state, to_record(event))
            created.append(event)
        Event.objects.bulk_create(created)
        PlaySession.objects.filter(pk=session_id).update(
            version=seq, state=state, state_hash=reducer.state_hash(state)
        )
        every = settings.GTW_SNAPSHOT_EVERY
        first, last = version + 1, seq
        if every and (last // every) > ((first - 1) // every):
            # The fold already holds the state at `last`; snapshot it when we crossed a boundary.
            Snapshot.objects.create(
                session_id=session_id, seq=last, state=state, sha256=reducer.state_hash(state)
            )
    return AppendResult(events=created, version=seq)


def find_replay(session_id: int, key: str) -> AppendResult | None:
    first = Event.objects.filter(session_id=session_id, idempotency_key=key).first()
    if first is None:
        return None
    return AppendResult(events=[first], version=first.seq, replayed=True)


def load_state(session_id: int) -> dict[str, Any]:
    """Rebuild state from the latest snapshot plus the tail — the resume path."""
    snapshot = Snapshot.objects.filter(session_id=session_id).order_by("-seq").first()
    base = snapshot.state if snapshot else None
    after = snapshot.seq if snapshot else 0
    tail = Event.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")
    return reducer.replay((to_record(e) for e in tail.iterator()), base)


def replay_from_scratch(session_id: int) -> dict[str, Any]:
    events = Event.objects.filter(session_id=session_id).order_by("seq")
    return reducer.replay(to_record(e) for e in events.iterator())
