"""Shared documents, fixes: diffs instead of raw step 2s, compaction that drops deleted content,
edits that build on refused content, and the browser client (static/shared-docs.js) under node:
hostile marker kinds, refusals, a too-big paste, the local copy, a too-big step 2."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from pycrdt import Doc, Map, Text, YSyncMessageType

from realtime import crdt, crdt_consumer
from tests.realtime.test_crdt import (  # noqa: F401
    Peer,
    edit,
    fresh_channel_layer,
    rows,
    run,
    spectator,
    text_update,
)

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


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


def test_a_spectators_step2_of_deletions_only_is_not_an_error(session, gm, spectator):  # noqa: F811
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


# ---- browser client (static/shared-docs.js under node) ----------------------------------------


def _js_number(name: str) -> int:
    source = (ROOT / "static/shared-docs.js").read_text()
    expr = re.search(rf"var {name} = ([0-9 *]+);", source).group(1)
    value = 1
    for factor in expr.split("*"):
        value *= int(factor)
    return value


def test_the_clients_limits_match_the_servers():
    assert _js_number("MAX_CHANGE_BYTES") == crdt.MAX_UPDATE_BYTES
    assert _js_number("SYNC_FRAME_BYTES") == crdt_consumer.MAX_SYNC_FRAME_BYTES


def shared_docs_js(scenario: str) -> dict:
    out = subprocess.run(
        [
            "node",
            "-e",
            CLIENT_HARNESS,
            str(ROOT / "static/vendor/yjs/yjs.bundle.js"),
            str(ROOT / "static/shared-docs.js"),
            scenario,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


@needs_node
def test_client_survives_marker_kinds_and_item_ids_named_after_object_prototype():
    result = shared_docs_js("kinds")
    assert "threw" not in result
    assert result["sockets"] == 3
    assert result["status"]["state"] == "synced"
    assert result["markers"] == ["kind-poi"] * 4
    assert result["items"] == ["constructor", "toString", "__proto__", "hasOwnProperty"]


@needs_node
def test_client_says_not_saved_after_a_refusal_until_its_step2_goes_through():
    result = shared_docs_js("refused")
    assert result["rate_limited"]["state"] == "synced"  # heals by itself
    assert result["refused"]["state"] == "unsaved"
    assert result["refused"]["text"].startswith("Not saved: notes")
    assert "too big" in result["refused_notice"]
    assert result["still"]["state"] == "unsaved"
    assert result["resent"] == ["step2", "step1"]
    assert result["healed"]["state"] == "synced"


@needs_node
def test_client_refuses_a_paste_too_big_for_one_change_before_it_reaches_the_document():
    result = shared_docs_js("paste")
    pasted = result["after_paste"]
    assert pasted["value_length"] == 0 and pasted["sent"] == []
    assert "smaller pieces" in pasted["notice"]
    assert result["after_typing"]["sent"] == ["update"]


@needs_node
def test_client_merges_its_local_copy_prunes_old_sessions_and_says_when_saving_fails():
    result = shared_docs_js("storage")
    # Both inserted at the start concurrently: their order follows the random client ids.
    assert result["saved_text"] == result["shown_text"]
    assert result["saved_text"] in ("OTHER TAB. Mine.", "Mine.OTHER TAB. ")
    assert result["kept"] == [
        "gtw-docs:index",
        "gtw-docs:v1:9:7:1:notes",  # not indexed yet: its 30 days start now
        "gtw-docs:v1:9:8:1:map",
        "gtw-docs:v1:9:8:1:notes",
        "unrelated",
    ]
    assert result["index"] == ["gtw-docs:v1:1:1:1", "gtw-docs:v1:9:7:1", "gtw-docs:v1:9:8:1"]
    assert "storage is full" in result["quota_notice"]


@needs_node
def test_client_does_not_send_a_step2_bigger_than_the_server_accepts():
    result = shared_docs_js("bigstep2")
    assert result["sent"] == ["step1", "step1"]
    assert result["status"]["state"] == "unsaved"


CLIENT_HARNESS = r"""
// Runs static/shared-docs.js against a fake DOM, WebSocket, timers and localStorage.
// argv: <yjs bundle> <shared-docs.js> <scenario>; prints one JSON object.
const vm = require("vm"), fs = require("fs");
const [yjsPath, appPath, scenario] = process.argv.slice(-3);

