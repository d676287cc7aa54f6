"""Helpers for the shared-document tests: a pycrdt peer of one document socket, an edit's update
and the stored rows."""

from __future__ import annotations

import asyncio
import json

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from pycrdt import Doc, Text, YSyncMessageType

from realtime import crdt
from realtime.routing import websocket_urlpatterns

app = URLRouter(websocket_urlpatterns)
# How long a peer waits for a frame it expects: a ceiling, never a pace (a large step 2 took over
# 10 s to store on a loaded machine).
WAIT = 30.0


def edit(doc: Doc, change) -> bytes:
    """Apply `change(doc)` and return the update it produced."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    change(doc)
    doc.unobserve(sub)
    return crdt._merge(updates)


def text_update(doc: Doc, index: int, value: str) -> bytes:
    return edit(doc, lambda d: d.get("text", type=Text).insert(index, value))


def rows(session, name) -> list:
    from realtime.models import SharedDocUpdate

    return list(SharedDocUpdate.objects.filter(doc__session=session, doc__name=name).order_by("id"))


class Peer:
    """A pycrdt client of one document socket: keeps its own Doc across reconnects."""

    def __init__(self, session, user, name="notes", doc: Doc | None = None):
        self.session, self.user, self.name = session, user, name
        self.doc = doc or Doc()
        self.outbox: list[bytes] = []
        self.errors: list[dict] = []
        self.comm: WebsocketCommunicator | None = None
        self._applying = False
        self.doc.observe(self._local)

    def _local(self, event):
        if not self._applying:
            self.outbox.append(event.update)

    @property
    def text(self) -> Text:
        return self.doc.get("text", type=Text)

    def apply(self, update: bytes):
        self._applying = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying = False

    def open(self) -> WebsocketCommunicator:
        path = f"/ws/sessions/{self.session.pk}/docs/{self.name}/"
        self.comm = WebsocketCommunicator(app, path)
        self.comm.scope["user"] = self.user
        return self.comm

    async def connect(self):
        """Connect and run the handshake: answer the server's step 1, then fetch what we lack."""
        connected, _ = await self.open().connect()
        assert connected
        frame = await self.next_binary()
        assert frame.sync == YSyncMessageType.SYNC_STEP1
        await self.send(crdt.step2_frame(self.doc.get_update(frame.payload)))
        self.outbox.clear()  # the step 2 carried everything the server lacked
        await self.settle()

    async def send(self, data: bytes):
        await self.comm.send_to(bytes_data=data)

    async def push(self):
        for update in self.outbox:
            await self.send(crdt.update_frame(update))
        self.outbox.clear()

    async def next_binary(self, wait=WAIT) -> crdt.Frame:
        while True:
            message = await self.comm.receive_output(timeout=wait)
            assert message["type"] == "websocket.send", message
            if message.get("bytes") is not None:
                return crdt.frame_parse(message["bytes"])
            self.errors.append(json.loads(message["text"]))

    async def next_error(self, wait=WAIT) -> dict:
        message = await self.comm.receive_output(timeout=wait)
        assert message["type"] == "websocket.send" and message.get("text"), message
        return json.loads(message["text"])

    async def settle(self, wait=WAIT):
        """Send step 1 and apply everything until the reply (step 2) — the server handles a
        socket's frames in order, so everything this peer pushed before is stored by then.
        A step 1 from the server met on the way is answered, then one more round confirms it."""
        await self.send(crdt.step1_frame(self.doc.get_state()))
        answered = False
        while True:
            frame = await self.next_binary(wait)
            if frame.sync == YSyncMessageType.SYNC_STEP1:
                await self.send(crdt.step2_frame(self.doc.get_update(frame.payload)))
                answered = True
                continue
            self.apply(frame.payload)
            if frame.sync == YSyncMessageType.SYNC_STEP2:
                if not answered:
                    return
                answered = False
                await self.send(crdt.step1_frame(self.doc.get_state()))

    async def poll(self) -> bool:
        """Take one frame if one has come (answer a step 1, apply anything else, keep an error);
        False if none came within a moment."""
        if await self.comm.receive_nothing(timeout=0.05):
            return False
        message = await self.comm.receive_output()
        assert message["type"] == "websocket.send", message
        if message.get("bytes") is None:
            self.errors.append(json.loads(message["text"]))
            return True
        frame = crdt.frame_parse(message["bytes"])
        if frame.sync == YSyncMessageType.SYNC_STEP1:
            await self.send(crdt.step2_frame(self.doc.get_update(frame.payload)))
        else:
            self.apply(frame.payload)
        return True

    async def receive_update(self, wait=WAIT):
        frame = await self.next_binary(wait)
        assert frame.sync == YSyncMessageType.SYNC_UPDATE, frame
        self.apply(frame.payload)

    async def close(self):
        await self.comm.disconnect()


async def until_synced(done, *peers: Peer, wait=WAIT):
    """Take every peer's frames as they come (answering the server's step 1s) until `done()`;
    fails after `wait` seconds. For a server that heals by asking again, whenever it does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not done():
        assert loop.time() < deadline, (
            f"not synced after {wait} s: {[(str(p.text), p.errors) for p in peers]}"
        )
        for peer in peers:
            await peer.poll()


async def converge(*peers: Peer):
    """Two rounds of settle: after the first, everything every peer pushed is stored; the second
    brings each peer everything stored."""
    for _ in range(2):
        for peer in peers:
            await peer.settle()
