// The crossmargin dashboard: the book sorted by risk, one account's risk, the venue view.
// Routes on the URL fragment (#/, #/accounts/{id}, #/venues); data from the service's JSON API
// with the key from ?key= (kept in sessionStorage) sent as X-API-Key, and on WebSockets as ?key=.
"use strict";

const STATUS_RANK = { healthy: 0, margin_call: 1, liquidatable: 2, bankrupt: 3 };
const PLOT_LAYOUT = {
  paper_bgcolor: "#171c23", plot_bgcolor: "#171c23", font: { color: "#d8dee6", size: 12 },
  margin: { l: 60, r: 20, t: 40, b: 45 },
};
const PLOT_CONFIG = { displayModeBar: false, responsive: true };

const state = {
  view: null, socket: null, alertSocket: null, timer: null, book: new Map(), accountId: null, accountView: null,
};

// ---- keys, requests, sockets -----------------------------------------------------------------

function apiKey() {
  const fromUrl = new URLSearchParams(window.location.search).get("key");
  if (fromUrl) sessionStorage.setItem("crossmargin.key", fromUrl);
  return sessionStorage.getItem("crossmargin.key");
}

async function api(path) {
  const key = apiKey();
  const response = await fetch(path, { headers: key ? { "X-API-Key": key } : {} });
  if (!response.ok) {
    let detail = response.statusText;
    try { const body = await response.json(); detail = body.error ?? JSON.stringify(body.detail ?? body); } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

function socketUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const key = apiKey();
  if (key) url.searchParams.set("key", key);
  return url.toString();
}

function setLive(mode) {
  const el = document.getElementById("live");
  el.className = `live ${mode}`;
  el.textContent = { on: "live", poll: "polling", off: "offline" }[mode];
}

// Listen on a WebSocket; if it cannot open (or closes), poll instead so the page stays current.
function follow(path, onMessage, poll, pollMs) {
  stopFollowing();
  let opened = false;
  const startPolling = () => {
    if (state.timer === null) { state.timer = window.setInterval(poll, pollMs); setLive("poll"); }
  };
  let socket;
  try { socket = new WebSocket(socketUrl(path)); } catch (e) { startPolling(); return; }
  state.socket = socket;
  socket.onopen = () => { opened = true; setLive("on"); };
  socket.onmessage = (event) => { try { onMessage(JSON.parse(event.data)); } catch (e) { showError(e); } };
  socket.onclose = () => { if (state.socket === socket) { state.socket = null; startPolling(); } };
  socket.onerror = () => { if (!opened) socket.close(); };
}

function stopFollowing() {
  if (state.socket) { const s = state.socket; state.socket = null; s.close(); }
  if (state.timer !== null) { window.clearInterval(state.timer); state.timer = null; }
  setLive("off");
}

function showError(error) {
  const el = document.getElementById("error");
  el.hidden = !error;
  el.textContent = error ? String(error.message ?? error) : "";
}

// ---- formatting ------------------------------------------------------------------------------

function num(x, digits = 2) {
  if (x === null || x === undefined) return "–";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function pct(x, digits = 1) { return x === null || x === undefined ? "–" : `${num(100 * x, digits)}%`; }
function price(x) {
  if (x === null || x === undefined) return "–";
  const digits = Math.abs(x) >= 1000 ? 2 : Math.abs(x) >= 1 ? 4 : 6;
  return num(x, digits);
}
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function statusBadge(status) {
  const span = document.createElement("span");
  span.className = `status ${status}`;
  span.textContent = status.replace("_", " ");
  return span;
}

// Riskiest first, as the service orders GET /accounts: worst status, then highest margin ratio
// (maintenance / equity; none under a requirement counts as infinite, no positions as -1), then id.
function ratioKey(v) { return v.positions.length === 0 ? -1 : v.margin_ratio ?? Infinity; }
function riskOrder(a, b) {
  const rank = (STATUS_RANK[b.status] ?? 0) - (STATUS_RANK[a.status] ?? 0);
  if (rank !== 0) return rank;
  const ra = ratioKey(a);
  const rb = ratioKey(b);
  if (ra !== rb) return rb > ra ? 1 : -1;
  return a.account_id < b.account_id ? -1 : a.account_id > b.account_id ? 1 : 0;
}

// ---- book ------------------------------------------------------------------------------------

function renderBook(changed) {
  const rows = [...state.book.values()].sort(riskOrder);
  const tbody = document.querySelector("#book tbody");
  const fragment = document.createDocumentFragment();
  for (const v of rows) {
    const tr = document.createElement("tr");
    tr.dataset.account = v.account_id;
    if (changed && changed.has(v.account_id)) tr.className = "flash";
    const idCell = document.createElement("td");
    const link = document.createElement("a");
    link.href = `#/accounts/${encodeURIComponent(v.account_id)}`;
    link.textContent = v.account_id;
    idCell.appendChild(link);
    const statusCell = document.createElement("td");
    statusCell.className = "status-cell";
    statusCell.appendChild(statusBadge(v.status));
    tr.append(
      idCell, cell(v.venue), statusCell, cell(num(v.equity), "num equity"),
      cell(num(v.initial_margin), "num"), cell(num(v.maintenance_margin), "num"),
      cell(pct(v.margin_ratio, 2), "num ratio"), cell(pct(v.crash_distance), "num"),
      cell(String(v.positions.length), "num"),
    );
    fragment.appendChild(tr);
  }
  tbody.replaceChildren(fragment);
  document.getElementById("book-count").textContent = `(${rows.length} accounts)`;
}

async function loadBook() {
  const views = await api("/accounts");
  state.book = new Map(views.map((v) => [v.account_id, v]));
  renderBook(null);
}

// A book message carries the accounts that changed on a tick ("changed" or "accounts");
// anything else (a bare summary) makes the page ask for the book again.
function onBookMessage(message) {
  if (state.view !== "book") return;
  const views = message.changed ?? message.accounts;
  if (Array.isArray(views) && views.length > 0 && typeof views[0] === "object") {
    const changed = new Set();
    for (const v of views) { state.book.set(v.account_id, v); changed.add(v.account_id); }
    renderBook(changed);
    stampClock(message.at);
  } else {
    refreshBookSoon(message.at);
  }
}

// At most five book requests a second however fast the ticks come; ``at`` is the tick's time.
let bookRefresh = null;
let bookAt = null;
function refreshBookSoon(at) {
  if (typeof at === "string") bookAt = at;
  if (bookRefresh !== null) return;
  bookRefresh = window.setTimeout(async () => {
    bookRefresh = null;
    try { await loadBook(); stampClock(bookAt); } catch (e) { showError(e); }
  }, 200);
}

async function showBook() {
  await loadBook();
  follow("/ws/book", onBookMessage, refreshBookSoon, 2000);
}

// ---- account ---------------------------------------------------------------------------------

function gauge(el, title, value, max, suffix, steps) {
  const trace = {
    type: "indicator", mode: steps ? "gauge+number" : "number", value,
    title: { text: title, font: { size: 14 } },
    number: { suffix, valueformat: suffix === "%" ? ".1f" : ",.2f" },
  };
  if (steps) {
    trace.gauge = {
      axis: { range: [0, max] }, bar: { color: "#d8dee6", thickness: 0.25 },
      steps, bgcolor: "#0f1318",
    };
  }
  Plotly.react(el, [trace], { ...PLOT_LAYOUT, margin: { l: 25, r: 25, t: 50, b: 10 } }, PLOT_CONFIG);
}

function renderAccount(v) {
  state.accountView = v;
  document.getElementById("acct-id").textContent = v.account_id;
  document.getElementById("acct-status").replaceChildren(statusBadge(v.status));
  document.getElementById("acct-meta").textContent =
    `${v.venue} · margin ratio ${pct(v.margin_ratio, 2)} · crash distance ${pct(v.crash_distance)} · as of ${v.at}`;
  const equity = v.equity;
  const usage = (m) => (m === 0 ? 0 : equity > 0 ? (100 * m) / equity : 100);
  const steps = [
    { range: [0, 50], color: "#1f3b2d" }, { range: [50, 80], color: "#4a3c12" },
    { range: [80, 100], color: "#4d1f1f" },
  ];
  gauge(document.getElementById("gauge-equity"), "Equity", equity, 0, "", null);
  gauge(document.getElementById("gauge-im"), `Initial margin ${num(v.initial_margin)} / equity`,
    Math.min(usage(v.initial_margin), 150), 150, "%", steps.concat([{ range: [100, 150], color: "#5a1a1a" }]));
  gauge(document.getElementById("gauge-mm"), `Maintenance margin ${num(v.maintenance_margin)} / equity`,
    Math.min(usage(v.maintenance_margin), 100), 100, "%", steps);
  const tbody = document.querySelector("#positions tbody");
  const fragment = document.createDocumentFragment();
  for (const p of v.positions) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = p.symbol;
    const distance = cell(pct(p.distance, 2), "num distance");
    if (p.distance !== null && p.distance !== undefined) {
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(2, 60 * (1 - Math.min(p.distance, 1)))}px`;
      distance.appendChild(bar);
    }
    tr.append(
      cell(p.symbol), cell(num(p.qty, 4), "num"), cell(price(p.entry), "num"),
      cell(price(p.mark), "num mark"), cell(price(p.liquidation_price), "num liquidation"),
      cell(price(p.bankruptcy_price), "num"), distance,
    );
    fragment.appendChild(tr);
  }
  tbody.replaceChildren(fragment);
}

// The curve (GET /accounts/{id}/curve): equity and maintenance margin against the price of one
// underlying, every position cross on the left, each isolated on the right.
function renderCurve(curve) {
  document.getElementById("curve-note").textContent = `(${curve.symbol}, mark ${price(curve.mark)})`;
  const x = curve.points.map((p) => p.price);
  const panels = [
    ["curve-cross", "cross", "Cross margin", curve.cross_liquidation_price],
    ["curve-isolated", "isolated", "Isolated margin", curve.isolated_liquidation_price],
  ];
  for (const [id, mode, title, liquidation] of panels) {
    const traces = [
      { x, y: curve.points.map((p) => p[`${mode}_equity`]), name: "equity", type: "scatter", mode: "lines", line: { color: "#6cb6ff", width: 2 } },
      { x, y: curve.points.map((p) => p[`${mode}_maintenance_margin`]), name: "maintenance margin", type: "scatter", mode: "lines", line: { color: "#e5534b", dash: "dot" } },
    ];
    const shapes = [{ type: "line", x0: curve.mark, x1: curve.mark, yref: "paper", y0: 0, y1: 1, line: { color: "#8a94a3", dash: "dash" } }];
    const below = liquidation !== null && liquidation !== undefined && liquidation < curve.mark;
    const annotations = [{
      x: curve.mark, yref: "paper", y: 1, text: "mark", showarrow: false, yanchor: "bottom",
      xanchor: below ? "left" : "right", font: { color: "#8a94a3" },
    }];
    if (liquidation !== null && liquidation !== undefined) {
      shapes.push({ type: "line", x0: liquidation, x1: liquidation, yref: "paper", y0: 0, y1: 1, line: { color: "#e5534b" } });
      annotations.push({
        x: liquidation, yref: "paper", y: 1, text: `liquidation ${price(liquidation)}`, showarrow: false,
        yanchor: "bottom", xanchor: below ? "right" : "left", font: { color: "#e5534b" },
      });
    }
    Plotly.react(document.getElementById(id), traces, {
      ...PLOT_LAYOUT, title: { text: title, y: 0.97 }, shapes, annotations, showlegend: true,
      legend: { orientation: "h", y: -0.25 }, margin: { l: 70, r: 20, t: 55, b: 70 },
      xaxis: { title: { text: `${curve.symbol} price` }, gridcolor: "#262d37" },
      yaxis: { title: { text: "equity" }, gridcolor: "#262d37", zerolinecolor: "#8a94a3" },
    }, PLOT_CONFIG);
  }
}

// The heat map (GET /accounts/{id}/pm-heatmap): counted P&L of the portfolio-margin rulebook's
// standard scenarios, price moves across and volatility moves down.
function renderHeatmap(map) {
  document.getElementById("heatmap-note").textContent = `(${map.title ?? map.rulebook}, ${map.underlying}, ${map.currency})`;
  Plotly.react(document.getElementById("heatmap"), [{
    type: "heatmap", x: map.price_moves.map((m) => `${num(100 * m, 1)}%`), y: map.vol_moves.map((m) => `${num(100 * m, 0)}%`),
    z: map.cells, colorscale: "RdBu", reversescale: true, zmid: 0, colorbar: { title: { text: `P&L ${map.currency}` } },
    hovertemplate: "price %{x}, vol %{y}: %{z:,.2f}<extra></extra>",
  }], {
    ...PLOT_LAYOUT,
    xaxis: { title: { text: "price move" }, type: "category" },
    yaxis: { title: { text: "volatility move" }, type: "category" },
  }, PLOT_CONFIG);
}

function emptyChart(id, text) {
  Plotly.react(document.getElementById(id), [], {
    ...PLOT_LAYOUT, xaxis: { visible: false }, yaxis: { visible: false },
    annotations: [{ text, showarrow: false, font: { color: "#8a94a3", size: 14 } }],
  }, PLOT_CONFIG);
}

// One alert (GET /alerts, /ws/alerts/{id}): its rule's kind, the figure that crossed the
// threshold (a ratio or fraction, shown as a percentage; a status change by its detail).
function alertItem(a) {
  const li = document.createElement("li");
  li.dataset.alert = a.id;
  const time = document.createElement("time");
  time.textContent = a.at ?? "";
  li.appendChild(time);
  const kind = (a.kind ?? "alert").replaceAll("_", " ");
  const what = a.symbol ? `${kind} ${a.symbol}` : kind;
  const figure = a.kind === "status_change" ? "" : `: ${pct(a.value, 2)} (threshold ${pct(a.threshold, 2)})`;
  li.appendChild(document.createTextNode(`${what}${figure}${a.detail ? ` · ${a.detail}` : ""}`));
  return li;
}

// The optional parts of the service (alerts, venues) as its OpenAPI document lists them, so the
// page asks only for what exists.
let pathsPromise = null;
function servicePaths() {
  if (pathsPromise === null) {
    pathsPromise = fetch("/openapi.json")
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((doc) => new Set(Object.keys(doc.paths ?? {})))
      .catch(() => new Set());
  }
  return pathsPromise;
}

async function loadAlerts(id) {
  const list = document.getElementById("alerts");
  const note = document.getElementById("alerts-note");
  if (!(await servicePaths()).has("/alerts")) {
    list.replaceChildren();
    note.textContent = "Alerts are not enabled on this service.";
    return false;
  }
  try {
    const alerts = await api(`/alerts?account_id=${encodeURIComponent(id)}`);
    list.replaceChildren(...alerts.map(alertItem));
    note.textContent = alerts.length ? "" : "No alerts yet.";
    return true;
  } catch (e) {
    list.replaceChildren();
    note.textContent = `Alerts unavailable (${e.message}).`;
    return false;
  }
}

function followAlerts(id) {
  const socket = new WebSocket(socketUrl(`/ws/alerts/${encodeURIComponent(id)}`));
  state.alertSocket = socket;
  socket.onmessage = (event) => {
    const a = JSON.parse(event.data);
    if (a.account_id !== id) return;
    document.getElementById("alerts").prepend(alertItem(a));
    document.getElementById("alerts-note").textContent = "";
  };
}

// The curve and the heat map at the current marks; on a live page again at most every 2 s.
async function loadCharts(id) {
  if (state.accountView?.positions.length === 0) {
    const text = "No positions: nothing to chart.";
    for (const chart of ["curve-cross", "curve-isolated", "heatmap"]) emptyChart(chart, text);
    document.getElementById("curve-note").textContent = "";
    document.getElementById("heatmap-note").textContent = "";
    return;
  }
  const [curve, heatmap] = await Promise.allSettled([
    api(`/accounts/${encodeURIComponent(id)}/curve`),
    api(`/accounts/${encodeURIComponent(id)}/pm-heatmap`),
  ]);
  if (state.accountId !== id) return;
  if (curve.status === "fulfilled") renderCurve(curve.value);
  else { emptyChart("curve-cross", `curve unavailable: ${curve.reason.message}`); emptyChart("curve-isolated", ""); }
  if (heatmap.status === "fulfilled") renderHeatmap(heatmap.value);
  else emptyChart("heatmap", `heat map unavailable: ${heatmap.reason.message}`);
}

let chartsDue = null;
function refreshChartsSoon(id) {
  if (chartsDue !== null) return;
  chartsDue = window.setTimeout(() => { chartsDue = null; if (state.accountId === id) loadCharts(id); }, 2000);
}

async function showAccount(id) {
  state.accountId = id;
  const path = `/accounts/${encodeURIComponent(id)}`;
  renderAccount(await api(path));
  follow(`/ws/risk/${encodeURIComponent(id)}`,
    (m) => { if (state.accountId === id) { renderAccount(m); stampClock(m.at); refreshChartsSoon(id); } },
    async () => { try { renderAccount(await api(path)); } catch (e) { showError(e); } }, 2000);
  const [, alertsOk] = await Promise.all([loadCharts(id), loadAlerts(id)]);
  if (alertsOk && state.accountId === id) followAlerts(id);
}

// ---- venues ----------------------------------------------------------------------------------

function table(columns, rows) {
  const t = document.createElement("table");
  const head = document.createElement("tr");
  for (const [title, , cls] of columns) {
    const th = document.createElement("th");
    th.textContent = title;
    if (cls) th.className = cls;
    head.appendChild(th);
  }
  t.createTHead().appendChild(head);
  const body = t.createTBody();
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const [, value, cls] of columns) {
      const v = value(r);
      if (v instanceof Node) { const td = document.createElement("td"); td.appendChild(v); tr.appendChild(td); }
      else tr.appendChild(cell(v, cls));
    }
    body.appendChild(tr);
  }
  return t;
}

function heading(level, text, extra) {
  const h = document.createElement(level);
  h.textContent = text;
  if (extra) { h.append(" "); h.appendChild(extra); }
  return h;
}

function para(text) {
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = text;
  return p;
}

function signed(x, digits = 1) { return `${x > 0 ? "+" : ""}${pct(x, digits)}`; }

// A trader's accounts on several venues (GET /traders/{trader}/venues): each venue's account
// by its own rulebook, the hedges that span venues, and what each venue's liquidation of its
// leg leaves on the others.
function venueBlock(v) {
  const div = document.createElement("div");
  div.className = "venue";
  div.dataset.trader = v.trader;
  div.appendChild(heading("h3", v.trader, statusBadge(v.worst_status)));
  const totals = Object.entries(v.equity_by_currency).map(([c, x]) => `${num(x)} ${c}`).join(" · ");
  div.appendChild(para(`equity ${totals}; cross margin ends at each venue's edge`));
  div.appendChild(table([
    ["Venue", (a) => a.venue], ["Rulebook", (a) => a.rulebook.title], ["Account", (a) => a.id],
    ["Status", (a) => statusBadge(a.status)], ["Equity", (a) => `${num(a.equity)} ${a.currency}`, "num"],
    ["IM", (a) => num(a.initial_margin), "num"], ["MM", (a) => num(a.maintenance_margin), "num"],
    ["Margin ratio", (a) => pct(a.margin_ratio, 2), "num"], ["Crash distance", (a) => pct(a.crash_distance), "num"],
  ], v.accounts));
  for (const h of v.hedges) {
    div.appendChild(heading("h4", `Hedge across venues: ${h.underlying} long on ${h.long_venues.join(", ")}, short on ${h.short_venues.join(", ")}`));
    div.appendChild(para(`hedged ${num(h.hedged_coins, 4)} ${h.underlying}, net ${num(h.net_coins, 4)} ${h.underlying}`));
    div.appendChild(table([
      ["Venue", (l) => l.venue], ["Symbol", (l) => l.symbol], ["Size", (l) => `${num(l.coins, 4)} ${l.underlying}`, "num"],
      ["Mark", (l) => price(l.mark_price), "num"], ["Liquidation", (l) => price(l.liquidation_price), "num"],
    ], h.legs));
  }
  for (const q of v.liquidations) {
    div.appendChild(heading("h4", `If ${q.venue} liquidates ${q.symbol} at ${price(q.trigger_price)} (${signed(q.move)})`));
    div.appendChild(para(`net ${q.underlying} ${num(q.net_coins_before, 4)} → ${num(q.net_coins_after, 4)}; legs left naked: ` +
      (q.naked_legs.map((l) => `${l.venue} ${l.symbol} ${num(l.coins, 4)} (liquidation ${price(l.liquidation_price)})`).join(", ") || "none")));
    div.appendChild(table([
      ["Other venue", (a) => a.venue], ["Account", (a) => a.account_id], ["Status there", (a) => statusBadge(a.status)],
      ["Equity", (a) => `${num(a.equity)} ${a.currency}`, "num"], ["MM", (a) => num(a.maintenance_margin), "num"],
      ["Margin ratio", (a) => pct(a.margin_ratio, 2), "num"], ["Crash distance", (a) => pct(a.crash_distance), "num"],
    ], q.survivors));
  }
  return div;
}

async function showVenues() {
  const box = document.getElementById("venues");
  if (!(await servicePaths()).has("/traders")) {
    box.textContent = "Multi-venue accounts are not enabled on this service.";
    return;
  }
  const traders = await api("/traders");
  const views = await Promise.all(traders.map((t) => api(`/traders/${encodeURIComponent(t)}/venues`)));
  box.replaceChildren(...views.map(venueBlock));
  if (!views.length) box.textContent = "No multi-venue documents kept (PUT /traders/{trader}/venues).";
}

// ---- routing ---------------------------------------------------------------------------------

function stampClock(at) {
  document.getElementById("clock").textContent = at ? `last tick ${at}` : `updated ${new Date().toISOString()}`;
}

async function route() {
  stopFollowing();
  if (state.alertSocket) { state.alertSocket.close(); state.alertSocket = null; }
  state.accountId = null;
  showError(null);
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const account = hash.match(/^\/accounts\/(.+)$/);
  state.view = account ? "account" : hash === "/venues" ? "venues" : "book";
  for (const name of ["book", "account", "venues"]) {
    document.getElementById(`${name}-view`).hidden = name !== state.view;
  }
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === state.view);
  try {
    if (state.view === "account") await showAccount(decodeURIComponent(account[1]));
    else if (state.view === "venues") await showVenues();
    else await showBook();
    document.body.dataset.ready = state.view;
  } catch (e) {
    showError(e);
  }
}

window.addEventListener("hashchange", () => { delete document.body.dataset.ready; route(); });
apiKey();
route();
