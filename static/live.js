// The live log of the play and stage pages: say hello with the last seq we hold (the server
// sends exactly what we missed), show the connection state, rejoin as soon as the network is
// back, never apply an event twice, send on Enter, keep the log scrolled to the newest entry.
//
//   var live = GTW.live({
//     hello: function () { return {box: "…"}; },  // more fields for the hello frame (optional)
//     closed: {4403: "not a member of this session"},  // texts for the server's close codes
//   });
//   live.send({type: "…"});  // false until a socket has opened
//   live.open();  // a socket is open right now (htmx queues what is sent while it is not)
(function () {
  "use strict";
  var OFFLINE = 4000;  // our own close code: the browser reported that the network is gone
  var RETRIED = [1006, 1011, 1012, 1013];  // htmx reconnects after these by itself

  // A live game should not wait htmx's default back-off (up to 64 s) to rejoin.
  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retries) {
      return Math.min(500 * Math.pow(2, retries), 8000) * (0.5 + Math.random() / 2);
    };
  }

  var byId = function (id) { return document.getElementById(id); };
  var log = function () { return byId("log"); };

  // "verify" on a dice card (play and stage pages): the server re-derives the roll from its
  // seed inputs and answers in a sentence — or says why not yet, while the session's dice
  // secret is still hidden. A listener here, not an inline handler: the pages run under a
  // strict Content Security Policy, and cards pushed over the socket need no wiring.
  document.addEventListener("click", function (evt) {
    var button = evt.target && evt.target.closest ? evt.target.closest("button.verify-roll") : null;
    if (!button || !button.dataset.verifyUrl) { return; }
    var out = button.parentNode.querySelector(".verify-result");
    if (!out) { return; }
    var show = function (text, cls) { out.textContent = text; out.className = "verify-result " + (cls || ""); };
    show("checking…");
    button.disabled = true;
    fetch(button.dataset.verifyUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          show(body.message || body.detail || "This roll can't be verified right now.", body.status || "bad");
        }, function () {
          show("This roll can't be verified right now (the server said " + response.status + ").", "bad");
        });
      })
      .catch(function () { show("Couldn't reach the server to verify this roll.", "bad"); })
      .then(function () { button.disabled = false; });
  });

  window.GTW = window.GTW || {};
  window.GTW.live = function (options) {
    options = options || {};
    var closed = options.closed || {};
    var socket = null;   // the raw WebSocket of the last open connection
    var wrapper = null;  // htmx's public socket wrapper (send, reconnect)
    var lastClose = 0;   // code of the last close
    var closing = 0;     // set while we close a socket ourselves (servers echo 1000, not our code)
    var nearBottom = true;

    var conn = function (text, cls) {
      var el = byId("conn");
      if (el) { el.textContent = text; el.className = "conn " + (cls || ""); }
    };
    var lastSeq = function () {
      var el = byId("last-seq");
      return el ? parseInt(el.dataset.seq || "0", 10) : 0;
    };
    // Streaming previews stay below the entries (dice rolls) their turn adds, as the final
    // narration will be.
    var tidy = function () {
      var l = log();
      if (!l) { return; }
      l.querySelectorAll(":scope > .streaming").forEach(function (el) {
        if (el !== l.lastElementChild) { l.appendChild(el); }
      });
    };

    // An action is never silently dropped (issue 23): until the server acks it (the ack swaps
    // in a fresh form with a new idempotency key), the action form keeps its text and key. If
    // the socket drops first, or the server answers "unavailable" (its database or Redis is
    // restarting), the same form — same key, so the server records it at most once — is sent
    // again: on the next open, or after a back-off.
    var unacked = null;  // idempotency key of the action sent and not yet acked
    var resendTries = 0;
    var resendTimer = null;
    var actionForm = function () { return byId("action-form"); };
    var formKey = function (form) {
      var input = form && form.querySelector("input[name=idempotency_key]");
      return input ? input.value : null;
    };
    var resend = function () {
      var form = actionForm();
      var text = form && form.querySelector("textarea[name=text]");
      if (!form || !unacked || formKey(form) !== unacked || !text || !text.value.trim()) { unacked = null; return; }
      form.requestSubmit();
    };
    document.body.addEventListener("htmx:wsAfterSend", function (evt) {
      if (evt.target && evt.target.id === "action-form") { unacked = formKey(evt.target); }
    });
    document.body.addEventListener("htmx:wsAfterMessage", function () {
      if (unacked && formKey(actionForm()) !== unacked) { unacked = null; resendTries = 0; }
      var refused = byId("notice") && byId("notice").querySelector("[data-code=unavailable]");
      if (refused && unacked && !resendTimer) {
        refused.dataset.code = "unavailable-resending";  // one resend per refusal
        var delay = Math.min(1000 * Math.pow(2, resendTries++), 8000);
        resendTimer = setTimeout(function () { resendTimer = null; resend(); }, delay);
      }
    });

    document.body.addEventListener("htmx:wsOpen", function (evt) {
      socket = evt.detail.event.target;
      wrapper = evt.detail.socketWrapper;
      conn("live", "ok");
      var hello = Object.assign({}, options.hello ? options.hello() : {}, { type: "hello", last_seq: lastSeq() });
      wrapper.send(JSON.stringify(hello));
      // Sent before the drop and never acked (and not in htmx's own queue of unsent frames).
      if (unacked && !(wrapper.queue && wrapper.queue.length)) { setTimeout(resend, 0); }
    });
    document.body.addEventListener("htmx:wsClose", function (evt) {
      var code = evt.detail.event.code;
      if (socket && socket.readyState === WebSocket.OPEN && evt.detail.event.target !== socket) {
        return;  // an older socket closing after its replacement opened
      }
      if (closing) { code = closing; closing = 0; }
      lastClose = code;
      if (closed[code]) {
        conn(closed[code], "bad");
      } else if (code === OFFLINE || !navigator.onLine) {
        conn("offline — waiting for the network", "warn");
      } else if (RETRIED.indexOf(code) >= 0) {
        conn("reconnecting…", "warn");
      } else {
        conn("disconnected — reload the page", "bad");
      }
    });
    // A dropped network rarely closes a socket promptly; close it ourselves and rejoin (with
    // hello + last seq) as soon as the browser is back online. htmx does not retry our code, so
    // exactly one reconnect runs.
    window.addEventListener("offline", function () {
      if (socket && socket.readyState === WebSocket.OPEN) {
        closing = OFFLINE;
        socket.close(OFFLINE, "offline");
      }
    });
    window.addEventListener("online", function () {
      if (wrapper && lastClose === OFFLINE && socket.readyState === WebSocket.CLOSED) {
        conn("reconnecting…", "warn");
        wrapper.reconnect();
      }
    });
    document.body.addEventListener("htmx:wsBeforeMessage", function (evt) {
      // Belt and braces: never apply an event the log already shows.
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
    var settle = function () {
      tidy();
      var l = log();
      if (l) { l.scrollTop = l.scrollHeight; }
    };
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", settle);
    } else {
      settle();
    }

    return {
      open: function () { return socket !== null && socket.readyState === WebSocket.OPEN; },
      send: function (frame) {
        if (!wrapper) { return false; }
        wrapper.send(JSON.stringify(frame));
        return true;
      },
    };
  };
})();
