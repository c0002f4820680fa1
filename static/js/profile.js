// The profile page: copy buttons, snippets for the chosen model, and the usage chart (also drawn on the
// admin's usage overview).
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (a LAN server) has no async clipboard: fall back to a hidden selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      area.remove();
    }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var label = button.textContent;
    copyText(source.textContent).then(
      function () { button.textContent = "Copied"; },
      function () { button.textContent = "Copy failed"; }
    ).then(function () {
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Snippets: the server sends them with a placeholder model id; swap in the chosen one without a
  // reload, which would lose a just-created key shown only on this page.
  var select = document.getElementById("snippet-model");
  var templatesNode = document.getElementById("snippet-templates");
  var slotNode = document.getElementById("snippet-model-slot");
  if (select && templatesNode && slotNode) {
    var templates = JSON.parse(templatesNode.textContent);
    var slot = JSON.parse(slotNode.textContent);
    select.addEventListener("change", function () {
      // Every model id in the snippets sits inside a JSON string literal.
      var escaped = JSON.stringify(select.value).slice(1, -1);
      Object.keys(templates).forEach(function (name) {
        var code = document.getElementById("snippet-" + name);
        if (code) code.textContent = templates[name].split(slot).join(escaped);
      });
    });
  }

  var canvas = document.getElementById("usage-chart");
  var status = document.getElementById("usage-chart-status");
  if (!canvas) return;

  var palette = ["#2f6fde", "#e8833a", "#2a9d8f", "#c2417d", "#8a63d2", "#6b8e23", "#d4a017", "#4f5d75",
                 "#b5651d", "#17becf"];

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function draw(data) {
    var total = data.models.reduce(function (sum, series) {
      return sum + series.tokens.reduce(function (a, b) { return a + b; }, 0);
    }, 0);
    canvas.setAttribute("data-total-tokens", String(total));
    if (total === 0) {
      status.textContent = "No usage in the last " + data.days + " days yet.";
    }
    if (typeof window.Chart === "undefined") {
      status.textContent = "The chart library did not load.";
      return;
    }
    var fg = cssVar("--fg", "#1d1f23");
    var grid = cssVar("--border", "#d9dde3");
    var chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels.map(function (day) { return day.slice(5); }),
        datasets: data.models.map(function (series, i) {
          return { label: series.model, data: series.tokens, backgroundColor: palette[i % palette.length] };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: true, ticks: { color: fg }, grid: { color: grid } },
          y: { stacked: true, beginAtZero: true, ticks: { color: fg, precision: 0 }, grid: { color: grid },
               title: { display: true, text: "tokens", color: fg } }
        },
        plugins: {
          legend: { labels: { color: fg } },
          tooltip: { mode: "index", intersect: false }
        }
      }
    });
    canvas.setAttribute("data-drawn", "true");
    canvas.setAttribute("data-series", String(chart.data.datasets.length));
  }

  // The admin overview embeds its data in the page; the profile fetches its own from our JSON endpoint.
  var inline = canvas.getAttribute("data-json");
  if (inline) {
    draw(JSON.parse(document.getElementById(inline).textContent));
    return;
  }
  fetch(canvas.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    })
    .then(draw)
    .catch(function (error) {
      status.textContent = "Could not load the usage chart (" + error.message + ").";
    });
})();
