"""The session socket. Thin: authenticate, join the group, validate frames, call services,
forward broadcasts — keeping each client's stream gap-free and duplicate-free by seq.

Two wire formats on one socket: `?format=json` for scripts and the benchmark, HTML
(htmx out-of-band partials) for the play page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
import uuid
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.template.loader import render_to_string
from pydantic import ValidationError

from campaigns.errors import DomainError, RateLimited
from campaigns.selectors import may_see
from gtw_site import metrics, reconnect
from gtw_site.ratelimit import rate_check
from realtime import broadcast, hub, presence
from realtime.layer import once
from realtime.messages import KNOWN_TYPES, ActionFrame, Hello, Ping, RetryFrame, WhisperFrame, client_frame
from realtime.tokenwatch import AuthWatch

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
# Catch-up reads the event store in pages of this many events (each one a query and a render).
CATCH_UP_PAGE = 2000
# A replay of up to this many past events (a reconnect, a page load) is free; longer ones count
# against the per-user "catch_up" rate limit (see SessionConsumer._may_replay).
CATCH_UP_FREE = 500
# While Redis is unreachable, a socket's heartbeat looks again this often (issue 23).
LINK_RETRY_S = 1.0
# Heal ticks (SessionConsumer.session_heal) of a process's sockets share one version read.
HEAL_VERSION_TTL_S = 1.0
_heal_versions: dict[int, tuple[float, int]] = {}  # session id -> (monotonic time, version)
# Group messages queued for a busy socket (see hub_message) before its further events are
# skipped and healed from the event store instead: a socket stuck in a long handler holds this
# many messages at most, not one per event for as long as it is stuck.
HELD_MAX = 200
# Group messages that are whole snapshots (who is online): over HELD_MAX only the newest is kept.
SNAPSHOT_TYPES = frozenset({"session.presence", "stage.presence"})
# What a `session.audio` message carries to the browser (media.speech.narration).
AUDIO_FIELDS = ("action_seq", "i", "url", "text", "voice", "ok", "notice", "duration")


class SessionConsumer(AsyncWebsocketConsumer):
    # Group messages this socket can take the moment the hub reads them (see hub_message).
    fast_handlers = {
        "session.event": "_fast_event",
        "session.delta": "_fast_delta",
        "session.presence": "_fast_presence",
    }
    writer: hub.DaphneWriter | hub.QueueWriter | None = None  # set per socket in __call__
    held = 0
    busy = False

    async def __call__(self, scope, receive, send):
        """AsyncConsumer.__call__ with a third source beside the client and the channel layer:
        the group messages the hub (realtime.hub) could not hand this socket at once, and our own
        heal ticks, in the order they came."""
        self.scope = scope
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.held = 0  # messages in the inbox or being handled from it
        self.heal_held = False  # a heal tick waits in the inbox (one is enough)
        # Presence snapshots that came while the inbox was over HELD_MAX: only the newest of each
        # kind counts, and it is held once the inbox has drained (see hub_message).
        self.snapshots_skipped: dict[str, dict] = {}
        self.busy = False  # inside a handler: a message now could overtake what it is sending
        self.hub_groups: set[str] = set()  # groups joined through this process's hub
        self.writer = hub.writer_for(send) if hub.enabled() else None
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        try:
            await await_many_dispatch([receive, self.channel_receive, self._next_held], self.dispatch)
        except StopConsumer:
            pass
        finally:
            self._leave_hubs()  # also when the consumer dies without disconnect()

    async def dispatch(self, message):
        # Channels' own dispatch first runs close_old_connections() in the thread-sensitive
        # executor — one thread hop per socket per message. Fanning one event out to 250 sockets
        # of a Daphne process that was most of its CPU (docs/BENCHMARKS.md, "gtw bench
        # fanout"). Every database call here goes through database_sync_to_async, which closes
        # old connections around itself, so the hop bought nothing.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        self.busy = True
        try:
            await handler(message)
        finally:
            self.busy = False

    # ---- the hub: group messages, written at once or queued in order ---------------------

    def hub_message(self, message: dict) -> None:
        """A group message, from the hub's loop (synchronous: the hub calls every local socket
        in turn). Written here and now when nothing can be overtaken — no handler running,
        nothing queued before it — and its type has a fast path that takes it; otherwise queued
        for the consumer's own handlers, after whatever is queued already."""
        if not self.busy and not self.held and self.writer is not None:
            fast = self.fast_handlers.get(message["type"])
            if fast is not None and getattr(self, fast)(message):
                return
        if self.held >= HELD_MAX:
            if message["type"] in ("session.event", "session.delta"):
                # Skipped: a seq gap (or the next heal tick) fetches an event from the store, and
                # a delta is a preview the turn's Narration event carries in full.
                return
            if message["type"] in SNAPSHOT_TYPES:
                # A presence announcement names everyone online: a newer one replaces it.
                self.snapshots_skipped[message["type"]] = message
                return
        self._hold(message)

    def _hold(self, message: dict) -> None:
        if message["type"] == "session.heal":
            if self.heal_held:
                return  # the one already waiting compares with the store when its turn comes
            self.heal_held = True
        self.held += 1
        self.inbox.put_nowait(message)

    async def _next_held(self) -> dict:
        return {"type": "hub.held", "message": await self.inbox.get()}

    async def hub_held(self, wrapper):
        message = wrapper["message"]
        try:
            handler = getattr(self, get_handler_name(message), None)
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            if message["type"] == "session.heal":
                self.heal_held = False  # a tick from now on compares again, after this one
            await handler(message)
        finally:
            self.held -= 1
            if not self.held and self.snapshots_skipped:
                skipped, self.snapshots_skipped = self.snapshots_skipped, {}
                for snapshot in skipped.values():
                    self._hold(snapshot)

    def _stalled(self) -> bool:
        """The client has not read what it was sent (its Twisted buffer is over the limit): send
        it no more events; they stay in the store and heal once it drains."""
        return self.writer is not None and self.writer.full()

    def _fast_event(self, message) -> bool:
        if self.last_seq is None:
            self.held_upto = max(self.held_upto, message["seq"])  # an htmx client before its hello
            return True
        seq = message["seq"]
        if seq <= self.last_seq or self._stalled():
            return True
        if seq != self.last_seq + 1:
            return False  # a gap: session_event heals it from the store first
        self._track_streams(message["event"])
        if (shown := self._event_text(message)) is not None:
            self._write_now(message, *shown)
        self.last_seq = seq
        return True

    def _fast_delta(self, message) -> bool:
        if self.last_seq is None or self._stalled():
            return True  # a preview: the turn's Narration event carries the whole text
        if message["action_seq"] not in self.streams:
            return False  # session_delta opens the stream from the store first
        name = "delta.json" if self.json_mode else "delta.html"
        self._write_now(message, name, self._delta_text(message))
        return True

    def _write_now(self, message: dict, name: str | None, text: str) -> None:
        """Write `text` (the rendering `once()` keeps as `name`, or this socket's own when None),
        framed once per process for every socket that sends the same rendering."""
        frame = once(message, f"{name}.frame", lambda: hub.prepared(text)) if name else None
        self.writer.write(text, frame)

    async def _join(self, group: str) -> None:
        if self.writer is not None:
            await hub.join(self.channel_layer, group, self.channel_name, self)
            self.hub_groups.add(group)
        else:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _leave(self, group: str) -> None:
        if group in self.hub_groups:
            self.hub_groups.discard(group)
            hub.leave(group, self.channel_name)
        else:
            await self.channel_layer.group_discard(group, self.channel_name)

    def _leave_hubs(self) -> None:
        for group in getattr(self, "hub_groups", ()):
            hub.leave(group, self.channel_name)
        self.hub_groups = set()

    async def connect(self):
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.user = self.scope.get("user")
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.json_mode = query.get("format", ["html"])[0] == "json"
        start = parse_last_seq(query.get("last_seq", [None])[0])
        self.last_seq: int | None = None
        # An htmx socket takes group messages before its hello; the hello reads the store, so
        # only the highest seq seen is kept (never the messages: a silent tab would hold them all).
        self.held_upto = 0
        self.streams: set[int] = set()  # turns whose preview this socket has opened (see deltas)
        self.joined = False
        self.heartbeat_task: asyncio.Task | None = None
        self.last_beat = 0.0
        self.heal_mark = 0  # the session's version at the previous heartbeat
        self.link_down = False  # Redis unreachable at the last heartbeat (see _heartbeat)
        self.signin = AuthWatch(self.scope)
        membership = await self._membership()
        await self.accept()
        if membership is None:
            # Accept-then-close so the client sees our code; the page shows "not a member".
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.membership = membership
        # Read where the log stands *before* joining the group, then catch up from the store:
        # an event committed while we were joining arrives exactly once (from the store or the
        # group, deduplicated by seq) instead of falling between the two.
        baseline = await self._current_version()
        await self._join(broadcast.session_group(self.session_id))
        self.joined = True
        metrics.websocket(+1)  # issue 17: gtw_websocket_connections (a live sum across processes)
        await presence.join(self.session_id, self.user.username, self.channel_name)
        self.last_beat = time.monotonic()
        self.heartbeat_task = asyncio.create_task(self._heartbeat())
        # Beats only while this consumer runs: if it dies without disconnect() (an exception),
        # its entry must go stale and be pruned, not be kept alive by an orphaned task.
        asyncio.current_task().add_done_callback(lambda _, beats=self.heartbeat_task: beats.cancel())
        presence.announce_soon(self.session_id, self._announce_presence, kind=self.presence_kind)
        if self.json_mode:
            await self._catch_up(baseline if start is None else start, version=baseline)

    async def disconnect(self, code):
        if task := getattr(self, "heartbeat_task", None):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if getattr(self, "joined", False):
            metrics.websocket(-1)
            await self._leave(broadcast.session_group(self.session_id))
            await presence.leave(self.session_id, self.channel_name)
            presence.announce_soon(self.session_id, self._announce_presence, kind=self.presence_kind)

    known_types = KNOWN_TYPES  # the frame types this socket takes (the stage socket has more)
    read_types = frozenset({"hello", "ping"})  # frames that change nothing (see AuthWatch)
    presence_kind = "play"  # whose presence announcement this socket sends (see announce_soon)

    async def _read_frame(self, text_data, bytes_data) -> dict | None:
        """Every frame: a heartbeat, then the size limit, JSON and a known type. The frame as a
        dict, or None once the client has been sent an error frame (the socket stays up)."""
        if self.joined and time.monotonic() - self.last_beat >= presence.FRAME_BEAT_MIN_S:
            await self._beat()  # every frame is a heartbeat (at most one Redis call a second)
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode("utf-8")) > settings.GTW_WS_MAX_FRAME_BYTES:
            await self._error(
                "frame_too_large", f"Frames are limited to {settings.GTW_WS_MAX_FRAME_BYTES} bytes."
            )
            return None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can parse
            await self._error("malformed", "That frame is not valid JSON.")
            return None
        kind = data.get("type") if isinstance(data, dict) else None
        if not isinstance(kind, str) or kind not in self.known_types:
            await self._error(
                "unknown_type",
                f"Unknown frame type {repr(kind)[:80]}; expected one of {sorted(self.known_types)}.",
            )
            return None
        if await self.signin.revoked(write=kind not in self.read_types):
            await self.close(code=CLOSE_FORBIDDEN)  # signed out, or its API token revoked
            return None
        return data

    async def receive(self, text_data=None, bytes_data=None):
        data = await self._read_frame(text_data, bytes_data)
        if data is None:
            return
        try:
            frame = client_frame.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "frame"
            await self._error("invalid", f"{where}: {first['msg']}")
            return
        try:
            if isinstance(frame, Hello):
                await self._catch_up(frame.last_seq)
            elif isinstance(frame, ActionFrame):
                seq = await self._submit(frame)
                await self._ack(seq, frame.idempotency_key)
            elif isinstance(frame, RetryFrame):
                await self._retry(frame.action_seq)
            elif isinstance(frame, WhisperFrame):
                await self._whisper(frame)
            elif isinstance(frame, Ping):
                await self._send_json({"type": "pong"})
        except DomainError as exc:
            await self._error(exc.code, exc.message)
        except Exception as exc:
            down = reconnect.service_down(exc)
            if down is None or not isinstance(frame, (ActionFrame, RetryFrame, WhisperFrame)):
                raise
            # PostgreSQL or Redis is restarting (issue 23): nothing was recorded, and we say so
            # instead of dropping the socket; the play page sends the frame again, with its
            # idempotency key, once the server is back.
            logger.warning(
                "session %s: %s frame refused, %s is down (%s)", self.session_id, frame.type, down, exc
            )
            await self._error("unavailable", unavailable_message(down, json_mode=self.json_mode))

    # ---- group messages ------------------------------------------------------------------

    async def session_event(self, message):
        if self.last_seq is None:
            self.held_upto = max(self.held_upto, message["seq"])  # an htmx client before its hello
            return
        seq = message["seq"]
        if seq <= self.last_seq or self._stalled():
            return
        if seq > self.last_seq + 1:
            await self._send_range(self.last_seq, seq - 1)  # heal a gap from the event store
        await self._deliver(message)

    async def session_delta(self, message):
        if self.last_seq is None:
            return
        await self._open_stream(message["action_seq"])
        await self.send(text_data=self._delta_text(message))

    def _delta_text(self, message) -> str:
        # Encoded (or rendered) once per process for all its sockets (realtime.layer).
        if self.json_mode:
            return once(message, "delta.json", lambda: delta_json(message))
        return once(message, "delta.html", lambda: render_to_string("play/_delta_oob.html", message))

    async def session_stream_reset(self, message):
        if self.json_mode:
            await self._send_json(
                {"type": "stream_reset", "action_seq": message["action_seq"], "notice": message["notice"]}
            )
        else:
            await self.send(text_data=render_to_string("play/_stream_reset_oob.html", message))

    async def session_audio(self, message):
        """A spoken sentence of the narration (media.speech): where to fetch it, for the voice
        widget to schedule; the same text as the deltas everyone here already saw."""
        audio = {k: message[k] for k in AUDIO_FIELDS if k in message}
        if self.json_mode:
            await self._send_json({"type": "audio", **audio})
        else:
            html = render_to_string("media/voice/_audio_oob.html", {"audio_json": json.dumps(audio)})
            await self.send(text_data=html)

    async def session_image(self, message):
        """A picture's progress or arrival (media.images): JSON clients get its public fields
        under its event name ("image-available" when done), htmx pages the figure to swap in."""
        if self.json_mode:
            image = message["image"]
            await self._send_json({**image, "type": image.get("event", "image-progress")})
        else:
            await self.send(text_data=message["html"])

    async def session_presence(self, message):
        await self.send(text_data=self._presence_text(message)[1])

    def _presence_text(self, message) -> tuple[str, str]:
        """The party panel (htmx) or the online list (JSON): the same for every socket, and in a
        connect storm an announcement goes to every socket several times a second, so it is
        encoded once per process (it names everyone online: ~10 KB at 500 players)."""
        if self.json_mode:
            return "presence.json", once(message, "presence.json", lambda: presence_json(message))
        return "presence.html", message["html"]

    def _fast_presence(self, message) -> bool:
        if self._stalled():
            return False  # the latest roster matters: its handler sends it once the socket drains
        self._write_now(message, *self._presence_text(message))
        return True

    async def session_heal(self, message):
        """Sent by our own heartbeat through the channel layer, so it runs in order with the
        group messages: a gap is healed when the next event arrives, but a lost *last* event
        has no successor, so compare with the store now and then. Only what was committed
        before the previous beat counts as lost: anything newer may still be queued for us (a
        busy process runs behind), and fetching it again would add work just when it hurts."""
        if self.last_seq is None or self._stalled():
            return
        if self.last_seq < self.heal_mark:
            await self._send_range(self.last_seq, None)
        self.heal_mark = await self._heal_version()

    async def _heal_version(self) -> int:
        """The session's version for a heal tick, read once per HEAL_VERSION_TTL_S per process
        for all its sockets (500 sockets beating every 10 s were 50 queries a second). A version
        up to that old only makes the next heal look at a little less: it never skips one."""
        hit = _heal_versions.get(self.session_id)
        if hit is not None and time.monotonic() - hit[0] < HEAL_VERSION_TTL_S:
            return hit[1]
        version = await self._current_version()
        if len(_heal_versions) > 1000:
            _heal_versions.clear()
        _heal_versions[self.session_id] = (time.monotonic(), version)
        return version

    async def _open_stream(self, action_seq: int):
        """Before a turn's first delta, the event that opens its preview: the Action (the turn
        runner starts before the Action's own broadcast goes out), a TurnRetried (its broadcast
        may be overtaken too, or lost) or a stage's BatchWindowClosed. It is committed before the
        turn runs, so fetch it (and anything before it) from the store: the preview needs it."""
        if action_seq in self.streams:
            return
        upto = action_seq if action_seq > self.last_seq else await self._current_version()
        if upto > self.last_seq:
            await self._send_range(self.last_seq, upto)
        self.streams.add(action_seq)

    def _track_streams(self, event: dict):
        """Which turns' previews this socket has opened (Narration or TurnFailed closes one)."""
        kind, payload = event.get("type"), event.get("payload") or {}
        if kind in ("Action", "BatchWindowClosed"):
            self.streams.add(event["seq"])
        elif kind == "TurnRetried":
            self.streams.add(payload.get("action_seq"))
        elif kind in ("Narration", "TurnFailed"):
            self.streams.discard(payload.get("action_seq", payload.get("close_seq")))

    # ---- presence ------------------------------------------------------------------------

    async def _heartbeat(self):
        interval = presence.heartbeat_interval()
        # Spread the beats of sockets that connected together (a reconnect storm).
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))
        while True:
            try:
                if await self.signin.revoked():
                    await self.close(code=CLOSE_FORBIDDEN)
                    return
            except Exception:
                logger.warning("sign-in check for session %s failed", self.session_id, exc_info=True)
            try:
                beat = await self._beat()
                if beat and self.link_down:
                    await self._link_back()
                elif not beat and not self.link_down:
                    await self._link_lost()
                if beat and self.last_seq is not None:
                    self._hold({"type": "session.heal"})
            except Exception:
                logger.warning("heartbeat for session %s failed", self.session_id, exc_info=True)
            # While Redis is away, look again every LINK_RETRY_S: the table sees "live" (and gets
            # what it missed) within about that long of Redis being back.
            await asyncio.sleep(LINK_RETRY_S if self.link_down else interval)

    async def _beat(self) -> bool:
        """Refresh this socket's presence entry (re-adding it after a Redis restart: presence is
        rebuilt from live sockets). False if Redis could not be reached."""
        self.last_beat = time.monotonic()
        try:
            changed = await presence.heartbeat(self.session_id, self.user.username, self.channel_name)
        except Exception:
            if not self.link_down:
                logger.warning("presence heartbeat for session %s failed", self.session_id, exc_info=True)
            return False
        if changed:
            presence.announce_soon(self.session_id, self._announce_presence, kind=self.presence_kind)
        return True

    async def _link_lost(self):
        """Redis is unreachable: group messages can't reach this socket. Say so (the player sees
        "reconnecting…"); what is committed meanwhile is healed from the store once it is back."""
        self.link_down = True
        await self._send_link_state(False)

    async def _link_back(self):
        """Redis is back: "live" again, and a heal of everything committed while it was away
        (events whose broadcast failed), in order with the group messages (session_heal)."""
        self.link_down = False
        self.heal_mark = await self._current_version()
        await self._send_link_state(True)
        if self.last_seq is not None:
            self._hold({"type": "session.heal"})

    async def _send_link_state(self, live: bool):
        if self.json_mode:
            await self._send_json({"type": "status", "state": "live" if live else "reconnecting"})
        else:
            await self.send(text_data=render_to_string("play/_conn_oob.html", {"live": live}))

    # ---- helpers -----------------------------------------------------------------------

    async def _deliver(self, message) -> bool:
        """Send one event (or skip a whisper to someone else, keeping its seq). False, sending
        nothing, while the client is stalled: the event heals from the store later."""
        if self._stalled():
            return False
        self._track_streams(message["event"])
        if (shown := self._event_text(message)) is not None:
            await self.send(text_data=shown[1])
        self.last_seq = message["seq"]
        return True

    def _event_text(self, message) -> tuple[str | None, str] | None:
        """What this socket sends for an event: (the name `once()` keeps it under — None when it
        is this socket's own — and the text), or None for a whisper to someone else."""
        if not may_see(message["event"].get("audience"), self.membership):
            return None
        if self.json_mode:
            # The same text for every socket that may see it: encoded once per process.
            return "event.json", once(message, "event.json", lambda: event_frame(message))
        return "event.html", message["html"]

    async def _catch_up(self, after: int, version: int | None = None):
        """Everything after `after` from the store. A seq beyond the log (a client of a reset
        database) counts from the log's end, or the socket would skip every event until then."""
        if version is None:
            version = await self._current_version()
        self.last_seq = min(after, version)
        if not await self._may_replay(version - self.last_seq):
            self.last_seq = version  # live from now on; the error frame said why
        await self._send_range(self.last_seq, None)
        # What came through the group before the hello is in the store; this only makes sure.
        held_upto, self.held_upto = self.held_upto, 0
        if held_upto > self.last_seq:
            await self._send_range(self.last_seq, held_upto)

    async def _may_replay(self, missed: int) -> bool:
        """Whether this user may have `missed` past events replayed now. A long replay is costly
        (a query and a render per event, ~0.5 s per 2,000 on the process's one database thread)
        and a `hello` asks for one in a few bytes, so past CATCH_UP_FREE events replays count
        against the user's "catch_up" limit, one per CATCH_UP_PAGE. A reconnect that missed a
        little is never counted; gap healing (the server's own) never asks."""
        if missed <= CATCH_UP_FREE:
            return True
        try:
            await database_sync_to_async(_charge_replay)(self.user.pk, missed)
        except RateLimited as exc:
            await self._error(exc.code, exc.message)
            return False
        return True

    async def _send_range(self, after: int, upto: int | None):
        """Deliver the stored events in (after, upto] (None: to the end), page by page."""
        while True:
            page = await self._load_range(after, upto)
            for message in page:
                if not await self._deliver(message):
                    return  # stalled: the rest heals once it drains
            if len(page) < CATCH_UP_PAGE:
                return
            after = page[-1]["seq"]

    @database_sync_to_async
    def _load_range(self, after: int, upto: int | None) -> list[dict]:
        from campaigns.models import Event, PlaySession

        qs = (
            Event.objects.filter(session_id=self.session_id, seq__gt=after)
            .select_related("actor")
            .order_by("seq")
        )
        if upto is not None:
            qs = qs.filter(seq__lte=upto)
        state = PlaySession.objects.values_list("state", flat=True).get(pk=self.session_id) or {}
        # The broadcaster's own renderer: a caught-up tab sees exactly what a live one saw.
        messages = broadcast.event_messages(list(qs[:CATCH_UP_PAGE]), state)
        return [{**m, "event": json.loads(json.dumps(m["event"]))} for m in messages]

    @database_sync_to_async
    def _membership(self):
        from campaigns.models import Membership, PlaySession

        if self.user is None or not self.user.is_authenticated:
            return None
        campaign_id = (
            PlaySession.objects.filter(pk=self.session_id).values_list("campaign_id", flat=True).first()
        )
        if campaign_id is None:
            return None
        return Membership.objects.filter(campaign_id=campaign_id, user=self.user).first()

    @database_sync_to_async
    def _current_version(self) -> int:
        from campaigns.models import PlaySession

        return PlaySession.objects.values_list("version", flat=True).get(pk=self.session_id)

    # Submitting may run a whole turn (tasks run inline in tests and with a `sync` Q cluster), so
    # it must not hold the process-wide thread-sensitive executor: Channels runs every consumer's
    # close_old_connections() there before each message, and all other sockets would stall.
    async def _submit(self, frame: ActionFrame) -> int:
        return await database_sync_to_async(self._submit_sync, thread_sensitive=False)(frame)

    def _submit_sync(self, frame: ActionFrame) -> int:
        from narrative.turns import submit_action

        result = submit_action(
            session_id=self.session_id, user=self.user, text=frame.text, idempotency_key=frame.idempotency_key
        )
        return result.events[0].seq

    async def _retry(self, action_seq: int) -> None:
        await database_sync_to_async(self._retry_sync, thread_sensitive=False)(action_seq)

    def _retry_sync(self, action_seq: int) -> None:
        from narrative.turns import retry_turn

        retry_turn(session_id=self.session_id, user=self.user, action_seq=action_seq)

    @database_sync_to_async
    def _whisper(self, frame: WhisperFrame) -> None:
        from campaigns.models import Membership, PlaySession
        from campaigns.services import session_whisper

        session = PlaySession.objects.get(pk=self.session_id)
        membership = Membership.objects.get(pk=self.membership.pk)
        session_whisper(session=session, membership=membership, to_user_id=frame.to, text=frame.text)

    async def _ack(self, seq: int, key: str):
        if self.json_mode:
            await self._send_json({"type": "ack", "seq": seq, "idempotency_key": key})
        else:
            await self.send(
                text_data=render_to_string("play/_action_form_oob.html", {"new_key": uuid.uuid4().hex})
            )

    async def _announce_presence(self, online: list[str]):
        html = await self._render_party(online)
        await broadcast.presence_changed_async(self.session_id, html, online)

    @database_sync_to_async
    def _render_party(self, online: list[str]) -> str:
        from campaigns.selectors import party_context

        context = party_context(self.session_id, online)
        return render_to_string("play/_party_oob.html", context)

    async def _error(self, code: str, message: str):
        if self.json_mode:
            await self._send_json({"type": "error", "code": code, "message": message})
        else:
            await self.send(
                text_data=render_to_string("play/_notice_oob.html", {"message": message, "code": code})
            )

    async def _send_json(self, data: dict):
        await self.send(text_data=json.dumps(data))


