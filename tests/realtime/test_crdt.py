"""Shared CRDT documents: the service (validate, persist, compact, read) and the y-protocols socket,
driven by pycrdt peers over WebsocketCommunicator through real channels-redis."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from pycrdt import Array, Doc, Map, Text, YSyncMessageType

from realtime import crdt, crdt_consumer
from realtime.routing import websocket_urlpatterns
from tests.realtime.crdt_helpers import Peer, converge, edit, rows, text_update, until_synced

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """channels-redis binds receive locks to the loop that made the layer; one layer per test."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def run(coro_fn):
    async_to_sync(coro_fn)()


# ---- service ---------------------------------------------------------------------------------


def test_updates_persist_and_a_restart_loads_the_same_document(session, gm, player):
    source = Doc()
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(source, 0, "Dock 7"), user=gm
    )
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(source, 6, " — bring the key"), user=player
    )
    assert [r.by_id for r in rows(session, "notes")] == [gm.pk, player.pk]
    # A "restart": nothing in memory, the document comes back from its rows alone.
    loaded = crdt.shared_doc_load(session_id=session.pk, name="notes")
    assert str(loaded.get("text", type=Text)) == "Dock 7 — bring the key"
    assert crdt.shared_doc_json(session_id=session.pk, name="notes") == {"text": "Dock 7 — bring the key"}


def test_json_of_inventory_and_map_keeps_only_well_formed_entries(session, gm):
    inv = Doc()

    def stock(d):
        items = d.get("items", type=Array)
        items.append(Map({"id": "a", "name": "Medkit", "qty": 2, "holder": "Kira"}))
        items.append(Map({"id": "b", "name": "", "qty": 1}))  # nameless: left out
        items.append("not an item")

    crdt.shared_doc_apply(session_id=session.pk, name="inventory", update=edit(inv, stock), user=gm)
    assert crdt.shared_doc_json(session_id=session.pk, name="inventory") == {
        "items": [{"id": "a", "name": "Medkit", "qty": 2, "holder": "Kira"}]
    }

    grid = Doc()

    def place(d):
        markers = d.get("markers", type=Map)
        markers["m1"] = {"x": 3, "y": 2, "label": "Shuttle", "kind": "ally"}
        markers["m2"] = {"x": 12, "y": 0, "label": "Off the grid", "kind": "enemy"}
        markers["m3"] = {"x": 0, "y": 7, "label": "Beacon", "kind": "laser"}

    crdt.shared_doc_apply(session_id=session.pk, name="map", update=edit(grid, place), user=gm)
    assert crdt.shared_docs_for(viewer=gm, session_id=session.pk)["map"] == {
        "markers": [
            {"id": "m3", "x": 0, "y": 7, "label": "Beacon", "kind": "poi"},
            {"id": "m1", "x": 3, "y": 2, "label": "Shuttle", "kind": "ally"},
        ]
    }


def test_outsiders_cannot_read_documents_through_the_service(session, outsider):
    from campaigns.errors import NotFound

    with pytest.raises(NotFound):
        crdt.shared_docs_for(viewer=outsider, session_id=session.pk)


@pytest.mark.parametrize(
    ("name", "update", "code"),
    [
        ("notes", b"\x01\x02\x03", "malformed"),
        ("notes", b"\xff" * 12, "malformed"),
        ("notes", b"x" * (crdt.MAX_UPDATE_BYTES + 1), "too_large"),
        ("notes", "junk", "invalid"),  # a root the notes document does not have
        ("scratchpad", "text", "unknown_doc"),
    ],
)
def test_bad_updates_are_refused_and_not_stored(session, gm, name, update, code):
    if isinstance(update, str):
        update = edit(Doc(), lambda d, key=update: d.get(key, type=Text).insert(0, "x"))
    with pytest.raises(crdt.DocRefused) as refused:
        crdt.shared_doc_apply(session_id=session.pk, name=name, update=update, user=gm)
    assert refused.value.code == code
    assert not rows(session, name)


