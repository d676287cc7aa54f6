// Shared documents of the play session — notes, inventory, map — as Yjs CRDTs.
//
// One socket per document (ws/sessions/<id>/docs/<name>/) speaking the y-protocols sync
// protocol: the server sends sync step 1 (its state vector) on connect and we answer with
// step 2 (everything it lacks: edits made offline included); we send our step 1 and the
// server's step 2 brings what we lack; after that, updates flow both ways. Every document
// is also kept in localStorage, so edits made offline survive a reload and merge on the
// next connect. Needs window.GTWYjs (static/vendor/yjs/yjs.bundle.js).
//
// The server refuses a change that is too big (too_large, frame_too_large) or that would fill the
// document (doc_full); later edits that build on refused content cannot be stored either, so the
// status then says "Not saved" until a step 2 of ours goes through. A paste too big for one
// change is refused here, before it reaches the document.
(function () {
  "use strict";
  var root = document.getElementById("shared-docs");
  if (!root || !window.GTWYjs) { return; }
  var Y = window.GTWYjs.Y, sync = window.GTWYjs.sync;
  var encoding = window.GTWYjs.encoding, decoding = window.GTWYjs.decoding;

  var SESSION = root.dataset.session;
  var STORE_KEY = root.dataset.storeKey;
  var readOnly = root.dataset.readonly === "true";
  var MESSAGE_SYNC = 0;
  var REMOTE = "remote";   // transaction origin: came from the server
  var STORED = "stored";   // transaction origin: loaded from localStorage
  var LOCAL = "local";     // transaction origin: this page's UI
  var MERGED = "merged";   // transaction origin: another tab's copy, merged on save (sent on)
  var FLUSH_MS = 40;       // coalesce keystrokes into one update frame
  var SAVE_MS = 250;
  var RESYNC_MS = 30000;   // heal anything a dropped group message cost us
  var LABELS = { notes: "notes", inventory: "inventory", map: "map" };
  var COLS = 12, ROWS = 8, COL_NAMES = "ABCDEFGHIJKL";
  var KINDS = { ally: "Ally", enemy: "Enemy", objective: "Objective", hazard: "Hazard", poi: "Landmark" };
  // Mirror realtime/crdt.py (tests/realtime/test_shared_docs_client.py checks they match).
  var MAX_CHANGE_BYTES = 256 * 1024;       // MAX_UPDATE_BYTES: the most one change may add
  var SYNC_FRAME_BYTES = 1024 * 1024;      // MAX_SYNC_BYTES + 64: the biggest sync step 2 frame
  var CHANGE_MARGIN = 1024;                // what Yjs adds around the inserted text
  var KEEP_MS = 30 * 24 * 3600 * 1000;     // local copies of sessions not opened for this long go
  var INDEX_KEY = "gtw-docs:index";        // store-key prefix -> when a page last opened it
  var REFUSALS = {
    too_large: "your last change was too big — undo it, or delete what you pasted, and add it in smaller pieces",
    frame_too_large: "your changes are too big to send at once — undo the last big change",
    doc_full: "this document is full — delete something to make room"
  };

  var $ = function (id) { return document.getElementById(id); };
  // Keys written by other members (marker kinds, item ids) must never reach Object.prototype.
  var has = function (obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); };
  var utf8Length = function (text) {
    if (typeof TextEncoder === "function") { return new TextEncoder().encode(text).length; }
    return text.length * 3;
  };
  var uid = function () {
    return (Date.now().toString(36) + Math.random().toString(36).slice(2, 10));
  };
  var toB64 = function (bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  };
  var fromB64 = function (text) {
    var s = atob(text), bytes = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { bytes[i] = s.charCodeAt(i); }
    return bytes;
  };
  var clampInt = function (value, lo, hi, fallback) {
    var n = parseInt(value, 10);
    return isNaN(n) ? fallback : Math.max(lo, Math.min(hi, n));
  };

  // ---- one document, one socket -------------------------------------------------------

  var links = {};
  var noticeTimer = null;

  function Link(name) {
    this.name = name;
    this.doc = new Y.Doc();
    this.ws = null;
    this.state = "connecting";  // connecting | syncing | synced | offline | refused
    this.refusal = "";
    this.unsaved = "";      // why the server refused a change of ours; "" once a step 2 went through
    this.clean = false;     // our last step 2 was sent and nothing was refused since
    this.saveFailed = false;
    this.lastSaved = null;  // the copy this page last read or wrote: unchanged means no other tab wrote
    this.queue = [];    // local updates made while the socket was down; the next step 2 carries them
    this.outbox = [];   // local updates waiting for the next flush
    this.flushTimer = null;
    this.saveTimer = null;
    this.retries = 0;
    this.retryTimer = null;
    this.goingOffline = false;
    this.answered = false;  // we answered the server's step 1 on this connection
    this.awaiting = 0;      // our step 1s not yet answered
    this.ready = this.load();  // editable once we hold a copy: from this device or the server
    var self = this;
    this.doc.on("update", function (update, origin) {
      self.scheduleSave();
      if (origin !== REMOTE && origin !== STORED) { self.local(update); }
    });
  }

  Link.prototype.storeKey = function () { return STORE_KEY + ":" + this.name; };

  Link.prototype.load = function () {
    try {
      var saved = window.localStorage.getItem(this.storeKey());
      if (saved) {
        Y.applyUpdate(this.doc, fromB64(saved), STORED);
        this.lastSaved = saved;
        return true;
      }
    } catch (e) { /* private mode or a corrupt copy: start from the server's */ }
    return false;
  };

  Link.prototype.save = function () {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    var storage;
    try { storage = window.localStorage; } catch (e) { return; }  // storage disabled: nothing to keep
    if (!storage) { return; }
    try {
      // Another tab of this session may have saved its own offline edits: merge them in first
      // (into the doc, so deleted content is dropped and they show and get sent here too).
      var saved = storage.getItem(this.storeKey());
      if (saved && saved !== this.lastSaved) { Y.applyUpdate(this.doc, fromB64(saved), MERGED); }
    } catch (e) { /* a corrupt copy: ours replaces it */ }
    try {
      var copy = toB64(Y.encodeStateAsUpdate(this.doc));
      storage.setItem(this.storeKey(), copy);
      this.lastSaved = copy;
      this.saveFailed = false;
    } catch (e) {
      // Quota: the server still has everything it acknowledged; say so if it does not yet.
      if (!this.saveFailed && this.unsent()) {
        notice("This device's storage is full: your unsent changes to the " + LABELS[this.name] +
          " are not kept here, so keep this page open until it says Synced.");
      }
      this.saveFailed = true;
    }
  };

  Link.prototype.unsent = function () {
    return this.queue.length > 0 || this.outbox.length > 0 || this.state !== "synced" || !!this.unsaved;
  };

  Link.prototype.scheduleSave = function () {
    var self = this;
    if (!this.saveTimer) { this.saveTimer = setTimeout(function () { self.save(); }, SAVE_MS); }
  };

  Link.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + "/ws/sessions/" + SESSION + "/docs/" + this.name + "/";
  };

  Link.prototype.isOpen = function () { return this.ws && this.ws.readyState === WebSocket.OPEN; };

  Link.prototype.local = function (update) {
    if (readOnly) { return; }
    if (this.isOpen()) {
      this.outbox.push(update);
      var self = this;
      if (!this.flushTimer) { this.flushTimer = setTimeout(function () { self.flush(); }, FLUSH_MS); }
    } else {
      this.queue.push(update);
    }
    render.status();
  };

  Link.prototype.flush = function () {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (!this.outbox.length) { return; }
    if (!this.isOpen()) {
      this.queue = this.queue.concat(this.outbox);
      this.outbox = [];
      return;
    }
    var merged = this.outbox.length === 1 ? this.outbox[0] : Y.mergeUpdates(this.outbox);
    // Coalesced keystrokes go as one frame, unless together they pass what one change may add.
    var updates = merged.length > MAX_CHANGE_BYTES ? this.outbox : [merged];
    this.outbox = [];
    for (var i = 0; i < updates.length; i++) {
      var encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      sync.writeUpdate(encoder, updates[i]);
      this.ws.send(encoding.toUint8Array(encoder));
    }
  };

  Link.prototype.sendStep1 = function () {
    if (!this.isOpen()) { return; }
    var encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    sync.writeSyncStep1(encoder, this.doc);
    this.ws.send(encoding.toUint8Array(encoder));
    this.awaiting += 1;
  };

  Link.prototype.connect = function () {
    var self = this;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws || this.state === "refused") { return; }
    var ws = new WebSocket(this.url());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.state = "connecting";
    ws.onopen = function () {
      if (self.ws !== ws) { return; }
      self.state = "syncing";
      self.answered = false;
      self.clean = false;
      self.awaiting = 0;
      self.sendStep1();
      render.status();
    };
    ws.onmessage = function (evt) {
      if (self.ws !== ws) { return; }
      if (typeof evt.data === "string") { self.onError(evt.data); } else { self.onFrame(evt.data); }
    };
    ws.onclose = function (evt) { self.onClose(ws, evt.code); };
    render.status();
  };

  Link.prototype.onFrame = function (data) {
    var decoder = decoding.createDecoder(new Uint8Array(data));
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) { return; }
    var encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    var kind = sync.readSyncMessage(decoder, encoder, this.doc, REMOTE);
    if (kind === sync.messageYjsSyncStep1) {
      // Our step 2 carries everything the server lacks, the offline queue included. The server
      // handles a socket's frames in order, so the answer to the step 1 sent after it tells us
      // the step 2 is stored: only then do we say "synced".
      if (!readOnly) {
        var reply = encoding.toUint8Array(encoder);
        if (reply.length > SYNC_FRAME_BYTES) {
          this.refuse("frame_too_large", "");  // the server would drop the connection on it
        } else {
          this.ws.send(reply);
          this.clean = true;
        }
      }
      this.queue = [];
      this.answered = true;
      this.sendStep1();
    } else if (kind === sync.messageYjsSyncStep2) {
      this.awaiting = Math.max(0, this.awaiting - 1);
      if (this.answered && this.awaiting === 0) {
        this.state = "synced";
        this.retries = 0;
        if (this.clean) { this.unsaved = ""; }  // our step 2 was stored: the server has it all
      }
      if (!this.ready) { this.ready = true; render.ready(this.name); }
    }
    render.status();
  };

  Link.prototype.onError = function (text) {
    var frame;
    try { frame = JSON.parse(text); } catch (e) { return; }
    if (!frame || frame.type !== "error") { return; }
    if (frame.code === "read_only") {
      readOnly = true;
      render.readOnly();
    } else if (frame.code !== "rate_limited") {  // rate limits heal by themselves (the server asks again)
      this.refuse(frame.code, frame.message);
      return;
    }
    notice(frame.message || "The server refused a change.");
  };

  // The server lacks a change of ours, and everything built on it: say so until a step 2 of
  // ours (sent when the server asks again: on connect, or when a later edit needs what it lacks)
  // goes through.
  Link.prototype.refuse = function (code, message) {
    var reason = has(REFUSALS, code) ? REFUSALS[code] : "the server refused a change" + (message ? " (" + message + ")" : "");
    this.unsaved = reason;
    this.clean = false;
    notice("Not saved: " + reason + ".");
    render.status();
  };

  Link.prototype.onClose = function (ws, code) {
    if (this.ws !== ws) { return; }
    this.ws = null;
    this.flush();  // moves anything unsent into the queue
    if (code === 4403 || code === 4404) {
      this.state = "refused";
      this.refusal = code === 4403 ? "not a member of this session" : "unknown document";
    } else if (this.goingOffline || !navigator.onLine) {
      this.state = "offline";  // the "online" event reconnects
    } else {
      this.state = "offline";
      var delay = Math.min(500 * Math.pow(2, this.retries), 10000) * (0.5 + Math.random() / 2);
      this.retries += 1;
      var self = this;
      this.retryTimer = setTimeout(function () { self.connect(); }, delay);
    }
    this.goingOffline = false;
    render.status();
  };

  Link.prototype.goOffline = function () {
    // A dropped network rarely closes a socket promptly: close it ourselves.
    if (this.ws) {
      this.goingOffline = true;
      this.ws.close(4000, "offline");
    }
  };

  // ---- status and notices -------------------------------------------------------------

  function notice(message) {
    var el = $("shared-docs-notice");
    if (!el) { return; }
    el.textContent = message;
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { el.hidden = true; el.textContent = ""; }, 8000);
  }

  var render = {};

  render.status = function () {
    var el = $("shared-docs-status");
    var names = Object.keys(links);
    var all = function (state) { return names.every(function (n) { return links[n].state === state; }); };
    var some = function (state) { return names.some(function (n) { return links[n].state === state; }); };
    var pending = names.filter(function (n) { return links[n].queue.length > 0; });
    var unsaved = names.filter(function (n) { return links[n].unsaved; });
    var state, text;
    if (some("refused")) {
      state = "refused";
      text = "Shared docs unavailable: " + links[names.filter(function (n) { return links[n].state === "refused"; })[0]].refusal + ".";
    } else if (unsaved.length) {
      state = "unsaved";
      text = "Not saved: " + LABELS[unsaved[0]] + " — " + links[unsaved[0]].unsaved +
        ". Others do not see your changes to it until then.";
    } else if (some("offline") || !navigator.onLine) {
      state = "offline";
      text = "Offline — " + (pending.length
        ? "changes to " + pending.map(function (n) { return LABELS[n]; }).join(", ") + " are kept on this device"
        : "edits are kept on this device") + " and merge when you reconnect.";
    } else if (all("synced")) {
      state = "synced";
      text = readOnly ? "Synced · read-only" : "Synced — everyone sees the same notes, inventory and map.";
    } else {
      state = "syncing";
      text = "Syncing…";
    }
    root.dataset.state = state;
    if (el && el.textContent !== text) { el.textContent = text; }
    if (el) { el.className = "docs-status " + ({ synced: "ok", offline: "warn", refused: "bad", unsaved: "bad" }[state] || ""); }
  };

  var canEdit = function (name) { return !readOnly && links[name] && links[name].ready; };

  // ---- notes: a textarea bound to Y.Text ----------------------------------------------

  function bindNotes(link) {
    var ta = $("notes-text");
    if (!ta) { return; }
    var ytext = link.doc.getText("text");

    var diff = function (before, after) {
      var start = 0, max = Math.min(before.length, after.length);
      while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) { start++; }
      // Never split a surrogate pair.
      if (start > 0 && /[\uD800-\uDBFF]/.test(before.charAt(start - 1))) { start--; }
      var end = 0;
      while (end < max - start &&
             before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) { end++; }
      if (end > 0 && /[\uDC00-\uDFFF]/.test(before.charAt(before.length - end))) { end--; }
      return { index: start, remove: before.length - start - end, insert: after.slice(start, after.length - end) };
    };
    // Where a caret ends up after a remote change (a Yjs delta of retain/insert/delete).
    var shift = function (pos, delta) {
      var at = 0;
      for (var i = 0; i < delta.length && at <= pos; i++) {
        var op = delta[i];
        if (op.retain) {
          at += op.retain;
        } else if (op.insert) {
          var n = typeof op.insert === "string" ? op.insert.length : 1;
          if (at < pos) { pos += n; }
          at += n;
        } else if (op.delete) {
          pos -= Math.max(0, Math.min(op.delete, pos - at));
        }
      }
      return pos;
    };

    ta.addEventListener("input", function () {
      if (!canEdit("notes")) { return; }
      var before = ytext.toString(), after = ta.value;
      if (before === after) { return; }
      var d = diff(before, after);
      var size = d.insert ? utf8Length(d.insert) : 0;
      if (size > MAX_CHANGE_BYTES - CHANGE_MARGIN) {
        // The server would refuse it, and every later edit building on it: keep it out.
        ta.value = before;
        ta.setSelectionRange(d.index, d.index);
        notice("Not added: that is " + Math.ceil(size / 1024) + " KB of text, and one change can add at most " +
          Math.floor((MAX_CHANGE_BYTES - CHANGE_MARGIN) / 1024) + " KB. Paste it in smaller pieces.");
        return;
      }
      link.doc.transact(function () {
        if (d.remove) { ytext.delete(d.index, d.remove); }
        if (d.insert) { ytext.insert(d.index, d.insert); }
      }, LOCAL);
    });
    ytext.observe(function (event, transaction) {
      if (transaction.origin === LOCAL || !link.ready) { return; }
      var focused = document.activeElement === ta;
      var start = ta.selectionStart, end = ta.selectionEnd, scroll = ta.scrollTop;
      ta.value = ytext.toString();
      if (focused) { ta.setSelectionRange(shift(start, event.delta), shift(end, event.delta)); }
      ta.scrollTop = scroll;
    });
    var enable = function () {
      ta.value = ytext.toString();
      ta.readOnly = readOnly;
    };
    render.onReady.notes = enable;
    if (link.ready) { enable(); }
  }

  // ---- inventory: Y.Array of Y.Map {id, name, qty, holder} ------------------------------

  function bindInventory(link) {
    var list = $("inventory-list"), form = $("inventory-add"), empty = $("inventory-empty");
    if (!list || !form) { return; }
    var yitems = link.doc.getArray("items");
    var byId = function (id) {
      return yitems.toArray().filter(function (m) { return m instanceof Y.Map && m.get("id") === id; })[0];
    };

    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      if (!canEdit("inventory")) { return; }
      var name = form.elements.name.value.trim().slice(0, 80);
      if (!name) { form.elements.name.focus(); return; }
      var item = new Y.Map();
      item.set("id", uid());
      item.set("name", name);
      item.set("qty", clampInt(form.elements.qty.value, 0, 9999, 1));
      item.set("holder", form.elements.holder.value.trim().slice(0, 40));
      link.doc.transact(function () { yitems.push([item]); }, LOCAL);
      form.reset();
      form.elements.name.focus();
    });
    list.addEventListener("change", function (evt) {
      var input = evt.target;
      if (!input.classList.contains("inv-qty") || !canEdit("inventory")) { return; }
      var item = byId(input.closest("li").dataset.id);
      if (item) {
        var qty = clampInt(input.value, 0, 9999, item.get("qty") || 0);
        link.doc.transact(function () { item.set("qty", qty); }, LOCAL);
      }
    });
    list.addEventListener("click", function (evt) {
      var button = evt.target.closest(".inv-remove");
      if (!button || !canEdit("inventory")) { return; }
      var li = button.closest("li");
      var index = yitems.toArray().indexOf(byId(li.dataset.id));
      if (index >= 0) {
        // Keep the keyboard somewhere sensible once the row is gone.
        var next = li.nextElementSibling || li.previousElementSibling;
        link.doc.transact(function () { yitems.delete(index, 1); }, LOCAL);
        var target = next && next.querySelector(".inv-remove");
        (target || form.elements.name).focus();
      }
    });

    var row = function (id) {
      var li = document.createElement("li");
      li.dataset.id = id;
      li.innerHTML = '<span class="inv-name"></span> <span class="inv-holder muted"></span>' +
        '<input class="inv-qty" type="number" min="0" max="9999">' +
        '<button type="button" class="secondary inv-remove">Remove</button>';
      return li;
    };
    var draw = function () {
      if (!link.ready) { return; }
      var seen = Object.create(null);
      yitems.toArray().forEach(function (item) {
        if (!(item instanceof Y.Map)) { return; }
        var id = String(item.get("id") || ""), name = String(item.get("name") || "").trim();
        if (!id || !name || seen[id]) { return; }
        seen[id] = true;
        var li = null;
        for (var c = list.firstElementChild; c; c = c.nextElementSibling) {
          if (c.dataset.id === id) { li = c; break; }
        }
        if (!li || !li.querySelector(".inv-qty")) {
          if (li) { li.remove(); }
          li = row(id);
        }
        var holder = String(item.get("holder") || "");
        var qty = clampInt(item.get("qty"), 0, 9999, 0);
        li.querySelector(".inv-name").textContent = name;
        li.querySelector(".inv-holder").textContent = holder ? "· " + holder : "";
        var input = li.querySelector(".inv-qty");
        input.setAttribute("aria-label", "Quantity of " + name);
        if (document.activeElement !== input) { input.value = qty; }
        input.readOnly = readOnly;
        var remove = li.querySelector(".inv-remove");
        remove.setAttribute("aria-label", "Remove " + name);
        remove.hidden = readOnly;
        list.appendChild(li);  // in document order
      });
      Array.prototype.slice.call(list.children).forEach(function (li) {
        if (!seen[li.dataset.id]) { li.remove(); }
      });
      if (empty) { empty.hidden = list.children.length > 0; }
    };
    yitems.observeDeep(draw);
    var enable = function () {
      draw();
      Array.prototype.forEach.call(form.elements, function (el) { el.disabled = readOnly; });
    };
    render.onReady.inventory = enable;
    if (link.ready) { enable(); }
  }

  // ---- map: Y.Map id -> {x, y, label, kind} on a 12 x 8 grid --------------------------

  function bindMap(link) {
    var grid = $("map-grid"), form = $("map-form"), list = $("map-markers");
    if (!grid || !form) { return; }
    var ymarkers = link.doc.getMap("markers");
    var labelInput = form.elements.label, kindSelect = form.elements.kind;
    var cells = [];
    var focusAt = 0;

    for (var y = 0; y < ROWS; y++) {
      for (var x = 0; x < COLS; x++) {
        var cell = document.createElement("button");
        cell.type = "button";
        cell.className = "map-cell";
        cell.dataset.x = x;
        cell.dataset.y = y;
        cell.tabIndex = cells.length === 0 ? 0 : -1;
        cells.push(cell);
        grid.appendChild(cell);
      }
    }
    var cellName = function (cx, cy) { return COL_NAMES.charAt(cx) + (cy + 1); };
    var markers = function () {
      var out = [];
      ymarkers.forEach(function (m, id) {
        if (!m || typeof m !== "object") { return; }
        var mx = m.x, my = m.y, label = String(m.label || "").trim();
        if (!label || mx !== Math.floor(mx) || my !== Math.floor(my) || mx < 0 || mx >= COLS || my < 0 || my >= ROWS) { return; }
        out.push({ id: id, x: mx, y: my, label: label.slice(0, 40), kind: has(KINDS, m.kind) ? m.kind : "poi" });
      });
      out.sort(function (a, b) { return a.label.toLowerCase() < b.label.toLowerCase() ? -1 : a.label.toLowerCase() > b.label.toLowerCase() ? 1 : 0; });
      return out;
    };
    var moveFocus = function (index) {
      cells[focusAt].tabIndex = -1;
      focusAt = index;
      cells[focusAt].tabIndex = 0;
      cells[focusAt].focus();
    };

    grid.addEventListener("keydown", function (evt) {
      var i = cells.indexOf(evt.target);
      if (i < 0) { return; }
      var cx = i % COLS, cy = Math.floor(i / COLS);
      var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (has(moves, evt.key)) {
        cx = Math.max(0, Math.min(COLS - 1, cx + moves[evt.key][0]));
        cy = Math.max(0, Math.min(ROWS - 1, cy + moves[evt.key][1]));
      } else if (evt.key === "Home") { cx = 0; } else if (evt.key === "End") { cx = COLS - 1; } else { return; }
      evt.preventDefault();
      moveFocus(cy * COLS + cx);
    });
    grid.addEventListener("click", function (evt) {
      var cell = evt.target.closest(".map-cell");
      if (!cell) { return; }
      moveFocus(cells.indexOf(cell));
      if (!canEdit("map")) { return; }
      var label = labelInput.value.trim().slice(0, 40);
      if (!label) {
        notice("Name the marker first, then pick its cell.");
        labelInput.focus();
        return;
      }
      var existing = markers().filter(function (m) { return m.label.toLowerCase() === label.toLowerCase(); })[0];
      var id = existing ? existing.id : uid();
      var value = { x: parseInt(cell.dataset.x, 10), y: parseInt(cell.dataset.y, 10), label: label, kind: kindSelect.value };
      link.doc.transact(function () { ymarkers.set(id, value); }, LOCAL);
    });
    form.addEventListener("submit", function (evt) { evt.preventDefault(); cells[focusAt].focus(); });
    if (list) {
      list.addEventListener("click", function (evt) {
        var button = evt.target.closest("button");
        if (!button) { return; }
        var id = button.closest("li").dataset.id;
        if (button.classList.contains("marker-remove") && canEdit("map")) {
          link.doc.transact(function () { ymarkers.delete(id); }, LOCAL);
          labelInput.focus();
        } else if (button.classList.contains("marker-pick")) {
          var m = markers().filter(function (mk) { return mk.id === id; })[0];
          if (m) {
            labelInput.value = m.label;
            kindSelect.value = m.kind;
            moveFocus(m.y * COLS + m.x);
          }
        }
      });
    }

    var draw = function () {
      var all = link.ready ? markers() : [], at = Object.create(null);
      all.forEach(function (m) { (at[m.y * COLS + m.x] = at[m.y * COLS + m.x] || []).push(m); });
      cells.forEach(function (cell, i) {
        var here = at[i] || [], name = cellName(i % COLS, Math.floor(i / COLS));
        cell.textContent = "";
        cell.className = "map-cell" + (here.length ? " has-marker kind-" + here[0].kind : "");
        if (here.length) {
          var glyph = document.createElement("span");
          glyph.className = "marker-glyph";
          glyph.setAttribute("aria-hidden", "true");
          glyph.textContent = here[0].label.charAt(0).toUpperCase() + (here.length > 1 ? "+" : "");
          cell.appendChild(glyph);
        }
        cell.setAttribute("aria-label", name + ": " + (here.length
          ? here.map(function (m) { return m.label + " (" + KINDS[m.kind].toLowerCase() + ")"; }).join(", ")
          : "empty"));
        cell.title = here.length ? name + " · " + here.map(function (m) { return m.label; }).join(", ") : name;
        cell.setAttribute("aria-disabled", canEdit("map") ? "false" : "true");
      });
      if (list && link.ready) {
        list.textContent = "";
        all.forEach(function (m) {
          var li = document.createElement("li");
          li.dataset.id = m.id;
          li.className = "kind-" + m.kind;
          var swatch = document.createElement("span");
          swatch.className = "marker-swatch";
          swatch.setAttribute("aria-hidden", "true");
          var text = document.createElement("span");
          text.className = "marker-text";
          text.textContent = m.label + " ";
          var where = document.createElement("span");
          where.className = "muted";
          where.textContent = cellName(m.x, m.y) + " · " + KINDS[m.kind].toLowerCase();
          text.appendChild(where);
          var pick = document.createElement("button");
          pick.type = "button";
          pick.className = "link marker-pick";
          pick.textContent = "Select";
          pick.setAttribute("aria-label", "Select " + m.label + " to move it");
          li.append(swatch, text, pick);
          if (!readOnly) {
            var remove = document.createElement("button");
            remove.type = "button";
            remove.className = "link marker-remove";
            remove.textContent = "Remove";
            remove.setAttribute("aria-label", "Remove " + m.label + " from the map");
            li.append(remove);
          }
          list.appendChild(li);
        });
      }
    };
    ymarkers.observe(draw);
    var enable = function () {
      draw();
      labelInput.disabled = kindSelect.disabled = readOnly;
    };
    render.onReady.map = enable;
    if (link.ready) { enable(); } else { draw(); }  // cells get their names at once
  }

  render.onReady = {};
  render.ready = function (name) { if (render.onReady[name]) { render.onReady[name](); } };
  render.readOnly = function () {
    root.dataset.readonly = "true";
    Object.keys(render.onReady).forEach(function (name) { if (links[name].ready) { render.onReady[name](); } });
  };

  // ---- start ----------------------------------------------------------------------------

  // Local copies of sessions this browser has not opened for KEEP_MS go (ours never).
  (function prune() {
    try {
      var storage = window.localStorage, now = Date.now(), prefixes = Object.create(null), i, key;
      var index = JSON.parse(storage.getItem(INDEX_KEY) || "{}");
      if (!index || typeof index !== "object") { index = {}; }
      for (i = 0; i < storage.length; i++) {
        key = storage.key(i);
        if (key && key.indexOf("gtw-docs:v1:") === 0) { prefixes[key.slice(0, key.lastIndexOf(":"))] = true; }
      }
      var keep = {};
      Object.keys(prefixes).forEach(function (prefix) {
        var at = has(index, prefix) && typeof index[prefix] === "number" ? index[prefix] : now;
        if (prefix !== STORE_KEY && now - at > KEEP_MS) {
          Object.keys(LABELS).forEach(function (name) { storage.removeItem(prefix + ":" + name); });
        } else {
          keep[prefix] = at;
        }
      });
      keep[STORE_KEY] = now;
      storage.setItem(INDEX_KEY, JSON.stringify(keep));
    } catch (e) { /* no storage: nothing to prune */ }
  })();

  ["notes", "inventory", "map"].forEach(function (name) { links[name] = new Link(name); });
  bindNotes(links.notes);
  bindInventory(links.inventory);
  bindMap(links.map);
  Object.keys(links).forEach(function (name) { links[name].connect(); });
  render.status();

  window.addEventListener("offline", function () {
    Object.keys(links).forEach(function (name) { links[name].goOffline(); });
    render.status();
  });
  window.addEventListener("online", function () {
    Object.keys(links).forEach(function (name) {
      var link = links[name];
      link.retries = 0;
      if (!link.ws) { link.connect(); }
    });
    render.status();
  });
  setInterval(function () {
    Object.keys(links).forEach(function (name) { links[name].sendStep1(); });
  }, RESYNC_MS);
  window.addEventListener("pagehide", function () {
    Object.keys(links).forEach(function (name) { links[name].flush(); links[name].save(); });
  });
})();
