"""A turn tells gtw_site.busy when its first delta is out (runner.TurnDeltaStream): the telemetry
writer keeps off the CPU until then (gtw_site.telemetry.Writer._yield_to_turns)."""

from __future__ import annotations

from gtw_site import busy
from narrative import turns
from realtime import broadcast


def test_a_turn_says_its_first_delta_is_out_once_and_after_sending_it(session, player, monkeypatch):
    sent: list[str] = []
    real_send = broadcast._send

    def spy_send(group, message):
        if message.get("type") == "session.delta":
            sent.append(f"delta {message['i']}")
        return real_send(group, message)

    monkeypatch.setattr(broadcast, "_send", spy_send)
    monkeypatch.setattr(busy, "first_delta_out", lambda session_id: sent.append(f"out {session_id}"))
    turns.submit_action(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="f1"
    )
    assert turns.run_pending_turns(session.pk) == 1
    assert sent[:2] == ["delta 0", f"out {session.pk}"]  # right after the first delta, before the next
    assert sent.count(f"out {session.pk}") == 1  # a turn of several rounds says it once
    assert len([s for s in sent if s.startswith("delta")]) > 1


def test_a_retried_provider_round_does_not_say_it_again(monkeypatch):
    """After a retry the preview restarts at delta 0: the turn's first delta was out already."""
    from narrative.turns import runner

    told: list[int] = []
    monkeypatch.setattr(busy, "first_delta_out", told.append)
    monkeypatch.setattr(broadcast, "_send", lambda group, message: None)
    monkeypatch.setattr(broadcast, "_start_listeners", lambda session_id, action_seq: [])
    stream = runner.TurnDeltaStream(41, 3, interval_ms=0)
    stream.flush()  # nothing buffered: no delta, nothing to say
    assert told == []
    stream.push("The door ")
    stream.push("hums.")
    stream.reset("retrying")
    stream.push("The door opens.")
    stream.flush()
    assert told == [41]
