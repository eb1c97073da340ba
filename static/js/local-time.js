/* Sender's status page: times come rendered in UTC, named, so the page is right without JavaScript. This rewrites
   each <time data-local-time datetime="..."> into the browser's own time zone, named, in the page's language; again
   after every htmx swap (the status block is polled), so live updates keep local time. */
(function () {
  "use strict";

  function formatter() {
    var lang = document.documentElement.lang || "en";
    // A browser without Kyrgyz data would fall back to English: Russian is what Kyrgyz readers then expect.
    if (window.Intl && Intl.DateTimeFormat.supportedLocalesOf([lang]).length === 0 && lang === "ky") { lang = "ru"; }
    return new Intl.DateTimeFormat(lang, {
      year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "long"
    });
  }

  function rewrite(root) {
    if (!window.Intl || !root || !root.querySelectorAll) { return; }
    var format = formatter();
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) { return; }
      el.textContent = format.format(when);
      el.setAttribute("data-local-time", "done");
    });
  }

  document.addEventListener("DOMContentLoaded", function () { rewrite(document); });
  // htmx fires htmx:load on each piece of content it swaps in.
  document.addEventListener("htmx:load", function (event) { rewrite(event.target); });
})();
