"""Branching: inherited memories survive a branch of a branch, stage sessions are refused, and
characters (progression, inventory, status effects) are copied as they were at the branch seq."""

from __future__ import annotations

import pytest

from campaigns import events, selectors
from campaigns import state as reducer
from campaigns.branching import campaign_branch
from campaigns.errors import Invalid
from campaigns.models import Campaign, Character, Event, PlaySession
from memory import services as memory_services
from memory.models import Memory
from narrative import engine
from tests.narrative.test_engine import call


def gm_membership(campaign, gm):
    return selectors.membership_get(viewer=gm, campaign_id=campaign.pk)


def note(campaign, gm, text):
    return memory_services.memory_record(membership=gm_membership(campaign, gm), text=text)


def tick(session, n=1):
    for _ in range(n):
        events.append(session, [events.NewEvent(type="Note", payload={})])
    session.refresh_from_db()
    return session.version


def branch(session, gm, at_seq):
    session.refresh_from_db()
    return campaign_branch(membership=gm_membership(session.campaign, gm), session=session, at_seq=at_seq)


def texts(campaign):
    return sorted(Memory.objects.filter(campaign=campaign).values_list("text", flat=True))


def kira(campaign, player):
    return Character.objects.get(campaign=campaign, owner=player)


def ossian(campaign, gm):
    """The GM's character: the holder of what the GM's overrides find."""
    return Character.objects.get(campaign=campaign, owner=gm)


def assert_replays(session):
    session.refresh_from_db()
    assert events.replay_from_scratch(session.pk) == session.state
    assert reducer.state_hash(session.state) == session.state_hash


# ---- memories: the cutoff does not depend on when the copy was made ----------------------------


def test_a_branch_of_a_branch_keeps_the_inherited_notes(session, gm):
    note(session.campaign, gm, "The relay hums in E minor.")
    note(session.campaign, gm, "Hale owes Ossian a favour.")
    at = tick(session, 2)
    first = branch(session, gm, at)
    assert len(texts(first.campaign)) == 2
    second = branch(first, gm, at)
    assert texts(second.campaign) == texts(first.campaign) == texts(session.campaign)
    assert_replays(second)


def test_a_branch_of_a_branch_at_an_earlier_seq_drops_what_came_later(session, gm):
    note(session.campaign, gm, "Early note.")
    early = tick(session)
    note(session.campaign, gm, "Late note.")
    late = tick(session)
    first = branch(session, gm, late)
    assert texts(first.campaign) == ["Early note.", "Late note."]
    assert texts(branch(first, gm, early).campaign) == ["Early note."]


def test_the_sessions_future_never_leaks_into_a_branch(session, gm):
    at = tick(session)
    later = tick(session)
    parent = session.campaign
    ns = f"campaign:{parent.pk}"
    Memory.objects.create(campaign=parent, namespace=ns, text="now", source_session=session, source_seq=at)
    Memory.objects.create(
        campaign=parent, namespace=ns, text="future", source_session=session, source_seq=later
    )
    note(parent, gm, "A note written after the branch point.")
    first = branch(session, gm, at)
    assert texts(first.campaign) == ["now"]
    # The copy keeps the original timestamps, so a branch of the branch sees the same past.
    copied = Memory.objects.get(campaign=first.campaign)
    assert copied.created_at == Memory.objects.get(campaign=parent, text="now").created_at
    assert texts(branch(first, gm, at).campaign) == ["now"]


# ---- stage sessions --------------------------------------------------------------------------


def test_a_stage_session_cannot_be_branched(campaign, characters, gm):
    from campaigns.stage import services as stage_services

    staged = stage_services.stage_open(membership=gm_membership(campaign, gm))
    with pytest.raises(Invalid, match="Stage sessions can't be branched"):
        branch(staged, gm, staged.version)
    assert not PlaySession.objects.exclude(campaign=campaign).exists()


# ---- characters as they were at the branch seq -----------------------------------------------


