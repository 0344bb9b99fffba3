// The overview's charts: /v1/dashboard/timeseries drawn with uPlot (vendor/uplot, canvas, no build step).
// Loaded by app.js only when the overview shows, so other pages never fetch uPlot.
//
// Each chart is a <figure>: a heading, the plot (a canvas, hidden from assistive technology), uPlot's
// legend, a <figcaption> that says in words what the plot shows (totals, peaks, where data is missing),
// and a "Data" disclosure with the non-empty buckets as a table. Nothing in a chart takes focus but
// that disclosure, so the keyboard passes through. Colours come from the page's CSS variables and
// the charts are redrawn when the colour scheme changes.

import uPlot from "./vendor/uplot/uPlot.esm.js";

// A chart: its id, title, the unit formatter and how its series draw; a series is [field, label, colour
// variable]. "sum" series add up over the range; "level" series (percentiles) do not.
const CHARTS = [
  { id: "requests", title: "Requests and errors", kind: "sum", format: "count",
    series: [["requests", "Requests", "--accent"], ["errors", "Errors", "--bad"]] },
  { id: "cost", title: "Cost", kind: "sum", format: "usd", series: [["cost", "Cost", "--accent"]] },
  { id: "tokens", title: "Tokens", kind: "sum", format: "count",
    series: [["prompt_tokens", "Prompt tokens", "--accent"], ["completion_tokens", "Completion tokens", "--chart-2"]] },
  { id: "latency", title: "Latency", kind: "level", format: "ms",
    series: [["latency_p50", "p50", "--accent"], ["latency_p95", "p95", "--chart-2"]] },
  { id: "ttft", title: "Time to first token", kind: "level", format: "ms",
    series: [["ttft_p50", "p50", "--accent"], ["ttft_p95", "p95", "--chart-2"]] },
  { id: "cache", title: "Cache hits", kind: "sum", format: "count", series: [["cache_hits", "Cache hits", "--ok"]] },
];

const INCREMENTS = { "1m": "minute", "5m": "5 minutes", "15m": "15 minutes", "30m": "30 minutes", "1h": "hour",
  "3h": "3 hours", "6h": "6 hours", "12h": "12 hours", "1d": "day", "1w": "week" };
const per = (increment) => INCREMENTS[increment] || increment.replace(/w$/, " weeks");

const FORMATS = {
  count: (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US")),
  usd: (n) => (n === null || n === undefined ? "–" : "$" + (n === 0 ? "0" : n < 0.01 ? n.toPrecision(3) : n.toFixed(4))),
  ms: (n) => (n === null || n === undefined ? "–" : n >= 1000 ? (n / 1000).toFixed(2) + " s" : Math.round(n) + " ms"),
  score: (n) => (n === null || n === undefined ? "–" : String(Number(n.toFixed(3)))),
};
const AXIS = {
  count: (v) => (Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(1) + "M" : Math.abs(v) >= 1e3 ? (v / 1e3).toFixed(1) + "k" : String(v)),
  usd: (v) => "$" + (v >= 1 ? v.toFixed(2) : String(Number(v.toPrecision(2)))),
  ms: (v) => (v >= 1000 ? (v / 1000).toFixed(1) + " s" : Math.round(v) + " ms"),
  score: (v) => String(Number(v.toPrecision(3))),
};

const when = (iso) => new Date(iso).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The words for one chart: per series, its total and peak (sums) or its highest and lowest (levels). */
export function summary(chart, series, rangeLabel) {
  const fmt = FORMATS[chart.format];
  const buckets = series.buckets;
  const parts = chart.series.map(([field, label]) => {
    const known = buckets.filter((b) => b[field] !== null);
    if (known.length === 0 || (chart.kind === "sum" && known.every((b) => b[field] === 0))) return `${label}: none`;
    const peak = known.reduce((a, b) => (b[field] > a[field] ? b : a));
    if (chart.kind === "sum") {
      const total = known.reduce((sum, b) => sum + b[field], 0);
      return `${label}: ${fmt(total)} in total, at most ${fmt(peak[field])} (${when(peak.time)})`;
    }
    const low = known.reduce((a, b) => (b[field] < a[field] ? b : a));
    return `${label}: from ${fmt(low[field])} to ${fmt(peak[field])} (highest ${when(peak.time)})`;
  });
  let text = `${chart.title} per ${per(series.increment)}, ${rangeLabel.toLowerCase()}. ${parts.join("; ")}.`;
  if (chart.kind === "level") {
    const gaps = buckets.filter((b) => chart.series.every(([field]) => b[field] === null)).length;
    if (gaps) text += ` No value in ${gaps} of ${buckets.length} intervals.`;
  }
  return text;
}

function dataTable(chart, series) {
  const fmt = FORMATS[chart.format];
  const rows = series.buckets.filter((b) => b.requests > 0);
  return el("details", { class: "chart-data" }, el("summary", {}, "Data"),
    rows.length === 0 ? el("p", { class: "muted" }, "No requests in this range.") :
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "From"),
        chart.series.map(([, label]) => el("th", { scope: "col", class: "num" }, label)))),
      el("tbody", {}, rows.map((b) => el("tr", { "data-time": b.time }, el("td", {}, when(b.time)),
        chart.series.map(([field]) => el("td", { class: "num", "data-field": field }, fmt(b[field]))))))));
}

