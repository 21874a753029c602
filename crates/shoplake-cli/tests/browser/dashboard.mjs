// The dashboard in headless Chromium: waits for every chart, reads the KPI tiles from the
// DOM and compares them with the API, applies a date range and compares again, and keeps a
// screenshot. Usage: node dashboard.mjs URL FROM TO SCREENSHOT.PNG
// With DASHBOARD_LOGIN=user:password, the browser logs in when the server asks (HTTP Basic),
// and the page must be refused without it.
// Exits 0 when every figure agrees, 1 with the reason otherwise.
import { chromium } from "playwright-core";

const [url, from, to, screenshot] = process.argv.slice(2);
const fail = (message) => {
  console.error("dashboard test: " + message);
  process.exit(1);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const login = process.env.DASHBOARD_LOGIN;
const [username, password] = login ? [login.slice(0, login.indexOf(":")), login.slice(login.indexOf(":") + 1)] : [];
const authorization = login ? { Authorization: "Basic " + Buffer.from(login).toString("base64") } : {};
try {
  if (login) {
    const refused = await fetch(new URL("api/reports/summary", url));
    if (refused.status !== 401 || !(refused.headers.get("www-authenticate") || "").startsWith("Basic")) {
      fail(`without a login the API answered ${refused.status}, not 401 with a Basic challenge`);
    }
  }
  const page = await browser.newPage({
    viewport: { width: 1400, height: 1700 },
    ...(login ? { httpCredentials: { username, password } } : {}),
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} for ${r.url()}`); });
  // Nothing but the server: the page must work offline.
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(new URL(url).origin)) outside.push(r.url()); });

  const ready = async () => {
    await page.waitForFunction(() => document.body.dataset.ready !== "false", null, { timeout: 30000 });
    const state = await page.evaluate(() => document.body.dataset.ready);
    if (state !== "true") {
      fail("the page did not load: " + (await page.textContent("#error")));
    }
  };
  const tiles = () => page.evaluate(() => Object.fromEntries(
    ["events", "revenue", "purchases", "users", "sessions", "conversion"].map((k) =>
      [k, document.getElementById("kpi-" + k).dataset.value])));
  const api = async (query) => {
    const response = await fetch(new URL("api/reports/summary" + query, url), { headers: authorization });
    const body = await response.json();
    const k = body.tables[0].rows[0];
    return {
      events: String(k.events), revenue: String(k.revenue), purchases: String(k.purchases),
      users: String(k.users), sessions: String(k.sessions), conversion: String(k.session_conversion_pct),
    };
  };
  const same = (shown, expected, what) => {
    for (const key of Object.keys(expected)) {
      if (shown[key] !== expected[key]) {
        fail(`${what}: tile ${key} shows ${shown[key]}, the API says ${expected[key]}`);
      }
    }
  };

  await page.goto(url);
  await ready();
  const charts = await page.evaluate(() =>
    [...document.querySelectorAll(".chart")].map((c) => [c.id, c.querySelectorAll("svg path, svg rect").length]));
  const empty = charts.filter(([, marks]) => marks === 0).map(([id]) => id);
  if (empty.length) fail("charts without marks: " + empty.join(", "));
  const whole = await tiles();
  same(whole, await api(""), "the whole lake");

  await page.fill("#from", from);
  await page.fill("#to", to);
  await page.click("#apply");
  await ready();
  const range = await tiles();
  same(range, await api(`?from=${from}&to=${to}`), `${from} to ${to}`);
  if (range.events === whole.events) fail("the date filter did not change the events");
  if (!page.url().includes(`from=${from}`)) fail("the filter is not in the page's address");

  if (errors.length) fail("errors in the page: " + errors.join("; "));
  if (outside.length) fail("requests outside the server: " + outside.join(", "));
  await page.goto(url);
  await ready();
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ whole, range, charts: charts.length }));
} finally {
  await browser.close();
}
