"""Regression tests for the game engine: story-deck draws (no repeats, factions, filters the decks
refuse), the opening beat, tool arguments (whole floats, NUL), rules errors as refusals, XP under
concurrent rewards, the DDA window and caps, and deck text that is not valid Unicode."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from campaigns import events
from campaigns import state as reducer
from campaigns.events import to_record
from campaigns.models import Character, Event
from missions.dsl import compile_source
from missions.dsl.ast import content_hash
from missions.models import Mission
from missions.rules import dda, progression
from missions.services import mission_install
from narrative import decks as deck_rules
from narrative import engine, tools
from tests.narrative.test_engine import call

DECKS = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter" / "decks"


def log(session):
    return list(Event.objects.filter(session=session).order_by("seq"))


def types(session):
    return [e.type for e in log(session)]


def assert_replays(session):
    session.refresh_from_db()
    assert reducer.replay(to_record(e) for e in log(session)) == session.state


def shipped_decks():
    trusted = deck_rules.load_trusted_keys(DECKS / "trusted_keys.json")
    return [deck_rules.load_deck_file(p, trusted) for p in sorted(DECKS.glob("reach-*.json"))]


def install_legacy(source: str, edit) -> Mission:
    """Install `source`, then change its AST as an older compiler might have accepted it."""
    mission, _ = mission_install(source=source)
    ast = json.loads(json.dumps(mission.ast))
    edit(ast)
    Mission.objects.filter(pk=mission.pk).update(ast=ast, content_hash=content_hash(ast))
    return Mission.objects.get(pk=mission.pk)


# ---- 1. drawn cards are not drawn again --------------------------------------------------------


def test_candidates_exclude_the_deck_card_keys_the_engine_records():
    card = {"id": "c1", "kind": "twist", "title": "t", "text": "t", "weight": 1, "requires": {}, "payoff": ""}
    deck = deck_rules.Deck(slug="d", name="D", version="1", cards=(card,))
    assert deck_rules.candidates([deck], exclude={deck_rules.card_key("d", "c1")}) == []
    assert deck_rules.candidates([deck], exclude={"other:c1"}) != []
    assert deck_rules.candidates([deck], exclude={"c1"}) == []  # a bare id: in any deck


def test_a_session_never_draws_the_same_card_twice(session, player):
    drawn, refusals = [], []
    for i in range(8):
        outcome, created = call(session, player, "deck_draw", {"kind": "complication"}, action_seq=1000 + i)
        if outcome.refused:
            refusals.append(outcome.result["error"])
        else:
            drawn.append(created[0].payload["card"])
    assert drawn and len(drawn) == len(set(drawn))
    assert refusals and all("no complication card fits" in r for r in refusals)
    session.refresh_from_db()
    assert session.state["drawn"] == [f"reach-twists:{c}" for c in drawn]
    assert_replays(session)


# ---- 2. a draw that can't be made does not stall the session ------------------------------------

TAGGED = """mission tagged "Tagged" biome derelict-station summary "s"
scene a "A"
twist t { when flag trigger
  draw hazard where biome == "derelict-station" }
