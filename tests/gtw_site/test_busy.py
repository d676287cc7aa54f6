"""gtw_site.busy: background work waits while a GM turn runs elsewhere, bounded both ways."""

from __future__ import annotations

import time

import pytest

from gtw_site import busy


@pytest.fixture
def clean(db):
    busy._client().delete(busy._key())
    busy._last_full_wait = 0.0
    yield
    busy._client().delete(busy._key())


def test_turns_in_other_processes_count_and_expire(clean):
    assert busy.turns_running() == 0
    with busy.turn_running(7):
        assert busy.turns_running() == 0  # our own turn: a task it runs inline must not wait for it
    client = busy._client()
    client.zadd(busy._key(), {"999999:8": time.time() + 30})  # another worker's live turn
    client.zadd(busy._key(), {"999998:9": time.time() - 1})  # a crashed worker's, expired
    assert busy.turns_running() == 1
    client.zrem(busy._key(), "999999:8")
    assert busy.turns_running() == 0


def test_waits_are_bounded_and_a_busy_table_cannot_starve_memory_work(clean, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(busy.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(busy.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(busy, "turns_running", lambda: 1)  # turns back to back, forever
    assert busy.wait_for_turns(max_wait=2.0) == pytest.approx(2.0, abs=0.05)
    assert busy.wait_for_turns(max_wait=2.0) == 0.0  # within the grace period: no wait
    clock[0] += 11
    assert busy.wait_for_turns(max_wait=2.0) == pytest.approx(2.0, abs=0.05)
    monkeypatch.setattr(busy, "turns_running", lambda: 0)
    clock[0] += 11
    assert busy.wait_for_turns() == 0.0


def test_a_scheduled_turn_counts_until_its_runner_takes_it_over(clean):
    """From schedule_turns to the runner's lock, memory work already waits; the running turn
    replaces the entry (so it isn't counted twice), and a runner with nothing to do drops it."""
    busy.turn_expected(5)
    assert busy.turns_running() == 1
    with busy.turn_running(5):
        assert busy.turns_running() == 0  # only our own (running) entry is left
    assert busy.turns_running() == 0
    busy.turn_expected(6)
    busy.turn_unexpected(6)
    assert busy.turns_running() == 0
    busy._client().zadd(busy._key(), {"next:7": time.time() - 1})  # never claimed: expired
    assert busy.turns_running() == 0


def test_schedule_turns_marks_the_turn_expected_before_the_runner_starts(clean, monkeypatch):
    from narrative import turns

    seen = []
    monkeypatch.setattr(turns.party.jobs, "enqueue", lambda *a, **kw: seen.append((busy.turns_running(), kw)))
    turns.schedule_turns(3, query="I hack the door")
    turns.schedule_turns(4, query="   ")
    assert seen[0] == (1, {"task_name": "turns-3", "group": "turns", "query": "I hack the door"})
    assert seen[1][1] == {"task_name": "turns-4", "group": "turns"}  # nothing to embed