class El {
  constructor(tag) {
    this.tagName = tag.toUpperCase(); this.children = []; this.parent = null; this.dataset = {};
    this.attrs = {}; this._text = ""; this.className = ""; this.listeners = {}; this.value = "";
    this.hidden = false; this.elements = null; this.disabled = false; this.readOnly = false;
  }
  get classList() { const el = this; return { contains: (c) => el.className.split(/\s+/).includes(c) }; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  getAttribute(k) { return this.attrs[k]; }
  addEventListener(t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); }
  fire(t, evt) {
    const event = Object.assign({ target: this, preventDefault() {} }, evt);
    (this.listeners[t] || []).forEach((f) => f(event));
  }
  appendChild(c) { if (c.parent) { c.remove(); } c.parent = this; this.children.push(c); return c; }
  append(...cs) { cs.forEach((c) => this.appendChild(c)); }
  remove() {
    if (!this.parent) { return; }
    this.parent.children.splice(this.parent.children.indexOf(this), 1);
    this.parent = null;
  }
  get firstElementChild() { return this.children[0] || null; }
  sibling(step) {
    if (!this.parent) { return null; }
    return this.parent.children[this.parent.children.indexOf(this) + step] || null;
  }
  get nextElementSibling() { return this.sibling(1); }
  get previousElementSibling() { return this.sibling(-1); }
  set textContent(t) {
    this.children.forEach((c) => { c.parent = null; });
    this.children = []; this._text = String(t);
  }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(""); }
  set innerHTML(h) {
    this.textContent = "";
    const re = /<(\w+)[^>]*class="([^"]*)"/g; let m;
    while ((m = re.exec(h))) { const e = new El(m[1]); e.className = m[2]; this.appendChild(e); }
  }
  querySelector(sel) {
    const c = sel.slice(1);
    for (const ch of this.children) {
      if (ch.classList.contains(c)) { return ch; }
      const r = ch.querySelector(sel); if (r) { return r; }
    }
    return null;
  }
  closest(sel) {
    const c = sel.replace(/^\./, ""); let e = this;
    while (e) {
      if (sel[0] === "." ? e.classList.contains(c) : e.tagName === c.toUpperCase()) { return e; }
      e = e.parent;
    }
    return null;
  }
  focus() { doc.activeElement = this; }
  setSelectionRange(a, b) { this.selection = [a, b]; }
}

const ids = {};
const mk = (id, tag = "div") => (ids[id] = new El(tag));
const root = mk("shared-docs", "section");
const STORE_KEY = "gtw-docs:v1:1:1:1";
Object.assign(root.dataset, { session: "1", storeKey: STORE_KEY, readonly: "false" });
["shared-docs-status", "shared-docs-notice", "inventory-list", "inventory-empty", "map-grid", "map-markers"]
  .forEach((i) => mk(i));
const ta = mk("notes-text", "textarea");
const inv = mk("inventory-add", "form");
const fields = ["name", "qty", "holder"].map(() => new El("input"));
inv.elements = Object.assign([...fields], { name: fields[0], qty: fields[1], holder: fields[2] });
const mf = mk("map-form", "form");
const lab = new El("input"), kind = new El("select");
kind.value = "poi";
mf.elements = Object.assign([lab, kind], { label: lab, kind: kind });
const doc = { getElementById: (id) => ids[id] || null, createElement: (t) => new El(t), activeElement: null };

