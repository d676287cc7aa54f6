"""Turn tasks are queued by dotted path (django-q2 resolves them with pydoc.locate in the
worker), and a queued task outlives a deploy: every path ever queued must keep resolving to the
runner that answers it, and the schedulers must queue a path that resolves."""

import pydoc

import pytest

from narrative import turns
from narrative.turns import batch, party


@pytest.mark.parametrize(
    ("path", "runner"),
    [
        ("narrative.turns.run_pending_turns", party.run_pending_turns),
        ("narrative.turns.run_pending_batches", batch.run_pending_batches),
        # queued before the batch turn moved into narrative/turns/
        ("narrative.stage_turns.run_pending_batches", batch.run_pending_batches),
    ],
)
def test_a_queued_turn_task_path_resolves_to_its_runner(path, runner):
    assert pydoc.locate(path) is runner


def test_the_schedulers_queue_paths_the_worker_can_load(monkeypatch):
    queued = []
    monkeypatch.setattr(party.jobs, "enqueue_once", lambda name, func, *a, **kw: queued.append(func))
    monkeypatch.setattr(batch.jobs, "enqueue", lambda func, *a, **kw: queued.append(func))
    monkeypatch.setattr(party.busy, "turn_expected", lambda session_id: None)
    turns.schedule_turns(7)
    turns.schedule_batches(7)
    assert [pydoc.locate(func) for func in queued] == [party.run_pending_turns, batch.run_pending_batches]
