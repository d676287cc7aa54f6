"""Sockets end when the sign-in they were opened with ends.

A socket authenticates once, at connect; without a re-check it would keep playing as its user
after that sign-in is gone. Two kinds:

- an API token (gtw_site.auth.TokenAuthMiddleware): gone when revoked or its user deactivated;
- a session cookie (Channels' AuthMiddlewareStack): gone when the Django session no longer
  signs in the same user — signed out (the session is deleted), the password changed elsewhere
  (the session's auth hash no longer matches, as on the next page load), or the user deactivated.

Sockets keep an AuthWatch and ask it before acting on a frame: writes always re-check, reads and
heartbeats at most every few seconds (a shared-doc socket sends a frame per keystroke).
"""

from __future__ import annotations

import time
from importlib import import_module

from channels.db import database_sync_to_async

RECHECK_S = 5.0


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
        self.checked = time.monotonic()
        self.gone = False  # once gone, it stays gone (messages may still arrive while closing)

    async def revoked(self, *, write: bool = False) -> bool:
        """Whether the sign-in this socket was opened with is gone."""
        if self.gone or (self.token_id is None and self.session_key is None):
            return self.gone
        now = time.monotonic()
        if not write and now - self.checked < RECHECK_S:
            return False
        self.checked = now
        if self.token_id is not None:
            from gtw_site.auth import token_alive

            self.gone = not await database_sync_to_async(token_alive)(self.token_id)
        else:
            self.gone = not await database_sync_to_async(session_signs_in)(self.session_key, self.user_id)
        return self.gone


def session_signs_in(session_key: str, user_id) -> bool:
    """Whether the session still signs in this user, checked as django.contrib.auth.get_user
    checks a request's session — but without its side effects (it flushes a session whose hash
    does not match and re-keys one signed with a fallback secret; a page load does that)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
    from django.utils.crypto import constant_time_compare

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()  # {} once the session is gone (signed out, expired)
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False
    backend_path = data.get(BACKEND_SESSION_KEY)
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(user_id)  # None once deactivated
    if user is None:
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    # Signed with a secret being rotated out: still valid. (The browser's next page load re-keys
    # the session; this socket then closes at its next check and the page reconnects.)
    return any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())
