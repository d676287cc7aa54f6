"""Session summaries are written by narrative and kept by memory (issue 12): memory says it has
recorded memories from committed events (memory.signals.memories_recorded); narrative, listening,
queues its own summary job every `summary_every` narrations; the summary is stored through
memory.services.summary_store and read back by memory.summaries.latest_recap."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from memory import summaries as memory_summaries
from memory.models import Memory
from memory.signals import memories_recorded
from narrative import summaries, turns


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr(summaries.jobs, "enqueue", lambda func, *args, **kw: calls.append((func, args, kw)))
    return calls


def _recorded(session, narrations: int, types=("Narration",)):
    session.state = {**session.state, "counts": {**session.state.get("counts", {}), "Narration": narrations}}
    events = [Event(session=session, seq=i + 1, type=t, payload={}) for i, t in enumerate(types)]
    memories_recorded.send(sender=Memory, session=session, events=events, memories=[])


def test_narrative_queues_a_summary_every_nth_narration(session, queued, settings):
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "summary_every": 2}
    _recorded(session, 1)
    _recorded(session, 2, types=("Action",))  # no narration in this batch
    assert queued == []
    _recorded(session, 2)
    [(func, args, kw)] = queued
    assert func == "narrative.tasks.summarize_session" and args == (session.pk,)
    assert kw == {"group": "memory", "cluster": settings.MEMORY_CLUSTER}  # it can wait for the turns


def test_summaries_off_queue_nothing(session, queued, settings):
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "summary_every": 0}
    _recorded(session, 4)
    assert queued == []


def test_the_job_writes_a_summary_that_memory_keeps_and_the_recap_reads(
    session, player, settings, django_capture_on_commit_callbacks
):
    """The whole path with the offline summarizer: play, the job, the stored memory, the recap."""
    from narrative import tasks

    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "summary_every": 0}
    for key, text in (("t1", "I ask Ossian about the Vesper relay"), ("t2", "I search the docking ring")):
        with django_capture_on_commit_callbacks(execute=True):
            turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=key)
        with django_capture_on_commit_callbacks(execute=True):
            turns.run_pending_turns(session.pk)
    assert memory_summaries.latest_recap(session) is None
    with django_capture_on_commit_callbacks(execute=True):
        pk = tasks.summarize_session(session.pk)
    summary = Memory.objects.get(pk=pk)
    assert summary.created_by_id is None and summary.tags == [memory_summaries.SUMMARY_TAG]
    assert summary.metadata[memory_summaries.SUMMARY_KEY] == session.pk
    assert summary.sources and "Vesper relay" in summary.text
    assert memory_summaries.summarized_upto(session) == summary.source_seq
    assert memory_summaries.latest_recap(session) == summary
    assert tasks.summarize_session(session.pk) is None  # nothing new since