const store = new Map();
let setItemThrows = false;
const localStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => {
    if (setItemThrows) { throw new Error("QuotaExceededError"); }
    store.set(k, String(v));
  },
  removeItem: (k) => { store.delete(k); },
  key: (i) => Array.from(store.keys())[i] ?? null,
  get length() { return store.size; },
};
let timers = [];
const fakeSetTimeout = (fn, ms) => { const t = { fn, ms }; timers.push(t); return t; };
const fakeClearTimeout = (t) => { timers = timers.filter((x) => x !== t); };
const runTimers = () => {  // the short ones (flush, save), not the notice's 8 s hide
  for (let round = 0; round < 5; round++) {
    const due = timers.filter((t) => t.ms < 1000);
    if (!due.length) { return; }
    timers = timers.filter((t) => t.ms >= 1000);
    due.forEach((t) => t.fn());
  }
};
const sockets = [];
class FakeWS {
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(d) { this.sent.push(d); }
  close() { this.readyState = 3; }
}
FakeWS.OPEN = 1;
const listeners = {};
const navigator = { onLine: true };
const ctx = {
  document: doc, console, setTimeout: fakeSetTimeout, clearTimeout: fakeClearTimeout, setInterval: () => 0,
  navigator, WebSocket: FakeWS, localStorage,
  btoa: (s) => Buffer.from(s, "binary").toString("base64"),
  atob: (s) => Buffer.from(s, "base64").toString("binary"),
  TextEncoder, TextDecoder, crypto: globalThis.crypto,
};
ctx.window = ctx;
ctx.globalThis = ctx;
ctx.location = { protocol: "http:", host: "x" };
ctx.addEventListener = (t, f) => { (listeners[t] = listeners[t] || []).push(f); };
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(yjsPath, "utf8"), ctx);
const { Y, sync, encoding, decoding } = ctx.GTWYjs;
const inCtx = (code) => vm.runInContext(code, ctx);  // objects Yjs accepts (its realm's Object, Array)

const b64 = (u) => Buffer.from(u).toString("base64");
const frame = (fn) => {
  const e = encoding.createEncoder(); encoding.writeVarUint(e, 0); fn(e);
  return encoding.toUint8Array(e).slice().buffer;
};
const bytes = (text) => inCtx("Uint8Array").from(Buffer.from(text, "base64"));
const kinds = (ws) => ws.sent.map((d) => {  // "step1" | "step2" | "update", and the payload size
  const dec = decoding.createDecoder(d); decoding.readVarUint(dec);
  const t = decoding.readVarUint(dec);
  return [["step1", "step2", "update"][t], decoding.readVarUint8Array(dec).length];
});
const socket = (name) => sockets.find((s) => s.url.includes("/docs/" + name + "/"));
const start = () => { vm.runInContext(fs.readFileSync(appPath, "utf8"), ctx); };
const handshake = (ws, sdoc) => {  // open, server step 1, then answers to the client's two step 1s
  ws.readyState = 1; ws.onopen();
  ws.onmessage({ data: frame((e) => sync.writeSyncStep1(e, sdoc)) });
  ws.onmessage({ data: frame((e) => sync.writeSyncStep2(e, sdoc, inCtx('new Uint8Array([0])'))) });
  ws.onmessage({ data: frame((e) => sync.writeSyncStep2(e, sdoc, inCtx('new Uint8Array([0])'))) });
};
const refuse = (ws, code) => {
  ws.onmessage({ data: JSON.stringify({ type: "error", code, message: "Refused: " + code }) });
};
const status = () => ({ state: root.dataset.state, text: ids["shared-docs-status"]._text });
const notice = () => (ids["shared-docs-notice"].hidden ? "" : ids["shared-docs-notice"]._text);
const type = (text) => { ta.value = text; ta.fire("input"); };
const out = {};

