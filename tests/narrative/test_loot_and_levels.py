"""Progress you can see (issue 13 part 4): loot lands in an inventory through an event — a search
roll's finds in the searcher's, a mission or objective reward in the party's shared stash — once,
even when a turn is retried; the narration names only what was granted; crossing an XP threshold
appends a level event everyone sees; replays and branches agree with the inventories."""

from __future__ import annotations

import random

import pytest

from campaigns.models import Campaign, Character, Event
from missions.rules import progression
from narrative import engine, turns
from narrative.engine import inventory
from narrative.llm.offline import phrases as P
from tests.narrative.test_engine import assert_replays, call

FOUND = [{"item": "medpatch", "qty": 1}, {"item": "credits", "qty": 43}]


def kira(session, player):
    return Character.objects.get(campaign=session.campaign, owner=player)


def stash(session):
    return Campaign.objects.get(pk=session.campaign_id).stash


def totals(entries):
    out: dict[str, int] = {}
    for entry in entries:
        out[entry["item"]] = out.get(entry["item"], 0) + entry["qty"]
    return out


# ---- a search roll: the searcher's inventory ---------------------------------------------------


def test_a_scavenging_turn_puts_what_it_found_in_the_searchers_inventory(session, player, monkeypatch):
    """The playtest: the GM narrated "medpatch x1", "credits x43" and the inventory stayed empty.
    A scavenging turn of the offline GM now rolls a search, the finds are a LootFound event, they
    are in the searcher's inventory, and the narration names exactly them."""
    monkeypatch.setattr(inventory, "draws_for", lambda total, low, high: 1)
    monkeypatch.setattr(inventory, "search", lambda table, rng, draws, sure=False: [dict(f) for f in FOUND])
    turns.submit_action(
        session_id=session.pk, user=player, text="I search the crates for supplies", idempotency_key="s1"
    )
    turns.run_pending_turns(session.pk)

    found = Event.objects.get(session=session, type="LootFound")
    me = kira(session, player)
    assert found.payload["character_id"] == me.pk and found.payload["to"] == "character"
    assert found.payload["text"] == "a medpatch and 43 credits"
    assert totals(me.inventory) == {"medpatch": 1, "credits": 43}
    assert stash(session) == []  # a find is the finder's, not the party's
    narration = Event.objects.get(session=session, type="Narration").payload["text"]
    assert "a medpatch and 43 credits" in narration
    assert not [junk for tier in P.LOOT.values() for junk in tier if junk in narration]
    assert_replays(session)


def test_a_search_that_finds_nothing_says_so_and_grants_nothing(session, player, monkeypatch):
    monkeypatch.setattr(inventory, "search", lambda table, rng, draws, sure=False: [])
    turns.submit_action(
        session_id=session.pk, user=player, text="I rummage through the wreck", idempotency_key="s1"
    )
    turns.run_pending_turns(session.pk)
    found = Event.objects.get(session=session, type="LootFound")
    assert found.payload["items"] == [] and found.payload["text"] == ""
    assert kira(session, player).inventory == []
    narration = Event.objects.get(session=session, type="Narration").payload["text"]
    assert not [junk for tier in P.LOOT.values() for junk in tier if junk in narration]


def test_search_rolls_draw_from_the_packs_table_and_the_inventory_adds_up(session, player):
    """No patches: the seeded rolls decide. Whatever turned up, the inventory is the sum of the
    LootFound events, every find is on the salvage table, and the draws follow the dice."""
    table_items = {"credits", "medpatch", "breach-charge", "spore-filter", "pulse-pistol"}
    for i in range(12):
        outcome, created = call(
            session, player, "rng_roll", {"expression": "2d6", "loot": "salvage"}, index=i
        )
        assert not outcome.refused
        roll, found = created[0], created[1]
        assert (roll.type, found.type) == ("DiceRolled", "LootFound")
        assert found.payload["draws"] == inventory.draws_for(roll.payload["total"], 2, 12)
        if inventory.sure_find(roll.payload["total"], 2, 12):
            assert found.payload["items"]  # a fair or great roll always turns something up
        assert {f["item"] for f in found.payload["items"]} <= table_items
        assert outcome.result["consequences"][0]["items"] == found.payload["items"]
    finds = Event.objects.filter(session=session, type="LootFound")
    expected = totals(f for e in finds for f in e.payload["items"])
    assert totals(kira(session, player).inventory) == expected
    assert_replays(session)


