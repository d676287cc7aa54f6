"""Presence and the stage roster over sockets: the play and stage sockets of one session both get
presence, a roster change while the stage socket connects is not lost, a member's first connect
and a new seat send the roster to the others (a new seat after commit, an existing one not)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from tests.realtime.sockets import communicator, frames_until, has, run
from tests.realtime.test_stage_consumer import fresh_rate_limits, player2, spectator, stage  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


# ---- presence per socket kind -----------------------------------------------------------


@pytest.mark.parametrize("first", ["stage", "play"])
def test_play_and_stage_sockets_of_one_session_both_get_presence(stage, gm, player, first):  # noqa: F811
    async def go():
        st = communicator(stage.pk, gm, path="stage")
        pl = communicator(stage.pk, player, path="sessions")
        for comm in (st, pl) if first == "stage" else (pl, st):
            await comm.connect()
        # Each socket's presence frame comes when it comes (announcements are coalesced): wait
        # for it rather than for a quiet second.
        await asyncio.gather(frames_until(st, has("presence")), frames_until(pl, has("presence")))
        await st.disconnect()
        await pl.disconnect()

    run(go)


# ---- the stage roster -------------------------------------------------------------


def raised(frames, user) -> bool:
    return any(
        f["type"] == "roster" and [q["username"] for q in f["roster"]["queue"]] == [user.username]
        for f in frames
    )


def audience(roster) -> list[str]:
    return [a["username"] for a in roster["audience"]]


def test_a_roster_change_while_the_stage_socket_connects_is_not_lost(stage, gm, player, monkeypatch):  # noqa: F811
    from realtime.stage_consumer import StageConsumer

    original = StageConsumer.__dict__["_seat_and_roster"]  # a database_sync_to_async descriptor

    def raise_hand():
        from campaigns.stage import selectors as stage_selectors
        from campaigns.stage import services as stage_services

        session, membership = stage_selectors.stage_get(viewer=player, session_id=stage.pk)
        stage_services.hand_raise(session=session, membership=membership)

    async def seat_and_roster(self):
        roster = await original.__get__(self, type(self))()
        if self.user == gm:
            await database_sync_to_async(raise_hand)()  # lands between the read and the frame
        return roster

    monkeypatch.setattr(StageConsumer, "_seat_and_roster", seat_and_roster)

    async def go():
        comm = communicator(stage.pk, gm, path="stage")
        await comm.connect()
        # Its own (older) roster, then the group's newer one with the raised hand, whenever that
        # comes: a lost change would leave the queue empty until the wait gives up.
        frames = await frames_until(comm, lambda fs: raised(fs, player))
        rosters = [f["roster"] for f in frames if f["type"] == "roster"]
        assert [q["username"] for q in rosters[-1]["queue"]] == [player.username]
        await comm.disconnect()

    run(go)


def test_a_members_first_connect_sends_the_roster_to_the_others(stage, gm, player):  # noqa: F811
    async def go():
        g = communicator(stage.pk, gm, path="stage")
        await g.connect()
        first = await frames_until(g, has("roster"))
        assert player.username not in audience(first[-1]["roster"])
        p = communicator(stage.pk, player, path="stage")
        await p.connect()
        await frames_until(
            g, lambda fs: any(f["type"] == "roster" and player.username in audience(f["roster"]) for f in fs)
        )
        await g.disconnect()
        await p.disconnect()

    run(go)


def test_a_new_seat_sends_the_roster_after_commit_and_an_existing_one_does_not(stage, player, monkeypatch):  # noqa: F811
    from campaigns.models import Membership
    from campaigns.stage import services as stage_services
    from realtime import stage as realtime_stage

    sent = []
    monkeypatch.setattr(realtime_stage, "send_roster", sent.append)
    membership = Membership.objects.get(campaign_id=stage.campaign_id, user=player)
    stage_services.seat_ensure(session=stage, membership=membership)
    assert sent == [stage.pk]
    stage_services.seat_ensure(session=stage, membership=membership)
    assert sent == [stage.pk]
