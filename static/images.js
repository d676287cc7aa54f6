// Pictures (media/images): keep a painting's progress bar moving between the server's updates.
// The server sends its percent (data-target) a few times a second at most; in between the bar
// catches up with it, then creeps on (slower and slower, at most 25 points past it and never past
// 95%), so a slow provider never looks frozen. A new figure swapped in over the socket replaces
// the old one by id, its bar starting where the old one was; duplicates (a retried picture) go.
(function () {
  "use strict";

  var shown = {}; // picture id -> the value its bar showed, so a swapped-in bar never goes back

  function tick() {
    document.querySelectorAll("progress.image-progress").forEach(function (bar) {
      var figure = bar.closest("[data-image]");
      var id = figure ? figure.dataset.image : "";
      var target = Number(bar.dataset.target || 0);
      var value = Math.max(Number(bar.value || 0), id ? shown[id] || 0 : 0);
      var ceiling = Math.min(95, target + 25);
      if (value < target) {
        value = value + Math.max(1, (target - value) * 0.35);
      } else if (value < ceiling) {
        value = value + Math.max(0.15, (ceiling - value) * 0.02);
      }
      bar.value = Math.min(value, 99);
      if (id) { shown[id] = bar.value; }
      var label = bar.parentElement && bar.parentElement.querySelector(".image-percent");
      if (label) { label.textContent = Math.round(bar.value) + "%"; }
    });
  }

  function dedupe() {
    var seen = {};
    document.querySelectorAll("#image-strip > figure[id]").forEach(function (fig) {
      if (seen[fig.id]) { fig.remove(); } else { seen[fig.id] = true; }
    });
  }

  setInterval(tick, 200);
  document.addEventListener("htmx:oobAfterSwap", dedupe);
  document.addEventListener("htmx:wsAfterMessage", dedupe);
})();
