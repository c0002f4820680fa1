// The usage chart (tokens per day by model): on the profile, from the REST API; on the admin's usage
// overview, from the page's JSON data block. Chart.js is the vendored UMD build (window.Chart).

const palette = ["#2f6fde", "#e8833a", "#2a9d8f", "#c2417d", "#8a63d2", "#6b8e23", "#d4a017", "#4f5d75",
  "#b5651d", "#17becf"];

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function draw(canvas, status, data) {
  const total = data.models.reduce((sum, series) => sum + series.tokens.reduce((a, b) => a + b, 0), 0);
  canvas.setAttribute("data-total-tokens", String(total));
  if (total === 0) status.textContent = `No usage in the last ${data.days} days yet.`;
  if (typeof window.Chart === "undefined") {
    status.textContent = "The chart library did not load.";
    return;
  }
  const fg = cssVar("--fg", "#1d1f23");
  const grid = cssVar("--border", "#d9dde3");
  const chart = new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels.map((day) => day.slice(5)),
      datasets: data.models.map((series, i) => ({
        label: series.model, data: series.tokens, backgroundColor: palette[i % palette.length],
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked: true, ticks: { color: fg }, grid: { color: grid } },
        y: {
          stacked: true, beginAtZero: true, ticks: { color: fg, precision: 0 }, grid: { color: grid },
          title: { display: true, text: "tokens", color: fg },
        },
      },
      plugins: { legend: { labels: { color: fg } }, tooltip: { mode: "index", intersect: false } },
    },
  });
  canvas.setAttribute("data-drawn", "true");
  canvas.setAttribute("data-series", String(chart.data.datasets.length));
}

export async function drawUsageChart(canvas, status) {
  const inline = canvas.getAttribute("data-json");
  if (inline) {
    draw(canvas, status, JSON.parse(document.getElementById(inline).textContent));
    return;
  }
  try {
    const response = await fetch(canvas.getAttribute("data-url"), {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    draw(canvas, status, await response.json());
  } catch (error) {
    status.textContent = `Could not load the usage chart (${error.message}).`;
  }
}

const canvas = document.getElementById("usage-chart");
if (canvas) drawUsageChart(canvas, document.getElementById("usage-chart-status"));
