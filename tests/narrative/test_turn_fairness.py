"""Fair turn scheduling: a session with a long queue of actions can't hold a task worker while
other sessions' turns wait (issue 11 hole 3). The task queue is driven by hand here: a fake
`jobs.enqueue` records each runner and one "worker" takes them oldest first, so the order of
turns is deterministic; no clocks are involved."""

from __future__ import annotations

import pytest

from campaigns.models import Event, PlaySession
from gtw_site import busy, jobs
from narrative import turns
from tests.conftest import _user


@pytest.fixture
def queue(monkeypatch):
    """The turn cluster's queue, first in first out, with one worker draining it on `drain()`.
    Every turn run is logged as (session id, action seq), in order."""
    waiting: list[tuple[str, tuple, dict]] = []
    log: list[tuple[int, int]] = []
    real_run_turn = turns.run_turn

    def enqueue(func, *args, **options):
        if options.get("cluster"):  # the memory cluster's jobs (remembering the actions): not ours
            return "elsewhere"
        waiting.append((func, args, options))
        return f"task-{len(waiting)}"

    def run_turn(session, action_seq, vectors=None):
        log.append((session.pk, action_seq))
        return real_run_turn(session, action_seq, vectors)

    def drain(limit: int = 100) -> None:
        for _ in range(limit):
            if not waiting:
                return
            func, args, options = waiting.pop(0)
            assert func == "narrative.turns.run_pending_turns"
            turns.run_pending_turns(*args, query=options.get("query"))
        raise AssertionError("the queue never drained")

    monkeypatch.setattr(jobs, "enqueue", enqueue)
    monkeypatch.setattr(turns.party, "run_turn", run_turn)
    busy._client().delete(busy._key())
    queue = type("Queue", (), {})()
    queue.waiting, queue.log, queue.drain = waiting, log, drain
    yield queue
    busy._client().delete(busy._key())


def _table(name: str, players: int) -> tuple[PlaySession, list]:
    """A campaign of its own: its GM plus `players` players who joined by invite, and a session."""
    from campaigns import selectors, services

    gm = _user(f"{name}gm")
    campaign = services.campaign_create(user=gm, name=f"{name} table", pack_slug="starter")
    seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    members = [gm]
    for i in range(players):
        user = _user(f"{name}{i}")
        services.invite_accept(code=services.invite_create(membership=seat).code, user=user)
        members.append(user)
    return services.session_open(membership=seat), members


def _act(capture, session, user, key: str, text: str = "I look around") -> int:
    """Submit as the API does and commit (so the turn is scheduled on the fake queue)."""
    with capture(execute=True):
        return (
            turns.submit_action(session_id=session.pk, user=user, text=text, idempotency_key=key)
            .events[0]
            .seq
        )


def test_a_flood_in_one_campaign_leaves_another_campaigns_turn_a_bounded_wait(
    content, queue, django_capture_on_commit_callbacks, settings
):
    """issue 11 hole 3: 100 actions in a sandbox session stalled an unrelated campaign's turn for
    45 s+, because one runner answered every pending action of its session before the worker was
    free. Now the other campaign's turn runs after at most GTW_TURNS_PER_RUN of the flooder's,
    and every flooded action is still answered exactly once, in order."""
    settings.GTW_TURNS_PER_RUN = 2
    flood, flooders = _table("flood", players=2)  # a GM and two alts: three players' worth of actions
    calm, (calm_gm,) = _table("calm", players=0)
    flooded = [
        _act(django_capture_on_commit_callbacks, flood, user, f"f{user.pk}-{i}")
        for i in range(settings.GTW_PENDING_ACTIONS_MAX)
        for user in flooders
    ]
    assert len(flooded) == 9
    assert len(queue.waiting) == 1  # one waiting runner for the whole flood, not one per action
    other = _act(django_capture_on_commit_callbacks, calm, calm_gm, "c1", "I check the nav console")

    queue.drain()

    order = [seq if sid == flood.pk else "calm" for sid, seq in queue.log]
    assert order.index("calm") <= settings.GTW_TURNS_PER_RUN
    assert queue.log.count((calm.pk, other)) == 1
    assert [seq for sid, seq in queue.log if sid == flood.pk] == flooded  # all, once, oldest first
    for session, answered in ((flood, flooded), (calm, [other])):
        session.refresh_from_db()
        assert session.state["pending"] == []
        narrated = Event.objects.filter(session=session, type="Narration").order_by("seq")
        assert [e.payload["action_seq"] for e in narrated] == answered
    assert busy.turns_running() == 0  # every scheduled runner's "turn expected" mark was claimed


