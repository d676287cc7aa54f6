"""One channel per group per process, and a loop that writes each broadcast to the local sockets.

Channels' own path for a group message costs every socket, per message: a queue put, a task and
an `asyncio.wait` in `await_many_dispatch`, `dispatch`, the handler, `send`, Daphne's
`handle_reply`, and autobahn framing the same text again (issue 20: ~200 µs of Daphne CPU per
delivery, a knee near 300 sockets on a 2-core machine). Here a process joins a group once (a
channel of its own, one reader task), and for each message calls every local member's
`hub_message()` in one synchronous loop. A member that can take it at once (idle, nothing of its
own queued, the next seq) writes the frame itself: one pre-framed websocket message per event per
process (`prepared()`), written straight to the socket. Anything else (a gap to heal, a busy
consumer, a message type with no fast path) goes to the member's own inbox and through its
normal handlers, in order (see SessionConsumer.hub_message).

Works over any channel layer (it uses new_channel / group_add / receive only), so `core` and
`pubsub` both get it. `GTW_FANOUT_HUB=0` switches it off: every socket joins its groups itself.

A socket's writer (`writer_for`) writes without awaiting: Daphne's websocket protocol when the
ASGI `send` is Daphne's, the test communicator's queue in tests, else none (the member then takes
every message through its inbox, as without the hub). A socket whose Twisted send buffer holds
more than `GTW_WS_BUFFER_MAX_BYTES` (a stalled client) is not written to: its events are skipped
and it heals them from the event store, in order, once it drains — so a stalled socket costs the
server a bounded buffer, never a queue that grows with every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from typing import Any, Protocol

from django.conf import settings

from realtime.layer import FRAMES

logger = logging.getLogger(__name__)

READ_RETRY_S = 1.0  # after a failed receive (Redis restarting), the hub's reader tries again


class Member(Protocol):
    def hub_message(self, message: dict[str, Any]) -> None: ...


class GroupHub:
    """One group in one process: its channel, its reader, its local members."""

    def __init__(self, layer, group: str) -> None:
        self.layer = layer
        self.group = group
        self.members: dict[str, Member] = {}  # the member's own channel name -> the member
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.ready: asyncio.Task = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()  # the default prefix: `core` reads one per process
        await self.layer.group_add(self.group, self.channel)
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        channel = self.channel
        while True:
            try:
                message = await self.layer.receive(channel)
            except Exception:  # Redis away (the `core` layer reads it here): the sockets heal by seq
                logger.warning("hub %s: receive failed; retrying", self.group, exc_info=True)
                await asyncio.sleep(READ_RETRY_S)
                continue
            # One scratch dict for the whole process (realtime.layer.once): every member renders
            # or frames the message once between them. Members never change the message itself.
            message[FRAMES] = {}
            for member in list(self.members.values()):
                try:
                    member.hub_message(message)
                except Exception:  # one socket's failure must never cost the others the message
                    logger.exception("hub %s: delivery to a socket failed", self.group)

    async def close(self) -> None:
        """Leave the group and stop reading (the last member has gone)."""
        await asyncio.wait([self.ready])
        if self.ready.cancelled() or self.ready.exception() is not None:
            return  # never joined
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.layer.group_discard(self.group, self.channel)


# Per event loop (Daphne has one; tests one per test), weakly: loop -> {group: GroupHub}.
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_closing: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> {tasks}


def enabled() -> bool:
    return settings.GTW_FANOUT_HUB


def hubs() -> dict[str, GroupHub]:
    """This event loop's hubs, by group name (tests look at them)."""
    return _hubs.setdefault(asyncio.get_running_loop(), {})


async def join(layer, group: str, channel: str, member: Member) -> None:
    """Add `member` (whose own channel is `channel`) to `group` in this process. Returns once
    the process's channel is in the group, so nothing sent after this returns is missed."""
    hub = hubs().get(group)
    if hub is None or hub.layer is not layer:
        hub = hubs()[group] = GroupHub(layer, group)
    hub.members[channel] = member
    try:
        await asyncio.shield(hub.ready)
    except BaseException:  # it failed to join, or this socket went away (cancelled) meanwhile
        failed = hub.ready.done() and (hub.ready.cancelled() or hub.ready.exception() is not None)
        if failed and hubs().get(group) is hub:
            del hubs()[group]  # the next join tries again
        _drop(hub, channel)
        raise


def leave(group: str, channel: str) -> None:
    """Take the member out (idempotent, synchronous: safe from a done-callback); the last one out
    closes the process's channel in the background."""
    try:
        hub = hubs().get(group)
    except RuntimeError:  # no running loop: the process is going away with it
        return
    if hub is not None:
        _drop(hub, channel)


