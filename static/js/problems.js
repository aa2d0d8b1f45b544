/* The problem page's chart of linked incidents per day, drawn with the vendored Chart.js from the JSON block the
 * page carries (named by the canvas's data-chart-source). A table beside it holds the same figures for screen
 * readers and without JavaScript. When drawn, the canvas gets data-chart-drawn (the browser test waits for it). */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function draw() {
    var canvas = document.getElementById("problem-chart");
    if (!canvas || typeof window.Chart === "undefined") return;
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var text = cssVar("--text-2", "#475467");
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: "Incidents", data: data.values, backgroundColor: cssVar("--accent", "#4f46e5"),
                     borderRadius: 3, maxBarThickness: 32 }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0, color: text }, grid: { color: cssVar("--border", "#e4e7ec") } },
          x: { ticks: { color: text }, grid: { display: false } }
        },
        plugins: { legend: { display: false } }
      }
    });
    canvas.setAttribute("data-chart-drawn", "true");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
