/* The SLA compliance page: a bar chart of compliance per group, drawn with the vendored Chart.js
 * (static/vendor/chartjs) from the JSON block the page carries (<script type="application/json">, named by
 * the canvas's data-chart-source). The table under the chart holds the same figures, so without JavaScript
 * nothing is lost. Colours come from the stylesheet's variables, so the dark theme applies.
 * A 0 % bar shows as a sliver (minBarLength); a group without stopped clocks of a kind has no bar.
 * When drawn, the canvas gets data-chart-drawn (the browser test waits for it).
 */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function percent(value) {
    return value === null || value === undefined ? "no clock stopped" : value + " %";
  }

  function draw() {
    var canvas = document.getElementById("sla-chart");
    if (!canvas || typeof window.Chart === "undefined") return;
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var colours = [cssVar("--accent", "#4f46e5"), cssVar("--green", "#157a45")];
    var text = cssVar("--text-2", "#475467");
    var grid = cssVar("--border", "#e4e7ec");

    var chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (series, i) {
          return {
            label: series.label,
            data: series.values,
            backgroundColor: colours[i % colours.length],
            borderRadius: 4,
            maxBarThickness: 48,
            minBarLength: 3
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          y: {
            min: 0,
            max: 100,
            ticks: { color: text, callback: function (value) { return value + " %"; } },
            grid: { color: grid },
            title: { display: true, text: "Met", color: text }
          },
          x: { ticks: { color: text }, grid: { display: false } }
        },
        plugins: {
          legend: { labels: { color: text } },
          tooltip: {
            callbacks: {
              label: function (context) { return context.dataset.label + ": " + percent(context.raw); }
            }
          }
        }
      }
    });
    canvas.setAttribute("data-chart-drawn", String(chart.data.labels.length));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