def test_a_runner_that_yields_queues_its_session_behind_the_others(
    content, queue, django_capture_on_commit_callbacks, settings
):
    """issue 11 hole 3: the yielded runner goes to the BACK of the queue (behind a session that
    was queued while it ran), it is marked as an expected turn before it is queued, and an
    action arriving while a runner waits joins that runner instead of queueing another."""
    settings.GTW_TURNS_PER_RUN = 1
    flood, (flooder, alt) = _table("yield", players=1)
    calm, (calm_gm,) = _table("quiet", players=0)
    first = _act(django_capture_on_commit_callbacks, flood, flooder, "y1")
    second = _act(django_capture_on_commit_callbacks, flood, alt, "y2")
    other = _act(django_capture_on_commit_callbacks, calm, calm_gm, "q1")
    third = _act(django_capture_on_commit_callbacks, flood, flooder, "y3")  # joins the waiting runner
    assert [args for _, args, _ in queue.waiting] == [(flood.pk,), (calm.pk,)]

    _, args, options = queue.waiting.pop(0)
    assert turns.run_pending_turns(*args, query=options.get("query")) == 1  # its share, then it yields
    assert [args for _, args, _ in queue.waiting] == [(calm.pk,), (flood.pk,)]
    # Marked as expected before it was queued, so memory work already waits for it.
    assert busy._client().zscore(busy._key(), f"next:{flood.pk}") is not None
    queue.drain()
    assert queue.log == [(flood.pk, first), (calm.pk, other), (flood.pk, second), (flood.pk, third)]


def test_with_an_inline_queue_a_yielding_runner_still_answers_everything(session, player, gm, settings):
    """issue 11 hole 3: with the tests' inline task queue (Q_CLUSTER sync) the re-queued runner
    runs at once; nothing is stranded and every action is answered exactly once."""
    settings.GTW_TURNS_PER_RUN = 1
    seqs = [
        turns.submit_action(session_id=session.pk, user=user, text="I look around", idempotency_key=key)
        .events[0]
        .seq
        for user, key in ((player, "a"), (gm, "b"), (player, "c"))
    ]
    assert turns.run_pending_turns(session.pk) == 1  # this runner's share; the rest ran inline after
    session.refresh_from_db()
    assert session.state["pending"] == []
    narrated = Event.objects.filter(session=session, type="Narration").order_by("seq")
    assert [e.payload["action_seq"] for e in narrated] == seqs


def test_a_turn_limit_of_zero_answers_the_whole_queue_in_one_run(session, player, gm, settings):
    """GTW_TURNS_PER_RUN = 0 turns the limit off (one runner answers all, as before)."""
    settings.GTW_TURNS_PER_RUN = 0
    for user, key in ((player, "a"), (gm, "b"), (player, "c")):
        turns.submit_action(session_id=session.pk, user=user, text="I wait", idempotency_key=key)
    assert turns.run_pending_turns(session.pk) == 3


def test_one_waiting_task_per_name(db, monkeypatch):
    """jobs.enqueue_once: while a task enqueued under a name hasn't started, another enqueue of
    that name is skipped; once it has started (`jobs.started`), the next one queues again. If
    Redis can't say, the task is queued anyway (a duplicate runner is harmless, a lost one isn't)."""
    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args, **kw: sent.append((func, args, kw)) or "id")
    assert jobs.enqueue_once("turns-1", "narrative.turns.run_pending_turns", 1, group="turns") == "id"
    assert jobs.enqueue_once("turns-1", "narrative.turns.run_pending_turns", 1, group="turns") is None
    assert jobs.enqueue_once("turns-2", "narrative.turns.run_pending_turns", 2, group="turns") == "id"
    jobs.started("turns-1")
    assert jobs.enqueue_once("turns-1", "narrative.turns.run_pending_turns", 1, group="turns") == "id"
    assert [args for _, args, _ in sent] == [(1,), (2,), (1,)]

    from django.core.cache import cache

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "add", broken)
    assert jobs.enqueue_once("turns-1", "narrative.turns.run_pending_turns", 1, group="turns") == "id"
    assert len(sent) == 4


def test_a_restart_schedules_pending_turns_even_if_a_runner_seemed_to_be_waiting(session, player, queue):
    """Crash safety with one waiting runner per session: `gtw up` re-runs what a crash left
    pending even when the flag of a runner lost in the crash hasn't expired yet."""
    turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="k")
    turns.schedule_turns(session.pk)
    queue.waiting.clear()  # the queued runner died with its worker; its flag lives on in Redis
    turns.schedule_turns(session.pk)
    assert queue.waiting == []  # a normal schedule trusts the flag…
    assert turns.resume_all_pending() == 1
    assert [args for _, args, _ in queue.waiting] == [(session.pk,)]  # …the restart doesn't
    queue.drain()
    assert Event.objects.filter(session=session, type="Narration").count() == 1
