// The dashboard: reads the reports from the JSON API and draws them with ECharts. The page's
// query string (from, to, category, brand, token) is the filter, so a view can be shared.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const charts = {};

function chart(id) {
  if (!charts[id]) {
    charts[id] = echarts.init(document.getElementById(id), null, { renderer: "svg" });
  }
  return charts[id];
}

function filters() {
  const q = new URLSearchParams();
  for (const name of ["from", "to", "category", "brand"]) {
    const v = document.getElementById(name).value.trim();
    if (v) q.set(name, v);
  }
  return q;
}

async function api(name, extra) {
  const q = filters();
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch("api/reports/" + name + "?" + q.toString(), { headers });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function rows(report, table) {
  const t = report.tables.find((t) => t.name === table);
  return t ? t.rows : [];
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function kpi(id, value, text) {
  const el = document.getElementById(id);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.textContent = value === null || value === undefined ? "-" : text(value);
}

function bars(id, labels, series, horizontal) {
  const category = { type: "category", data: labels, axisLabel: { width: 150, overflow: "truncate" } };
  const value = { type: "value" };
  chart(id).setOption({
    tooltip: { trigger: "axis" },
    legend: series.length > 1 ? { top: 0 } : undefined,
    grid: { left: horizontal ? 160 : 50, right: 40, top: series.length > 1 ? 40 : 30, bottom: 40 },
    xAxis: horizontal ? value : category,
    yAxis: horizontal ? Object.assign({ inverse: true }, category) : value,
    series: series,
  }, true);
}

async function load() {
  document.body.dataset.ready = "false";
  document.getElementById("error").style.display = "none";
  const [summary, funnel, trends, products, categories, brands, sessions, prices] = await Promise.all([
    api("summary"), api("funnel"), api("trends"), api("products", { limit: 10 }),
    api("categories", { limit: 10 }), api("brands", { limit: 10 }), api("sessions"),
    api("prices", { limit: 10 }),
  ]);
  document.getElementById("from").value ||= summary.from || "";
  document.getElementById("to").value ||= summary.to || "";
  const k = rows(summary, "kpis")[0] || {};
  kpi("kpi-events", k.events, integer.format);
  kpi("kpi-revenue", k.revenue, money.format);
  kpi("kpi-purchases", k.purchases, integer.format);
  kpi("kpi-users", k.users, integer.format);
  kpi("kpi-sessions", k.sessions, integer.format);
  kpi("kpi-conversion", k.session_conversion_pct, (v) => v + " %");

  const steps = rows(funnel, "period");
  chart("chart-funnel").setOption({
    tooltip: { trigger: "item" },
    series: [{
      type: "funnel", left: "10%", width: "80%", sort: "none", minSize: "20%",
      label: { formatter: (p) => p.name + ": " + integer.format(p.value) },
      data: steps.map((s) => ({ name: s.step + " (events)", value: s.events })),
    }],
  }, true);
  document.getElementById("funnel-note").textContent = steps.length
    ? steps.map((s) => s.step + ": " + (s.users === null ? "-" : integer.format(s.users)) + " users").join(" -> ")
    : "";

  const days = rows(trends, "by_day");
  const kinds = [["views", "views"], ["carts", "carts"], ["removes", "removes"], ["purchases", "purchases"]];
  chart("chart-days").setOption({
    tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: { left: 60, right: 20, top: 40, bottom: 40 },
    xAxis: { type: "category", data: days.map((d) => d.day) },
    yAxis: { type: "value", scale: false },
    series: kinds.map(([key, name]) => ({ name, type: "line", showSymbol: false, data: days.map((d) => d[key]) })),
  }, true);
  const hours = rows(trends, "by_hour");
  bars("chart-hours", hours.map((h) => String(h.hour_of_day)),
    kinds.map(([key, name]) => ({ name, type: "bar", stack: "events", data: hours.map((h) => h[key]) })));

  const top = rows(products, "top_viewed");
  chart("chart-products").setOption({
    tooltip: { trigger: "axis" }, grid: { left: 80, right: 50, top: 30, bottom: 40 },
    xAxis: { type: "category", data: top.map((p) => String(p.product_id)), axisLabel: { rotate: 30 } },
    yAxis: [{ type: "value", name: "views" }, { type: "value", name: "%" }],
    series: [
      { name: "views", type: "bar", data: top.map((p) => p.views) },
      { name: "purchases per 100 views", type: "line", yAxisIndex: 1, data: top.map((p) => p.purchase_rate_pct) },
    ],
  }, true);

  const cats = rows(categories, "by_category");
  bars("chart-categories", cats.map((c) => c.category_code), [{ name: "revenue", type: "bar", data: cats.map((c) => c.revenue) }], true);
  const brandRows = rows(brands, "by_brand");
  bars("chart-brands", brandRows.map((b) => b.brand), [{ name: "revenue", type: "bar", data: brandRows.map((b) => b.revenue) }], true);

  const durations = rows(sessions, "by_duration");
  bars("chart-sessions", durations.map((d) => d.bucket), [{ name: "sessions", type: "bar", data: durations.map((d) => d.count) }]);
  const s = rows(sessions, "summary")[0] || {};
  document.getElementById("sessions-note").textContent = s.sessions === undefined ? "" :
    "median " + s.median_duration_seconds + " s, average " + s.avg_duration_seconds + " s, " +
    s.avg_events_per_session + " events per session, " + s.sessions_per_user + " sessions per user";

  const priceRows = rows(prices, "by_category");
  bars("chart-prices", priceRows.map((p) => p.category_code), [
    { name: "average", type: "bar", data: priceRows.map((p) => p.average_price) },
    { name: "median", type: "bar", data: priceRows.map((p) => p.median_price) },
  ], true);

  const datalist = (id, values) => {
    document.getElementById(id).replaceChildren(...values.map((v) => Object.assign(document.createElement("option"), { value: v })));
  };
  datalist("categories", cats.map((c) => c.category_code));
  datalist("brands", brandRows.map((b) => b.brand));
  const filter = [summary.category, summary.brand].filter(Boolean).join(", ");
  document.getElementById("status").textContent =
    (summary.from ? summary.from + " to " + summary.to : "no data yet") + (filter ? " - " + filter : "");
  document.body.dataset.ready = "true";
}

function show(error) {
  const el = document.getElementById("error");
  el.textContent = error.message;
  el.style.display = "block";
  document.body.dataset.ready = "error";
}

document.getElementById("apply").addEventListener("click", () => {
  const q = filters();
  if (token) q.set("token", token);
  history.replaceState(null, "", "?" + q.toString());
  load().catch(show);
});
for (const name of ["from", "to", "category", "brand"]) {
  if (params.get(name)) document.getElementById(name).value = params.get(name);
}
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
load().catch(show);
