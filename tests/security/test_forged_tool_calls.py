"""Forged tool calls (issue 18 part 6, tool abuse): whatever arguments an injected model sends,
the game's rules decide — a hidden or unknown objective is refused alike (no oracle for what is
hidden), rewards cannot be smuggled in or granted twice, world_update writes only bounded flags,
and every refusal stays in the GM's engine room."""

from __future__ import annotations

import pytest

from campaigns.models import Character, Event
from tests.narrative.test_engine import call
from tests.security import conftest as table


@pytest.fixture
def heist(session, gm, player, commit):
    table.install_mission(commit, session, gm)
    return session


def xp_of(session) -> list[int]:
    return sorted(Character.objects.filter(campaign=session.campaign).values_list("xp", flat=True))


def refusal(session, player, name, arguments) -> str:
    outcome, created = call(session, player, name, arguments)
    assert outcome.refused, (name, arguments, outcome.result)
    assert [e.type for e in created] == ["ToolRefused"] and created[0].audience == []
    return outcome.result["error"]


def test_a_hidden_objective_is_refused_exactly_like_one_that_does_not_exist(heist, player):
    """A forged mission_advance must not tell an injected model which hidden objectives exist:
    the model repeats refusals to the table, so 'not revealed yet' would confirm a guess."""
    hidden = refusal(heist, player, "mission_advance", {"objective": "traitor"})
    unknown = refusal(heist, player, "mission_advance", {"objective": "nonesuch"})
    assert hidden.replace("traitor", "X") == unknown.replace("nonesuch", "X")
    assert table.HIDDEN not in hidden and "reveal" not in hidden.lower()
    heist.refresh_from_db()
    assert heist.state["mission"]["state"]["objectives"].get("traitor", "hidden") == "hidden"


def test_world_query_never_returns_a_hidden_objective(heist, player):
    outcome, _ = call(heist, player, "world_query", {"topic": "objectives"})
    assert [o["id"] for o in outcome.result["objectives"]] == ["open"]
    assert table.HIDDEN not in str(outcome.result)
    assert "hidden" in refusal(heist, player, "world_query", {"topic": "hidden"})  # not a topic


@pytest.mark.parametrize(
    "name,arguments",
    [
        ("mission_advance", {"objective": "open", "xp": 100000}),
        ("mission_advance", {"objective": "open", "reward": {"xp": 999999}}),
        ("world_update", {"flag": "vault_open", "value": True, "xp": 5000}),
        ("world_update", {"flag": "xp", "value": 1000000}),
        ("world_update", {"flag": "xp", "value": 1001}),
        ("grant_xp", {"character": "Kira Vance", "xp": 1000000}),
        ("rng_roll", {"expression": "1d20+1000"}),
        ("rules_skill_check", {"skill": "hacking", "attribute": "tech", "dc": 1}),
        ("rules_skill_check", {"skill": "hacking", "attribute": "tech", "dc": 12, "result": "success"}),
    ],
)
def test_rewards_cannot_be_smuggled_into_arguments(heist, player, name, arguments):
    before = xp_of(heist)
    refusal(heist, player, name, arguments)
    heist.refresh_from_db()
    assert xp_of(heist) == before
    assert not (heist.state["mission"]["state"].get("earned") or {}).get("xp")


def test_an_objective_rewards_once_however_often_the_model_claims_it(heist, player):
    outcome, _ = call(heist, player, "world_update", {"flag": "vault_open", "value": True})
    assert not outcome.refused
    heist.refresh_from_db()
    earned = heist.state["mission"]["state"]["earned"]["xp"]
    assert earned == 50  # "open" completed by its flag, its reward granted
    for _ in range(3):
        error = refusal(heist, player, "mission_advance", {"objective": "open"})
        assert "already" in error or "complete" in error
    heist.refresh_from_db()
    assert heist.state["mission"]["state"]["earned"]["xp"] == earned
    assert max(xp_of(heist)) <= earned + 200  # nothing beyond what the mission grants


def test_setting_a_hidden_objectives_flag_does_not_complete_it_unseen(heist, player):
    """A flag that would satisfy a hidden objective does not complete it (nor pay its XP) while
    it is hidden: the model cannot cash in on a secret it guessed."""
    call(heist, player, "world_update", {"flag": "traitor_named", "value": True})
    heist.refresh_from_db()
    state = heist.state["mission"]["state"]
    assert state["objectives"].get("traitor", "hidden") == "hidden"
    assert (state.get("earned") or {}).get("xp", 0) == 0


@pytest.mark.parametrize(
    "arguments",
    [
        {"flag": "__proto__", "value": 1},
        {"flag": "Vault Open", "value": True},
        {"flag": "x" * 41, "value": 1},
        {"flag": "status", "value": "<script>alert(1)</script>" * 3},
        {"flag": "note", "value": -1001},
        {"flag": "note", "value": {"nested": "object"}},
        {"flag": "note", "value": ["a", "list"]},
        {"flag": "note"},
        {"flag": "note", "value": 1, "objectives": {"traitor": "complete"}},
    ],
)
def test_world_update_writes_only_bounded_flags(heist, player, arguments):
    heist.refresh_from_db()
    before = dict(heist.state["mission"]["state"])
    refusal(heist, player, "world_update", arguments)
    heist.refresh_from_db()
    assert heist.state["mission"]["state"] == before


def test_a_flag_named_like_engine_state_stays_a_flag(heist, player):
    """world_update writes into the flags namespace only: a flag called "objectives" or "scene"
    changes no objective and no scene."""
    heist.refresh_from_db()
    before = heist.state["mission"]["state"]
    for flag in ("objectives", "scene", "earned", "status", "clocks"):
        outcome, _ = call(heist, player, "world_update", {"flag": flag, "value": "complete"})
        assert not outcome.refused
    heist.refresh_from_db()
    after = heist.state["mission"]["state"]
    for key in ("objectives", "scene", "earned", "status", "clocks"):
        assert after.get(key) == before.get(key), key


def test_refusals_are_for_the_gm_only(heist, gm, player, bea):
    refusal(heist, player, "mission_advance", {"objective": "traitor"})
    refusal(heist, player, "grant_xp", {"character": "Kira Vance", "xp": 1})
    assert Event.objects.filter(session=heist, type="ToolRefused").count() == 2
    for user in (player, bea):
        client = table.client_for(user)
        listed = [e["type"] for e in client.get(f"/api/sessions/{heist.pk}/events").json()["events"]]
        assert "ToolRefused" not in listed
        assert "refused" not in client.get(f"/sessions/{heist.pk}/play/").content.decode().lower()
    listed = [
        e["type"] for e in table.client_for(gm).get(f"/api/sessions/{heist.pk}/events").json()["events"]
    ]
    assert listed.count("ToolRefused") == 2
