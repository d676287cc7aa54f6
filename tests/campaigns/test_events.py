"""Integration tier: the event store on the embedded PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from campaigns import events
from campaigns.models import Event, PlaySession, Snapshot
from campaigns.state import state_hash


def action(user_id=None, text="I look around"):
    return events.NewEvent(type="Action", payload={"text": text}, actor_id=user_id)


def test_replayed_idempotency_key_returns_the_original(session, player):
    first = events.append(session, [action(player.pk, "first")], idempotency_key="abc")
    again = events.append(session, [action(player.pk, "second, different")], idempotency_key="abc")
    assert again.replayed and not first.replayed
    assert again.events[0].pk == first.events[0].pk
    assert Event.objects.filter(session=session, type="Action").count() == 1
    assert Event.objects.get(pk=first.events[0].pk).payload["text"] == "first"


def test_stale_expected_version_is_a_conflict(session):
    version = PlaySession.objects.get(pk=session.pk).version
    events.append(session, [action()], expected_version=version)
    with pytest.raises(events.VersionConflict) as exc:
        events.append(session, [action()], expected_version=version)
    assert exc.value.actual == version + 1
    assert PlaySession.objects.get(pk=session.pk).version == version + 1


def test_empty_append_changes_nothing_but_checks_the_version(session):
    before = PlaySession.objects.get(pk=session.pk)
    result = events.append(session, [], expected_version=before.version)
    assert result.events == [] and result.version == before.version
    with pytest.raises(events.VersionConflict):
        events.append(session, [], expected_version=before.version + 5)


def test_snapshot_every_n_events(session, settings):
    settings.GTW_SNAPSHOT_EVERY = 5
    for _ in range(11):
        events.append(session, [action()])
    snaps = list(Snapshot.objects.filter(session=session).order_by("seq").values_list("seq", flat=True))
    assert snaps == [5, 10]
    live = PlaySession.objects.get(pk=session.pk)
    assert state_hash(events.load_state(session.pk)) == live.state_hash
    snap = Snapshot.objects.get(session=session, seq=10)
    assert snap.sha256 == state_hash(snap.state)


@pytest.fixture
def no_turns(monkeypatch):
    """The store alone: its committed Actions start no GM turn (narrative's listener would)."""
    from narrative import turns

    monkeypatch.setattr(turns, "schedule_turns", lambda session_id, query=None: None)


@pytest.mark.django_db(transaction=True)
def test_two_appends_racing_on_the_same_expected_version(session, no_turns):
    """One wins, one gets VersionConflict; the log has no gap and no duplicate seq."""
    version = PlaySession.objects.get(pk=session.pk).version
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(n):
        try:
            barrier.wait()
            events.append(session.pk, [action(text=f"racer {n}")], expected_version=version)
            outcomes.append("ok")
        except events.VersionConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    seqs = list(Event.objects.filter(session=session).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, version + 2))


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_without_expected_version_all_land(session, no_turns):
    """Writers that don't pin a version queue on the row lock: 6 threads x 5 appends, no loss."""
    errors = []

    def worker(n):
        try:
            for i in range(5):
                events.append(session.pk, [action(text=f"{n}-{i}")], idempotency_key=f"w{n}-{i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    live = PlaySession.objects.get(pk=session.pk)
    assert Event.objects.filter(session=session, type="Action").count() == 30
    # SessionOpened, the 30 actions, and the GM's opening if its job ran meanwhile: no gap, no loss.
    openings = Event.objects.filter(session=session, type="Opening").count()
    assert openings <= 1 and live.version == 31 + openings
    assert list(Event.objects.filter(session=session).order_by("seq").values_list("seq", flat=True)) == list(
        range(1, live.version + 1)
    )
    assert state_hash(events.replay_from_scratch(session.pk)) == live.state_hash


@pytest.mark.django_db(transaction=True)
def test_same_idempotency_key_racing_creates_one_event(session):
    barrier = threading.Barrier(4)
    seqs = []

    def worker():
        try:
            barrier.wait()
            seqs.append(events.append(session.pk, [action()], idempotency_key="same").events[0].seq)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seqs)) == 1
    assert Event.objects.filter(session=session, idempotency_key="same").count() == 1


class EventStoreMachine(RuleBasedStateMachine):
    """Whatever sequence of appends happens, replay(events) == the live state, and the
    snapshot + tail path agrees too."""

    def __init__(self):
        super().__init__()
        self.session = PlaySession.objects.create(
            campaign=self.campaign,
            number=PlaySession.objects.filter(campaign=self.campaign).count() + 1,
            opened_by=self.user,
        )
        self.keys = []

    @rule(
        n=st.integers(1, 4),
        text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    )
    def append_actions(self, n, text):
        events.append(self.session.pk, [action(self.user.pk, text) for _ in range(n)])

    @rule()
    def narrate_oldest_pending(self):
        pending = PlaySession.objects.get(pk=self.session.pk).state["pending"]
        if pending:
            events.append(
                self.session.pk, [events.NewEvent(type="Narration", payload={"action_seq": pending[0]})]
            )

    @rule()
    def empty_append(self):
        version = PlaySession.objects.get(pk=self.session.pk).version
        assert events.append(self.session.pk, [], expected_version=version).version == version

    @rule(behind=st.integers(1, 3))
    def stale_writer_is_refused(self, behind):
        version = PlaySession.objects.get(pk=self.session.pk).version
        if version >= behind:
            with pytest.raises(events.VersionConflict):
                events.append(self.session.pk, [action()], expected_version=version - behind)

    @rule(key=st.sampled_from(["a", "b", "c"]))
    def idempotent_append(self, key):
        before = Event.objects.filter(session=self.session).count()
        result = events.append(self.session.pk, [action(text=key)], idempotency_key=key)
        after = Event.objects.filter(session=self.session).count()
        assert after == before + (0 if result.replayed else 1)

    @invariant()
    def replay_equals_live(self):
        live = PlaySession.objects.get(pk=self.session.pk)
        assert (
            state_hash(events.replay_from_scratch(self.session.pk))
            == live.state_hash
            == state_hash(live.state)
        )
        assert state_hash(events.load_state(self.session.pk)) == live.state_hash


def test_event_store_state_machine(campaign, gm, settings):
    settings.GTW_SNAPSHOT_EVERY = 4
    EventStoreMachine.campaign = campaign
    EventStoreMachine.user = gm
    run_state_machine_as_test(
        EventStoreMachine,
        settings=settings_for_db(),
    )


def settings_for_db():
    return settings(
        max_examples=15,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
