"""Stage mode fixes: team moves follow a member into every live stage, spectators never
moderate, windows close with the session, retried actions replay before the rate limit, and a
NUL in a username is refused instead of a 500."""

from __future__ import annotations

import pytest

from campaigns import errors, teams
from campaigns.errors import Conflict, Forbidden, Invalid
from campaigns.models import Event, FireteamMember, PlaySession, StageSeat
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import services as stage_services
from campaigns.stage import windows as stage_windows
from tests.campaigns import test_stage as stage_tests
from tests.campaigns.test_stage import _act, _m, _speaker, _team, _types, post

# The stage module's fixtures, shared (assigned rather than imported, so they read as fixtures).
commit = stage_tests.commit
fresh_rate_limits = stage_tests.fresh_rate_limits  # autouse: rate-limit counters start at zero
player2 = stage_tests.player2
spectator = stage_tests.spectator
stage = stage_tests.stage


@pytest.fixture
def second_stage(stage, gm):
    return stage_services.stage_open(membership=_m(gm, stage.campaign), title="Overflow room")


# ---- 1. team_assign keeps every live seat of the member in sync -----------------------------


def test_team_assign_moves_the_member_in_every_live_stage(stage, second_stage, gm, player):
    c = stage.campaign
    red, blue = _team(c, "Red", player), _team(c, "Blue")
    for session in (stage, second_stage):
        stage_services.seat_ensure(session=session, membership=_m(player, c))
    stage_services.team_assign(session=stage, membership=_m(gm, c), target=_m(player, c), fireteam_id=blue.pk)
    assert FireteamMember.objects.get(membership=_m(player, c)).fireteam_id == blue.pk
    seats = StageSeat.objects.filter(membership=_m(player, c))
    assert {s.session_id: s.team_id for s in seats} == {stage.pk: blue.pk, second_stage.pk: blue.pk}
    assert red.pk not in {s.team_id for s in seats}

    stage_services.team_assign(session=stage, membership=_m(gm, c), target=_m(player, c), fireteam_id=None)
    assert not FireteamMember.objects.filter(membership=_m(player, c)).exists()
    assert set(StageSeat.objects.filter(membership=_m(player, c)).values_list("team_id", flat=True)) == {None}


# ---- 2. spectators are never moderators -----------------------------------------------------


def test_the_gm_cannot_promote_a_spectator(stage, gm, spectator, player2, gm_client):
    c = stage.campaign
    with pytest.raises(Invalid, match="Spectators watch"):
        stage_services.moderator_set(session=stage, membership=_m(gm, c), target=_m(spectator, c))
    seat = StageSeat.objects.filter(session=stage, membership=_m(spectator, c)).first()
    assert seat is None or seat.role == StageSeat.Role.AUDIENCE
    r = post(gm_client, f"/api/stage/{stage.pk}/promote", {"username": spectator.username})
    assert r.status_code == 422, r.content
    # A spectator's seat that somehow says moderator still moderates nothing.
    StageSeat.objects.update_or_create(
        session=stage, membership=_m(spectator, c), defaults={"role": StageSeat.Role.MODERATOR}
    )
    assert not stage_selectors.is_moderator(stage, _m(spectator, c))
    with pytest.raises(Forbidden, match="Only a stage moderator"):
        stage_windows.window_open(session=stage, membership=_m(spectator, c))


# ---- 3. windows and the end of a session ------------------------------------------------------


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


# ---- 4. a retried action replays before the rate limit ---------------------------------------


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


# ---- 5. a NUL in a username is refused, not a 500 ---------------------------------------------


@pytest.mark.parametrize("path", ["approve", "deny", "mute", "remove", "assign-team", "promote"])
def test_a_nul_in_a_username_is_refused(stage, gm_client, path):
    r = post(gm_client, f"/api/stage/{stage.pk}/{path}", {"username": "a\u0000b"})
    assert 400 <= r.status_code < 500, r.content
    assert r.status_code == 422


def test_a_nul_in_a_username_is_refused_on_fireteams_and_alliances(stage, gm, gm_client):
    c = stage.campaign
    team = _team(c, "Red")
    alliance = teams.alliance_create(membership=_m(gm, c), name="Free Worlds")
    for url in (f"/api/fireteams/{team.pk}/members", f"/api/alliances/{alliance.pk}/members"):
        r = post(gm_client, url, {"username": "a\u0000b"})
        assert r.status_code == 422, (url, r.content)
    for url in (f"/api/fireteams/{team.pk}/members/a%00b", f"/api/alliances/{alliance.pk}/members/a%00b"):
        r = gm_client.delete(url)
        assert r.status_code == 422, (url, r.content)


def test_target_get_refuses_a_nul_directly(stage):
    with pytest.raises(Invalid, match="NUL"):
        stage_selectors.target_get(campaign_id=stage.campaign_id, username="a\x00b")


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
