"""A session socket guards itself: crafted frames and query strings get an error frame and the
socket stays up, and revoking an API token ends the live sockets it opened."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from campaigns.models import Event
from realtime.routing import websocket_urlpatterns
from tests.realtime.sockets import WAIT_S, communicator, run, until_closed
from tests.realtime.test_consumer import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


# ---- crafted frames and query strings ---------------------------------------------------


@pytest.mark.parametrize(
    "raw, code",
    [
        (json.dumps({"type": []}), "unknown_type"),
        (json.dumps({"type": {"a": 1}}), "unknown_type"),
        (json.dumps({"type": None}), "unknown_type"),
        ("[" * 5000 + "]" * 5000, "malformed"),
        ('{"type": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}", "malformed"),
        (json.dumps({"type": "retry", "action_seq": 10**30}), "conflict"),
    ],
)
def test_crafted_frames_get_an_error_and_the_socket_stays_up(session, gm, raw, code):
    async def go():
        comm = communicator(session.pk, gm)
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        await comm.send_to(text_data=raw)
        error = (await receive_until(comm, lambda f: f["type"] == "error"))[-1]
        assert error["code"] == code and len(error["message"]) < 300
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await receive_until(comm, lambda f: f["type"] == "pong"))[-1] == {"type": "pong"}
        await comm.disconnect()

    run(go)


# ---- a revoked API token ends the sockets it opened ------------------------------------------


def test_revoking_a_token_ends_its_live_sockets(session, player, monkeypatch):
    """Scripts connect with `Authorization: Bearer …`. Once the owner revokes the token, the next
    write on its socket closes it (4403) instead of acting; reads and heartbeats notice within
    TokenWatch.RECHECK_S; the shared-doc socket too."""
    from gtw_site.auth import TokenAuthMiddleware
    from gtw_site.models import ApiToken
    from realtime import tokenwatch

    monkeypatch.setattr(tokenwatch, "RECHECK_S", 0.0)
    token, raw = ApiToken.issue(user=player, name="script")
    stack = TokenAuthMiddleware(URLRouter(websocket_urlpatterns))

    def socket(path):
        headers = [(b"authorization", f"Bearer {raw}".encode())]
        comm = WebsocketCommunicator(stack, path, headers=headers)
        comm.scope["user"] = None  # no cookie: only the token
        return comm

    async def go():
        play = socket(f"/ws/sessions/{session.pk}/?format=json")
        assert (await play.connect())[0]
        await receive_until(play, lambda f: f["type"] == "presence")
        docs = socket(f"/ws/sessions/{session.pk}/docs/notes/")
        assert (await docs.connect())[0]
        assert (await docs.receive_output(timeout=WAIT_S)).get("bytes")  # its binary sync step 1
        await database_sync_to_async(ApiToken.objects.filter(pk=token.pk).delete)()
        action = {"type": "action", "text": "I pick the lock", "idempotency_key": "after-revoke"}
        await play.send_to(text_data=json.dumps(action))
        closed, frames = await until_closed(play)
        assert closed == {"type": "websocket.close", "code": 4403}
        assert not [f for f in frames if f["type"] in ("ack", "error")], frames
        await docs.send_to(bytes_data=b"\x00\x00\x01\x00")  # a sync step 1 with an empty vector
        assert (await docs.receive_output(timeout=WAIT_S)) == {"type": "websocket.close", "code": 4403}

    run(go)
    assert not Event.objects.filter(session=session, idempotency_key__endswith="after-revoke").exists()
