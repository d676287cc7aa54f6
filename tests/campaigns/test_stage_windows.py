"""Stage batch windows and the end of a session: an ended session's window reads as closed and
cannot be closed again, ending a stage closes its open window and summarises its actions, and a
retried action replays before the rate limit."""

from __future__ import annotations

import pytest

from campaigns import errors
from campaigns.errors import Conflict
from campaigns.models import Event, PlaySession
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import windows as stage_windows
from tests.campaigns.stage_helpers import _act, _m, _speaker, _types

# ---- windows and the end of a session ------------------------------------------------------


def test_a_moderator_cannot_close_a_window_after_the_session_ended(stage, gm):
    c = stage.campaign
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    PlaySession.objects.filter(pk=stage.pk).update(status=PlaySession.Status.ENDED)
    ended = PlaySession.objects.get(pk=stage.pk)
    with pytest.raises(Conflict, match="has ended"):
        stage_windows.window_close(session=ended, membership=_m(gm, c))
    assert "BatchWindowClosed" not in _types(stage)


def test_an_ended_sessions_window_reads_as_closed(stage, gm):
    c = stage.campaign
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    PlaySession.objects.filter(pk=stage.pk).update(status=PlaySession.Status.ENDED)
    ended = PlaySession.objects.get(pk=stage.pk)
    assert stage_selectors.current_window(ended) is None
    assert stage_selectors.stage_roster(ended)["window"] is None


def test_ending_a_stage_closes_its_open_window(stage, gm, player, commit):
    c = stage.campaign
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, c), seconds=60)
    action = _act(stage, player, "I hold the line", "end-1").events[0]
    closed = commit(stage_windows.window_close_on_end, session=stage, membership=_m(gm, c))
    assert [e.type for e in closed] == ["BatchWindowClosed"]
    assert closed[0].payload["reason"] == "session ended" and closed[0].payload["actions"] == [action.seq]
    session = PlaySession.objects.get(pk=stage.pk)
    assert stage_selectors.current_window(session) is None
    from django_q.models import Schedule

    assert not Schedule.objects.filter(name__startswith=f"stage-{stage.pk}-window-").exists()
    # Nothing open: ending appends nothing.
    assert commit(stage_windows.window_close_on_end, session=session, membership=_m(gm, c)) == []


# ---- a retried action replays before the rate limit ---------------------------------------


def test_a_retried_action_replays_even_after_the_rate_limit(stage, gm, player):
    c = stage.campaign
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    first = _act(stage, player, "I fire shot 0", "shot-0").events[0]
    for i in range(1, 8):
        _act(stage, player, f"I fire shot {i}", f"shot-{i}")
    again = _act(stage, player, "I fire shot 0", "shot-0")
    assert again.replayed and again.events[0].pk == first.pk
    with pytest.raises(errors.RateLimited):  # a new action is still charged and refused
        _act(stage, player, "I fire once more", "shot-9")
    assert Event.objects.filter(session=stage, type="Action").count() == 8


def test_the_gm_ending_a_stage_closes_the_window_and_its_actions_get_their_summary(stage, gm, player, commit):
    """Through the real end of a session (services.session_end): the window's actions are
    summarised after the session has ended, and nothing is left open."""
    from campaigns import services

    c = stage.campaign
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, c), seconds=60)
    action = _act(stage, player, "I cover the hatch", "end-2").events[0]
    commit(services.session_end, session=stage, membership=_m(gm, c))
    types = list(Event.objects.filter(session=stage).order_by("seq").values_list("type", flat=True))
    assert types.index("BatchWindowClosed") < types.index("SessionEnded")
    summary = Event.objects.get(session=stage, type="Narration", payload__has_key="batch")
    assert action.seq in summary.payload["action_seqs"]