def test_empty_updates_are_not_stored(session, gm):
    assert crdt.shared_doc_apply(session_id=session.pk, name="notes", update=crdt.EMPTY_UPDATE) is False
    assert not rows(session, "notes")


def test_compaction_keeps_the_content_and_folds_the_rows(session, gm, monkeypatch):
    source = Doc()
    for i in range(30):
        update = text_update(source, i % 5, f"{i},")
        crdt.shared_doc_apply(session_id=session.pk, name="notes", update=update, user=gm)
    before = crdt.shared_doc_json(session_id=session.pk, name="notes")
    assert before["text"] == str(source.get("text", type=Text))
    assert len(rows(session, "notes")) == 30
    doc_id = rows(session, "notes")[0].doc_id
    assert crdt.shared_doc_compact(doc_id=doc_id) == 30
    after = rows(session, "notes")
    assert len(after) == 1 and after[0].is_snapshot
    assert crdt.shared_doc_json(session_id=session.pk, name="notes") == before
    assert after[0].doc.compacted_at is not None

    # Past the threshold, appending compacts by itself.
    monkeypatch.setattr(crdt, "COMPACT_AFTER", 5)
    for i in range(5):
        crdt.shared_doc_apply(session_id=session.pk, name="notes", update=text_update(source, 0, f"+{i}"))
    assert len(rows(session, "notes")) == 1
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == str(
        source.get("text", type=Text)
    )


def test_an_append_during_compaction_is_not_lost(session, gm, monkeypatch):
    """Compaction holds the document row lock while it merges; an append that arrives then must
    land after it as its own row, never be deleted with the rows the compaction merged."""
    from django.db import connection

    source = Doc()
    for word in ("alpha ", "beta "):
        crdt.shared_doc_apply(session_id=session.pk, name="notes", update=text_update(source, 0, word))
    doc_id = rows(session, "notes")[0].doc_id
    late = text_update(source, 0, "gamma ")
    merging, release = threading.Event(), threading.Event()
    real_merge = crdt._merge
    results: dict[str, object] = {}

    def slow_merge(updates):
        if threading.current_thread().name == "compactor":
            merging.set()
            assert release.wait(10)
        return real_merge(updates)

    monkeypatch.setattr(crdt, "_merge", slow_merge)

    def in_thread(name, fn):
        def target():
            try:
                results[name] = fn()
            finally:
                connection.close()

        thread = threading.Thread(target=target, name=name)
        thread.start()
        return thread

    compactor = in_thread("compactor", lambda: crdt.shared_doc_compact(doc_id=doc_id))
    assert merging.wait(10)
    appender = in_thread(
        "appender", lambda: crdt.shared_doc_apply(session_id=session.pk, name="notes", update=late)
    )
    appender.join(0.5)
    assert appender.is_alive(), "the append should wait for the compaction's lock"
    release.set()
    compactor.join(10)
    appender.join(10)
    assert results == {"compactor": 2, "appender": True}
    kept = rows(session, "notes")
    assert [r.is_snapshot for r in kept] == [True, False]
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == "gamma beta alpha "


def test_frames_are_parsed_strictly():
    update = text_update(Doc(), 0, "hi")
    frame = crdt.frame_parse(crdt.update_frame(update))
    assert (frame.sync, frame.payload) == (YSyncMessageType.SYNC_UPDATE, update)
    for bad in (
        b"",
        b"\x00",
        b"\x07\x00",
        b"\x00\x09\x00",
        crdt.update_frame(update)[:-1],
        b"\x00\x00\xff\xff",
    ):
        with pytest.raises(crdt.DocRefused):
            crdt.frame_parse(bad)


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = crdt_consumer.TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]


# ---- socket ----------------------------------------------------------------------------------