def complete(session, gm, objective):
    session.refresh_from_db()
    engine.gm_override(session=session, actor_id=gm.pk, change={"objective": objective, "status": "complete"})
    session.refresh_from_db()
    return session.version


def test_characters_keep_their_progression_and_inventory(session, gm, player):
    at = complete(session, gm, "dock")
    parent = session.campaign
    parent.refresh_from_db()
    assert kira(parent, player).xp == 50 and parent.stash  # an objective's items: the party's stash
    branched = branch(session, gm, at).campaign
    for original, copy in (
        (kira(parent, player), kira(branched, player)),
        (ossian(parent, gm), ossian(branched, gm)),
    ):
        assert (copy.xp, copy.level, copy.inventory) == (original.xp, original.level, original.inventory)
        assert copy.name == original.name and copy.attributes == original.attributes
    branched.refresh_from_db()
    assert branched.stash == parent.stash


def test_rewards_after_the_branch_seq_are_not_copied(session, gm, player):
    # Progress from an earlier session: the branch keeps it.
    Character.objects.filter(campaign=session.campaign).update(
        xp=150, level=2, inventory=[{"item": "rope", "qty": 1}]
    )
    Campaign.objects.filter(pk=session.campaign_id).update(stash=[{"item": "rope", "qty": 1}])
    at = session.version
    complete(session, gm, "dock")
    after_first = session.version
    complete(session, gm, "power")
    assert kira(session.campaign, player).xp == 150 + 50 + 100
    session.campaign.refresh_from_db()
    assert "medpatch" in {i["item"] for i in session.campaign.stash}

    before = branch(session, gm, at).campaign
    for copy in (kira(before, player), ossian(before, gm)):
        assert (copy.xp, copy.level, copy.inventory) == (150, 2, [{"item": "rope", "qty": 1}])
    before.refresh_from_db()
    assert before.stash == [{"item": "rope", "qty": 1}]

    middle = branch(session, gm, after_first).campaign
    assert (kira(middle, player).xp, kira(middle, player).level) == (200, 2)
    middle.refresh_from_db()
    held = middle.stash
    assert {"item": "rope", "qty": 1} in held and "medpatch" in {i["item"] for i in held}
    expected = {i["item"]: i["qty"] for i in session.campaign.stash}
    for reward in Event.objects.filter(session=session, type="RewardGranted", seq__gt=after_first):
        for find in reward.payload["items"]:
            expected[find["item"]] -= find["qty"]
    assert {i["item"]: i["qty"] for i in held} == {k: v for k, v in expected.items() if v}


def test_status_effects_follow_the_branchs_characters(session, gm, player):
    outcome, _ = call(session, player, "status_apply", {"character": "Kira Vance", "effect": "shaken"})
    assert not outcome.refused
    session.refresh_from_db()
    parent_kira = kira(session.campaign, player)
    assert set(session.state["statuses"]) == {str(parent_kira.pk)}

    new_session = branch(session, gm, session.version)
    copy = kira(new_session.campaign, player)
    assert set(new_session.state["statuses"]) == {str(copy.pk)}
    assert new_session.state["statuses"][str(copy.pk)] == session.state["statuses"][str(parent_kira.pk)]
    assert_replays(new_session)
    # The engine reads the remapped statuses for the branch's character.
    batch = engine.Batch(engine.load_rules(new_session), new_session.state, new_session.version + 1)
    assert batch.status_modifier(copy.pk, "wits") == -2


def test_a_branch_with_rewards_replays_to_its_stored_state(session, gm, player):
    at = complete(session, gm, "dock")
    new_session = branch(session, gm, at)
    assert_replays(new_session)
    copy = kira(new_session.campaign, player)
    rewards = Event.objects.filter(session=new_session, type="RewardGranted")
    ids = {m["character_id"] for r in rewards for m in r.payload["party"]}
    assert copy.pk in ids and kira(session.campaign, player).pk not in ids
