"""The event store's listeners (issue 12): the layers above subscribe, with event-type filters
and a defined order, and hear each committed append once, after commit, in seq order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import transaction

from campaigns import events, selectors, services
from campaigns.models import PlaySession


@pytest.fixture
def heard():
    """Temporary listeners that note what they hear; removed afterwards."""
    log: list[tuple[str, list[str]]] = []
    added = []

    def listen(name, **options):
        def listener(session_id, new):
            log.append((name, [e.type for e in new]))

        listener.__name__ = f"heard_{name}"
        events.add_listener(listener, **options)
        added.append(listener)
        return listener

    yield log, listen
    for listener in added:
        events.remove_listener(listener)


def npc(line="Hello."):
    return events.NewEvent(type="NpcSpoke", payload={"name": "PA", "line": line})


def test_listeners_hear_only_their_types_in_their_order_after_commit(
    session, heard, django_capture_on_commit_callbacks
):
    log, listen = heard
    listen("late", order=90)
    listen("early", order=1, types={"WorldUpdated"})
    listen("middle", order=55)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.append(session, [npc(), events.NewEvent(type="WorldUpdated", payload={"flag": "a"})])
        assert log == []  # nothing before the commit
    assert log == [
        ("early", ["WorldUpdated"]),
        ("middle", ["NpcSpoke", "WorldUpdated"]),
        ("late", ["NpcSpoke", "WorldUpdated"]),
    ]


def test_a_listener_with_none_of_its_types_is_not_called(session, heard, django_capture_on_commit_callbacks):
    log, listen = heard
    listen("dice", types={"DiceRolled"})
    with django_capture_on_commit_callbacks(execute=True):
        events.append(session, [npc()])
    assert log == []


def test_a_replayed_key_calls_nobody_and_a_rollback_calls_nobody(
    session, heard, django_capture_on_commit_callbacks
):
    log, listen = heard
    listen("all", order=99)
    with django_capture_on_commit_callbacks(execute=True):
        events.append(session, [npc()], idempotency_key="once")
        events.append(session, [npc()], idempotency_key="once")
    assert log == [("all", ["NpcSpoke"])]
    log.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        events.append(session, [npc("never")])
        raise RuntimeError
    assert log == []


def test_appends_in_one_transaction_are_heard_in_seq_order(session, django_capture_on_commit_callbacks):
    seqs = []

    def note_seqs(session_id, new):
        seqs.extend(e.seq for e in new)

    events.add_listener(note_seqs, order=98)
    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            first = events.append(session, [npc("one")]).events
            second = events.append(session, [npc("two"), npc("three")]).events
    finally:
        events.remove_listener(note_seqs)
    assert seqs == [e.seq for e in first + second] == sorted(seqs)


def test_a_failing_listener_costs_the_others_nothing(session, heard, django_capture_on_commit_callbacks):
    log, listen = heard

    def broken(session_id, new):
        raise RuntimeError("a lost broadcast")

    events.add_listener(broken, order=2)
    try:
        listen("after", order=3)
        with django_capture_on_commit_callbacks(execute=True):
            events.append(session, [npc()])
    finally:
        events.remove_listener(broken)
    assert log == [("after", ["NpcSpoke"])]


def test_the_apps_subscribe_in_the_documented_order():
    """Turn scheduling, then the one broadcast, then a retried turn, then memory writes
    (docs/ARCHITECTURE.md "Listeners")."""
    names = [(f"{fn.__module__}.{fn.__name__}", order) for fn, _types, order in events.listeners()]
    expected = [
        "narrative.listeners.schedule_for_actions",
        "narrative.listeners.schedule_for_windows",
        "realtime.listeners.broadcast_committed",
        "narrative.listeners.schedule_for_retry",
        "memory.services.queue_record_from_events",
    ]
    assert [n for n, _ in names if n in expected] == expected
    orders = dict(names)
    assert orders[expected[0]] < orders[expected[2]] < orders[expected[3]] < orders[expected[4]]


def test_an_action_is_scheduled_before_it_is_broadcast(
    session, player, monkeypatch, django_capture_on_commit_callbacks
):
    """Turn latency: the runner starts before the Action's own broadcast goes out."""
    from narrative import turns
    from realtime import broadcast

    calls = []
    monkeypatch.setattr(
        broadcast, "events_committed", lambda sid, new: calls.append(("broadcast", new[0].type))
    )
    monkeypatch.setattr(turns, "schedule_turns", lambda sid, query=None: calls.append(("schedule", query)))
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I hail the station", idempotency_key="a1"
        )
    assert calls == [("schedule", "I hail the station"), ("broadcast", "Action")]


def test_resuming_an_ended_session_reruns_its_pending_turns_through_the_listener(
    session, gm, player, monkeypatch, django_capture_on_commit_callbacks
):
    from narrative import turns

    scheduled = []
    monkeypatch.setattr(turns, "schedule_turns", lambda sid, query=None: scheduled.append(sid))
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="p1")
    gm_seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    with django_capture_on_commit_callbacks(execute=True):
        services.session_end(session=PlaySession.objects.get(pk=session.pk), membership=gm_seat)
    scheduled.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.session_resume(session=PlaySession.objects.get(pk=session.pk), membership=gm_seat)
    assert scheduled == [session.pk]  # SessionResumed, with an action still pending
    scheduled.clear()
    player_seat = selectors.membership_get(viewer=player, campaign_id=session.campaign_id)
    with django_capture_on_commit_callbacks(execute=True):  # already active: the signal
        services.session_resume(session=PlaySession.objects.get(pk=session.pk), membership=player_seat)
    assert scheduled == [session.pk]


UPPER_APPS = ("narrative", "missions", "memory", "realtime", "media")


def test_the_tenant_layer_never_imports_the_layers_above():
    """DESIGN "Layout and layers": campaigns says what happened; it imports none of the apps above
    it, not even inside a function body (migrations keep what they were generated with)."""
    root = Path(__file__).resolve().parents[2] / "campaigns"
    found = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [
                f"{path.relative_to(root.parent)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in UPPER_APPS
            ]
    assert found == []
