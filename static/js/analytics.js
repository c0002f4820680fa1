// The analytics page's charts, from the page's JSON data block (usage.analytics.report). Chart.js is the
// vendored UMD build (window.Chart), loaded before this module runs (classic deferred scripts come first).

const palette = ["#2f6fde", "#e8833a", "#2a9d8f", "#c2417d", "#8a63d2", "#6b8e23", "#d4a017", "#4f5d75",
  "#b5651d", "#17becf"];

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function chart(id, type, labels, datasets, { stacked = false, unit = "" } = {}) {
  const fg = cssVar("--fg", "#1d1f23");
  const grid = cssVar("--border", "#d9dde3");
  const canvas = document.getElementById(id);
  const drawn = new window.Chart(canvas, {
    type,
    data: {
      labels: labels.map((day) => day.slice(5)),
      datasets: datasets.map((set, i) => ({
        backgroundColor: palette[i % palette.length], borderColor: palette[i % palette.length], ...set,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      spanGaps: true,
      scales: {
        x: { stacked, ticks: { color: fg }, grid: { color: grid } },
        y: {
          stacked, beginAtZero: true, ticks: { color: fg }, grid: { color: grid },
          title: { display: Boolean(unit), text: unit, color: fg },
        },
      },
      plugins: { legend: { labels: { color: fg } }, tooltip: { mode: "index", intersect: false } },
    },
  });
  canvas.setAttribute("data-drawn", "true");
  return drawn;
}

function drawBreakdown(data, existing) {
  const by = document.getElementById("breakdown-by").value;
  const metric = document.getElementById("breakdown-metric").value;
  if (existing) existing.destroy();
  const datasets = data.by[by].series.map((series) => ({ label: series.label, data: series[metric] }));
  return chart("chart-breakdown", "bar", data.labels, datasets, { stacked: true, unit: metric });
}

function main() {
  const status = document.getElementById("analytics-status");
  const block = document.getElementById("analytics-data");
  if (!block) return;
  if (typeof window.Chart === "undefined") {
    status.textContent = "The chart library did not load.";
    return;
  }
  const data = JSON.parse(block.textContent);
  const daily = data.daily;
  chart("chart-requests", "bar", data.labels, [
    { label: "requests", data: daily.requests }, { label: "errors", data: daily.errors },
  ], { unit: "requests" });
  chart("chart-tokens", "bar", data.labels, [{ label: "tokens", data: daily.tokens }], { unit: "tokens" });
  chart("chart-cost", "line", data.labels, [{ label: "cost", data: daily.cost }], { unit: "USD" });
  chart("chart-latency", "line", data.labels, [
    { label: "average", data: daily.latency_avg_ms }, { label: "p95 (estimated)", data: daily.latency_p95_ms },
  ], { unit: "ms" });
  let breakdown = drawBreakdown(data, null);
  for (const id of ["breakdown-by", "breakdown-metric"]) {
    document.getElementById(id).addEventListener("change", () => { breakdown = drawBreakdown(data, breakdown); });
  }
  if (daily.requests.every((n) => n === 0)) status.textContent = "No usage in this range.";
}

main();
