"""Sockets opened with an API token end when the token is revoked.

A socket authenticates once, at connect; a token revoked after that would otherwise keep a live
connection playing as its owner for as long as it stays open. Sockets keep a TokenWatch and ask
it before acting on a frame: writes always re-check, reads and heartbeats at most every few
seconds (a shared-doc socket sends a frame per keystroke).
"""

from __future__ import annotations

import time

from channels.db import database_sync_to_async

RECHECK_S = 5.0


class TokenWatch:
    def __init__(self, scope):
        self.token_id = scope.get("api_token_id")  # set by gtw_site.auth.TokenAuthMiddleware
        self.checked = time.monotonic()

    async def revoked(self, *, write: bool = False) -> bool:
        """Whether the token this socket was opened with is gone (always False for cookies)."""
        if self.token_id is None:
            return False
        now = time.monotonic()
        if not write and now - self.checked < RECHECK_S:
            return False
        self.checked = now
        from gtw_site.auth import token_alive

        return not await database_sync_to_async(token_alive)(self.token_id)
