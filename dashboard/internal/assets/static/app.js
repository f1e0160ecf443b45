// warren dashboard: the pause control for live updates, and select-all for
// dead letters. Pages work without this script; it only adds to them.
(function () {
  "use strict";
  var KEY = "warren.dashboard.paused";

  function paused() {
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }

  function setPaused(p) {
    try { window.localStorage.setItem(KEY, p ? "1" : "0"); } catch (e) { /* private mode */ }
    if (p && window.htmx) {
      // A refresh already on its way must not land after the pause either.
      document.querySelectorAll("[data-poll]").forEach(function (el) { window.htmx.trigger(el, "htmx:abort"); });
    }
    render();
  }

  function render() {
    var p = paused();
    document.documentElement.classList.toggle("paused", p);
    document.querySelectorAll("[data-testid=pause]").forEach(function (btn) {
      btn.hidden = false;
      btn.textContent = p ? "Resume live updates" : "Pause live updates";
      btn.setAttribute("aria-pressed", p ? "true" : "false");
    });
    document.querySelectorAll("[data-testid=live-status]").forEach(function (el) {
      el.textContent = p ? "paused" : "live";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    render();
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest("[data-testid=pause]");
      if (btn) { setPaused(!paused()); }
    });
    document.addEventListener("change", function (ev) {
      var all = ev.target.closest("[data-select-all]");
      if (!all) { return; }
      var form = all.form || document;
      form.querySelectorAll("input[type=checkbox][name=ids]").forEach(function (c) { c.checked = all.checked; });
    });
  });

  // Polling elements carry data-poll; while paused their requests are cancelled.
  document.addEventListener("htmx:beforeRequest", function (ev) {
    if (paused() && ev.detail && ev.detail.elt && ev.detail.elt.hasAttribute("data-poll")) {
      ev.preventDefault();
    }
  });
  // Keep the control's label right after a swap.
  document.addEventListener("htmx:afterSettle", render);
})();
