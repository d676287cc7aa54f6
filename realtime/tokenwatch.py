"""Sockets end when the sign-in they were opened with ends.

A socket authenticates once, at connect; without a re-check it would keep playing as its user
after that sign-in is gone. Two kinds:

- an API token (gtw_site.auth.TokenAuthMiddleware): gone when revoked or its user deactivated;
- a session cookie (Channels' AuthMiddlewareStack): gone when the Django session no longer
  signs in the same user — signed out (the session is deleted), the password changed elsewhere
  (the session's auth hash no longer matches, as on the next page load), or the user deactivated.

Sockets keep an AuthWatch and ask it before acting on a frame. Writes always re-check, alone and
at once. Reads and heartbeats (a shared-doc socket sends a frame per keystroke; every socket
beats) read the verdict of their event loop's SignInBatch instead: about once per RECHECK_S it
checks every open socket's sign-in together — one query for the tokens, one for the sessions (and
one for their users) in one executor hop — where a check per socket cost an executor hop and a
query each (issue 20: 11 % of a core at 500 idle sockets). A sign-in that ends is still noticed
within RECHECK_S plus one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from importlib import import_module

from channels.db import database_sync_to_async

RECHECK_S = 5.0
clock = time.monotonic  # a seam for tests


class AuthWatch:
    def __init__(self, scope):
        self.token_id = scope.get("api_token_id")  # set by gtw_site.auth.TokenAuthMiddleware
        self.session_key = None
        self.user_id = None
        user = scope.get("user")
        if self.token_id is None and user is not None and user.is_authenticated:
            # Channels' SessionMiddleware has already loaded it (AuthMiddleware read the user
            # from it), so this touches no database.
            session = scope.get("session")
            self.session_key = getattr(session, "session_key", None) if session is not None else None
            self.user_id = user.pk
        self.checked = clock()  # when this sign-in was last known to stand
        self.gone = False  # once gone, it stays gone (messages may still arrive while closing)
        self.batch: SignInBatch | None = None
        if self.key is not None:
            # Now, so that the first batch after connect checks it with the rest; without a
            # running event loop (built outside a consumer), at its first read check.
            with contextlib.suppress(RuntimeError):
                self._join()

    @property
    def key(self) -> tuple | None:
        """What the batch checks: the token, or the session with the user it must sign in."""
        if self.token_id is not None:
            return ("token", self.token_id)
        if self.session_key is not None:
            return ("session", self.session_key, self.user_id)
        return None

    def _join(self) -> None:
        self.batch = SignInBatch.for_running_loop()
        self.batch.watches.add(self)

    async def revoked(self, *, write: bool = False) -> bool:
        """Whether the sign-in this socket was opened with is gone."""
        if self.gone or self.key is None:
            return self.gone
        now = clock()
        if write:
            self.gone = not await database_sync_to_async(sign_in_stands)(self.key)
            self.checked = now
            return self.gone
        if now - self.checked < RECHECK_S:
            return False
        if self.batch is None:
            self._join()
        # Any batch that started after self.checked includes this socket (it joined the batch
        # when it was built, in connect, or at its first read check: not after self.checked).
        stands, at = await self.batch.verdict(self.key, since=now - RECHECK_S)
        if stands:
            self.checked = max(self.checked, at)
        else:
            self.gone = True
            self.batch.watches.discard(self)  # nothing left to check
        return self.gone


class SignInBatch:
    """Every open socket's sign-in on one event loop, checked together (see the module
    docstring). Sockets join when their AuthWatch is built (in connect) and leave when it is
    garbage-collected or gone (a WeakSet: a consumer that dies without disconnect leaks nothing)."""

    _per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SignInBatch] = weakref.WeakKeyDictionary()

    def __init__(self):
        self.watches: weakref.WeakSet[AuthWatch] = weakref.WeakSet()
        self.stands: dict[tuple, bool] = {}  # the last batch's verdict per key
        self.started = float("-inf")  # when the last finished batch started
        self.running: asyncio.Future | None = None
        self.running_started = 0.0
        self.batches = 0  # how many batches ran (tests, metrics)

    @classmethod
    def for_running_loop(cls) -> SignInBatch:
        loop = asyncio.get_running_loop()
        batch = cls._per_loop.get(loop)
        if batch is None:
            batch = cls._per_loop[loop] = cls()
        return batch

    async def verdict(self, key: tuple, *, since: float) -> tuple[bool, float]:
        """Whether `key`'s sign-in stood at a batch that started at or after `since`, and when
        that batch started. Waits for (or starts) such a batch when the last one is older; at most
        one batch runs at a time, and every socket waiting on it shares it."""
        while self.started < since or key not in self.stands:
            if self.running is None:
                self.running_started = clock()
                self.running = asyncio.ensure_future(self._run(self.running_started))
            started = self.running_started
            # shield: a socket closing while it waits must not cancel everyone's batch.
            await asyncio.shield(self.running)
            if started >= since and key not in self.stands:
                # Joined after that batch collected its keys (a watch built outside an event
                # loop joins at its first read check): check it alone rather than loop.
                return await database_sync_to_async(sign_in_stands)(key), started
        return self.stands[key], self.started

    async def _run(self, started: float) -> None:
        try:
            keys = {watch.key for watch in list(self.watches) if not watch.gone} - {None}
            stands = await database_sync_to_async(sign_ins_stand)(keys) if keys else {}
            self.stands, self.started = stands, started
            self.batches += 1
        finally:
            self.running = None


def sign_in_stands(key: tuple) -> bool:
    """One socket's sign-in, checked alone (a write)."""
    if key[0] == "token":
        from gtw_site.auth import token_alive

        return token_alive(key[1])
    return session_signs_in(key[1], key[2])


