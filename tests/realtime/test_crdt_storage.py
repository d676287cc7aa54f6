"""What the shared-document server stores: a step 2 stores and relays only what it changes, step 2
frames have a larger sanity bound than updates, an update waiting for missing content is not
stored, an edit building on refused content heals once that content is deleted, and compaction
reclaims deleted content so a document never locks itself."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from pycrdt import Doc, Map, Text, YSyncMessageType

from realtime import crdt, crdt_consumer
from tests.realtime.crdt_helpers import Peer, edit, rows, text_update
from tests.realtime.sockets import run

pytestmark = pytest.mark.django_db(transaction=True)


def stored_bytes(session, name="notes") -> int:
    return len(crdt.shared_doc_state(session_id=session.pk, name=name))


def long_lived_map(removed: int) -> Doc:
    """A map where every other entry was removed: a delete set of one range per removal."""
    doc = Doc()
    markers = doc.get("markers", type=Map)
    with doc.transaction():
        for i in range(2 * removed):
            markers[str(i)] = 0
    with doc.transaction():
        for i in range(0, 2 * removed, 2):
            del markers[str(i)]
    return doc


# ---- server: step 2 and updates store what they change ----------------------------------------


def test_a_step2_with_nothing_new_is_neither_stored_nor_relayed(session, gm, player):
    src = Doc()
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(src, 0, "hello world"), user=gm
    )
    deletion = edit(src, lambda d: d.get("text", type=Text).__delitem__(slice(0, 6)))
    crdt.shared_doc_apply(session_id=session.pk, name="notes", update=deletion, user=gm)
    count = database_sync_to_async(lambda: len(rows(session, "notes")))

    async def go():
        watcher = Peer(session, gm)
        await watcher.connect()
        kept = Doc()
        for _ in range(3):  # the player opens the page three times, with nothing new
            peer = Peer(session, player, doc=kept)
            await peer.connect()  # its step 2 holds the whole delete set
            assert peer.errors == []
            await peer.close()
        assert await count() == 2
        assert await watcher.comm.receive_nothing(timeout=0.3)
        await watcher.close()

    run(go)


def test_a_reconnect_step2_with_a_long_delete_set_stores_and_relays_only_its_change(session, gm, player):
    src = long_lived_map(70_000)
    full = src.get_update()
    from realtime.models import SharedDoc, SharedDocUpdate

    doc, _ = SharedDoc.objects.get_or_create(session_id=session.pk, name="map")
    SharedDocUpdate.objects.create(doc=doc, data=full, is_snapshot=True)  # as compaction leaves it

    async def go():
        watcher = Peer(session, gm, name="map")
        await watcher.connect()
        kept = Doc()
        kept.apply_update(full)  # the player's browser holds the map (its local copy)
        kept.get("markers", type=Map)["m1"] = {"x": 1, "y": 1, "label": "Offline", "kind": "poi"}
        peer = Peer(session, player, name="map", doc=kept)
        assert (await peer.open().connect())[0]
        step1 = await peer.next_binary()
        step2 = crdt.step2_frame(kept.get_update(step1.payload))
        assert len(step2) > crdt_consumer.MAX_FRAME_BYTES  # the delete set alone passes 256 KB
        await peer.send(step2)
        await peer.settle()
        assert peer.errors == []
        relayed = await watcher.next_binary()
        assert relayed.sync == YSyncMessageType.SYNC_UPDATE and len(relayed.payload) < 200
        await peer.close()
        await watcher.close()

    run(go)
    markers = crdt.shared_doc_json(session_id=session.pk, name="map")["markers"]
    assert [m["label"] for m in markers] == ["Offline"]
    assert [len(bytes(r.data)) < 200 for r in rows(session, "map")] == [False, True]


def test_step2_frames_have_a_larger_sanity_bound_than_updates(session, player):
    async def go():
        peer = Peer(session, player)
        await peer.connect()
        huge = crdt.step2_frame(b"x" * crdt_consumer.MAX_SYNC_FRAME_BYTES)
        await peer.send(huge)
        assert (await peer.next_error())["code"] == "frame_too_large"
        # Under the bound, a step 2 is judged by its change: 300 KB of new text is too much at once.
        big = crdt.step2_frame(text_update(Doc(), 0, "x" * 300_000))
        await peer.send(big)
        assert (await peer.next_error())["code"] == "too_large"
        await peer.close()

    run(go)
    assert not rows(session, "notes")


def test_a_spectators_step2_of_deletions_only_is_not_an_error(session, gm, spectator):
    src = Doc()
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(src, 0, "hello world"), user=gm
    )
    deletion = edit(src, lambda d: d.get("text", type=Text).__delitem__(slice(0, 6)))
    crdt.shared_doc_apply(session_id=session.pk, name="notes", update=deletion, user=gm)

    async def go():
        kept = Doc()
        for _ in range(2):  # the second visit's step 2 carries the delete set
            peer = Peer(session, spectator, doc=kept)
            await peer.connect()
            assert await peer.comm.receive_nothing(timeout=0.3)
            assert peer.errors == []
            await peer.close()
        assert str(kept.get("text", type=Text)) == "world"

    run(go)


def test_an_update_waiting_for_missing_content_is_not_stored_even_with_a_junk_root(session, gm):
    d = Doc()
    first = edit(d, lambda d: d.get("junk", type=Text).insert(0, "a"))
    second = edit(d, lambda d: d.get("junk", type=Text).insert(1, "B" * 1000))
    with pytest.raises(crdt.DocRefused):
        crdt.shared_doc_apply(session_id=session.pk, name="notes", update=first, user=gm)
    change = crdt.shared_doc_write(session_id=session.pk, name="notes", update=second, user=gm)
    assert change.diff == crdt.EMPTY_UPDATE and change.pending
    assert not rows(session, "notes")


def test_an_edit_building_on_refused_content_heals_once_that_content_is_deleted(
    session, gm, player, monkeypatch
):
    """The server cannot store an edit whose dependency it refused; it asks the client again
    (step 1), and the client's step 2 goes through once the refused content is gone."""
    monkeypatch.setattr(crdt_consumer, "RESYNC_AFTER_S", 0.2)

    async def go():
        a, b = Peer(session, player), Peer(session, gm)
        await a.connect()
        await b.connect()
        a.text.insert(0, "界" * 90_000)  # ~270 KB of UTF-8
        await a.push()
        assert (await a.next_error())["code"] in ("too_large", "frame_too_large")
        a.text.insert(0, "Meet at dock 7. ")  # builds on the paste: cannot be stored alone
        await a.push()
        ask = await a.next_binary()
        assert ask.sync == YSyncMessageType.SYNC_STEP1 and a.errors == []
        await a.send(crdt.step2_frame(a.doc.get_update(ask.payload)))
        assert (await a.next_error())["code"] == "too_large"  # still carries the paste
        assert await b.comm.receive_nothing(timeout=0.3)
        del a.text[16:]  # the paste goes (its content with it)
        await a.push()
        ask = await a.next_binary()
        assert ask.sync == YSyncMessageType.SYNC_STEP1
        await a.send(crdt.step2_frame(a.doc.get_update(ask.payload)))
        await b.receive_update()
        assert str(b.text) == "Meet at dock 7. "
        await a.settle()
        assert a.errors == []
        await a.close()
        await b.close()

    run(go)
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == "Meet at dock 7. "


