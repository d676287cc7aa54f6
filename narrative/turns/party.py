"""The party turn: one player's action, answered by the narrator for the whole table.

submit_action (untrusted entry points call it: API, websocket)
    validate → append Action [commit] → the event store's listeners: schedule the session's turn
    runner (narrative.listeners), then broadcast the Action (realtime.listeners)

run_pending_turns (a django-q2 task; inline in tests)
    the session's runner (runner.py: one at a time per session, under a PostgreSQL advisory
    lock) answers pending actions in seq order, at most GTW_TURNS_PER_RUN of them before it
    re-queues the session behind other sessions' turns: context → narrator streams (deltas
    coalesced to clients) → tool calls validated and run by deterministic code, each an event →
    Narration [commit] → broadcast.

A crash (even SIGKILL) mid-turn loses nothing: the Action is committed before the narrator
starts, stays `pending` in the session state until a Narration answers it, and the next runner
(`session_resume`, the next action, or `gtw up` at start) re-runs it. Tool calls are keyed by
(action, position, name, arguments), so a re-run that makes the same call reuses its event.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from concurrent.futures import Future

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from campaigns import events
from campaigns.errors import Conflict, Forbidden, Invalid, RateLimited
from campaigns.models import Event, Membership, PlaySession
from campaigns.selectors import session_actor_get, session_membership_get
from campaigns.state import withdrawn_seqs as state_withdrawn
from gtw_site import busy, jobs, telemetry
from gtw_site.providers import ProviderError, selection
from gtw_site.ratelimit import rate_check
from gtw_site.text import check_storable
from gtw_site.trace import mark
from narrative import dice_secrets, director, engine, leakguard, moderation, prompts, tablesafety, tools
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message
from narrative.turns import runner
from narrative.turns.context import build_context, prefetch_vectors, recall_text
from narrative.turns.prompts import build_messages, prompt_template

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4
MAX_REFUSALS = 2
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,80}$")
# Advisory-lock namespace so our keys never collide with another application's.
LOCK_NAMESPACE = 0x67747701


def submit_action(*, session_id: int, user, text: str, idempotency_key: str) -> events.AppendResult:
    """Record a player's action and start (or queue behind) the GM's turn."""
    mark("action.received")
    if not isinstance(text, str) or not text.strip():
        raise Invalid("Say what your character does — the action is empty.")
    text = text.strip()
    if len(text) > settings.GTW_ACTION_MAX_CHARS:
        raise Invalid(
            f"Actions are at most {settings.GTW_ACTION_MAX_CHARS} characters (this one is {len(text)})."
        )
    check_storable(text, what="The action")
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise Invalid("idempotency_key must be 1 to 80 characters of letters, digits, '.', '_', ':' or '-'.")
    session = session_actor_get(viewer=user, session_id=session_id)
    if not Membership.role_can_act(session.actor_role):
        raise Forbidden("Spectators can watch but not act.")
    if session.status != PlaySession.Status.ACTIVE:
        raise Conflict("This session has ended; ask the GM to resume it.")
    key = f"action:{user.pk}:{idempotency_key}"
    # The key and its held twin in one query, for the screen and the replay check below.
    replays = moderation.action_replays(session.pk, key)
    # Issue 18: a blocked action is refused (nothing stored); a held one waits for the GM's review
    # and is no Action until approved (narrative/moderation.py).
    with selection.checked_once():  # the screen's one query reads the provider revision too
        held = moderation.screen_action(
            session=session, user=user, text=text, idempotency_key=idempotency_key, replays=replays
        )
    if held is not None:
        return held
    if session.kind == PlaySession.Kind.STAGE:  # batched per beat window, never a turn of its own
        from campaigns.stage.windows import stage_action_submit

        session, membership = session_membership_get(viewer=user, session_id=session_id)
        return stage_action_submit(
            session=session, membership=membership, text=text, idempotency_key=idempotency_key
        )
    # Looked up before the screen: one committed since is still found under the append's lock.
    replay = replays.get(key)
    if replay is not None:
        # A client retrying an accepted action gets it back, never refused by the limits below.
        # Still unanswered: its runner may have been lost, so schedule one (deduplicated).
        if replay.events[0].seq in (session.state.get("pending") or []):
            transaction.on_commit(lambda: schedule_turns(session.pk))
        return replay
    rate_check(scope="action", ident=user.pk)
    payload = {"text": text, "character": session.actor_character}
    cap = settings.GTW_PENDING_ACTIONS_MAX

    def derive(state, next_seq):
        # Under the session row lock: two actions sent at once can't both slip under the cap.
        pending = state.get("pending")
        if cap > 0 and waiting_actions(user_id=user.pk, session_id=session.pk, pending=pending) >= cap:
            raise RateLimited(
                f"You already have {cap} actions waiting for the GM; wait for the GM to answer "
                "them before you act again."
            )
        return [events.NewEvent(type="Action", payload=payload, actor_id=user.pk)]

    # On commit the event-store listeners schedule the turn (narrative.listeners, first: the turn
    # is what players wait for), then broadcast the Action, then queue its memory.
    return events.append(session.pk, derive=derive, idempotency_key=key)


def waiting_actions(*, user_id: int, session_id: int, pending: list[int] | None) -> int:
    """How many of the user's actions wait for a GM: in this session (`pending`, its state read
    under the row lock) and in every other live session of theirs. The cap counts them all: one
    runner answers each session, so a player with a sandbox campaign or several would otherwise
    hold a turn worker per session (issue 11 hole 3)."""
    elsewhere = (
        PlaySession.objects.filter(status=PlaySession.Status.ACTIVE, campaign__memberships__user_id=user_id)
        .exclude(pk=session_id)
        .exclude(state__pending=[])
        .values_list("pk", "state__pending")
    )
    queues = {session_id: pending or [], **dict(elsewhere)}
    mine = Q()
    for pk, seqs in queues.items():
        if seqs:
            mine |= Q(session_id=pk, seq__in=seqs)
    if not mine:
        return 0
    return Event.objects.filter(mine, type="Action", actor_id=user_id).count()


def retry_turn(*, session_id: int, user, action_seq: int) -> events.AppendResult:
    """Put a failed turn back in the queue (the retry control players see after a failure)."""
    session, membership = session_membership_get(viewer=user, session_id=session_id)
    if not membership.can_act:
        raise Forbidden("Spectators can't retry a turn.")
    if str(action_seq) not in (session.state.get("failed") or {}):
        raise Conflict("That turn is not waiting for a retry.")
    # A retry runs a whole turn, as an action does: it counts against the same per-player limit,
    # or retrying a turn that keeps failing would be an unlimited stream of narrator calls.
    rate_check(scope="action", ident=user.pk)
    # On commit the listeners broadcast first, then schedule (unlike an Action): TurnRetried
    # opens the preview the turn's deltas stream into, so it must reach clients before the first
    # delta (narrative.listeners.schedule_for_retry runs after the broadcast).
    return events.append(
        session.pk,
        [events.NewEvent(type="TurnRetried", payload={"action_seq": action_seq}, actor_id=user.pk)],
    )


def schedule_turns(session_id: int, query: str | None = None) -> None:
    """Start the session's turn runner. `query` is the new action's text, if there is one: once
    the runner holds the session's lock, it embeds that for recall while it loads the session."""
    mark("turn.scheduled")
    busy.turn_expected(session_id)  # before the enqueue: tests run the task inline, right there
    options = {"query": query} if recall_text(query) else {}
    # At most one runner per session waits in the queue: the waiting one answers whatever was
    # committed before it starts, so a flood of actions takes one place in the queue, not one each.
    jobs.enqueue_once(
        f"turns-{session_id}",
        "narrative.turns.run_pending_turns",
        session_id,
        task_name=f"turns-{session_id}",
        group="turns",
        **options,
    )


