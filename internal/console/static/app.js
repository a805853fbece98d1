// The inbox follows the department's events (server-sent events from the
// console, which watches the hub) and refreshes its table in place.
"use strict";
(function () {
  if (document.body.dataset.page !== "inbox") return;
  var box = document.getElementById("inbox");
  var live = document.getElementById("live");
  var es = new EventSource("/events");
  es.addEventListener("inbox", function (ev) {
    live.textContent = ev.data;
    fetch("/inbox/table", { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) { box.innerHTML = html; box.classList.add("new"); });
  });
  es.addEventListener("failed", function (ev) { live.textContent = ev.data; });
})();