def event_frame(message: dict) -> str:
    """A committed event as a JSON socket receives it."""
    return json.dumps({"type": "event", "seq": message["seq"], "event": message["event"]})


def presence_json(message: dict) -> str:
    """Who is online, as a JSON socket receives it."""
    return json.dumps({"type": "presence", "online": message["online"]})


def delta_json(message: dict) -> str:
    """A narration delta as a JSON socket receives it."""
    fields = {k: message[k] for k in ("action_seq", "i", "text")}
    return json.dumps({"type": "delta", **fields})


def _charge_replay(user_id: int, missed: int) -> None:
    for _ in range(-(-missed // CATCH_UP_PAGE)):
        rate_check(scope="catch_up", ident=user_id)


def unavailable_message(down: str, *, json_mode: bool) -> str:
    """What a player (or a script) is told when a frame arrives while PostgreSQL or Redis is down."""
    what = "its database" if down == "db" else "its message broker"
    head = f"The game server is reconnecting to {what}; nothing was recorded."
    if json_mode:
        return f"{head} Send the frame again, with the same idempotency_key, in a few seconds."
    return f"{head} Your action is kept here and sent again automatically as soon as it is back."


def parse_last_seq(raw: str | None) -> int | None:
    """`?last_seq=` as a seq, or None (catch up from now) when absent, not a number (`int()`
    refuses some strings `isdigit()` accepts, like "²") or negative."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None
