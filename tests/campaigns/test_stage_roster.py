"""Who sits where on a stage: a team move follows the member into every live stage, spectators never
moderate, and a NUL in a username is refused with a 422 instead of a 500."""

from __future__ import annotations

import pytest

from campaigns import teams
from campaigns.errors import Forbidden, Invalid
from campaigns.models import FireteamMember, StageSeat
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import services as stage_services
from campaigns.stage import windows as stage_windows
from tests.campaigns.stage_helpers import _m, _team, post


@pytest.fixture
def second_stage(stage, gm):
    return stage_services.stage_open(membership=_m(gm, stage.campaign), title="Overflow room")


# ---- team_assign keeps every live seat of the member in sync -----------------------------


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


# ---- spectators are never moderators -----------------------------------------------------


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


# ---- a NUL in a username is refused, not a 500 ---------------------------------------------


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
