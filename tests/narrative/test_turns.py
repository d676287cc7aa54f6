"""The turn pipeline end to end with the offline narrator, on the embedded Postgres + Redis."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from narrative import turns


def types(session):
    return list(Event.objects.filter(session=session).order_by("seq").values_list("type", flat=True))


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (broadcast + the inline django-q2 task) as a real commit would."""

    def submit(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return turns.submit_action(**kwargs)

    return submit


def test_hack_action_rolls_a_check_and_narrates(session, player, run_on_commit):
    result = run_on_commit(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="k1"
    )
    assert result.events[0].seq == 2
    assert types(session) == ["SessionOpened", "Action", "DiceRolled", "Narration"]
    dice_event = Event.objects.get(session=session, type="DiceRolled")
    assert dice_event.payload["attribute"] == "tech"
    assert dice_event.payload["character"] == "Kira Vance"
    assert dice_event.seed is not None
    narration = Event.objects.get(session=session, type="Narration")
    assert narration.payload["action_seq"] == 2
    assert narration.payload["tool_events"] == [dice_event.seq]
    assert len(narration.payload["text"]) > 40
    session.refresh_from_db()
    assert session.state["pending"] == []
