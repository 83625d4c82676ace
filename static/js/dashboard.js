// The supervision dashboard: draws each chart from the JSON the page carries.
// Chart.js (static/vendor/chart.js) is loaded before this file; the tables under
// the charts hold the same numbers for screen readers and for the CSV files.
(function () {
  "use strict";

  var PALETTE = ["#b42318", "#175cd3", "#1d7a46", "#b54708", "#6941c6", "#0e7090"];

  function withColours(config) {
    var datasets = (config.data && config.data.datasets) || [];
    datasets.forEach(function (dataset, index) {
      var colour = PALETTE[index % PALETTE.length];
      var previous = index === 1 && /previous|上期|上一/i.test(dataset.label || "");
      if (config.type === "line") {
        dataset.borderColor = dataset.borderColor || (previous ? "#9aa5b1" : colour);
        dataset.backgroundColor = dataset.backgroundColor || dataset.borderColor;
        dataset.tension = 0.25;
        dataset.pointRadius = 2;
      } else {
        dataset.backgroundColor = dataset.backgroundColor || (previous ? "#cbd2d9" : colour);
      }
    });
    return config;
  }

  function merge(target, source) {
    Object.keys(source || {}).forEach(function (key) {
      var value = source[key];
      if (value && typeof value === "object" && !Array.isArray(value)) {
        target[key] = merge(target[key] || {}, value);
      } else {
        target[key] = value;
      }
    });
    return target;
  }

  function draw(canvas) {
    var id = canvas.getAttribute("data-chart");
    var source = document.getElementById("chart-data-" + id);
    if (!source) {
      return null;
    }
    var config = withColours(JSON.parse(source.textContent));
    config.options = merge(
      {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" } },
        scales: {}
      },
      config.options
    );
    if (config.type !== "doughnut") {
      var valueAxis = config.options.indexAxis === "y" ? "x" : "y";
      config.options.scales[valueAxis] = merge({ beginAtZero: true }, config.options.scales[valueAxis]);
    }
    return new window.Chart(canvas, config);
  }

  function start() {
    var charts = {};
    if (typeof window.Chart !== "function") {
      document.documentElement.setAttribute("data-charts", "unavailable");
      return;
    }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var chart = draw(canvas);
      if (chart) {
        charts[canvas.getAttribute("data-chart")] = chart;
      }
    });
    // For tests and for the curious: the drawn charts by id.
    window.dashboardCharts = charts;
    document.documentElement.setAttribute("data-charts", "ready");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
