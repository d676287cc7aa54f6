"""Security review of issue 11 ("shared doc abuse" held for updates): a client's sync step 1 is a
few bytes, and for each one the server merges the whole stored document (up to 4 MB, ~30 ms)
and sends back everything the client lacks — with an empty state vector, the whole document.
Step 1 frames shared the update allowance (50 a second per socket), so one member could keep a
web process busy merging and sending ~180 MB a second. Step 1 now has its own allowance
(STEP1_BURST, then one every 2 s); past it the frame is dropped with a clear error, and updates
are unaffected."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from pycrdt import Doc, Text, YSyncMessageType

from realtime import crdt, crdt_consumer
from realtime.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def next_message(comm) -> dict:
    message = await comm.receive_output(timeout=10)
    assert message["type"] == "websocket.send", message
    if message.get("bytes") is not None:
        return {"frame": crdt.frame_parse(message["bytes"])}
    return {"error": json.loads(message["text"])}


def test_sync_requests_past_their_allowance_are_dropped_and_updates_still_apply(session, player, monkeypatch):
    """issue 11 (shared docs): the first STEP1_BURST step 1 frames are answered with a step 2;
    the next is refused as rate_limited with no step 2; an update right after is still stored."""
    monkeypatch.setattr(crdt_consumer, "STEP1_RATE_PER_S", 1e-6)  # no refill during the test
    burst = crdt_consumer.STEP1_BURST

    async def go():
        comm = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/sessions/{session.pk}/docs/notes/"
        )
        comm.scope["user"] = player
        assert (await comm.connect())[0]
        hello = await next_message(comm)
        assert hello["frame"].sync == YSyncMessageType.SYNC_STEP1
        for _ in range(burst):
            await comm.send_to(bytes_data=crdt.step1_frame(crdt.EMPTY_STATE_VECTOR))
            answer = await next_message(comm)
            assert answer["frame"].sync == YSyncMessageType.SYNC_STEP2
        await comm.send_to(bytes_data=crdt.step1_frame(crdt.EMPTY_STATE_VECTOR))
        refused = await next_message(comm)
        assert refused["error"]["code"] == "rate_limited"
        assert "sync requests" in refused["error"]["message"]

        doc = Doc()
        text = doc.get("text", type=Text)
        before = doc.get_state()
        text += "The vault code is on the back of the map."
        await comm.send_to(bytes_data=crdt.update_frame(doc.get_update(before)))
        await comm.send_to(bytes_data=crdt.step1_frame(crdt.EMPTY_STATE_VECTOR))  # still refused
        assert (await next_message(comm))["error"]["code"] == "rate_limited"
        await comm.disconnect()

    async_to_sync(go)()
    stored = crdt.shared_doc_json(session_id=session.pk, name="notes")
    assert stored["text"] == "The vault code is on the back of the map."