def run_pending_turns(session_id: int, query: str | None = None) -> int:
    """Answer the session's pending actions, oldest first. Returns how many ran.

    Only one runner per session at a time; a second one returns at once, and the first
    re-checks the queue after releasing its lock so an action that arrived at the last moment
    is never stranded.

    Fair to other sessions: after `GTW_TURNS_PER_RUN` turns the runner releases the lock and
    schedules the session's next runner at the back of the task queue, so a session with a long
    queue can't hold a worker while other sessions' turns wait. The rest stay `pending` and
    committed; should this process die between the unlock and the enqueue, they are picked up
    like any crashed turn (the next action, `session_resume`, or `gtw up` at start).
    """
    jobs.started(f"turns-{session_id}")  # first: a runner scheduled from now on queues again
    mark("runner.started")
    return runner.run(PartyTurns(session_id, query))


class PartyTurns(runner.Turns):
    """The session's pending actions (state.pending), while the session is active."""

    lock_namespace = LOCK_NAMESPACE
    crash_message = "turn for action %s in session %s crashed"

    def __init__(self, session_id: int, query: str | None) -> None:
        super().__init__(session_id)
        self.budget = settings.GTW_TURNS_PER_RUN
        self.query = query
        self.vectors: dict[str, Future] = {}

    def locked(self) -> None:
        # Once we have the lock (a runner that finds it taken embeds nothing): the embedding
        # runs in a thread while we load the session and the action.
        if not self.vectors:
            self.vectors = prefetch_vectors(self.query)

    def next(self, session: PlaySession) -> int | None:
        pending = session.state.get("pending") or []
        if not pending or session.status != PlaySession.Status.ACTIVE:
            return None
        return pending[0]

    def run(self, session: PlaySession, action_seq: int) -> None:
        run_turn(session, action_seq, self.vectors)

    def crashed(self, session: PlaySession, action_seq: int, exc: Exception) -> None:
        _fail(session, action_seq, f"internal error ({type(exc).__name__})")

    def more(self) -> bool:
        session = PlaySession.objects.only("state", "status").get(pk=self.session_id)
        return bool(session.state.get("pending")) and session.status == PlaySession.Status.ACTIVE

    def idle(self) -> None:
        busy.turn_unexpected(self.session_id)  # nothing to do (a replayed action)

    def requeue(self) -> None:
        schedule_turns(self.session_id)


