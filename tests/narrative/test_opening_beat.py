"""A session opens at the inciting beat, and the mission's inciting-beat rules hold from the start."""

from __future__ import annotations

from missions.services import mission_install
from narrative import engine
from tests.narrative.engine_helpers import OPENER, assert_replays, types
from tests.narrative.test_engine import call


def test_a_session_opens_at_the_inciting_beat(session):
    assert session.state["mission"]["state"]["beat"] == session.state["director"]["beat"] == "inciting"


def test_inciting_beat_rules_hold_from_the_mission_start(session, gm, player):
    mission_install(source=OPENER)
    engine.mission_start(session=session, slug="opener", actor_id=gm.pk)
    kinds = types(session)
    assert kinds[-2:] == ["MissionStarted", "TwistTriggered"]  # the omen, at once
    session.refresh_from_db()
    assert session.state["mission"]["state"]["twists"] == ["omen"]
    outcome, created = call(session, player, "world_update", {"flag": "hello", "value": True})
    assert not outcome.refused
    kinds = [e.type for e in created]
    assert "ObjectiveCompleted" in kinds and "TwistTriggered" in kinds
    session.refresh_from_db()
    assert session.state["mission"]["state"]["objectives"] == {"greet": "complete"}
    assert session.state["mission"]["state"]["twists"] == ["omen", "early"]
    assert_replays(session)
