"""Rewards and difficulty: rewards build on the XP as it is at append time and report what they
granted, check outcomes are kept for the widest DDA window (old logs replay as they were folded),
and a stored DC offset is pulled inside narrowed caps."""

from __future__ import annotations

from campaigns import events
from campaigns import state as reducer
from campaigns.models import Character, Event
from missions.rules import dda, progression
from narrative import engine, tools
from tests.narrative.engine_helpers import assert_replays, install_legacy
from tests.narrative.test_engine import call

# ---- concurrent rewards ---------------------------------------------------------------------------


def test_rewards_build_on_the_xp_as_it_is_at_append_time(session, gm, player, monkeypatch):
    stale = engine.load_rules(session)  # a concurrent request loaded its rules before this reward
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "dock", "status": "complete"})
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    assert kira.xp == 50
    session.refresh_from_db()
    monkeypatch.setattr("narrative.engine.missions.load_rules", lambda s: stale)
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "power", "status": "complete"})
    kira.refresh_from_db()
    assert kira.xp == 150
    reward = Event.objects.filter(session=session, type="RewardGranted").order_by("-seq").first()
    assert {m["character_id"]: m["xp"] for m in reward.payload["party"]}[kira.pk] == 150
    assert_replays(session)


# ---- the DDA window ----------------------------------------------------------------------------


def test_outcomes_are_kept_for_the_widest_dda_window():
    assert reducer.RECENT_OUTCOMES == dda.MAX_WINDOW


def _checks(n, **extra):
    return [
        reducer.EventRecord(i + 1, "DiceRolled", payload={"kind": "check", "outcome": "failure", **extra})
        for i in range(n)
    ]


def test_old_check_events_replay_as_they_were_folded():
    assert len(reducer.replay(_checks(60))["outcomes"]) == reducer.LEGACY_RECENT_OUTCOMES
    assert len(reducer.replay(_checks(60, outcomes_kept=50))["outcomes"]) == 50


def test_a_wide_dda_window_sees_every_check_in_it(session, player, settings):
    settings.GTW_DDA = {"window": 20, "dc_min_offset": -3, "dc_max_offset": 3}
    for i in range(15):
        _, created = call(
            session, player, "rules_skill_check", {"skill": "t", "attribute": "tech", "dc": 12}, index=i
        )
        assert "outcomes_kept" not in tools.outcome_of(created).result
    session.refresh_from_db()
    assert len(session.state["outcomes"]) == 15
    assert_replays(session)


# ---- the stored DC offset within today's caps -----------------------------------------------------


def test_a_stored_dc_offset_is_pulled_inside_narrowed_caps(session, player, settings):
    events.append(
        session,
        [
            events.NewEvent(
                type="DifficultyAdjusted", payload={"dda_state": {"dc_offset": 3, "intensity": 1.0}}
            )
        ],
    )
    settings.GTW_DDA = {"window": 6, "dc_min_offset": -1, "dc_max_offset": 1}
    _, created = call(session, player, "rules_skill_check", {"skill": "t", "attribute": "tech", "dc": 12})
    roll = created[0].payload
    assert roll["dc_offset"] == 1 and roll["dc"] == 13
    assert_replays(session)


# ---- XP beyond what one reward grants --------------------------------------------------------------

RICH = """mission rich "Rich" biome derelict-station summary "s"
scene a "A"
objective o "O" { reward { xp 100000 }
  complete when flag payday }
complete when flag done
"""


def test_reward_granted_reports_the_xp_granted(session, gm, player):
    def more(ast):
        ast["objectives"][0]["reward"]["xp"] = 1_000_000

    install_legacy(RICH, more)
    engine.mission_start(session=session, slug="rich", actor_id=gm.pk)
    call(session, player, "world_update", {"flag": "payday", "value": True})
    reward = Event.objects.get(session=session, type="RewardGranted")
    assert reward.payload["xp"] == progression.MAX_GRANT
    assert Character.objects.get(campaign=session.campaign, owner=player).xp == progression.MAX_GRANT
    assert_replays(session)