def run_turn(session: PlaySession, action_seq: int, vectors: dict[str, Future] | None = None) -> None:
    """Narrate one pending action. Caller holds the session's turn lock.

    The turn's provider rows (query embedding, narrator, aside, recap) are written when it is
    done, so nothing but the turn's own work stands before its first delta."""
    with telemetry.deferred():
        try:
            _run_turn(session, action_seq, vectors)
        finally:
            # A prefetched embedding the turn did not use still leaves its row (taken once).
            for future in (vectors or {}).values():
                if future.done() and not future.cancelled():
                    future.exception()


def _run_turn(session: PlaySession, action_seq: int, vectors: dict[str, Future] | None) -> None:
    mark("turn.started")
    action = Event.objects.select_related("actor").get(session=session, seq=action_seq)
    # Issue 18's inputs, read once for the whole turn (one query): the policy and the lines and
    # veils the context, the soften instruction and the moderated stream all use.
    safety = moderation.campaign_safety(session.campaign_id)
    context = build_context(session, action, vectors, lines=safety.table)
    # Issue 18: the campaign's soften categories, as an instruction to the narrator.
    context["safety"] = moderation.narrator_guidance(
        campaign=session.campaign, action_text=(action.payload or {}).get("text", ""), policy=safety.policy
    )
    mark("turn.context_built")
    messages = build_messages(context)
    provider = registry.get("narrator")
    # Issue 18: a model that copies out its own instructions shows the table none of them.
    guard = _echo_guard(
        prompt_template("narrator_system.txt"),
        prompts.DATA_RULE,
        (context.get("personality") or {}).get("system_prompt") or "",
        tablesafety.prompt_text(context.get("table_safety")),  # the table-safety section (issue 18)
    )
    stream = leakguard.GuardedStream(runner.TurnDeltaStream(session.pk, action_seq), guard)
    # The table's lines and veils hold for the preview and the final text alike (issue 18).
    stream = tablesafety.guarded(stream, context.get("table_safety"))
    # Issue 18: a sentence the campaign's policy holds never reaches the table until reviewed.
    stream = moderation.ModeratedStream(
        stream, campaign=session.campaign, check=provider.name != "offline", safety=safety
    )
    seed = dice_secrets.seed_for(session.campaign_id, session.pk, action_seq)
    character = context["action"]["character"]
    narration: list[str] = []
    tool_seqs: list[int] = []
    try:
        refusals = 0
        for round_no in range(MAX_TOOL_ROUNDS):
            if narration and narration[-1] and not narration[-1][-1].isspace():
                # Rounds are separate model replies: keep "…to work." and "In Docking…" apart.
                narration.append(" ")
                stream.push(" ")
            # A refused call goes back to the model with the reason, for one retry; after a
            # second refusal in the turn it narrates without tools.
            offered = list(tools.TOOLS) if refusals < MAX_REFUSALS else []
            request = ChatRequest(
                messages=list(messages), tools=offered, seed=seed + round_no, context=context
            )
            text, calls = runner.stream_with_retry(provider, request, stream)
            narration.append(text)
            if not calls:
                break
            messages.append(Message(role="assistant", content=text, tool_calls=tuple(calls)))
            for index, call in enumerate(calls):
                outcome, _created = tools.dispatch(
                    session=session,
                    campaign_id=session.campaign_id,
                    action_seq=action_seq,
                    actor_id=action.actor_id,
                    character=character,
                    call=call,
                    round_no=round_no,
                    index=index,
                )
                # The call's events went out as they committed (the broadcast listener).
                if outcome.event_seq:
                    tool_seqs.append(outcome.event_seq)
                refusals += outcome.refused
                messages.append(
                    Message(
                        role="tool", tool_call_id=call.id, name=call.name, content=json.dumps(outcome.result)
                    )
                )
        stream.flush()
    except ProviderError as exc:
        stream.reset("")
        _fail(session, action_seq, str(exc))
        return
    text = (
        guard.scrub(stream.withhold("".join(narration))).strip()
        or "The moment hangs, unanswered, as the void hums on."
    )
    text = tablesafety.enforce(text, context.get("table_safety"))
    # The beat's narration window is the director's to enforce, whatever the model wrote.
    text = director.enforce_window(text, context.get("word_limit") or 180)

    def build(batch: engine.Batch):
        batch.add(
            "Narration",
            {
                "action_seq": action_seq,
                "text": text,
                "provider": provider.name,
                "model": provider.model,
                "tool_events": tool_seqs,
                **({"held": stream.waiting} if stream.waiting else {}),
            },
        )
        # Clocks tick only on a turn that took time; the actor's statuses run down (issue 13).
        effects = engine.end_party_turn(batch, session=session, action=action, character=character)
        batch.director_step(twist_fired=any(e["type"] == "TwistTriggered" for e in effects))

    result = engine.append_engine(session, build, idempotency_key=f"narration:{action_seq}")
    if not result.replayed and stream.held:
        stream.queue(session=session, of_seq=action_seq)  # the GM's review queue (issue 18)
    if not result.replayed:
        # What only the actor knows, for their eyes only: after the public narration commits,
        # so it never delays the table's first words (issue 11, hole 2).
        from narrative import asides

        try:
            asides.private_aside(session, action, context=context, narration=text, vectors=vectors)
        except Exception:  # the turn is answered: a lost aside must not mark it failed
            logger.exception("private aside for action %s in session %s failed", action_seq, session.pk)
    if not result.replayed and any(e.type == "BeatChanged" for e in result.events):
        recap(session, action_seq)
    # Bookkeeping for the memory page ("last recalled"), kept out of the first-delta path.
    _mark_recalled(context.get("recalled_ids") or [])