complete when flag done
"""


def test_a_where_key_the_decks_refuse_fires_the_twist_without_a_card(session, gm, player):
    install_legacy(TAGGED, lambda ast: ast["twists"][0]["draw"]["where"].update(tag="vacuum"))
    engine.mission_start(session=session, slug="tagged", actor_id=gm.pk)
    outcome, created = call(session, player, "world_update", {"flag": "trigger", "value": True})
    assert not outcome.refused
    twist = next(e for e in created if e.type == "TwistTriggered")
    assert "unknown where key 'tag'" in twist.payload["no_card"]
    assert "CardDrawn" not in [e.type for e in created]
    session.refresh_from_db()
    assert session.state["mission"]["state"]["flags"] == {"trigger": True}
    assert session.state["mission"]["state"]["twists"] == ["t"]
    assert_replays(session)


# ---- 3. factions ---------------------------------------------------------------------------------


def test_a_scenes_factions_make_faction_cards_drawable():
    decks = shipped_decks()
    base = {"biome": "derelict-station", "beat": "inciting", "clocks": {}}
    ids = {c["id"] for _, c, _ in deck_rules.candidates(decks, kind="agenda", context=base)}
    assert "ossian-wants-the-crate-moved" not in ids
    with_helix = {**base, "faction": ["choir", "helix"]}
    ids = {c["id"] for _, c, _ in deck_rules.candidates(decks, kind="agenda", context=with_helix)}
    assert {"ossian-wants-the-crate-moved", "ameline-keeps-the-song", "scavengers-circle"} <= ids
    assert "hale-wants-a-culprit" not in ids


def test_where_faction_selects_the_cards_that_require_that_faction():
    decks = shipped_decks()
    where = {"faction": "helix"}
    pool = [
        deck_rules.Deck(d.slug, d.name, d.version, tuple(c for c in d.cards if deck_rules.matches(c, where)))
        for d in decks
    ]
    context = deck_rules.where_context(where, {"biome": "derelict-station", "beat": "twist", "clocks": {}})
    ids = {c["id"] for _, c, _ in deck_rules.candidates(pool, kind="agenda", context=context)}
    assert {"ossian-wants-the-crate-moved", "helix-buys-silence"} <= ids
    assert not ids & {"hale-wants-a-culprit", "ameline-keeps-the-song"}


def test_draws_see_the_factions_of_the_npcs_present(session, player):
    # vesper-relay opens in the docking ring, where Ossian (helix) is.
    drawn = []
    for i in range(2):
        outcome, created = call(session, player, "deck_draw", {"kind": "agenda"}, action_seq=2000 + i)
        assert not outcome.refused, outcome.result
        drawn.append(created[0].payload["card"])
    assert sorted(drawn) == ["ossian-wants-the-crate-moved", "scavengers-circle"]
    assert_replays(session)


# ---- 4. the inciting beat --------------------------------------------------------------------------

OPENER = """mission opener "Opener" biome derelict-station summary "s"
scene a "A"
objective greet "Greet" { complete when beat inciting and flag hello }
twist early { at beat inciting
  when flag hello
  text "An early twist." }
twist omen { at beat inciting
  text "An omen." }
