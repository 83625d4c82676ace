/* Live deadline countdowns, and the case page noticing a change made elsewhere.
 *
 * Every .countdown[data-due] is re-rendered each second from data-due (ISO time)
 * and data-total (the stage's length in seconds): its text, and its colour class
 * (green above 25 % of the stage left, amber from 10 %, red below or overdue).
 * The patterns come translated from the server (data-fmt-*). Without JavaScript
 * the server's text stays.
 *
 * On the case page, [data-testid=case-watch] names the case's API address and
 * its status; while the page is visible the case is fetched every 5 seconds, and
 * a different status shows the "this case has changed" notice.
 */
(function () {
  "use strict";

  var COLOURS = ["deadline-green", "deadline-amber", "deadline-red"];
  var POLL_MS = 5000;

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function fill(pattern, values) {
    return pattern.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : all;
    });
  }

  function span(el, seconds) {
    seconds = Math.abs(seconds);
    var days = Math.floor(seconds / 86400);
    var rest = seconds % 86400;
    var clock = pad(Math.floor(rest / 3600)) + ":" + pad(Math.floor((rest % 3600) / 60)) +
      ":" + pad(rest % 60);
    if (!days) return clock;
    var pattern = days === 1 ? el.dataset.fmtDay : el.dataset.fmtDays;
    return pattern ? fill(pattern, { days: String(days), clock: clock }) : days + "d " + clock;
  }

  function colour(left, total) {
    if (left < 0) return "red";
    var share = left / Math.max(total, 1);
    if (share > 0.25) return "green";
    if (share >= 0.1) return "amber";
    return "red";
  }

  function tick(el) {
    if (el.dataset.paused === "true") return;
    var due = Date.parse(el.dataset.due);
    if (isNaN(due)) return;
    var left = Math.floor((due - Date.now()) / 1000);
    var text = left < 0
      ? fill(el.dataset.fmtOverdue || "-{time}", { time: span(el, left) })
      : span(el, left);
    if (el.textContent !== text) el.textContent = text;
    var name = colour(left, Number(el.dataset.total) || 1);
    if (el.dataset.colour !== name) {
      el.classList.remove.apply(el.classList, COLOURS);
      el.classList.add("deadline-" + name);
      el.dataset.colour = name;
    }
  }

  function tickAll() {
    var items = document.querySelectorAll(".countdown[data-due]");
    for (var i = 0; i < items.length; i++) tick(items[i]);
  }

  function watchCase(box) {
    var url = box.dataset.url;
    var known = box.dataset.status;
    var notice = box.querySelector("[data-testid=case-changed]");
    if (!url || !known || !notice) return;
    var timer = null;
    var busy = false;

    function changed() {
      notice.hidden = false;
      stop();
    }

    function poll() {
      if (busy || document.visibilityState !== "visible") return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (body) {
          if (body && body.status && body.status !== known) changed();
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(function () { busy = false; });
    }

    function start() {
      if (timer === null && notice.hidden) timer = window.setInterval(poll, POLL_MS);
    }

    function stop() {
      if (timer !== null) window.clearInterval(timer);
      timer = null;
    }

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        poll();
        start();
      } else {
        stop();
      }
    });
    if (document.visibilityState === "visible") start();
  }

  function init() {
    tickAll();
    if (document.querySelector(".countdown[data-due]")) window.setInterval(tickAll, 1000);
    var boxes = document.querySelectorAll("[data-testid=case-watch]");
    for (var i = 0; i < boxes.length; i++) watchCase(boxes[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