def _drop(hub: GroupHub, channel: str) -> None:
    if hub.members.pop(channel, None) is None or hub.members:
        return
    loop_hubs = hubs()
    if loop_hubs.get(hub.group) is hub:
        del loop_hubs[hub.group]
    closing = _closing.setdefault(asyncio.get_running_loop(), set())
    task = asyncio.ensure_future(hub.close())
    closing.add(task)
    task.add_done_callback(closing.discard)
    task.add_done_callback(_log_close_failure)


def _log_close_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("hub: leaving a group failed", exc_info=task.exception())


async def settle() -> None:
    """Wait for the groups being left in the background (tests)."""
    while tasks := _closing.get(asyncio.get_running_loop()):
        await asyncio.gather(*list(tasks), return_exceptions=True)


# ---- writers: a frame onto one socket, now, without awaiting --------------------------------


def prepared(text: str):
    """`text` framed once as an unmasked websocket text message, for any number of sockets."""
    from autobahn.websocket.protocol import PreparedMessage

    return PreparedMessage(text.encode("utf-8"), False, False, True)


class DaphneWriter:
    """Daphne's websocket protocol for one socket: what `handle_reply` would do with a
    `websocket.send`, minus the coroutine, the checks per message and the framing."""

    def __init__(self, server, protocol) -> None:
        self.server = server
        self.protocol = protocol
        # Read once per socket: `full()` runs per socket per event, and every read of Django's
        # lazy settings is a Python-level __getattribute__.
        self.limit = settings.GTW_WS_BUFFER_MAX_BYTES

    def buffered(self) -> int:
        """Bytes Twisted holds for this socket that the kernel has not taken yet."""
        transport = self.protocol.transport
        try:
            return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        except AttributeError:  # not a plain TCP transport (TLS, a test double): not measured
            return 0

    def full(self) -> bool:
        transport = self.protocol.transport
        try:
            return len(transport.dataBuffer) - transport.offset + transport._tempDataLen > self.limit
        except AttributeError:  # as buffered()
            return False

    def write(self, text: str, frame=None) -> None:
        protocol = self.protocol
        details = self.server.connections.get(protocol)
        if details is None or "disconnected" in details or protocol.state != protocol.STATE_OPEN:
            return  # closed or closing: Daphne's handle_reply drops it too
        if frame is None:
            protocol.sendMessage(text.encode("utf-8"), False)
        elif protocol._perMessageCompress is None and not protocol.send_queue:
            send_now(protocol.transport, frame.payloadHybi)  # sendPreparedMessage, minus its logging
        else:
            protocol.sendPreparedMessage(frame)


def send_now(transport, data: bytes) -> None:
    """`transport.write(data)`, but handed to the kernel at once when Twisted holds nothing for
    this socket. Twisted queues every write for the reactor's next turn — on the asyncio reactor
    an add_writer, a wake-up, a send and a remove_writer per socket per message, most of what a
    delivery cost once the hub had removed the rest. What the kernel does not take (a slow
    reader), and any error, goes through Twisted as before, in order."""
    try:
        sock = transport.socket
        idle = (
            not transport._tempDataLen
            and len(transport.dataBuffer) == transport.offset
            and transport.connected
            and not transport.disconnecting
        )
    except AttributeError:  # not a plain TCP transport
        idle = False
    if not idle or sock is None:
        transport.write(data)
        return
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        transport.write(data)  # Twisted reports the broken connection its own way
        return
    if sent < len(data):
        transport.write(data[sent:])


class QueueWriter:
    """The test communicator's output queue (channels.testing). `stalled` lets a test play a
    client that stopped reading."""

    def __init__(self, queue: asyncio.Queue) -> None:
        self.queue = queue
        self.stalled = False

    def full(self) -> bool:
        return self.stalled

    def write(self, text: str, frame=None) -> None:
        self.queue.put_nowait({"type": "websocket.send", "text": text})


def writer_for(send) -> DaphneWriter | QueueWriter | None:
    """A writer for the socket whose ASGI `send` this is, or None if we don't know the server
    (the socket then takes every message through its consumer, as without the hub)."""
    from channels.sessions import InstanceSessionWrapper

    # Channels' session middleware wraps send for HTTP cookies; a websocket.send passes through.
    while isinstance(getattr(send, "__self__", None), InstanceSessionWrapper):
        send = send.__self__.real_send
    if isinstance(send, functools.partial) and len(send.args) == 1 and not send.keywords:
        server = getattr(send.func, "__self__", None)
        if getattr(send.func, "__name__", "") == "handle_reply" and hasattr(server, "connections"):
            from daphne.ws_protocol import WebSocketProtocol

            if isinstance(send.args[0], WebSocketProtocol):
                return DaphneWriter(server, send.args[0])
    queue = getattr(send, "__self__", None)
    if isinstance(queue, asyncio.Queue) and getattr(send, "__name__", "") == "put" and queue.maxsize == 0:
        return QueueWriter(queue)
    return None
