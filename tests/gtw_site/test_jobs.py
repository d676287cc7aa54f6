"""gtw_site.jobs: one django-q broker per queue and process, not a new Redis client per task."""

from __future__ import annotations

from gtw_site import jobs


def test_one_broker_per_queue_and_process():
    assert jobs.broker() is jobs.broker()
    assert jobs.broker("gtw-memory") is jobs.broker("gtw-memory")
    assert jobs.broker("gtw-memory") is not jobs.broker()
    assert jobs.broker("gtw-memory").list_key == "django_q:gtw-memory:q"


def test_enqueue_hands_async_task_the_kept_broker(monkeypatch):
    import django_q.tasks

    calls = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *a, **kw: calls.append((a, kw)) or "id")
    assert jobs.enqueue("memory.tasks.embed_pending", group="memory", cluster="gtw-memory") == "id"
    assert jobs.enqueue("narrative.turns.run_pending_turns", 3, task_name="turns-3") == "id"
    assert calls[0] == (
        ("memory.tasks.embed_pending",),
        {"group": "memory", "cluster": "gtw-memory", "broker": jobs.broker("gtw-memory")},
    )
    assert calls[1] == (
        ("narrative.turns.run_pending_turns", 3),
        {"task_name": "turns-3", "broker": jobs.broker()},
    )
