// The stage page: the live log (static/live.js; the hello also names the action box we show,
// so the server re-renders it only if it changed) and the countdown of a timed beat window.
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  var live = window.GTW.live({
    hello: function () {
      var el = byId("action-box");
      return { box: el ? (el.dataset.box || null) : null };
    },
    closed: { 4403: "not a member of this stage", 4404: "not a stage session" },
  });

  // When the time is up every client asks the server to check (a short random delay spreads a
  // big audience out); the first one closes the window, the rest find it closed. A check that
  // came too early (this clock runs ahead of the server's) is asked again a second or two later,
  // for as long as the window is shown open.
  var nextCheck = {};  // window number -> when we may ask about it again
  var tick = function () {
    var el = byId("window-countdown");
    if (!el) { return; }
    var remaining = Date.parse(el.dataset.closesAt) - Date.now();
    var left = Math.max(0, Math.ceil(remaining / 1000));
    var text = left >= 60 ? Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") : left + "s";
    if (el.textContent !== text) { el.textContent = text; }
    var n = el.dataset.window;
    // Only while the socket is open: htmx queues frames sent while it is down and would flood
    // the server with stale checks on reconnect (the hello brings the window's state anyway).
    if (remaining <= 0 && live.open() && Date.now() >= (nextCheck[n] || 0)) {
      nextCheck[n] = Date.now() + 1000 + Math.random() * 1000;
      setTimeout(function () { if (live.open()) { live.send({ type: "window_check" }); } }, Math.random() * 400);
    }
  };
  setInterval(tick, 250);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", tick);
  } else {
    tick();
  }
})();
