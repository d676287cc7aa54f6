// Behaviour every page shares. The Content Security Policy allows no inline handlers, so what
// used to be onclick="…" attributes lives here, delegated from the document so it also works
// on content htmx swaps in later.
(function () {
  "use strict";
  // A read-only .copy field (a new API token, an invite link) selects all of itself on click,
  // ready to copy.
  document.addEventListener("click", function (evt) {
    var t = evt.target;
    if (t instanceof HTMLInputElement && t.readOnly && t.classList.contains("copy")) { t.select(); }
  });
})();

// A button with data-copy="<id>" copies that field's value: the clipboard API where the page may
// use it (HTTPS or localhost), else the field is selected and the browser's copy command tried.
// The status next to the button says "Copied" or, failing both, asks for Ctrl+C.
(function () {
  "use strict";
  function say(button, text) {
    var status = button.parentNode && button.parentNode.querySelector(".copy-status");
    if (status) { status.textContent = text; }
  }
  function fallback(button, field) {
    field.focus();
    field.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    say(button, ok ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy");
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target instanceof Element ? evt.target.closest("button[data-copy]") : null;
    if (!button) { return; }
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    evt.preventDefault();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { field.select(); say(button, "Copied"); },
        function () { fallback(button, field); }
      );
    } else {
      fallback(button, field);
    }
  });
})();
