// The campaign calendar: offer the browser's own time zone (Intl) where a zone is asked for —
// the viewer's "Use my time zone" form and a new schedule's zone — without overwriting a value.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  function fill(root) {
    if (!zone) { return; }
    root.querySelectorAll("input[data-browser-tz]").forEach(function (input) {
      if (!input.value) { input.value = zone; }
    });
    root.querySelectorAll("[data-browser-tz-label]").forEach(function (el) { el.textContent = zone; });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { fill(document); });
  } else {
    fill(document);
  }
})();
