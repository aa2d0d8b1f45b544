/* Monitoring pages.
 *
 * Event console: the live table (#console-live) polls itself with htmx (hx-trigger "every Ns"). A poll is
 * skipped, and a poll already on its way is not swapped in, while someone is using a row's "Link" form (an
 * open <details> or a focused field inside the table), so a refresh never closes the form or eats what was
 * typed. The next poll after they finish brings the table up to date.
 *
 * KPI page: each <canvas data-chart=...> is drawn with the vendored Chart.js from the page's JSON block
 * (data-chart-source, key data-chart-key). The tables under the charts hold the same figures. When drawn, a
 * canvas gets data-chart-drawn (the browser test waits for it). Colours come from the stylesheet's variables.
 */
(function () {
  "use strict";

  // --- console polling guard -----------------------------------------------------------------------

  function busy(live) {
    if (!live) return false;
    if (live.querySelector("details[open]")) return true;
    var focused = document.activeElement;
    return !!(focused && live.contains(focused) && /^(INPUT|TEXTAREA|SELECT)$/.test(focused.tagName));
  }

  function isPoll(event) {
    var elt = event.detail && event.detail.elt;
    return !!(elt && elt.id === "console-live" && elt.hasAttribute("data-poll"));
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (isPoll(event) && busy(event.detail.elt)) event.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (isPoll(event) && busy(event.detail.elt)) event.detail.shouldSwap = false;
  });

  // --- KPI charts -------------------------------------------------------------------------------------

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  var SEVERITY_COLOURS = [["--red", "#c8102e"], ["--orange", "#c2410c"], ["--amber", "#92600a"],
                          ["--blue", "#1d5fd1"], ["--grey", "#5b6474"]];

  function minutes(value) {
    return value === null || value === undefined ? "none" : value + " min";
  }

  function config(kind, data, canvas, text, grid) {
    var accent = cssVar("--accent", "#4f46e5");
    var scales = {
      y: { beginAtZero: true, ticks: { color: text, precision: 0 }, grid: { color: grid } },
      x: { ticks: { color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: 12 }, grid: { display: false } }
    };
    var base = { responsive: true, maintainAspectRatio: false, animation: false, scales: scales,
                 plugins: { legend: { display: false, labels: { color: text } } } };
    if (kind === "line") {
      scales.y.ticks.precision = undefined;
      return { type: "line", options: base, data: { labels: data.labels, datasets: [{
        label: canvas.getAttribute("data-chart-label"), data: data.values, borderColor: accent,
        backgroundColor: cssVar("--accent-soft", "#eef0ff"), fill: true, pointRadius: 0, borderWidth: 2,
        tension: 0.2 }] } };
    }
    if (kind === "times") {
      base.plugins.legend.display = true;
      base.plugins.tooltip = { callbacks: { label: function (c) { return c.dataset.label + ": " + minutes(c.raw); } } };
      scales.y.ticks.precision = undefined;
      scales.y.title = { display: true, text: "Minutes", color: text };
      return { type: "bar", options: base, data: { labels: data.labels, datasets: [
        { label: "MTTA", data: data.mtta, backgroundColor: accent, borderRadius: 4, maxBarThickness: 36 },
        { label: "MTTR", data: data.mttr, backgroundColor: cssVar("--green", "#157a45"), borderRadius: 4,
          maxBarThickness: 36 }] } };
    }
    var colours = canvas.hasAttribute("data-chart-severity")
      ? SEVERITY_COLOURS.map(function (c) { return cssVar(c[0], c[1]); }) : accent;
    return { type: "bar", options: base, data: { labels: data.labels, datasets: [{
      label: canvas.getAttribute("data-chart-label"), data: data.values, backgroundColor: colours,
      borderRadius: 4, maxBarThickness: 56, minBarLength: 2 }] } };
  }

  function drawCharts() {
    var canvases = document.querySelectorAll("canvas[data-chart]");
    if (!canvases.length || typeof window.Chart === "undefined") return;
    var text = cssVar("--text-2", "#475467");
    var grid = cssVar("--border", "#e4e7ec");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart-source"));
      if (!source) return;
      var data = JSON.parse(source.textContent)[canvas.getAttribute("data-chart-key")];
      if (!data) return;
      var chart = new window.Chart(canvas, config(canvas.getAttribute("data-chart"), data, canvas, text, grid));
      canvas.setAttribute("data-chart-drawn", String(chart.data.labels.length));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawCharts);
  else drawCharts();
})();