const bars = uPlot.paths.bars({ size: [0.8, 40] });
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// Counts step by whole numbers; uPlot's default steps include fractions.
const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9];

function options(chart, width, series) {
  // Half an interval of room either side, so the first and last bars are whole; or the series' own range.
  const half = series.increment_ms / 2000;
  const range = series.range ? () => series.range : (u, min, max) => [min - half, max + half];
  const text = css("--muted");
  const grid = css("--line");
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const fmt = FORMATS[chart.format];
  return {
    width,
    height: 200,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [axis, { ...axis, size: 64, values: (u, values) => values.map(AXIS[chart.format]),
      ...(chart.format === "count" ? { incrs: WHOLE } : {}) }],
    series: [
      { label: "Time", value: (u, v) => (v === null ? "–" : when(v * 1000)) },
      ...chart.series.map(([, label, colour], i) => {
        const stroke = css(colour);
        const s = { label, stroke, width: 2, value: (u, v) => fmt(v) };
        if (chart.kind === "sum") {
          // Amounts per interval are bars; a later series (errors, completion tokens) is drawn over the first.
          Object.assign(s, { width: 1, paths: bars, fill: stroke + (i === 0 ? "66" : "cc"), points: { show: false } });
        } else {
          // Levels are lines that break where an interval has no value; a lone value shows as its point.
          Object.assign(s, { spanGaps: false, points: { show: true, size: 5, fill: stroke } });
        }
        return s;
      }),
    ],
  };
}

const scheme = window.matchMedia("(prefers-color-scheme: dark)");
let redraw = null;
let observer = null;
scheme.addEventListener("change", () => { if (redraw) redraw(); });

// The charts on the page now, so a new overview or a scheme change can destroy them (uPlot listens on window).
let live = [];

function draw(section, figures) {
  for (const plot of live) plot.destroy();
  live = [];
  section.dataset.scheme = scheme.matches ? "dark" : "light";
  for (const { chart, plotBox, series } of figures) {
    plotBox.replaceChildren();
    const x = series.buckets.map((b) => Date.parse(b.time) / 1000);
    const data = [x, ...chart.series.map(([field]) => series.buckets.map((b) => b[field]))];
    const plot = new uPlot(options(chart, Math.max(240, plotBox.clientWidth || 480), series), data, plotBox);
    plot.root.querySelector(".u-wrap")?.setAttribute("aria-hidden", "true");
    live.push(plot);
  }
}

const SCORE_COLOURS = ["--accent", "--chart-2", "--ok", "--bad", "--muted"];

/**
 * The dbIncrement of /v1/dashboard/scores/query for a time series (Helicone's calendar units): minutes
 * for an hour or two, hours up to about a week, then days, then weeks.
 */
