"""Tool calls the engine gets from a model: whole-number floats count as integers, fractions are
still refused, a rules error is a refusal rather than a failed turn, and characters Postgres can't
store (NUL, lone surrogates) are refused — in arguments and in a tool's name."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from missions.rules import dda
from tests.narrative.engine_helpers import assert_replays, types
from tests.narrative.test_engine import call

# ---- whole-number floats, and rule errors as refusals ---------------------------------------------


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

    monkeypatch.setattr(dda, "apply_dc", broken)
    before = session.version
    outcome, created = call(
        session, player, "rules_skill_check", {"skill": "t", "attribute": "tech", "dc": 12}
    )
    assert outcome.refused and "dc offset must be -10..10" in outcome.result["error"]
    assert [e.type for e in created] == ["ToolRefused"]
    session.refresh_from_db()
    assert session.version == before + 1 and "DiceRolled" not in types(session)
    assert_replays(session)


# ---- characters Postgres can't store ----------------------------------------------------------


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
