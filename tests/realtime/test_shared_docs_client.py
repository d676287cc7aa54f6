"""The browser client of shared documents (static/shared-docs.js under node): its limits match the
server's, it survives hostile marker kinds and item ids, says "not saved" after a refusal, refuses
a paste too big for one change, merges its local copy, and never sends a step 2 bigger than the
server accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from realtime import crdt, crdt_consumer

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


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
