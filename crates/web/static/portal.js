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
