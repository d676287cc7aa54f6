"""The sender renders the engine's mission panel through a hook (issue 12): realtime.broadcast is
shared base and imports no narrative and no campaigns; narrative registers the panel renderer,
realtime the event source, at ready(). What a socket receives is unchanged: the mission panel
rides on a batch's last engine event, once, and a tab catching up renders exactly what a live
tab was sent."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from narrative import engine
from realtime import apps as realtime_apps
from realtime import broadcast


@pytest.fixture
def sent(monkeypatch):
    messages = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: messages.append((group, message)))
    return messages


def _panels(html_list):
    return [i for i, html in enumerate(html_list) if 'id="mission-panel"' in html]


def test_a_beat_change_carries_the_mission_panel_once_live_and_on_catch_up(
    session, gm, sent, django_capture_on_commit_callbacks
):
    """issue 12: panel rendering moved behind broadcast.register_panel. A GM's beat change
    reaches the session's sockets with the panel (new beat current) on its last engine event
    only, and the catch-up renderer (the socket's) gives the same messages."""
    before = session.version
    with django_capture_on_commit_callbacks(execute=True):
        engine.beat_set(session=session, beat="rising", actor_id=gm.pk)
    live = [m for group, m in sent if group == broadcast.session_group(session.pk)]
    assert live and all(m["type"] == "session.event" for m in live)
    batch = [m for m in live if m["seq"] > before]
    htmls = [m["html"] for m in batch]
    assert _panels(htmls) == [len(batch) - 1]  # once, on the batch's last engine event
    assert 'class="current" aria-current="step">Rising</li>' in htmls[-1]

    rows = list(Event.objects.filter(session=session, seq__gt=before).select_related("actor").order_by("seq"))
    session.refresh_from_db()
    caught_up = broadcast.event_messages(rows, session.state)
    assert [(m["seq"], m["html"]) for m in caught_up] == [(m["seq"], m["html"]) for m in batch]


def test_an_event_outside_the_engine_carries_no_panel(session, player, sent):
    """A player's action is not an engine event: its message has the log entry, no panel."""
    from campaigns import events

    result = events.append(
        session.pk, [events.NewEvent(type="Action", payload={"text": "I look around"}, actor_id=player.pk)]
    )
    sent.clear()
    broadcast.events_committed(session.pk, result.events)
    [(group, message)] = sent
    assert group == broadcast.session_group(session.pk)
    assert message["event"]["type"] == "Action" and message["event"]["actor"] == player.username
    assert "I look around" in message["html"] and 'id="mission-panel"' not in message["html"]


def test_the_hooks_are_registered_at_ready():
    """Narrative's panel and realtime's event source are what the sender uses."""
    assert broadcast._panel.context is engine.panel_context
    assert broadcast._panel.event_types == engine.ENGINE_EVENTS
    assert broadcast._source.load is realtime_apps.session_events_by_seq
