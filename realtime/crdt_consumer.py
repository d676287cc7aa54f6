"""The shared-document socket: one Yjs document of a session per connection, speaking y-protocols
sync over binary frames.

    server -> client on connect   sync step 1 (the server's state vector)
    client -> server step 1       -> server replies step 2 (what the client lacks)
    client -> server step 2/update -> applied to the stored document; what it changed (if
                                     anything) is committed, then relayed as an update to the
                                     other sockets of the document (group doc.<session>.<name>);
                                     if part of it waits for content the server lacks (an earlier
                                     update refused or dropped), the server sends step 1 again so
                                     the client's step 2 resends everything
    awareness                     ignored
    errors                        text frames {"type": "error", "code": ..., "message": ...};
                                  the socket stays up

Outsiders: accept, then close 4403; an unknown document name: 4404. Spectators read, never write.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pycrdt import YMessageType, YSyncMessageType, get_state

from campaigns.errors import NotFound
from realtime import crdt
from realtime.tokenwatch import AuthWatch

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_DOC = 4404
# A frame carries one update plus a few bytes of framing; a sync step 2 (which always carries the
# client's whole delete set) has a larger sanity bound, see crdt.MAX_SYNC_BYTES.
MAX_FRAME_BYTES = max(settings.GTW_WS_MAX_FRAME_BYTES, crdt.MAX_UPDATE_BYTES + 64)
MAX_SYNC_FRAME_BYTES = crdt.MAX_SYNC_BYTES + 64
STEP2_PREFIX = bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2])
# Per connection: a keystroke is one update, so people typing stay far below this; a script does not.
RATE_PER_S = 50.0
BURST = 200
# After dropping updates for the rate limit, ask the client again (step 1) so what it sent heals.
RESYNC_AFTER_S = 1.0
# A client's step 1 makes the server merge the whole stored document (up to 4 MB, ~30 ms) and
# send back all it lacks: a few bytes that cost far more than an update. The browser sends one
# or two when it connects and one every 30 s after, so its own, much smaller allowance.
STEP1_RATE_PER_S = 0.5
STEP1_BURST = 5


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _db(fn, /, **kwargs):
    # Off the thread-sensitive executor: Channels runs every consumer's close_old_connections()
    # there, so a slow load here must not stall every other socket's messages.
    return database_sync_to_async(fn, thread_sensitive=False)(**kwargs)


class SharedDocConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        kwargs = self.scope["url_route"]["kwargs"]
        self.session_id = int(kwargs["session_id"])
        self.doc_name = kwargs["name"]
        self.user = self.scope.get("user")
        self.joined = False
        self.bucket = TokenBucket(RATE_PER_S, BURST)
        self.step1_bucket = TokenBucket(STEP1_RATE_PER_S, STEP1_BURST)
        self.limited = False
        self.resync: asyncio.Task | None = None
        self.signin = AuthWatch(self.scope)
        membership = await self._membership()
        await self.accept()
        if membership is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if self.doc_name not in crdt.DOC_NAMES:
            await self.close(code=CLOSE_UNKNOWN_DOC)
            return
        self.read_only = not membership.can_act
        self.group = crdt.doc_group(self.session_id, self.doc_name)
        # Join before reading the state: an update committed in between then arrives twice
        # (harmless for a CRDT) instead of not at all.
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        await self._send_step1()

    async def disconnect(self, code):
        if self.resync is not None:
            self.resync.cancel()
        if self.joined:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if not self.joined:
            return
        if bytes_data is None:
            await self._error("malformed", "This socket speaks binary y-protocols frames only.")
            return
        limit = MAX_SYNC_FRAME_BYTES if bytes_data[:2] == STEP2_PREFIX else MAX_FRAME_BYTES
        if len(bytes_data) > limit:
            await self._error("frame_too_large", f"Frames are limited to {limit // 1024} KB.")
            return
        if await self.signin.revoked():  # at most every few seconds: a frame per keystroke
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not self.bucket.take():
            await self._rate_limited()
            return
        self.limited = False
        try:
            frame = crdt.frame_parse(bytes_data)
            if frame.kind == YMessageType.AWARENESS:
                return  # cursors and names are not shared (yet); nothing to store or relay
            if frame.sync == YSyncMessageType.SYNC_STEP1:
                if not self.step1_bucket.take():
                    # Dropped, with no resync scheduled (that would cost a merge as well): the
                    # client's next periodic step 1 heals whatever it wanted.
                    await self._error(
                        "rate_limited",
                        f"Too many sync requests: at most one every {1 / STEP1_RATE_PER_S:g} seconds "
                        f"(bursts of {STEP1_BURST}).",
                    )
                    return
                diff = await _db(
                    crdt.shared_doc_diff,
                    session_id=self.session_id,
                    name=self.doc_name,
                    state_vector=frame.payload,
                )
                await self.send(bytes_data=crdt.step2_frame(diff))
            else:
                await self._apply(frame.payload, sync_step2=frame.sync == YSyncMessageType.SYNC_STEP2)
        except crdt.DocRefused as exc:
            await self._error(exc.code, exc.message)

    # ---- group messages ------------------------------------------------------------------

    async def doc_update(self, message):
        if message.get("sender") == self.channel_name:
            return
        if await self.signin.revoked():  # a socket that only listens stops reading too
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send(bytes_data=crdt.update_frame(base64.b64decode(message["update"])))

    # ---- helpers -----------------------------------------------------------------------

    async def _apply(self, update: bytes, *, sync_step2: bool) -> None:
        if update == crdt.EMPTY_UPDATE:
            return  # a step 2 with nothing new: not a write, so fine from a spectator too
        if self.read_only:
            # A step 2 always carries the delete set: only a change is a write.
            change = await _db(
                crdt.shared_doc_changes,
                session_id=self.session_id,
                name=self.doc_name,
                update=update,
                sync_step2=sync_step2,
            )
            if change.diff == crdt.EMPTY_UPDATE:
                return
            raise crdt.DocRefused("read_only", "Spectators can read the shared documents but not edit them.")
        change = await _db(
            crdt.shared_doc_write,
            session_id=self.session_id,
            name=self.doc_name,
            update=update,
            user=self.user,
            sync_step2=sync_step2,
        )
        if change.diff != crdt.EMPTY_UPDATE:
            await crdt.send_doc_update(self.session_id, self.doc_name, change.diff, sender=self.channel_name)
        if change.pending:
            self._schedule_resync()

    async def _send_step1(self) -> None:
        state = await _db(crdt.shared_doc_state, session_id=self.session_id, name=self.doc_name)
        vector = get_state(state) if state != crdt.EMPTY_UPDATE else crdt.EMPTY_STATE_VECTOR
        await self.send(bytes_data=crdt.step1_frame(vector))

    async def _rate_limited(self) -> None:
        # One error per burst of dropped frames, and one step 1 once the bucket has refilled a
        # little: the client answers with a step 2 holding everything we dropped.
        if not self.limited:
            self.limited = True
            await self._error(
                "rate_limited", f"Too many updates: at most {RATE_PER_S:g} a second (bursts of {BURST})."
            )
        self._schedule_resync()

    def _schedule_resync(self) -> None:
        if self.resync is None or self.resync.done():
            self.resync = asyncio.ensure_future(self._resync_later())

    async def _resync_later(self) -> None:
        await asyncio.sleep(RESYNC_AFTER_S)
        try:
            await self._send_step1()
        except Exception:  # the socket may have gone; the next connect syncs anyway
            logger.debug("resync of %s failed", self.group, exc_info=True)

    async def _membership(self):
        return await database_sync_to_async(self._membership_sync)()

    def _membership_sync(self):
        from campaigns.selectors import session_membership_get

        if self.user is None:
            return None
        try:
            _, membership = session_membership_get(viewer=self.user, session_id=self.session_id)
        except NotFound:
            return None
        return membership

    async def _error(self, code: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))
