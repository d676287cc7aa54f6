"""`gtw bench turn`'s "lost events": an event counts as lost only when the event store says the
client may see it and it never arrived — a GM-only event or another player's whisper is skipped
for a player by design, so the jump in seqs it leaves is no loss (it used to be counted)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from campaigns import events
from gtw_site.bench import turn


def test_only_an_event_the_client_may_see_and_never_got_is_lost(content):
    session_id, _tokens = turn._setup_game(2)
    before = turn.session_version(session_id)
    users = get_user_model().objects.filter(username__in=["bench-000", "bench-001", "bench-gm"])
    ids = {u.username: u.pk for u in users}
    appended = events.append(
        session_id,
        [
            events.NewEvent(type="Action", payload={"text": "I look"}, actor_id=ids["bench-000"]),
            events.NewEvent(type="DifficultyChanged", payload={}, audience=[ids["bench-gm"]]),  # GM-only
            events.NewEvent(type="Whisper", payload={"text": "psst"}, audience=[ids["bench-001"]]),
            events.NewEvent(type="Narration", payload={"action_seq": before + 1, "text": "…"}),
        ],
    ).events
    public = {appended[0].seq, appended[3].seq}
    whisper = appended[2].seq

    # Client 0 got both public events and nothing else: a gap of two seqs, no loss.
    assert turn.lost_events(session_id, before, [public, public | {whisper}], 2) == 0
    # Client 1 missed the whisper addressed to it; client 0 missed a public event.
    assert turn.lost_events(session_id, before, [{appended[3].seq}, public], 2) == 2
