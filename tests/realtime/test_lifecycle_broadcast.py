"""Ending and resuming a session reach every open tab at once (issue 12).

Every committed event is broadcast once, by one event-store listener (realtime.listeners); no
service opts in by calling the broadcaster itself."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime.routing import websocket_urlpatterns
from tests.realtime.sockets import append_and_broadcast, frames_until, has, joined

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop; give it its own channels-redis layer instance."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def communicator(session, user):
    comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/?format=json")
    comm.scope["user"] = user
    return comm


@pytest.fixture(autouse=True)
def no_heal(settings):
    """No heartbeat (which also heals missed events) within the tests' waits: what arrives came
    by broadcast."""
    settings.GTW_PRESENCE_HEARTBEAT_S = 3600


async def event_of_type(comm, event_type: str, wait: float = 20) -> dict:
    """The next event frame of `event_type`; anything else on the way (presence) is skipped."""
    while True:
        frame = json.loads(await comm.receive_from(timeout=wait))
        if frame.get("type") == "event" and frame["event"]["type"] == event_type:
            return frame


def _end(session, gm):
    from campaigns import selectors, services

    services.session_end(
        session=session, membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )


def _resume(session, gm):
    from campaigns import selectors, services
    from campaigns.models import PlaySession

    session = PlaySession.objects.get(pk=session.pk)
    membership = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    services.session_resume(session=session, membership=membership)


def test_session_ended_and_resumed_reach_other_open_tabs_at_once(session, gm, player, outsider):
    """issue 12 hole: SessionResumed and SessionEnded were never broadcast (broadcasting was opt-in
    per call site), so other tabs learned of them only at the heartbeat heal."""
    from campaigns.models import Event

    async def go():
        player_tab = communicator(session, player)
        other_gm_tab = communicator(session, gm)
        assert (await player_tab.connect())[0] and (await other_gm_tab.connect())[0]
        for tab in (player_tab, other_gm_tab):
            await joined(tab)  # in the group before anything is committed
        stranger = communicator(session, outsider)
        assert (await stranger.connect())[0]
        # The outsider's socket is closed before it could hear anything.
        assert await stranger.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        await stranger.disconnect()

        await database_sync_to_async(_end)(session, gm)
        ended = await database_sync_to_async(Event.objects.get)(session=session, type="SessionEnded")
        for tab in (player_tab, other_gm_tab):
            frame = await event_of_type(tab, "SessionEnded")
            assert frame["seq"] == ended.seq

        await database_sync_to_async(_resume)(session, gm)
        resumed = await database_sync_to_async(Event.objects.get)(session=session, type="SessionResumed")
        for tab in (player_tab, other_gm_tab):
            frame = await event_of_type(tab, "SessionResumed")
            assert frame["seq"] == resumed.seq
        await player_tab.disconnect()
        await other_gm_tab.disconnect()

    async_to_sync(go)()


def test_each_committed_event_goes_out_once_in_seq_order(session, gm, player):
    """One broadcast per committed event, whoever appended it: a whisper (once a call site of its
    own) arrives once, after the end and resume, in seq order."""
    from campaigns import selectors, services
    from campaigns.models import PlaySession

    def whisper_then_end_then_resume():
        membership = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
        live = PlaySession.objects.get(pk=session.pk)
        services.session_whisper(session=live, membership=membership, to_user_id=player.pk, text="psst")
        _end(session, gm)
        _resume(session, gm)
        return PlaySession.objects.get(pk=session.pk).version

    async def go():
        tab = communicator(session, player)
        assert (await tab.connect())[0]
        await joined(tab)
        before = await database_sync_to_async(lambda: PlaySession.objects.get(pk=session.pk).version)()
        last = await database_sync_to_async(whisper_then_end_then_resume)()
        seqs = []
        while not seqs or seqs[-1] < last:
            frame = json.loads(await tab.receive_from(timeout=20))
            if frame.get("type") == "event":
                seqs.append(frame["seq"])
        assert seqs == list(range(before + 1, last + 1))
        # One more event through the same group: a second copy of any of them would come first.
        sentinel = await database_sync_to_async(append_and_broadcast)(session.pk)
        later = [
            f for f in await frames_until(tab, has("WorldUpdated", seq=sentinel)) if f["type"] == "event"
        ]
        assert [f["seq"] for f in later] == [sentinel]  # nothing twice
        await tab.disconnect()

    async_to_sync(go)()


def test_an_open_play_page_loses_its_action_box_when_the_session_ends(session, gm):
    """Ending a session reached open tabs as a log line only: the action box stayed, inviting an
    action the server would refuse. The live SessionEnded swaps it for the ended notice, and a
    live SessionResumed asks for a reload (the action box needs a fresh idempotency key)."""
    from campaigns.models import Event
    from realtime import broadcast
    from realtime.apps import session_events_by_seq

    _end(session, gm)
    ended = session_events_by_seq(session.pk, [Event.objects.get(session=session, type="SessionEnded").seq])
    html = broadcast.render_event(ended[0])
    assert 'id="act-area"' in html and 'hx-swap-oob="true"' in html
    assert "This session has ended." in html and 'id="action-form"' not in html

    _resume(session, gm)
    resumed = session_events_by_seq(
        session.pk, [Event.objects.get(session=session, type="SessionResumed").seq]
    )
    html = broadcast.render_event(resumed[0])
    assert 'id="notice"' in html and "Reload the page" in html
