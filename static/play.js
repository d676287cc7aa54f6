// The play page: the live log (static/live.js) and nothing else yet.
(function () {
  "use strict";
  window.GTW.live({ closed: { 4403: "not a member of this session" } });
})();