# ---- server: deleted content is reclaimed --------------------------------------------------


def test_deleted_content_is_reclaimed_so_a_document_never_locks_itself(session, gm, monkeypatch):
    monkeypatch.setattr(crdt, "MAX_DOC_BYTES", 1_000_000)
    src = Doc()
    text = src.get("text", type=Text)
    for _ in range(10):  # 2 MB pasted and deleted again: twice the cap, nothing visible
        crdt.shared_doc_apply(session_id=session.pk, name="notes", update=text_update(src, 0, "x" * 200_000))
        deletion = edit(src, lambda d: d.get("text", type=Text).__delitem__(slice(0, 200_000)))
        crdt.shared_doc_apply(session_id=session.pk, name="notes", update=deletion)
    assert stored_bytes(session) < 450_000
    doc_id = rows(session, "notes")[0].doc_id
    crdt.shared_doc_compact(doc_id=doc_id)
    assert stored_bytes(session) < 1000
    assert crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(src, 0, "typing works")
    )
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == str(text) == "typing works"
    # What is visible still counts: the cap applies to the rebuilt document.
    with pytest.raises(crdt.DocRefused) as refused:
        for _ in range(5):
            crdt.shared_doc_apply(
                session_id=session.pk, name="notes", update=text_update(src, 0, "y" * 200_000)
            )
    assert refused.value.code == "doc_full"
    assert len(crdt.shared_doc_json(session_id=session.pk, name="notes")["text"]) == 800_000 + len(
        "typing works"
    )


def test_compaction_keeps_content_waiting_for_a_missing_dependency_as_its_own_row(session, gm):
    from realtime.models import SharedDoc, SharedDocUpdate

    src = Doc()
    crdt.shared_doc_apply(session_id=session.pk, name="notes", update=text_update(src, 0, "kept "), user=gm)
    other = Doc()
    missing = text_update(other, 0, "first ")
    waiting = text_update(other, 6, "second")
    doc = SharedDoc.objects.get(session=session, name="notes")
    SharedDocUpdate.objects.create(doc=doc, data=waiting)  # stored by an older server
    assert crdt.shared_doc_compact(doc_id=doc.pk) == 2
    assert [r.is_snapshot for r in rows(session, "notes")] == [True, False]
    crdt.shared_doc_apply(session_id=session.pk, name="notes", update=missing, user=gm)
    text = crdt.shared_doc_json(session_id=session.pk, name="notes")["text"]
    assert "first second" in text and "kept " in text
