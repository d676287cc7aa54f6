"""SIGKILL mid-turn: the action survives, and the re-run neither loses nor duplicates events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from campaigns.models import Event, PlaySession
from narrative import turns

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_server_killed_mid_turn_then_turn_is_rerun(session, player, monkeypatch):
    monkeypatch.setattr(turns, "schedule_turns", lambda session_id, query=None: None)
    action = turns.submit_action(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="kill-1"
    ).events[0]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gtw_site.test_settings",
        "GTW_DB_NAME": connection.settings_dict["NAME"],
        # A second a word: the narration after the roll takes long enough to kill it in; at 150 ms a
        # loaded machine once let the worker finish before the test saw the dice.
        "GTW_OFFLINE_WORD_DELAY_MS": "1000",
    }
    code = (
        "import django; django.setup(); from narrative.turns import run_pending_turns; "
        f"run_pending_turns({session.pk})"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120  # a ceiling: the lead-in before the roll is paced too
        while not Event.objects.filter(session=session, type="DiceRolled").exists():
            assert worker.poll() is None, "the worker finished before we could kill it"
            assert time.monotonic() < deadline, "no dice rolled within 120 s"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert not Event.objects.filter(session=session, type="Narration").exists(), "killed before narrating"
    state = PlaySession.objects.get(pk=session.pk).state
    assert state["pending"] == [action.seq]
    assert Event.objects.get(session=session, seq=action.seq).payload["text"] == "I hack the airlock panel"

    # "After restart": the next runner picks the action up (the killed worker's lock died with it).
    assert turns.run_pending_turns(session.pk) == 1
    log = list(Event.objects.filter(session=session).order_by("seq").values_list("seq", "type"))
    from narrative.engine import ENGINE_EVENTS

    # Nothing lost or doubled: one roll, one narration, the engine's consequences once each (and
    # the GM's opening of the session at most once, whenever the worker got to it).
    assert [t for _, t in log].count("Opening") <= 1
    assert [t for _, t in log if t not in ENGINE_EVENTS and t != "Opening"] == [
        "SessionOpened",
        "Action",
        "DiceRolled",
        "Narration",
    ]
    assert [s for s, _ in log] == list(range(1, len(log) + 1))
    assert len({t for _, t in log if t in ENGINE_EVENTS}) == len([t for _, t in log if t in ENGINE_EVENTS])
    narration = Event.objects.get(session=session, type="Narration")
    dice_seq = Event.objects.get(session=session, type="DiceRolled").seq
    assert narration.payload["action_seq"] == action.seq and narration.payload["tool_events"][0] == dice_seq
