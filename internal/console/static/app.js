// The inbox follows the department's events (server-sent events from the
// console, which watches the hub) and refreshes its table in place. An
// officer in the middle of a form is not interrupted: the refresh waits
// until the form loses focus.
"use strict";
(function () {
  if (document.body.dataset.page !== "inbox") return;
  var box = document.getElementById("inbox");
  var live = document.getElementById("live");
  var pending = false;
  function busy() { return box.contains(document.activeElement) && document.activeElement !== box; }
  function refresh() {
    if (busy()) { pending = true; return; }
    pending = false;
    fetch("/inbox/table", { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) { box.innerHTML = html; box.classList.add("new"); });
  }
  box.addEventListener("focusout", function () { setTimeout(function () { if (pending) refresh(); }, 0); });
  var es = new EventSource("/events");
  es.addEventListener("inbox", function (ev) { live.textContent = ev.data; refresh(); });
  es.addEventListener("failed", function (ev) { live.textContent = ev.data; });
})();