@functools.lru_cache(maxsize=64)
def _echo_guard(*texts: str) -> leakguard.EchoGuard:
    """The leak guard for these protected texts (the same few every turn): built and its pattern
    compiled once, not per turn. An EchoGuard is never changed after it is built."""
    return leakguard.EchoGuard.of(*texts)


def recap(session: PlaySession, action_seq: int) -> None:
    """At a beat change, a short "story so far" from the summarizer role (offline: extractive).
    Everyone reads it, so it is built from public narration only (no audience)."""
    recent = list(
        Event.objects.filter(session=session, type="Narration", audience__isnull=True)
        .exclude(seq__in=state_withdrawn(session.state))  # the X-card's (issue 18)
        .order_by("-seq")
        .values_list("payload__text", flat=True)[:6]
    )
    if not recent:
        return
    request = ChatRequest(
        messages=[
            Message(
                role="system",
                content=f"Summarise the story so far in two or three sentences. {prompts.DATA_RULE}",
            ),
            Message(role="user", content=prompts.data_block("story", " ".join(reversed(recent)))),
        ],
        max_tokens=80,
    )
    try:
        text = registry.get("summarizer").complete(request).strip()
    except ProviderError as exc:
        logger.warning("recap failed: %s", exc)
        return
    if not text:
        return
    events.append(
        session.pk,
        [events.NewEvent(type="Recap", payload={"action_seq": action_seq, "text": text[:1200]})],
        idempotency_key=f"recap:{action_seq}",
    )  # broadcast on commit, by its listener


def _mark_recalled(memory_ids: list[int]) -> None:
    # On the memory cluster: the embedding job holds row locks on memories it is embedding,
    # and this UPDATE would wait for them while we hold the session's turn lock.
    if memory_ids:
        jobs.enqueue(
            "memory.tasks.mark_recalled", memory_ids, group="memory", cluster=settings.MEMORY_CLUSTER
        )


def _fail(session: PlaySession, action_seq: int, error: str) -> None:
    message = f"The GM could not answer: {error}. Your action is saved — press Retry to try again."
    events.append(
        session.pk,
        [events.NewEvent(type="TurnFailed", payload={"action_seq": action_seq, "error": message})],
    )  # broadcast on commit, by its listener


def resume_all_pending() -> int:
    """At server start: re-run turns a crash left unanswered. Returns sessions scheduled."""
    count = 0
    for session_id, state in PlaySession.objects.filter(status=PlaySession.Status.ACTIVE).values_list(
        "id", "state"
    ):
        if (state or {}).get("pending"):
            jobs.started(f"turns-{session_id}")  # a runner "waiting" from before the restart is gone
            schedule_turns(session_id)
            count += 1
    return count