def test_a_retried_search_grants_once(session, player, monkeypatch):
    monkeypatch.setattr(inventory, "draws_for", lambda total, low, high: 1)
    monkeypatch.setattr(inventory, "search", lambda table, rng, draws, sure=False: [dict(f) for f in FOUND])
    args = {"expression": "2d6", "loot": "any"}
    first, created = call(session, player, "rng_roll", args, action_seq=5, index=0)
    again, replayed = call(session, player, "rng_roll", args, action_seq=5, index=0)  # a re-run turn
    assert created and replayed == [] and again.event_seq == first.event_seq
    assert Event.objects.filter(session=session, type="LootFound").count() == 1
    assert totals(kira(session, player).inventory) == {"medpatch": 1, "credits": 43}


def test_a_gm_without_a_character_searches_for_the_party(session, gm, player, monkeypatch):
    Character.objects.filter(campaign=session.campaign, owner=gm).delete()
    monkeypatch.setattr(inventory, "draws_for", lambda total, low, high: 1)
    monkeypatch.setattr(
        inventory, "search", lambda table, rng, draws, sure=False: [{"item": "spore-filter", "qty": 2}]
    )
    _, created = call(session, gm, "rng_roll", {"expression": "2d6", "loot": "any"})
    found = created[1]
    assert found.payload["to"] == "party" and found.payload["character_id"] is None
    assert stash(session) == [{"item": "spore-filter", "qty": 2}]
    assert kira(session, player).inventory == []


def test_the_roll_decides_how_much_a_search_turns_up():
    from missions.rules import loot

    stingy = loot.validate_table(
        {"nothing": 1_000_000, "entries": [{"item": "medpatch", "weight": 1}]}, slug="stingy"
    )
    assert inventory.draws_for(12, 2, 12) == 2 and inventory.draws_for(7, 2, 12) == 1
    assert not inventory.sure_find(4, 2, 12) and inventory.sure_find(5, 2, 12)
    rng = random.Random(7)
    assert inventory.search(stingy, rng, 1, sure=True) == [{"item": "medpatch", "qty": 1}]
    assert inventory.search(stingy, rng, 2, sure=True) == [{"item": "medpatch", "qty": 2}]
    assert inventory.search(stingy, rng, 1) == []  # a poor roll: the table's "nothing" counts
    assert inventory.search(stingy, rng, 0, sure=True) == []


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"expression": "2d6", "loot": "dragon-hoard"}, "unknown loot table 'dragon-hoard'"),
        ({"expression": "2d6", "loot": "../../etc"}, "invalid arguments"),
        ({"expression": "2d6", "loot": 7}, "invalid arguments"),
        ({"expression": "lots", "loot": "any"}, "invalid arguments"),
    ],
)
def test_a_bad_search_is_refused_and_grants_nothing(session, player, args, reason):
    outcome, _ = call(session, player, "rng_roll", args)
    assert outcome.refused and reason in outcome.result["error"]
    assert not Event.objects.filter(session=session, type__in=("LootFound", "DiceRolled")).exists()
    assert kira(session, player).inventory == [] and stash(session) == []


