/* Small enhancements shared by every page. No inline scripts anywhere: the CSP allows scripts from self. */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Countdowns: data-countdown="<seconds left>" counts down from page load (no trust in the device clock).
  function startCountdown(el) {
    var total = parseInt(el.getAttribute("data-countdown"), 10);
    if (isNaN(total)) { return; }
    var value = el.querySelector(".countdown-value");
    var deadline = Date.now() + total * 1000;
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      if (value) {
        value.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      }
      if (left <= 0) {
        var target = el.getAttribute("data-expired-target");
        if (target && document.querySelector(target)) { document.querySelector(target).hidden = false; }
        var disable = el.getAttribute("data-expired-disable");
        if (disable) {
          document.querySelectorAll(disable).forEach(function (b) { b.disabled = true; });
        }
        el.hidden = true;
        return;
      }
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");

    document.querySelectorAll("[data-countdown]").forEach(startCountdown);

    // A second click on a submit button while the first request is on its way does nothing.
    document.querySelectorAll("form").forEach(function (form) {
      var button = form.querySelector("[data-disable-on-submit]");
      if (!button) { return; }
      form.addEventListener("submit", function (event) {
        if (form.dataset.submitted) { event.preventDefault(); return; }
        form.dataset.submitted = "1";
        window.setTimeout(function () { button.disabled = true; }, 0);
      });
    });

    document.addEventListener("click", function (event) {
      var copy = event.target.closest("[data-copy]");
      if (copy) {
        var input = document.querySelector(copy.getAttribute("data-copy"));
        if (!input) { return; }
        input.select();
        var done = function () { copy.textContent = copy.getAttribute("data-copied") || copy.textContent; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () {});
        } else if (document.execCommand && document.execCommand("copy")) {
          done();
        }
        return;
      }
      if (event.target.closest("[data-print]")) { window.print(); }
    });
  });
})();
