"""Security review of issue 11 hole 3: the cap on a player's actions waiting for the GM
(GTW_PENDING_ACTIONS_MAX) counted one session at a time. Each session has its own turn runner,
so a player with a few sessions — a sandbox campaign of their own is one request away — could
keep a turn worker busy per session, the very stall the cap was meant to prevent. The cap now
counts the player's unanswered actions in every live session."""

from __future__ import annotations

import pytest

from campaigns import selectors, services
from campaigns.errors import RateLimited
from campaigns.models import Event
from narrative import turns


def act(session, user, key: str):
    return turns.submit_action(session_id=session.pk, user=user, text="I wait", idempotency_key=key)


@pytest.fixture
def sandbox(player, content):
    """A campaign of the player's own, with a session: one request for anyone."""
    campaign = services.campaign_create(user=player, name="My sandbox", pack_slug="starter")
    return services.session_open(membership=selectors.membership_get(viewer=player, campaign_id=campaign.pk))


def test_the_waiting_actions_cap_counts_every_session_of_the_player(session, sandbox, player, gm, settings):
    """issue 11 hole 3: past the cap in total — two actions waiting at the GM's table, one in
    the player's own sandbox — a fourth in either is refused (429), with the same sentence; a
    replay is still free, and the GM's allowance is their own."""
    settings.GTW_PENDING_ACTIONS_MAX = 3
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "action": (100, 30, "actions")}
    # No worker runs here (the test's transaction never commits): every action stays pending.
    first = act(session, player, "t1")
    act(session, player, "t2")
    act(sandbox, player, "s1")
    for where, key in ((sandbox, "s2"), (session, "t3")):
        with pytest.raises(RateLimited, match=r"^You already have 3 actions waiting for the GM") as refused:
            act(where, player, key)
        assert refused.value.status == 429
    assert Event.objects.filter(type="Action", actor=player).count() == 3
    assert act(session, player, "t1").events[0].seq == first.events[0].seq  # a replay
    assert act(session, gm, "g1").events  # someone else's cap

    turns.run_pending_turns(sandbox.pk)  # the sandbox's turn is answered: one may wait again
    assert act(session, player, "t3").events


def test_ended_sessions_do_not_count(session, sandbox, player, settings):
    """What waits in a session that has ended is no turn any runner will take."""
    settings.GTW_PENDING_ACTIONS_MAX = 2
    act(sandbox, player, "s1")
    act(sandbox, player, "s2")
    services.session_end(
        session=sandbox, membership=selectors.membership_get(viewer=player, campaign_id=sandbox.campaign_id)
    )
    assert act(session, player, "t1").events