def sign_ins_stand(keys: set[tuple]) -> dict[tuple, bool]:
    """Every key's verdict, in a few queries whatever their number: one for the tokens, one for
    the sessions and one for their users."""
    from gtw_site.auth import tokens_alive

    token_ids = {key[1] for key in keys if key[0] == "token"}
    alive = tokens_alive(token_ids) if token_ids else set()
    verdicts = {key: key[1] in alive for key in keys if key[0] == "token"}
    sessions = {(key[1], key[2]) for key in keys if key[0] == "session"}
    if sessions:
        verdicts.update({("session", *pair): ok for pair, ok in sessions_sign_in(sessions).items()})
    return verdicts


def session_signs_in(session_key: str, user_id) -> bool:
    """Whether the session still signs in this user, checked as django.contrib.auth.get_user
    checks a request's session — but without its side effects (it flushes a session whose hash
    does not match and re-keys one signed with a fallback secret; a page load does that)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, load_backend

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()  # {} once the session is gone (signed out, expired)
    backend_path = data.get(BACKEND_SESSION_KEY)
    if not _session_names(data, user_id):
        return False
    return _hash_matches(data, load_backend(backend_path).get_user(user_id))  # None once deactivated


def sessions_sign_in(pairs: set[tuple[str, object]]) -> dict[tuple[str, object], bool]:
    """session_signs_in for many (session key, user id) pairs: one query for the sessions and one
    for their users where the session engine keeps them in the database (db, cached_db) and the
    backends are Django's ModelBackend or its subclasses that keep its get_user (allauth's);
    otherwise one pair at a time."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, load_backend
    from django.contrib.auth.backends import ModelBackend
    from django.utils import timezone

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):  # cache, signed cookies, files: no table
        return {pair: session_signs_in(*pair) for pair in pairs}
    rows = store_class.get_model_class().objects.filter(
        session_key__in={key for key, _ in pairs}, expire_date__gt=timezone.now()
    )
    stored = {row.session_key: row.session_data for row in rows.only("session_key", "session_data")}
    datas = {pair: store_class().decode(stored[pair[0]]) if pair[0] in stored else {} for pair in pairs}
    named = {pair: data for pair, data in datas.items() if _session_names(data, pair[1])}
    batched, alone = {}, {}
    for pair, data in named.items():
        backend = load_backend(data[BACKEND_SESSION_KEY])
        if isinstance(backend, ModelBackend) and type(backend).get_user is ModelBackend.get_user:
            batched[pair] = backend
        else:
            alone[pair] = backend
    users = get_user_model()._default_manager.in_bulk({pair[1] for pair in batched})
    verdicts = dict.fromkeys(pairs, False)
    for pair, backend in batched.items():
        user = users.get(_user_pk(pair[1]))
        if user is not None and backend.user_can_authenticate(user):  # what get_user checks
            verdicts[pair] = _hash_matches(named[pair], user)
    for pair, backend in alone.items():
        verdicts[pair] = _hash_matches(named[pair], backend.get_user(pair[1]))
    return verdicts


def _user_pk(user_id):
    from django.contrib.auth import get_user_model

    return get_user_model()._meta.pk.to_python(user_id)


def _session_names(data: dict, user_id) -> bool:
    """The session names this user, through a backend still configured."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY

    if str(data.get(SESSION_KEY)) != str(user_id):
        return False
    return data.get(BACKEND_SESSION_KEY) in settings.AUTHENTICATION_BACKENDS


def _hash_matches(data: dict, user) -> bool:
    """The session's auth hash is the (active) user's current one, or one signed with a secret
    being rotated out: still valid. (The browser's next page load re-keys the session; the socket
    then closes at its next check and the page reconnects.)"""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.utils.crypto import constant_time_compare

    if user is None:  # gone, or deactivated
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    return any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())
