"""A lean websocket client for load harnesses (`gtw bench fanout`, the 500-socket suite test).

The harness shares the machine with the server it measures, so its per-frame cost is part of
every figure. The `websockets` library is a good client and a costly one at this scale (its
frame parser, queues and async iterator run per frame per socket); this one is an
`asyncio.BufferedProtocol` that the event loop reads into, parses server frames in place and
hands each text frame's bytes to a callback — no task per socket, no queue, no allocation per
read. It speaks just what the harness
needs (RFC 6455 client side): the upgrade with extra headers, unfragmented text frames, pings
answered, close. Client frames are masked with a zero key (the RFC requires a mask, and our
server never relies on its unpredictability: that guards proxies from cache poisoning).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from collections import Counter
from collections.abc import Callable

# Connects that were tried again, by what failed (the harness reports them).
retried: Counter[str] = Counter()

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
READ_BUFFER = 32 * 1024  # a socket's read buffer (it grows for a larger frame)
READ_MIN = 8 * 1024  # free space offered to each read: below it, the unparsed tail moves to the front


class HandshakeError(ConnectionError):
    """The server did not switch protocols (it answered otherwise, or hung up first)."""


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (zero mask key: the payload goes as is)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class LeanSocket(asyncio.BufferedProtocol):
    """One websocket. `on_text(payload_bytes)` runs for every text frame, in order.

    A BufferedProtocol: the event loop reads straight into our buffer (`recv_into`), so a read
    allocates nothing, and the frames of a read are parsed in one loop, in place."""

    def __init__(self, host: str, path: str, headers: dict[str, str], on_text: Callable[[bytes], None]):
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        ).encode()
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        # Bytes read and not parsed yet are buffer[start:end]; the loop reads into buffer[end:].
        self.buffer = bytearray(READ_BUFFER)
        self.view = memoryview(self.buffer)
        self.start = self.end = 0
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.upgraded = False
        self.local_port = 0

    # ---- asyncio.BufferedProtocol ------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.local_port = transport.get_extra_info("sockname")[1]
        transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buffer) - self.end < READ_MIN:
            self._make_room(READ_MIN)
        return self.view[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n", self.start, self.end)
            if end < 0:
                return
            status = bytes(self.buffer[self.start : self.buffer.find(b"\r\n", self.start)])
            if b" 101 " not in status:
                self._fail(HandshakeError(status.decode("latin-1")))
                return
            self.start = end + 4
            self.upgraded = True
            if not self.open.done():
                self.open.set_result(None)
        self._frames()

    def connection_lost(self, exc) -> None:
        self._fail(exc or HandshakeError("connection closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    # ---- frames ------------------------------------------------------------------------

    def _frames(self) -> None:
        buf, view, on_text = self.buffer, self.view, self.on_text
        at, end = self.start, self.end
        while end - at >= 2:
            b0, n = buf[at], buf[at + 1] & 0x7F
            head = 2
            if n == 126:
                if end - at < 4:
                    break
                n, head = (buf[at + 2] << 8) | buf[at + 3], 4
            elif n == 127:
                if end - at < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, at + 2)[0], 10
            if end - at < head + n:
                if head + n > len(buf):  # a frame larger than the buffer: grow it for the rest
                    self.start = at
                    self._make_room(head + n)
                break
            payload = view[at + head : at + head + n].tobytes()
            at += head + n
            opcode = b0 & 0x0F
            if opcode == OP_TEXT:
                on_text(payload)
            elif opcode == OP_PING:
                self.transport.write(client_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                with contextlib.suppress(Exception):
                    self.transport.write(client_frame(OP_CLOSE, payload[:2]))
                self.transport.close()
        if self.buffer is buf:  # not grown meanwhile (then start/end were set there)
            self.start = at
            if at == end:
                self.start = self.end = 0  # all parsed (the usual case): reuse from the front

    def _make_room(self, need: int) -> None:
        """At least `need` free bytes after what is unparsed: move it to the front, or grow."""
        kept = self.end - self.start
        tail = bytes(self.view[self.start : self.end])  # a copy: the moves below may overlap it
        if kept + need > len(self.buffer):
            self.buffer = bytearray(max(2 * len(self.buffer), kept + need))
            self.view = memoryview(self.buffer)
        self.buffer[:kept] = tail
        self.start, self.end = 0, kept

    def _fail(self, exc: BaseException) -> None:
        if not self.open.done():
            self.open.set_exception(exc)

    # ---- the caller's side -------------------------------------------------------------

    def send_text(self, text: str) -> None:
        self.transport.write(client_frame(OP_TEXT, text.encode()))

    def pause(self) -> None:
        """Stop reading: the kernel's buffers fill and the server sees a slow client."""
        self.transport.pause_reading()

    def resume(self) -> None:
        self.transport.resume_reading()

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(Exception):
            self.transport.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), 2)
        self.transport.close()


async def connect(
    host: str,
    port: int,
    path: str,
    on_text: Callable[[bytes], None],
    *,
    headers: dict[str, str] | None = None,
    open_timeout: float = 60,
    retries: int = 3,
    rcvbuf: int | None = None,
) -> LeanSocket:
    """Open a socket (with `rcvbuf`, a small receive buffer: a slow reader fills it soon and the
    server has to hold what it cannot send), retrying a refused upgrade (a connect storm on a
    busy server can time out the handshake: Daphne gives up on a connection its application has
    not accepted in 5 s — a browser would reconnect too)."""
    loop = asyncio.get_running_loop()
    headers = {"Origin": f"http://{host}:{port}", **(headers or {})}
    for attempt in range(retries + 1):
        protocol = None
        try:
            async with asyncio.timeout(open_timeout):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if rcvbuf is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (host, port))
                except BaseException:
                    sock.close()
                    raise
                _, protocol = await loop.create_connection(
                    lambda: LeanSocket(f"{host}:{port}", path, headers, on_text), sock=sock
                )
                await asyncio.shield(protocol.open)
            return protocol
        except (OSError, TimeoutError) as exc:
            if protocol is not None and protocol.transport is not None:
                protocol.transport.close()
            if attempt == retries:
                raise
            retried[type(exc).__name__] += 1
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
