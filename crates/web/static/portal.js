// Shows every <time data-local> in the reader's own time zone (the page
// writes it in UTC, which stays when this script does not run).
"use strict";
document.querySelectorAll("time[data-local]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when.getTime())) {
    el.textContent = when.toLocaleTimeString(document.documentElement.lang || undefined, {
      hour: "2-digit",
      minute: "2-digit",
    });
  }
});

// A call or text message under way: ask for its outcome at once (the
// server waits a few seconds for it), so nobody has to press Continue.
// Without this script the Continue button does the same.
var waiting = document.querySelector("form[data-wait]");
if (waiting && !waiting.hasAttribute("data-armed")) {
  // Loaded twice on a page that also shows a time: one timer only.
  waiting.setAttribute("data-armed", "");
  setTimeout(function () {
    waiting.submit();
  }, 1000);
}