export function scoresIncrement(series) {
  const span = Date.parse(series.end) - Date.parse(series.start);
  if (series.increment_ms < 3_600_000) return span <= 2 * 3_600_000 ? "min" : "hour";
  if (series.increment_ms < 86_400_000) return span <= 8 * 86_400_000 ? "hour" : "day";
  return series.increment_ms < 7 * 86_400_000 ? "day" : "week";
}

const SCORE_UNITS = { min: "minute", hour: "hour", day: "day", week: "week" };

/** Scores over time (rows of /v1/dashboard/scores/query) as a chart: one series per score name (the first five). */
function scoresSeries(rows, series) {
  const names = [...new Set(rows.map((r) => r.score_key))].slice(0, SCORE_COLOURS.length);
  const byTime = new Map();
  for (const r of rows) {
    if (!names.includes(r.score_key)) continue;
    const b = byTime.get(r.created_at_trunc) || { time: r.created_at_trunc, requests: 1 };
    b["score:" + r.score_key] = r.score_sum;
    byTime.set(r.created_at_trunc, b);
  }
  const buckets = [...byTime.values()].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  for (const b of buckets) for (const n of names) if (!(("score:" + n) in b)) b["score:" + n] = null;
  const chart = { id: "scores", title: "Scores", kind: "level", format: "score",
    series: names.map((n, i) => ["score:" + n, n, SCORE_COLOURS[i]]) };
  const range = [Date.parse(series.start) / 1000, Date.parse(series.end) / 1000];
  return { chart, series: { increment: SCORE_UNITS[scoresIncrement(series)], increment_ms: 0, range, buckets } };
}

/**
 * The charts' section for one answer of /v1/dashboard/timeseries; `rangeLabel` names the selected range;
 * `scores`, when given, the rows of /v1/dashboard/scores/query over the same range (a chart of their means).
 */
export function chartsView(series, rangeLabel, scores) {
  const figures = CHARTS.map((chart) => ({ chart, series }));
  const scoring = scores ? scoresSeries(scores, series) : null;
  if (scoring && scoring.chart.series.length) figures.push(scoring);
  for (const f of figures) {
    const { chart } = f;
    f.plotBox = el("div", { class: "chart-plot" });
    const caption = el("figcaption", { id: `chart-${chart.id}-caption` }, summary(chart, f.series, rangeLabel));
    f.figure = el("figure", { class: "chart panel", id: `chart-${chart.id}`, "data-chart": chart.id,
      "aria-labelledby": `chart-${chart.id}-title`, "aria-describedby": `chart-${chart.id}-caption` },
    el("h2", { id: `chart-${chart.id}-title` }, chart.title), f.plotBox, caption, dataTable(chart, f.series));
  }
  if (scoring && !scoring.chart.series.length) {
    figures.push({ figure: el("figure", { class: "chart panel", id: "chart-scores", "data-chart": "scores" },
      el("h2", {}, "Scores"), el("p", { class: "muted" }, "No scores in this range. Scores are added with ",
        el("code", {}, "POST /v1/request/{id}/score"), " or ", el("code", {}, "POST /v1/evals/{requestId}"), ".")) });
  }
  const section = el("section", { class: "charts", "aria-label": "Over time", "data-increment": series.increment },
    figures.map((f) => f.figure));
  const plotted = figures.filter((f) => f.plotBox);
  // Drawn once the section is in the page (uPlot measures its box), and again when it resizes or the scheme changes.
  let width = 0;
  if (observer) observer.disconnect(); // the previous overview's section
  observer = new ResizeObserver(() => {
    if (!section.isConnected) { observer.disconnect(); return; }
    const now = plotted[0].plotBox.clientWidth;
    if (now === width) return;
    if (width === 0) { width = now; draw(section, plotted); return; }
    width = now;
    for (const [i, plot] of live.entries()) plot.setSize({ width: Math.max(240, plotted[i].plotBox.clientWidth), height: 200 });
  });
  observer.observe(section);
  redraw = () => { if (section.isConnected) draw(section, plotted); };
  return section;
}
