"""Issue 20: idle sockets re-checked their sign-in one by one — every socket, every RECHECK_S, a
query and a hop through Channels' single database thread (11 % of a core at 500 idle sockets).
Reads and heartbeats now read the verdict of one batch per event loop (a few queries for all its
sockets); writes still check alone and at once; a sign-in that ends is still noticed within
RECHECK_S plus one batch, and a socket that leaves leaves the batch."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from gtw_site.auth import TokenAuthMiddleware
from gtw_site.models import ApiToken
from realtime import tokenwatch
from realtime.routing import websocket_urlpatterns
from realtime.tokenwatch import AuthWatch, SignInBatch
from tests.conftest import _user
from tests.realtime.sockets import WAIT_S, until_closed

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(tokenwatch, "clock", clock)
    monkeypatch.setattr(tokenwatch, "RECHECK_S", 5.0)
    return clock


@pytest.fixture
def no_single_checks(monkeypatch):
    """Reads must never check one socket alone."""

    def single(key):
        raise AssertionError(f"a read checked {key} alone")

    monkeypatch.setattr(tokenwatch, "sign_in_stands", single)


def token_scope(user) -> dict:
    token, _ = ApiToken.issue(user=user, name="script")
    return {"user": user, "api_token_id": token.pk}


def session_scope(user) -> dict:
    client = Client()
    client.force_login(user)
    return {"user": user, "session": SessionStore(client.cookies["sessionid"].value)}


def test_the_batch_gives_each_sign_in_the_verdict_a_single_check_gives(django_assert_num_queries):
    """Every way a sign-in ends, for tokens and sessions: the batch agrees with the check a write
    makes, in three queries (tokens, sessions, users) however many sockets there are."""
    users = [_user("p") for _ in range(8)]
    scopes = {
        "token": token_scope(users[0]),
        "token revoked": token_scope(users[1]),
        "token's user deactivated": token_scope(users[2]),
        "session": session_scope(users[3]),
        "session signed out": session_scope(users[4]),
        "session of another user": session_scope(users[5]),
        "session after a password change": session_scope(users[6]),
        "session's user deactivated": session_scope(users[7]),
        "second tab of a session": None,
    }
    scopes["second tab of a session"] = scopes["session"]
    ApiToken.objects.filter(pk=scopes["token revoked"]["api_token_id"]).delete()
    get_user_model().objects.filter(pk__in=[users[2].pk, users[7].pk]).update(is_active=False)
    scopes["session signed out"]["session"].delete()
    scopes["session of another user"] = {**scopes["session of another user"], "user": users[0]}
    users[6].set_password("a brand new passphrase")
    users[6].save()
    keys = {name: AuthWatch(scope).key for name, scope in scopes.items()}

    with django_assert_num_queries(3):
        verdicts = tokenwatch.sign_ins_stand(set(keys.values()))

    assert {name: verdicts[key] for name, key in keys.items()} == {
        "token": True,
        "token revoked": False,
        "token's user deactivated": False,
        "session": True,
        "session signed out": False,
        "session of another user": False,
        "session after a password change": False,
        "session's user deactivated": False,
        "second tab of a session": True,
    }
    assert verdicts == {key: tokenwatch.sign_in_stands(key) for key in keys.values()}


def test_a_session_signed_with_a_rotated_out_secret_still_stands(settings):
    """As for a page load: a session hashed with a secret in SECRET_KEY_FALLBACKS still signs in."""
    user = _user("p")
    scope = session_scope(user)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a new secret, the old one being rotated out" * 2
    key = AuthWatch(scope).key
    assert tokenwatch.sign_ins_stand({key}) == {key: True}


def test_idle_sockets_share_one_batch_per_recheck(clock, no_single_checks):
    """issue 20: forty idle sockets' reads and heartbeats cost one batch per RECHECK_S, not forty
    checks; within RECHECK_S of connect (or of the last batch) a read costs nothing."""
    users = [_user("p") for _ in range(4)]
    scopes = [token_scope(u) for u in users] + [session_scope(u) for u in users]

    async def go():
        watches = [AuthWatch(scopes[i % len(scopes)]) for i in range(40)]  # as in connect()
        assert not any([await w.revoked() for w in watches])  # fresh from connect
        assert SignInBatch.for_running_loop().batches == 0
        for step in range(1, 4):
            clock.now += tokenwatch.RECHECK_S + 0.001
            assert not any([await w.revoked() for w in watches])
            assert not any([await w.revoked() for w in watches])  # again: the same verdict
            assert SignInBatch.for_running_loop().batches == step

    async_to_sync(go)()


def test_sockets_reading_at_once_wait_for_the_same_batch(clock, no_single_checks):
    """Heartbeats that land together (a reconnect storm's sockets) share the batch in flight, and
    one of them going away while it waits does not cancel it for the others."""
    scopes = [token_scope(_user("p")) for _ in range(10)]

    async def go():
        watches = [AuthWatch(scope) for scope in scopes]
        clock.now += tokenwatch.RECHECK_S + 0.001
        reads = [asyncio.ensure_future(w.revoked()) for w in watches]
        await asyncio.sleep(0)  # every read is now waiting on the batch
        reads[0].cancel()
        assert await asyncio.gather(*reads[1:]) == [False] * 9
        assert SignInBatch.for_running_loop().batches == 1

    async_to_sync(go)()


def test_a_read_notices_an_ended_sign_in_within_a_recheck(clock, no_single_checks):
    """A revoked token and a signed-out session: the next read after RECHECK_S says gone (and
    stays gone); the other sockets, in the same batch, play on."""
    player, other = _user("p"), _user("p")
    token_scope_, session_scope_ = token_scope(player), session_scope(player)
    scopes = {
        "token": token_scope_,
        "session": session_scope_,
        "other token": token_scope(other),
        "other session": session_scope(other),
    }
    watches = {}

    async def reads():
        return {name: await w.revoked() for name, w in watches.items()}

    async def go():
        watches.update({name: AuthWatch(scope) for name, scope in scopes.items()})
        clock.now += tokenwatch.RECHECK_S + 0.001
        assert not any((await reads()).values())
        await sync_to_async(ApiToken.objects.filter(pk=token_scope_["api_token_id"]).delete)()
        await sync_to_async(session_scope_["session"].delete)()
        clock.now += tokenwatch.RECHECK_S / 2
        assert not any((await reads()).values())  # the last batch is still fresh
        clock.now += tokenwatch.RECHECK_S / 2 + 0.001  # just over RECHECK_S since the last batch
        gone = {"token": True, "session": True, "other token": False, "other session": False}
        assert await reads() == gone
        clock.now += tokenwatch.RECHECK_S + 0.001
        assert await reads() == gone
        assert SignInBatch.for_running_loop().batches == 3

    async_to_sync(go)()


def test_a_write_checks_at_once_and_alone(clock):
    """Writes do not wait for the batch: a write right after revocation is refused."""
    scope = token_scope(_user("p"))
    watch = AuthWatch(scope)

    async def go():
        assert not await watch.revoked(write=True)
        await sync_to_async(ApiToken.objects.filter(pk=scope["api_token_id"]).delete)()
        assert not await watch.revoked()  # a read within RECHECK_S: not checked yet
        assert await watch.revoked(write=True)
        assert await watch.revoked()
        assert SignInBatch.for_running_loop().batches == 0

    async_to_sync(go)()


def test_sockets_that_leave_leave_the_batch(clock, monkeypatch):
    """No leak: a socket's watch leaves the batch when it is dropped (its consumer is gone, even
    without a disconnect) or its sign-in has ended; the next batch checks only the open sockets."""
    staying_scope, leaving_scope, ending_scope = (token_scope(_user("p")) for _ in range(3))
    checked = []
    real = tokenwatch.sign_ins_stand

    def spy(keys):
        checked.append(set(keys))
        return real(keys)

    monkeypatch.setattr(tokenwatch, "sign_ins_stand", spy)

    async def go():
        staying, leaving, ending = AuthWatch(staying_scope), AuthWatch(leaving_scope), AuthWatch(ending_scope)
        batch = SignInBatch.for_running_loop()
        assert set(batch.watches) == {staying, leaving, ending}
        clock.now += tokenwatch.RECHECK_S + 0.001
        assert not await leaving.revoked()
        assert checked == [{staying.key, leaving.key, ending.key}]
        await sync_to_async(ApiToken.objects.filter(pk=ending.token_id).delete)()
        del leaving
        gc.collect()
        clock.now += tokenwatch.RECHECK_S + 0.001
        assert await ending.revoked()
        assert checked[-1] == {staying.key, ending.key}
        assert set(batch.watches) == {staying}
        clock.now += tokenwatch.RECHECK_S + 0.001
        assert not await staying.revoked()
        assert checked[-1] == {staying.key}
        assert set(batch.stands) == {staying.key}

    async_to_sync(go)()


def test_an_idle_token_socket_closes_at_a_heartbeat_after_revocation(session, player, settings, monkeypatch):
    """A socket that never sends a frame (a script that only listens) is closed by its heartbeat's
    read check, through the batch, once its token is revoked."""
    settings.GTW_PRESENCE_HEARTBEAT_S = 0.2
    monkeypatch.setattr(tokenwatch, "RECHECK_S", 0.1)
    token, raw = ApiToken.issue(user=player, name="script")
    stack = TokenAuthMiddleware(URLRouter(websocket_urlpatterns))

    async def go():
        comm = WebsocketCommunicator(
            stack,
            f"/ws/sessions/{session.pk}/?format=json",
            headers=[(b"authorization", f"Bearer {raw}".encode())],
        )
        comm.scope["user"] = None
        assert (await comm.connect())[0]
        await sync_to_async(ApiToken.objects.filter(pk=token.pk).delete)()
        closed, frames = await until_closed(comm, WAIT_S)
        assert closed == {"type": "websocket.close", "code": 4403}
        assert not [f for f in frames if f["type"] in ("ack", "error")], frames
        assert json.dumps(frames)  # plain frames, nothing acted on

    async_to_sync(go)()