def test_malformed_item_payloads_never_reach_an_inventory():
    bad = [
        {"item": "medpatch", "qty": -3},
        {"item": "medpatch", "qty": True},
        {"item": "", "qty": 1},
        {"item": "x" * 65, "qty": 1},
        {"item": "credits", "qty": "43"},
        "medpatch",
        {"item": "medpatch", "qty": 2},
    ]
    assert inventory.grants("LootFound", {"character_id": 3, "items": bad}) == [
        (("character", 3), [{"item": "medpatch", "qty": 2}])
    ]
    assert inventory.grants("LootFound", {"character_id": "3", "items": bad}) == []
    assert inventory.grants("LootFound", {"to": "party", "items": "medpatch"}) == []
    assert inventory.add([{"item": "rope", "qty": 1}], bad) == [
        {"item": "medpatch", "qty": 2},
        {"item": "rope", "qty": 1},
    ]
    assert inventory.remove([{"item": "rope", "qty": 1}], [{"item": "rope", "qty": 5}]) == []


# ---- rewards: the party's stash -----------------------------------------------------------------


def test_an_objective_reward_goes_to_the_party_stash_and_xp_to_everyone(session, gm, player):
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "dock", "status": "complete"})
    reward = Event.objects.get(session=session, type="RewardGranted")
    assert reward.payload["to"] == "party" and reward.payload["holder"] is None
    assert stash(session) == [{"item": "medpatch", "qty": 1}]
    for character in Character.objects.filter(campaign=session.campaign):
        assert character.inventory == [] and character.xp == 50
    assert_replays(session)


def test_a_mission_completion_reward_adds_to_the_stash(session, gm, player):
    for objective in ("dock", "power", "crate"):
        session.refresh_from_db()
        engine.gm_override(
            session=session, actor_id=gm.pk, change={"objective": objective, "status": "complete"}
        )
    rewards = Event.objects.filter(session=session, type="RewardGranted").order_by("seq")
    assert "MissionCompleted" in set(Event.objects.filter(session=session).values_list("type", flat=True))
    expected = totals(i for r in rewards for i in r.payload["items"])
    assert expected["breach-charge"] >= 1 and expected["relay-key"] == 1  # the mission's and crate's
    assert totals(stash(session)) == expected
    assert kira(session, player).inventory == []


# ---- level-ups ----------------------------------------------------------------------------------


def test_crossing_a_threshold_appends_a_level_event_everyone_sees(session, gm, player):
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "dock", "status": "complete"})
    assert not Event.objects.filter(session=session, type="LevelGained").exists()  # 50 XP: still level 1
    session.refresh_from_db()
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": "power", "status": "complete"})
    me = kira(session, player)
    assert me.xp == 150 and me.level == 2 == progression.level_for_xp(150)
    levels = Event.objects.filter(session=session, type="LevelGained").order_by("seq")
    mine = next(e for e in levels if e.payload["character_id"] == me.pk)
    assert mine.audience is None  # the whole table sees it
    assert (mine.payload["character"], mine.payload["from_level"], mine.payload["level"]) == (
        "Kira Vance",
        1,
        2,
    )
    assert len(levels) == Character.objects.filter(campaign=session.campaign).count()
    reward = Event.objects.filter(session=session, type="RewardGranted").order_by("-seq").first()
    assert mine.seq > reward.seq
    assert_replays(session)


# ---- branches ----------------------------------------------------------------------------------


def test_a_branch_takes_back_finds_made_after_its_branch_point(session, gm, player, monkeypatch):
    from campaigns import selectors
    from campaigns.branching import campaign_branch

    monkeypatch.setattr(inventory, "draws_for", lambda total, low, high: 1)
    monkeypatch.setattr(
        inventory, "search", lambda table, rng, draws, sure=False: [{"item": "medpatch", "qty": 1}]
    )
    call(session, player, "rng_roll", {"expression": "2d6", "loot": "any"}, action_seq=2)
    session.refresh_from_db()
    at = session.version
    call(session, player, "rng_roll", {"expression": "2d6", "loot": "any"}, action_seq=3)
    assert totals(kira(session, player).inventory) == {"medpatch": 2}

    membership = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    branched = campaign_branch(membership=membership, session=session, at_seq=at)
    copy = Character.objects.get(campaign=branched.campaign, owner=player)
    assert totals(copy.inventory) == {"medpatch": 1}