if (scenario === "kinds") {
  // Hostile keys written by another member: marker kinds and item ids named after Object.prototype.
  const [map, items] = inCtx(`(function () {
    var Y = GTWYjs.Y, map = new Y.Doc(), items = new Y.Doc();
    var hostile = ["constructor", "toString", "__proto__", "hasOwnProperty"];
    hostile.forEach(function (k, i) {
      map.getMap("markers").set("m" + i, { x: i, y: 1, label: "Trap " + i, kind: k });
    });
    hostile.forEach(function (k) {
      var item = new Y.Map(); item.set("id", k); item.set("name", "Item " + k); item.set("qty", 1);
      items.getArray("items").push([item]);
    });
    return [map, items];
  })()`);
  // This browser already holds the map (an earlier visit): it loads before any socket opens.
  store.set(STORE_KEY + ":map", b64(Y.encodeStateAsUpdate(map)));
  try { start(); } catch (e) { out.threw = String(e && e.message); }
  out.sockets = sockets.length;
  for (const ws of sockets) {
    const sdoc = ws.url.includes("/map/") ? map : ws.url.includes("/inventory/") ? items : new Y.Doc();
    try { handshake(ws, sdoc); } catch (e) { out.threw = String(e && e.message); }
  }
  out.status = status();
  out.markers = ids["map-markers"].children.map((li) => li.className);
  out.items = ids["inventory-list"].children.map((li) => li.dataset.id);
} else if (scenario === "refused") {
  start();
  sockets.forEach((ws) => handshake(ws, new Y.Doc()));
  const ws = socket("notes");
  out.before = status();
  refuse(ws, "rate_limited");
  out.rate_limited = status();
  type("Meet at dock 7.");
  runTimers();
  refuse(ws, "too_large");
  out.refused = status();
  out.refused_notice = notice();
  // The server asks again (step 1) and our step 2 is refused once more: still not saved.
  const server = new Y.Doc();
  ws.onmessage({ data: frame((e) => sync.writeSyncStep1(e, server)) });
  refuse(ws, "too_large");
  ws.onmessage({ data: frame((e) => sync.writeSyncStep2(e, server, inCtx('new Uint8Array([0])'))) });
  out.still = status();
  // ... and again, this time the step 2 goes through: synced.
  const sentBefore = ws.sent.length;
  ws.onmessage({ data: frame((e) => sync.writeSyncStep1(e, server)) });
  out.resent = kinds(ws).slice(sentBefore).map((k) => k[0]);
  ws.onmessage({ data: frame((e) => sync.writeSyncStep2(e, server, inCtx('new Uint8Array([0])'))) });
  out.healed = status();
} else if (scenario === "paste") {
  start();
  sockets.forEach((ws) => handshake(ws, new Y.Doc()));
  const ws = socket("notes");
  const sentBefore = ws.sent.length;
  type("界".repeat(90000));  // ~270 KB of UTF-8: more than one change may add
  runTimers();
  out.after_paste = {
    value_length: ta.value.length, sent: kinds(ws).slice(sentBefore), notice: notice(), status: status(),
  };
  type("Meet at dock 7.");
  runTimers();
  out.after_typing = { sent: kinds(ws).slice(sentBefore).map((k) => k[0]), status: status() };
} else if (scenario === "storage") {
  const now = Date.now(), day = 24 * 3600 * 1000;
  const index = { "gtw-docs:v1:9:9:1": now - 40 * day, "gtw-docs:v1:9:8:1": now - day };
  store.set("gtw-docs:index", JSON.stringify(index));
  ["notes", "map"].forEach((n) => {
    store.set("gtw-docs:v1:9:9:1:" + n, "old");
    store.set("gtw-docs:v1:9:8:1:" + n, "recent");
  });
  store.set("gtw-docs:v1:9:7:1:notes", "unindexed");
  store.set("unrelated", "kept");
  start();
  out.kept = Array.from(store.keys()).sort();
  out.index = Object.keys(JSON.parse(store.get("gtw-docs:index"))).sort();
  sockets.forEach((ws) => handshake(ws, new Y.Doc()));
  // Another tab of the same session saved its own edits meanwhile.
  const other = new Y.Doc();
  other.getText("text").insert(0, "OTHER TAB. ");
  store.set(STORE_KEY + ":notes", b64(Y.encodeStateAsUpdate(other)));
  type("Mine.");
  runTimers();
  const saved = new Y.Doc();
  Y.applyUpdate(saved, bytes(store.get(STORE_KEY + ":notes")));
  out.saved_text = saved.getText("text").toString();
  out.shown_text = ta.value;
  // Offline, with the storage full: say the unsent changes are not kept.
  navigator.onLine = false;
  (listeners.offline || []).forEach((f) => f());
  sockets.forEach((ws) => ws.onclose({ code: 4000 }));
  setItemThrows = true;
  type("Mine. Offline.");
  runTimers();
  out.quota_notice = notice();
} else if (scenario === "bigstep2") {
  // A local copy bigger than a step 2 frame may be: not sent (the server would drop the socket).
  const big = new Y.Doc();
  for (let i = 0; i < 6; i++) { big.getText("text").insert(0, "x".repeat(200 * 1024)); }
  store.set(STORE_KEY + ":notes", b64(Y.encodeStateAsUpdate(big)));
  start();
  sockets.forEach((ws) => handshake(ws, new Y.Doc()));
  out.sent = kinds(socket("notes")).map((k) => k[0]);
  out.status = status();
}
console.log(JSON.stringify(out));
"""
