// The play page: say hello with the last seq we hold (the server sends exactly what we
// missed), show connection state, send on Enter, keep the log scrolled to the newest entry.
(function () {
  "use strict";
  var conn = function (text, cls) {
    var el = document.getElementById("conn");
    if (el) { el.textContent = text; el.className = "conn " + (cls || ""); }
  };
  var lastSeq = function () {
    var el = document.getElementById("last-seq");
    return el ? parseInt(el.dataset.seq || "0", 10) : 0;
  };
  var log = function () { return document.getElementById("log"); };
  var nearBottom = true;

  document.body.addEventListener("htmx:wsOpen", function (evt) {
    conn("live", "ok");
    evt.detail.socketWrapper.send(JSON.stringify({ type: "hello", last_seq: lastSeq() }));
  });
  document.body.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail.event.code;
    if (code === 4403) {
      conn("not a member of this session", "bad");
    } else {
      conn("reconnecting…", "warn");
    }
  });
  document.body.addEventListener("htmx:wsBeforeMessage", function () {
    var l = log();
    if (l) { nearBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 80; }
  });
  document.body.addEventListener("htmx:wsAfterMessage", function () {
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
  document.addEventListener("DOMContentLoaded", function () {
    var l = log();
    if (l) { l.scrollTop = l.scrollHeight; }
  });
})();