complete when flag done
"""


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


# ---- 5. whole-number floats, and rule errors as refusals ---------------------------------------------


@pytest.mark.parametrize(
    "name,arguments",
    [
        ("rules_skill_check", {"skill": "tech", "attribute": "tech", "dc": 12.0}),
        ("combat_start", {"foes": [{"name": "rat", "agility": 10.0}]}),
        ("world_update", {"flag": "airlock_open", "value": 1.0}),
    ],
)
def test_whole_number_floats_count_as_integers(session, player, name, arguments):
    outcome, created = call(session, player, name, arguments)
    assert not outcome.refused, outcome.result
    session.refresh_from_db()
    if name == "rules_skill_check":
        assert created[0].payload["base_dc"] == 12 and type(created[0].payload["base_dc"]) is int
    if name == "combat_start":
        assert any(e["name"] == "rat" for e in session.state["initiative"]["order"])
    if name == "world_update":
        flags = session.state["mission"]["state"]["flags"]
        assert flags == {"airlock_open": 1} and type(flags["airlock_open"]) is int
    assert_replays(session)


def test_fractional_numbers_are_still_refused(session, player):
    outcome, _ = call(session, player, "rules_skill_check", {"skill": "t", "attribute": "tech", "dc": 12.5})
    assert outcome.refused and "12.5" in outcome.result["error"]


def test_a_rule_error_is_a_refusal_not_a_failed_turn(session, player, monkeypatch):
    def broken(*args, **kwargs):
        raise dda.DdaError("dc offset must be -10..10, got 11")

    monkeypatch.setattr(tools.dda, "apply_dc", broken)
    before = session.version
    outcome, created = call(
        session, player, "rules_skill_check", {"skill": "t", "attribute": "tech", "dc": 12}
    )
    assert outcome.refused and "dc offset must be -10..10" in outcome.result["error"]
    assert [e.type for e in created] == ["ToolRefused"]
    session.refresh_from_db()
    assert session.version == before + 1 and "DiceRolled" not in types(session)
    assert_replays(session)


# ---- 6. characters Postgres can't store ----------------------------------------------------------


@pytest.mark.parametrize(
    "arguments,stored",
    [
        ({"flag": "crate", "value": "deliv\u0000ered"}, {"flag": "crate", "value": "delivered"}),
        ({"flag": "crate", "value": "x\ud800y"}, {"flag": "crate", "value": "xy"}),
        (
            {"flag": "crate", "value": "ok", "rea\u0000son": "r"},
            {"flag": "crate", "value": "ok", "reason": "r"},
        ),
    ],
)
def test_unstorable_characters_are_refused_and_stored_without_them(session, player, arguments, stored):
    outcome, _ = call(session, player, "world_update", arguments)
    assert outcome.refused and "NUL" in outcome.result["error"]
    refusal = Event.objects.get(session=session, type="ToolRefused")
    assert refusal.payload["arguments"] == stored
    session.refresh_from_db()
    assert session.state["mission"]["state"]["flags"] == {}
    assert_replays(session)


def test_a_tool_name_with_a_nul_is_refused_not_a_crash(session, player):
    outcome, created = call(session, player, "world_up\u0000date", {"flag": "crate", "value": "x"})
    assert outcome.refused and "unknown tool 'world_up\x00date'" in outcome.result["error"]
    assert created[0].payload["tool"] == "world_update" and "\x00" not in created[0].payload["error"]
    assert_replays(session)


# ---- 7. deck text that is not valid Unicode -------------------------------------------------------


def _signed_deck():
    pem, public = deck_rules.generate_keypair()
    deck = {
        "slug": "d",
        "name": "D",
        "version": "1",
        "cards": [{"id": "c1", "kind": "twist", "title": "t", "text": "x", "weight": 1}],
    }
    return deck_rules.sign_deck(deck, pem), {deck_rules.key_id_for(public): public}


def test_a_lone_surrogate_in_a_deck_is_a_deck_error():
    with pytest.raises(deck_rules.DeckError, match="lone surrogate"):
        deck_rules.canonical_bytes({"name": "D\ud800"})
    with pytest.raises(deck_rules.DeckError, match="lone surrogate"):
        deck_rules.validate_deck({"slug": "d", "name": "D\ud800", "version": "1", "cards": []})
    doc, trusted = _signed_deck()
    raw = json.dumps(doc).replace('"name": "D"', '"name": "D\\ud800"').encode()
    with pytest.raises(deck_rules.DeckError, match="lone surrogate"):
        deck_rules.verify_deck(deck_rules.parse_json_bytes(raw, "deck"), trusted)


# ---- 8. concurrent rewards ---------------------------------------------------------------------------


def test_rewards_build_on_the_xp_as_it_is_at_append_time(session, gm, player, monkeypatch):
    stale = engine.load_rules(session)  # a concurrent request loaded its rules before this reward
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "dock", "status": "complete"})
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    assert kira.xp == 50
    session.refresh_from_db()
    monkeypatch.setattr(engine, "load_rules", lambda s: stale)
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "power", "status": "complete"})
    kira.refresh_from_db()
    assert kira.xp == 150
    reward = Event.objects.filter(session=session, type="RewardGranted").order_by("-seq").first()
    assert {m["character_id"]: m["xp"] for m in reward.payload["party"]}[kira.pk] == 150
    assert_replays(session)


# ---- 10. the DDA window ----------------------------------------------------------------------------


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
        assert "outcomes_kept" not in tools._outcome_of(created).result
    session.refresh_from_db()
    assert len(session.state["outcomes"]) == 15
    assert_replays(session)


# ---- 11. the stored DC offset within today's caps -----------------------------------------------------


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


# ---- 12. XP beyond what one reward grants --------------------------------------------------------------

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


def test_draws_are_reproducible_from_the_event_and_context():
    decks = shipped_decks()
    context = {"biome": "derelict-station", "beat": "inciting", "clocks": {}, "faction": ["helix"]}
    first = deck_rules.draw(decks, random.Random(7), kind="agenda", context=context, seed=7)
    again = deck_rules.draw(decks, random.Random(7), kind="agenda", context=context, seed=7)
    assert first == again
    compile_source(OPENER)  # the opener above is a valid mission
