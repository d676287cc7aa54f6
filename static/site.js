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
