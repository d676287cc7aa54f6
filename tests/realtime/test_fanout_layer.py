"""Fan-out cost per socket (issue 20): a group message is decoded once per process and its
frame encoded once, and delivering a broadcast to a socket never touches the database."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime import consumers as consumers_module
from realtime.consumers import SessionConsumer
from realtime.layer import FRAMES, FanoutPubSubChannelLayer, once
from realtime.routing import websocket_urlpatterns

app = URLRouter(websocket_urlpatterns)


def event_message(seq: int, audience=None) -> dict:
    event = {
        "seq": seq,
        "type": "NpcSpoke",
        "actor": None,
        "actor_id": None,
        "payload": {"name": "PA", "line": "x" * 300},
        "seed": None,
        "audience": audience,
        "created_at": None,
    }
    return {"type": "session.event", "seq": seq, "event": event, "html": "<div>" + "y" * 300 + "</div>"}


def test_the_layer_decodes_a_shared_message_once_and_gives_each_consumer_its_own_copy():
    layer = FanoutPubSubChannelLayer(hosts=["redis://unused"])
    decodes = []
    plain = layer._serializer.deserialize
    layer._serializer.deserialize = lambda raw: decodes.append(raw) or plain(raw)
    raw = layer.serialize(event_message(7))
    first, second = layer.deserialize(raw), layer.deserialize(raw)
    assert len(decodes) == 1
    assert first is not second and first[FRAMES] is second[FRAMES]
    first["seq"] = 99  # one consumer's copy is its own
    assert second["seq"] == 7
    made = []
    assert once(first, "f", lambda: made.append(1) or "frame") == once(second, "f", lambda: made.append(1))
    assert made == [1]
    # Equal bytes received again (another group send) are another message: decoded anew.
    layer.deserialize(bytes(bytearray(raw)))
    assert len(decodes) == 2


def test_the_share_switch_off_decodes_per_socket_as_the_plain_layer():
    layer = FanoutPubSubChannelLayer(hosts=["redis://unused"], share=False)
    raw = layer.serialize(event_message(7))
    message = layer.deserialize(raw)
    assert FRAMES not in message
    assert once(message, "f", lambda: "a") == "a" and once(message, "f", lambda: "b") == "b"


def test_delivering_a_broadcast_touches_no_database(gm, player, session, monkeypatch):
    from django.db.backends import utils

    from campaigns.models import Membership

    queries = []
    real = utils.CursorWrapper._execute

    def counting(self, sql, *args, **kwargs):
        queries.append(sql)
        return real(self, sql, *args, **kwargs)

    membership = Membership.objects.get(campaign=session.campaign, user=player)
    sent: list[str] = []

    async def capture(text_data=None, bytes_data=None, close=False):
        sent.append(text_data)

    def consumer(json_mode: bool) -> SessionConsumer:
        c = SessionConsumer()
        c.session_id, c.user, c.membership = session.pk, player, membership
        c.json_mode, c.last_seq, c.streams, c.held_upto = json_mode, 10, {11}, 0
        c.send = capture
        return c

    monkeypatch.setattr(utils.CursorWrapper, "_execute", counting)

    async def go():
        for json_mode in (True, False):
            c = consumer(json_mode)
            await c.session_event(event_message(11))
            await c.session_event(event_message(12, audience=[gm.pk]))  # a whisper to another
            await c.session_delta({"type": "session.delta", "action_seq": 11, "i": 0, "text": "Hi"})

    async_to_sync(go)()
    assert queries == []
    assert json.loads(sent[0]) == {"type": "event", "seq": 11, "event": event_message(11)["event"]}
    assert json.loads(sent[1])["type"] == "delta"
    assert sent[2] == event_message(11)["html"] and len(sent) == 4


@pytest.mark.django_db(transaction=True)
def test_sockets_of_one_process_share_one_encoding_of_each_event(gm, player, session, settings, monkeypatch):
    """Two JSON sockets and an htmx one in one process: each event is encoded to JSON once."""
    from channels.layers import channel_layers

    from campaigns import events

    settings.GTW_PRESENCE_KEY_PREFIX = f"gtw:presence:test-{uuid.uuid4().hex[:8]}"
    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"asgi-fan-{uuid.uuid4().hex[:8]}"}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "realtime.layer.FanoutPubSubChannelLayer", "CONFIG": config}
    }
    channel_layers.backends.clear()
    encodes = []
    real = consumers_module.event_frame
    monkeypatch.setattr(consumers_module, "event_frame", lambda m: encodes.append(m["seq"]) or real(m))

    async def go():
        comms = []
        for user, fmt in ((gm, "json"), (player, "json"), (player, "html")):
            comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/?format={fmt}")
            comm.scope["user"] = user
            assert (await comm.connect())[0]
            comms.append(comm)
        for comm in comms[:2]:
            await comm.send_to(text_data=json.dumps({"type": "ping"}))
            while json.loads(await comm.receive_from(timeout=10))["type"] != "pong":
                pass
        await comms[2].send_to(text_data=json.dumps({"type": "hello", "last_seq": session.version}))
        from channels.db import database_sync_to_async

        def announce():
            new = events.NewEvent(type="NpcSpoke", payload={"name": "PA", "line": "z" * 400})
            return events.append(session.pk, [new]).events[0].seq

        seq = await database_sync_to_async(announce)()
        frames = []
        for comm in comms[:2]:
            while True:
                frame = await comm.receive_from(timeout=10)
                if json.loads(frame).get("seq") == seq:
                    frames.append(frame)
                    break
        assert frames[0] == frames[1]
        for comm in comms:
            await comm.disconnect()
        return seq

    seq = async_to_sync(go)()
    assert encodes.count(seq) == 1
    channel_layers.backends.clear()
