// The stage page: say hello with the last seq we hold and the action box we show (the server
// sends exactly what we missed and re-renders the box only if it changed), show connection
// state, count down a timed beat window (and ask the server to close it at zero), send on
// Enter, keep the log scrolled to the newest entry.
(function () {
  "use strict";
  var socket = null;   // the raw WebSocket of the last open connection
  var wrapper = null;  // htmx's public socket wrapper (send, reconnect)
  var nearBottom = true;
  var checked = {};    // beat windows we already asked the server to close

  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retries) {
      return Math.min(500 * Math.pow(2, retries), 8000) * (0.5 + Math.random() / 2);
    };
  }

  var byId = function (id) { return document.getElementById(id); };
  var conn = function (text, cls) {
    var el = byId("conn");
    if (el) { el.textContent = text; el.className = "conn " + (cls || ""); }
  };
  var lastSeq = function () {
    var el = byId("last-seq");
    return el ? parseInt(el.dataset.seq || "0", 10) : 0;
  };
  var boxKey = function () {
    var el = byId("action-box");
    return el ? (el.dataset.box || null) : null;
  };
  var log = function () { return byId("log"); };
  var tidy = function () {
    var l = log();
    if (!l) { return; }
    l.querySelectorAll(":scope > .streaming").forEach(function (el) {
      if (el !== l.lastElementChild) { l.appendChild(el); }
    });
  };

  document.body.addEventListener("htmx:wsOpen", function (evt) {
    socket = evt.detail.event.target;
    wrapper = evt.detail.socketWrapper;
    conn("live", "ok");
    wrapper.send(JSON.stringify({ type: "hello", last_seq: lastSeq(), box: boxKey() }));
  });
  document.body.addEventListener("htmx:wsClose", function (evt) {
    if (socket && socket.readyState === WebSocket.OPEN && evt.detail.event.target !== socket) {
      return;  // an older socket closing after its replacement opened
    }
    var code = evt.detail.event.code;
    if (code === 4403) {
      conn("not a member of this stage", "bad");
    } else if (code === 4404) {
      conn("not a stage session", "bad");
    } else if ([1006, 1011, 1012, 1013].indexOf(code) >= 0 || !navigator.onLine) {
      conn("reconnecting…", "warn");
    } else {
      conn("disconnected — reload the page", "bad");
    }
  });
  document.body.addEventListener("htmx:wsBeforeMessage", function (evt) {
    // Never apply an event the log already shows.
    var m = /<article[^>]*\sid="ev-(\d+)"/.exec(evt.detail.message);
    if (m && byId("ev-" + m[1])) { evt.preventDefault(); return; }
    var l = log();
    if (l) { nearBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 80; }
  });
  document.body.addEventListener("htmx:wsAfterMessage", function () {
    tidy();
    var l = log();
    if (l && nearBottom) { l.scrollTop = l.scrollHeight; }
  });
  document.body.addEventListener("keydown", function (evt) {
    var t = evt.target;
    if (t && t.id === "action-text" && evt.key === "Enter" && !evt.shiftKey && !evt.isComposing) {
      evt.preventDefault();
      if (t.value.trim()) { t.form.requestSubmit(); }
    }
  });

  // The countdown of a timed window. At zero every client asks the server to check (a short
  // random delay spreads a big audience out); the first one closes it, the rest find it closed.
  var tick = function () {
    var el = byId("window-countdown");
    if (!el) { return; }
    var left = Math.max(0, Math.round((Date.parse(el.dataset.closesAt) - Date.now()) / 1000));
    var text = left >= 60 ? Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") : left + "s";
    if (el.textContent !== text) { el.textContent = text; }
    var n = el.dataset.window;
    if (left === 0 && !checked[n] && wrapper) {
      checked[n] = true;
      setTimeout(function () {
        if (wrapper) { wrapper.send(JSON.stringify({ type: "window_check" })); }
      }, Math.random() * 400);
    }
  };
  setInterval(tick, 250);

  document.addEventListener("DOMContentLoaded", function () {
    tidy();
    tick();
    var l = log();
    if (l) { l.scrollTop = l.scrollHeight; }
  });
})();
