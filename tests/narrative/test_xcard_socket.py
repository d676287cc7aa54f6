"""The X-card over a real socket (issue 18): a tab that catches up after the tap gets the
withdrawn narration without its text, and the tap without who tapped; the GM's gets who."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from narrative import turns, xcard
from tests.realtime.sockets import communicator, run
from tests.realtime.test_consumer import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_catch_up_after_a_tap_never_sends_the_withdrawn_text(session, player, gm):
    turns.submit_action(session_id=session.pk, user=player, text="I pry open the crate", idempotency_key="a1")
    turns.run_pending_turns(session.pk)
    narration = Event.objects.get(session=session, type="Narration")
    text = narration.payload["text"]
    xcard.xcard_tap(session_id=session.pk, user=player, idempotency_key="tap")

    async def catch_up(user):
        comm = communicator(session.pk, user, query="format=json&last_seq=0")
        connected, _ = await comm.connect()
        assert connected
        frames = await receive_until(
            comm, lambda f: f.get("type") == "event" and f["event"]["type"].startswith("XCard")
        )
        if user == gm:  # the GM's tab also gets who tapped, right after
            frames += await receive_until(
                comm, lambda f: f.get("type") == "event" and f["event"]["type"] == "XCardTappedBy"
            )
        else:
            await comm.send_to(text_data='{"type": "ping"}')
            frames += await receive_until(comm, lambda f: f.get("type") == "pong")
        await comm.disconnect()
        return frames

    async def go():
        for user in (player, gm):
            frames = await catch_up(user)
            events = {f["event"]["type"]: f["event"] for f in frames if f.get("type") == "event"}
            assert events["Narration"]["payload"] == {
                "action_seq": narration.payload["action_seq"],
                "withdrawn": True,
            }
            assert text not in str(frames)
            assert events["XCardTapped"]["actor"] is None
            assert ("XCardTappedBy" in events) is (user == gm)

    run(go)
