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
