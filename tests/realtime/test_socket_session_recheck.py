"""Issue 11 hole 6: websockets opened with a session cookie survived logout (an action frame 12 s
after logout was acknowledged). Sockets now re-check the sign-in they were opened with — the
Django session still exists and still signs in the same, active user — and close with 4403 on
sign-out, a password change made elsewhere and deactivation, like token sockets on revocation."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from pycrdt import Doc, Text

from campaigns.models import Event
from gtw_site.auth import TokenAuthMiddleware
from realtime import crdt, tokenwatch
from realtime.routing import websocket_urlpatterns
from tests.realtime.sockets import WAIT_S, until_closed

pytestmark = pytest.mark.django_db(transaction=True)
# What gtw_site.asgi runs (less the Origin check): cookie sessions, then bearer tokens.
stack = AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
CLOSED_FORBIDDEN = {"type": "websocket.close", "code": 4403}


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def recheck_at_once(monkeypatch):
    monkeypatch.setattr(tokenwatch, "RECHECK_S", 0.0)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cookie_socket(client: Client, path: str) -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(stack, path, headers=[(b"cookie", cookie)])


def sign_out(client, user):
    response = client.post("/accounts/logout/")  # allauth's sign-out: the session is deleted
    assert response.status_code == 302


def change_password_elsewhere(client, user):
    user = get_user_model().objects.get(pk=user.pk)
    user.set_password("a brand new passphrase")
    user.save()


def deactivate(client, user):
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


ENDINGS = {"sign-out": sign_out, "password change": change_password_elsewhere, "deactivation": deactivate}


async def drain(comm, secs=0.3):
    while not await comm.receive_nothing(timeout=secs):
        await comm.receive_output()


async def play_socket(client, session_id):
    comm = cookie_socket(client, f"/ws/sessions/{session_id}/?format=json")
    connected, _ = await comm.connect()
    assert connected
    await drain(comm)
    return comm


async def docs_socket(client, session_id):
    comm = cookie_socket(client, f"/ws/sessions/{session_id}/docs/notes/")
    connected, _ = await comm.connect()
    assert connected
    # Its binary sync step 1 (exactly one frame), waited for: a quiet window could end before a
    # loaded machine sends it, and the tests below would then take it for their reply.
    step1 = await comm.receive_output(timeout=WAIT_S)
    assert step1["type"] == "websocket.send" and step1.get("bytes"), step1
    return comm


def action(key: str) -> str:
    return json.dumps({"type": "action", "text": "I pick the lock", "idempotency_key": key})


async def first_json(comm, kind):
    while True:
        frame = json.loads(await comm.receive_from(timeout=WAIT_S))
        if frame.get("type") == kind:
            return frame


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_session_socket_closes_when_its_sign_in_ends(session, gm, player, ending):
    """issue 11 hole 6: after sign-out, a password change elsewhere or deactivation the player's
    next action closes the socket (4403) instead of being acted on; the GM's socket, signed in
    on its own, plays on."""
    player_client, gm_client = signed_in(player), signed_in(gm)

    async def go():
        mine = await play_socket(player_client, session.pk)
        theirs = await play_socket(gm_client, session.pk)
        await mine.send_to(text_data=action("before"))
        assert (await first_json(mine, "ack"))["idempotency_key"] == "before"
        await drain(theirs, 0.5)
        await sync_to_async(ENDINGS[ending])(player_client, player)
        await mine.send_to(text_data=action("player-after"))
        closed, frames = await until_closed(mine)
        assert closed == CLOSED_FORBIDDEN
        assert not [f for f in frames if f["type"] in ("ack", "error")]
        await theirs.send_to(text_data=action("gm-after"))
        assert (await first_json(theirs, "ack"))["idempotency_key"] == "gm-after"
        await theirs.disconnect()

    async_to_sync(go)()
    actions = Event.objects.filter(session=session, type="Action")
    assert actions.filter(idempotency_key__endswith="before").exists()
    assert actions.filter(idempotency_key__endswith="gm-after").exists()
    assert not actions.filter(idempotency_key__endswith="player-after").exists()


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_shared_doc_socket_closes_when_its_sign_in_ends(session, player, ending):
    """issue 11 hole 6: the shared-document socket too, at its next frame."""
    client = signed_in(player)

    async def go():
        docs = await docs_socket(client, session.pk)
        await docs.send_to(bytes_data=b"\x00\x00\x01\x00")  # sync step 1, empty state vector
        reply = await docs.receive_output(timeout=WAIT_S)
        assert reply["type"] == "websocket.send" and reply.get("bytes")  # answered: signed in
        await sync_to_async(ENDINGS[ending])(client, player)
        await docs.send_to(bytes_data=b"\x00\x00\x01\x00")
        assert await docs.receive_output(timeout=WAIT_S) == CLOSED_FORBIDDEN

    async_to_sync(go)()


def test_a_doc_socket_that_only_listens_stops_getting_updates_after_sign_out(session, gm, player):
    """issue 11 hole 6: a socket that never sends a frame (a stolen cookie, reading along) is
    closed at the next update it would have been sent, instead of reading on after sign-out.
    The GM's reader still gets the update."""
    player_client, gm_client = signed_in(player), signed_in(gm)
    doc, updates = Doc(), []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("text", type=Text).insert(0, "the vault code is 4711")
    update = updates[0]

    async def go():
        mine = await docs_socket(player_client, session.pk)
        theirs = await docs_socket(gm_client, session.pk)
        await sync_to_async(sign_out)(player_client, player)
        await crdt.send_doc_update(session.pk, "notes", update, sender=None)
        assert await mine.receive_output(timeout=WAIT_S) == CLOSED_FORBIDDEN
        relayed = await theirs.receive_output(timeout=WAIT_S)
        assert relayed["type"] == "websocket.send" and relayed["bytes"] == crdt.update_frame(update)
        await theirs.disconnect()

    async_to_sync(go)()


def test_after_changing_the_password_the_same_browser_plays_on_with_its_new_cookie(session, player):
    """Django keeps the browser that changed the password signed in, under a new session key
    (update_session_auth_hash cycles it): the socket opened with the old key closes like any
    other ended sign-in, and the page's reconnect with the new cookie plays on."""
    client = signed_in(player)

    async def go():
        mine = await play_socket(client, session.pk)
        response = await sync_to_async(client.post)(
            "/accounts/password/change/",
            {
                "oldpassword": "correct horse battery",
                "password1": "a brand new passphrase",
                "password2": "a brand new passphrase",
            },
        )
        assert response.status_code == 302
        await mine.send_to(text_data=action("old-cookie"))
        assert (await until_closed(mine))[0] == CLOSED_FORBIDDEN
        again = await play_socket(client, session.pk)  # the client now holds the new cookie
        await again.send_to(text_data=action("new-cookie"))
        assert (await first_json(again, "ack"))["idempotency_key"] == "new-cookie"
        await again.disconnect()

    async_to_sync(go)()


def test_a_socket_whose_session_is_gone_before_connect_is_refused(session, player):
    """A cookie of a signed-out session opens no socket (the outsider case: 4403 at connect)."""
    client = signed_in(player)
    sign_out(client, player)
    client.cookies["sessionid"] = "not-a-session"

    async def go():
        comm = cookie_socket(client, f"/ws/sessions/{session.pk}/?format=json")
        connected, _ = await comm.connect()
        assert connected  # accept-then-close, so the page can say why
        assert await comm.receive_output(timeout=WAIT_S) == CLOSED_FORBIDDEN

    async_to_sync(go)()
