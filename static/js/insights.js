/* The service insights dashboard (templates/insights/dashboard.html).
 *
 * Each <canvas data-chart=KIND data-chart-key=KEY> is drawn with the vendored Chart.js
 * (static/vendor/chartjs) from the page's one JSON block (#insights-chart-data, key KEY). Every chart's
 * figures are also in the table under it ("The numbers"), and its <figcaption> says what it shows, so without
 * JavaScript nothing is lost. Colours come from the stylesheet's variables (the dark theme applies), animation
 * is off, and a drawn canvas gets data-chart-drawn="<number of labels>" (the browser test waits for it).
 *
 * The team and service selects submit the filter form when changed.
 */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function hours(value) {
    if (value === null || value === undefined) return "none";
    var minutes = Math.round(value * 60);
    if (minutes < 60) return minutes + " min";
    if (minutes < 48 * 60) {
      var h = Math.floor(minutes / 60), m = minutes % 60;
      return m ? h + " h " + m + " min" : h + " h";
    }
    var totalHours = Math.round(minutes / 60), d = Math.floor(totalHours / 24), rest = totalHours % 24;
    return rest ? d + " d " + rest + " h" : d + " d";
  }

  function percent(value) {
    return value === null || value === undefined ? "not measured" : value.toFixed(1) + " %";
  }

  function shortDay(iso) {
    var parts = iso.split("-");
    var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    return parseInt(parts[2], 10) + " " + months[parseInt(parts[1], 10) - 1];
  }

  function palette() {
    return {
      accent: cssVar("--accent", "#4f46e5"),
      accentSoft: cssVar("--accent-soft", "#eef0ff"),
      green: cssVar("--green", "#157a45"),
      blue: cssVar("--blue", "#1d5fd1"),
      amber: cssVar("--amber", "#92600a"),
      orange: cssVar("--orange", "#c2410c"),
      red: cssVar("--red", "#c8102e"),
      violet: cssVar("--violet", "#6d28d9"),
      grey: cssVar("--grey", "#5b6474"),
      surface: cssVar("--surface", "#ffffff"),
      text: cssVar("--text-2", "#475467"),
      grid: cssVar("--border", "#e4e7ec")
    };
  }

  function baseOptions(c, legend) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { ticks: { color: c.text, maxRotation: 0, autoSkip: true, maxTicksLimit: 10 }, grid: { display: false } },
        y: { beginAtZero: true, ticks: { color: c.text, precision: 0 }, grid: { color: c.grid } }
      },
      plugins: { legend: { display: !!legend, position: "bottom", labels: { color: c.text, boxWidth: 12 } } }
    };
  }

  function horizontal(options) {
    var x = options.scales.x, y = options.scales.y;
    options.indexAxis = "y";
    options.scales = { x: { beginAtZero: true, ticks: { color: y.ticks.color, precision: 0 }, grid: y.grid },
                       y: { ticks: { color: x.ticks.color, autoSkip: false }, grid: { display: false } } };
    return options;
  }

  var BUILDERS = {
    backlog: function (data, c) {
      var options = baseOptions(c, true);
      options.scales.y.title = { display: true, text: "Tickets", color: c.text };
      options.scales.x.ticks.callback = function (value) { return shortDay(data.labels[value]); };
      options.plugins.tooltip = { callbacks: { title: function (items) { return shortDay(data.labels[items[0].dataIndex]); } } };
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { type: "line", label: "Backlog at end of day", data: data.backlog, borderColor: c.orange,
          backgroundColor: c.orange, pointRadius: 0, borderWidth: 2, tension: 0.2, order: 0 },
        { label: "Opened", data: data.opened, backgroundColor: c.accent, borderRadius: 3, maxBarThickness: 18, order: 1 },
        { label: "Ended", data: data.ended, backgroundColor: c.green, borderRadius: 3, maxBarThickness: 18, order: 2 }
      ] } };
    },
    times: function (data, c) {
      var options = baseOptions(c, true);
      options.scales.y.ticks.precision = undefined;
      options.scales.y.title = { display: true, text: "Hours", color: c.text };
      options.plugins.tooltip = { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + hours(ctx.raw); } } };
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { label: "Mean", data: data.mean, backgroundColor: c.accent, borderRadius: 4, maxBarThickness: 32 },
        { label: "90th percentile", data: data.p90, backgroundColor: c.violet, borderRadius: 4, maxBarThickness: 32 }
      ] } };
    },
    sla: function (data, c) {
      var options = baseOptions(c, false);
      options.scales.y.min = 0;
      options.scales.y.max = 100;
      options.scales.y.ticks = { color: c.text, callback: function (v) { return v + " %"; } };
      options.scales.x.ticks.callback = function (value) { return shortDay(data.labels[value]); };
      options.spanGaps = true;
      options.plugins.tooltip = { callbacks: {
        title: function (items) { return (data.bucket === "week" ? "Week from " : "") + shortDay(data.labels[items[0].dataIndex]); },
        label: function (ctx) { return "Met: " + percent(ctx.raw); } } };
      return { type: "line", options: options, data: { labels: data.labels, datasets: [
        { label: "Compliance", data: data.values, borderColor: c.green, backgroundColor: c.green,
          pointRadius: data.labels.length > 40 ? 0 : 3, borderWidth: 2, tension: 0.2 }
      ] } };
    },
    rates: function (data, c) {
      var options = horizontal(baseOptions(c, false));
      options.scales.x.min = 0;
      options.scales.x.max = 100;
      options.scales.x.ticks = { color: c.text, callback: function (v) { return v + " %"; } };
      options.plugins.tooltip = { callbacks: { label: function (ctx) { return percent(ctx.raw); } } };
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { label: "Rate", data: data.values, backgroundColor: [c.accent, c.orange, c.blue, c.green],
          borderRadius: 4, maxBarThickness: 26, minBarLength: 2 }
      ] } };
    },
    satisfaction: function (data, c) {
      var options = baseOptions(c, false);
      options.scales.x.title = { display: true, text: "Score (1 very dissatisfied, 5 very satisfied)", color: c.text };
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { label: "Ratings", data: data.values, backgroundColor: [c.red, c.orange, c.amber, c.blue, c.green],
          borderRadius: 4, maxBarThickness: 48, minBarLength: 2 }
      ] } };
    },
    "opened-resolved": function (data, c) {
      var options = horizontal(baseOptions(c, true));
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { label: "Opened", data: data.opened, backgroundColor: c.accent, borderRadius: 3, maxBarThickness: 16 },
        { label: "Resolved", data: data.resolved, backgroundColor: c.green, borderRadius: 3, maxBarThickness: 16 }
      ] } };
    },
    doughnut: function (data, c) {
      var colours = [c.orange, c.accent, c.blue, c.green, c.violet, c.amber, c.grey];
      return { type: "doughnut", data: { labels: data.labels, datasets: [
        { data: data.values, backgroundColor: colours.slice(0, Math.max(data.values.length, 1)),
          borderColor: c.surface, borderWidth: 2 }
      ] }, options: { responsive: true, maintainAspectRatio: false, animation: false, cutout: "62%",
        plugins: { legend: { position: "right", labels: { color: c.text, boxWidth: 12 } } } } };
    },
    hbar: function (data, c, canvas) {
      var options = horizontal(baseOptions(c, false));
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { label: canvas.getAttribute("data-chart-label") || "", data: data.values, backgroundColor: c.accent,
          borderRadius: 3, maxBarThickness: 18, minBarLength: 2 }
      ] } };
    },
    workload: function (data, c) {
      var options = horizontal(baseOptions(c, true));
      options.scales.x.stacked = true;
      options.scales.y.stacked = true;
      return { type: "bar", options: options, data: { labels: data.labels, datasets: [
        { label: "Open now", data: data.open, backgroundColor: c.orange, maxBarThickness: 18 },
        { label: "Resolved in the period", data: data.resolved, backgroundColor: c.green, maxBarThickness: 18 }
      ] } };
    }
  };

  function sizeToRows(canvas) {
    // Horizontal charts with many rows (agents) grow so that every name stays readable.
    var box = canvas.parentElement;
    var rows = parseInt(box.getAttribute("data-rows") || "0", 10);
    if (rows > 8) box.style.height = Math.min(24 * rows + 60, 900) + "px";
  }

  function drawCharts() {
    var source = document.getElementById("insights-chart-data");
    if (!source || typeof window.Chart === "undefined") return;
    var all = JSON.parse(source.textContent);
    var colours = palette();
    var canvases = document.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var build = BUILDERS[canvas.getAttribute("data-chart")];
      var data = all[canvas.getAttribute("data-chart-key")];
      if (!build || !data) return;
      sizeToRows(canvas);
      var chart = new window.Chart(canvas, build(data, colours, canvas));
      canvas.setAttribute("data-chart-drawn", String(chart.data.labels.length));
    });
  }

  function autosubmit() {
    var fields = document.querySelectorAll("[data-autosubmit-field]");
    Array.prototype.forEach.call(fields, function (field) {
      field.addEventListener("change", function () {
        if (field.form) field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
      });
    });
  }

  function start() {
    drawCharts();
    autosubmit();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