def test_two_clients_typing_at_once_converge(session, gm, player):
    async def go():
        a, b = Peer(session, gm), Peer(session, player)
        await a.connect()
        await b.connect()
        # Both type before hearing from the other.
        a.text.insert(0, "The GM's line. ")
        b.text.insert(0, "Kira's line. ")
        await a.push()
        await b.push()
        await b.receive_update()  # relayed live, not only on the next sync
        await converge(a, b)
        assert str(a.text) == str(b.text)
        assert "The GM's line. " in str(a.text) and "Kira's line. " in str(a.text)
        # More concurrent edits in the middle of the shared text.
        middle = len(str(a.text)) // 2
        a.text.insert(middle, "[A]")
        b.text.insert(middle, "[B]")
        await a.push()
        await b.push()
        await converge(a, b)
        assert str(a.text) == str(b.text) and "[A]" in str(a.text) and "[B]" in str(a.text)
        await a.close()
        await b.close()
        return str(a.text)

    result = {}

    async def outer():
        result["text"] = await go()

    run(outer)
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == result["text"]


def test_edits_made_while_disconnected_merge_on_reconnect(session, gm, player):
    async def go():
        a, b = Peer(session, gm), Peer(session, player)
        await a.connect()
        await b.connect()
        a.text.insert(0, "Shared start.")
        await a.push()
        await b.receive_update()
        await b.close()
        # B goes offline and keeps editing; A edits meanwhile.
        b.text.insert(len(str(b.text)), " B offline.")
        a.text.insert(0, "A online. ")
        await a.push()
        await a.settle()
        assert "B offline." not in str(a.text)
        # B comes back with its own Doc: the handshake's step 2 carries the offline edit.
        await b.connect()
        await a.receive_update()
        await a.settle()
        assert str(a.text) == str(b.text) == "A online. Shared start. B offline."
        await a.close()
        await b.close()

    run(go)
    # And a brand-new peer (or the server after a restart) sees the same, from the rows alone.
    assert (
        crdt.shared_doc_json(session_id=session.pk, name="notes")["text"]
        == "A online. Shared start. B offline."
    )

    async def fresh():
        c = Peer(session, gm)
        await c.connect()
        assert str(c.text) == "A online. Shared start. B offline."
        await c.close()

    run(fresh)


@pytest.mark.parametrize("who", ["outsider", "anonymous", "missing-session"])
def test_non_members_are_closed_with_4403(session, outsider, who):
    async def go():
        comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/docs/notes/")
        comm.scope["user"] = AnonymousUser() if who == "anonymous" else outsider
        if who == "missing-session":
            comm = WebsocketCommunicator(app, "/ws/sessions/999999/docs/notes/")
            comm.scope["user"] = outsider
        connected, _ = await comm.connect()
        assert connected
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        await comm.disconnect()

    run(go)


def test_an_unknown_document_is_closed_with_4404_but_only_for_members(session, player, outsider):
    async def go():
        for user, code in ((player, 4404), (outsider, 4403)):
            comm = WebsocketCommunicator(app, f"/ws/sessions/{session.pk}/docs/scratchpad/")
            comm.scope["user"] = user
            connected, _ = await comm.connect()
            assert connected
            assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": code}
            await comm.disconnect()

    run(go)


def test_spectators_read_but_their_updates_are_refused(session, gm, spectator):
    async def go():
        writer, watcher = Peer(session, gm, name="map"), Peer(session, spectator, name="map")
        await writer.connect()
        writer.doc.get("markers", type=Map)["m1"] = {"x": 1, "y": 1, "label": "Relay", "kind": "objective"}
        await writer.push()
        await writer.settle()
        await watcher.connect()  # reading works, and its empty step 2 is not an error
        assert watcher.doc.get("markers", type=Map).to_py()["m1"]["label"] == "Relay"
        assert watcher.errors == []
        watcher.doc.get("markers", type=Map)["m2"] = {"x": 2, "y": 2, "label": "Mine", "kind": "hazard"}
        await watcher.push()
        error = await watcher.next_error()
        assert error["type"] == "error" and error["code"] == "read_only" and error["message"]
        await watcher.settle()  # still connected
        await writer.close()
        await watcher.close()

    run(go)
    assert [m["id"] for m in crdt.shared_doc_json(session_id=session.pk, name="map")["markers"]] == ["m1"]


def test_malformed_and_oversized_frames_get_errors_and_the_socket_stays_up(session, player):
    async def go():
        peer = Peer(session, player)
        await peer.connect()
        just_over = crdt.update_frame(text_update(Doc(), 0, "x" * (crdt.MAX_UPDATE_BYTES + 10)))
        far_over = crdt.update_frame(text_update(Doc(), 0, "x" * (crdt.MAX_UPDATE_BYTES * 2)))
        cases = [
            (b"\x07\x01\x02", "malformed"),
            (b"\x00\x02\x05abc", "malformed"),  # length prefix says 5, 3 follow
            (crdt.update_frame(b"\x01\x02\x03"), "malformed"),  # frames fine, update garbage
            (crdt.step1_frame(b"\xff\xff\xff"), "malformed"),
            (just_over, "too_large"),
            (far_over, "frame_too_large"),
        ]
        for raw, code in cases:
            await peer.send(raw)
            error = await peer.next_error()
            assert error["code"] == code, (raw[:10], error)
        await peer.comm.send_to(text_data='{"type": "hello"}')
        assert (await peer.next_error())["code"] == "malformed"
        peer.text.insert(0, "still here")
        await peer.push()
        await peer.settle()
        await peer.close()

    run(go)
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == "still here"
    assert len(rows(session, "notes")) == 1


def test_a_flood_is_rate_limited_heals_afterwards_and_others_are_unaffected(session, gm, player, monkeypatch):
    monkeypatch.setattr(crdt_consumer, "RATE_PER_S", 5.0)
    monkeypatch.setattr(crdt_consumer, "BURST", 10)
    monkeypatch.setattr(crdt_consumer, "RESYNC_AFTER_S", 0.3)
    # The buckets' clock stands still during the flood: a bucket refills by the server's clock
    # as it takes the frames, and a loaded machine taking 40 frames slower than 5 a second would
    # never limit them.
    frozen = {"at": time.monotonic()}

    def clock() -> float:
        return frozen["at"] if frozen else time.monotonic() + 60

    bucket = crdt_consumer.TokenBucket
    monkeypatch.setattr(crdt_consumer, "TokenBucket", lambda rate, burst: bucket(rate, burst, clock=clock))

    async def go():
        flooder, other = Peer(session, player), Peer(session, gm)
        await flooder.connect()
        await other.connect()
        for i in range(40):
            flooder.text.insert(0, f"{i};")
            await flooder.push()
        error = await flooder.next_error(wait=20)
        assert error["code"] == "rate_limited" and "5" in error["message"]
        frozen.clear()  # the flood is over: the clock runs again, a minute on (every bucket refills)
        # The other member is not throttled by someone else's flood.
        other.text.insert(0, "calm ")
        await other.push()
        # The flooder's socket is still up; once the server asks again (step 1), its answer
        # (step 2) brings everything that was dropped, and the server relays it to the other.
        # Waited for, not slept on: the server asks RESYNC_AFTER_S after the flood it is still
        # working through, and asks again if the answer itself lands while the bucket is empty.
        # (No settle of our own: the flooder's step 1 could meet that empty bucket too.)
        await until_synced(
            lambda: (
                str(flooder.text) == str(other.text) and all(f"{i};" in str(other.text) for i in range(40))
            ),
            flooder,
            other,
        )
        assert all(f"{i};" in str(other.text) for i in range(40))
        assert "calm " in str(other.text)
        await flooder.close()
        await other.close()

    run(go)
    text = crdt.shared_doc_json(session_id=session.pk, name="notes")["text"]
    assert "calm " in text and all(f"{i};" in text for i in range(40))
