// heliport dashboard: a small single-page app over the same-origin query API.
// Data is only ever written with textContent (through el()), never as HTML.

const KEY = "heliport-key";
const PAGE = 25;
const $ = (id) => document.getElementById(id);

// --- DOM ------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clickable(row, action) {
  row.classList.add("clickable");
  row.tabIndex = 0;
  row.addEventListener("click", action);
  row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); action(); } });
  return row;
}

// --- formatting -----------------------------------------------------------------------------------

const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const usd = (n) => (n === null || n === undefined ? "–" : "$" + (n === 0 ? "0" : n < 0.01 ? n.toPrecision(3) : n.toFixed(4)));
const ms = (n) => (n === null || n === undefined ? "–" : n >= 1000 ? (n / 1000).toFixed(2) + " s" : Math.round(n) + " ms");
const pct = (n) => (n * 100).toFixed(1) + "%";
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const statusCell = (s) => el("span", { class: s >= 200 && s < 300 ? "status-ok" : "status-bad" }, s);

// --- API ------------------------------------------------------------------------------------------

class ApiError extends Error {}

async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + key, ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    credentials: "omit",
    cache: "no-store",
  });
  let answer = null;
  try { answer = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401 && path !== "/v1/property/query") { signOut("Your key was refused; sign in again."); }
  if (!response.ok || !answer || answer.error) {
    throw new ApiError((answer && answer.error) || `HTTP ${response.status}`);
  }
  return answer.data;
}

function range() {
  const value = $("range").value;
  const end = Date.now() + 60_000;
  return value === "all" ? { start: 0, end } : { start: end - Number(value) - 60_000, end };
}

const timeLeaf = (r) => ({ request_response_rmt: { request_created_at: { gte: new Date(r.start).toISOString() } } });
const and = (leaves) => leaves.reduce((left, right) => (left === null ? right : { left, operator: "and", right }), null) || "all";
const likeLiteral = (text) => "%" + text.replace(/[\\%_]/g, (c) => "\\" + c) + "%";

// --- sign-in --------------------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(KEY);
  closeDetail();
  $("view").replaceChildren();
  Object.assign(state, { requests: freshRequestsState(), overviewProperty: "", sessionSearch: "", usersOffset: 0,
    prompts: freshPromptsState(), promptFlash: "", flash: "", datasetItems: { id: "", offset: 0 }, selected: new Set() });
  showChrome(false);
  $("sign-in-error").textContent = message || "";
  $("key").value = "";
  $("key").focus();
}

function showChrome(signedIn) {
  $("sign-in").hidden = signedIn;
  $("nav").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("range-label").hidden = !signedIn;
}

async function signIn(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  try {
    await api("POST", "/v1/property/query", {});
  } catch (error) {
    sessionStorage.removeItem(KEY);
    $("sign-in-error").textContent = "Sign-in failed: " + error.message;
    return;
  }
  $("key").value = "";
  $("sign-in-error").textContent = "";
  showChrome(true);
  // A new key may be another organisation: start from its overview, never from the last page seen.
  if (location.hash === "#/overview") route();
  else location.hash = "#/overview";
}

// --- routing --------------------------------------------------------------------------------------

// flash: a one-time notice for the next page shown (webhooks and alerts: "Created ...", "Deleted ...").
// datasetItems: the dataset page's paging ({id, offset}); selected: request ids ticked in the requests table.
const state = { requests: freshRequestsState(), overviewProperty: "", prompts: freshPromptsState(), promptFlash: "", flash: "",
  datasetItems: { id: "", offset: 0 }, selected: new Set() };

// window ({start, end} in ms) and extra (a filter AST) come from a link such as an alert's history
// ("#/requests?from=...&to=...&filter=..."): they replace the time range and add to the filters.
function freshRequestsState() {
  return { offset: 0, sort: { created_at: "desc" }, model: "", provider: "", status: "", user: "", propKey: "", propValue: "", search: "",
    window: null, extra: null };
}

// A link into the requests page, as an alert's notification and history make them
// (heliport/alerts/messages.py): "#/requests?from=&to=&model=&provider=&user=&propKey=&propValue=&alert=".
// from/to are ISO-8601 or epoch milliseconds; alert an alert's id, whose filter is added; model,
// provider, user and propKey/propValue name a group, so they match exactly. Also taken: filter (a JSON
// filter AST), status (ok|error) and search; anything else is ignored.
async function applyRequestsQuery(query) {
  const q = new URLSearchParams(query);
  const s = freshRequestsState();
  const instant = (v) => { if (!v) return NaN; const n = Number(v); return Number.isFinite(n) ? n : Date.parse(v); };
  const from = instant(q.get("from") || q.get("start"));
  const to = instant(q.get("to") || q.get("end"));
  if (Number.isFinite(from) || Number.isFinite(to)) s.window = { start: Number.isFinite(from) ? from : 0, end: Number.isFinite(to) ? to : Date.now() + 60_000 };
  if (q.get("filter")) { try { const ast = JSON.parse(q.get("filter")); if (ast && ast !== "all") s.extra = ast; } catch { /* not JSON: ignored */ } }
  const leaves = [];
  if (q.get("alert")) {
    try {
      const alert = await api("GET", `${ALERTS}/${encodeURIComponent(q.get("alert"))}`);
      if (alert.filter && alert.filter !== "all") leaves.push(alert.filter);
    } catch { /* deleted since: the window and the group still narrow the list */ }
  }
  if (s.extra) leaves.push(s.extra);
  if (q.get("model")) leaves.push({ request_response_rmt: { model: { equals: q.get("model") } } });
  if (q.get("provider")) s.provider = q.get("provider");
  if (q.get("user")) s.user = q.get("user");
  if (q.get("propKey")) { s.propKey = q.get("propKey"); s.propValue = q.get("propValue") || ""; }
  if (q.get("search")) s.search = q.get("search");
  if (["ok", "error"].includes(q.get("status"))) s.status = q.get("status");
  s.extra = leaves.length ? and(leaves) : null;
  state.requests = s;
}

// Each route() is a turn; only the latest may draw, so a slow page asked for earlier (the overview
// right after sign-in, say) cannot overwrite the page asked for last.
let routeTurn = 0;

async function route() {
  const turn = ++routeTurn;
  if (!sessionStorage.getItem(KEY)) { showChrome(false); $("key").focus(); return; }
  showChrome(true);
  let path = location.hash.replace(/^#\/?/, "");
  const question = path.indexOf("?");
  if (question >= 0) {
    // Only the requests page takes a query; it becomes the page's state, and the address a plain one.
    if (path.startsWith("requests")) await applyRequestsQuery(path.slice(question + 1));
    path = path.slice(0, question);
    history.replaceState(null, "", "#/" + path);
  }
  const [page, ...rest] = path.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === (page || "overview")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // prompts, webhooks and alerts are not in time; an alert's window replaces the range on requests
  $("range-label").hidden = ["prompts", "webhooks", "alerts", "datasets"].includes(page) || (page === "requests" && !!state.requests.window);
  const target = $("view");
  target.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  const view = { replaceChildren: (...nodes) => { if (turn === routeTurn) target.replaceChildren(...nodes); } };
  try {
    if (page === "requests") await requestsPage(view, arg);
    else if (page === "sessions" && arg) await sessionPage(view, arg);
    else if (page === "sessions") await sessionsPage(view);
    else if (page === "users") await usersPage(view);
    else if (page === "prompts" && arg) await promptPage(view, arg);
    else if (page === "prompts") await promptsPage(view);
    else if (page === "webhooks") await webhooksPage(view);
    else if (page === "alerts" && arg) await alertPage(view, arg);
    else if (page === "alerts") await alertsPage(view);
    else if (page === "datasets" && arg) await datasetPage(view, arg);
    else if (page === "datasets") await datasetsPage(view);
    else await overviewPage(view);
  } catch (error) {
    if (!sessionStorage.getItem(KEY)) return;
    view.replaceChildren(el("p", { class: "error", role: "alert" }, "Could not load: " + error.message));
  }
}

// --- empty state ----------------------------------------------------------------------------------

function emptyState() {
  const base = location.origin + "/v1/gateway/oai/v1";
  const code =
    `client = OpenAI(base_url="${base}", default_headers={"Helicone-Auth": "Bearer <your heliport key>"})\n` +
    `client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])`;
  return el("div", { class: "empty", "data-testid": "empty-state" },
    el("h2", {}, "No requests yet"),
    el("p", {}, "Point your OpenAI client at heliport and send a request; it appears here within seconds:"),
    el("pre", {}, el("code", {}, "from openai import OpenAI\n" + code)),
    el("p", { class: "muted" }, "Add Helicone-User-Id, Helicone-Session-Id and Helicone-Property-* headers to group and filter."));
}

// --- overview -------------------------------------------------------------------------------------

function card(label, value, sub, testid) {
  return el("div", { class: "card", "data-testid": testid }, el("div", { class: "label" }, label),
    el("div", { class: "value" }, value), sub ? el("div", { class: "sub" }, sub) : null);
}

function groupTable(title, groups, nullLabel) {
  const max = Math.max(1, ...groups.map((g) => g.requests));
  return el("div", { class: "panel" }, el("h2", {}, title),
    groups.length === 0 ? el("p", { class: "muted" }, "Nothing in this range.") :
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", { class: "num" }, "Requests"), el("th", {}, ""),
          el("th", { class: "num" }, "Errors"), el("th", { class: "num" }, "Tokens"), el("th", { class: "num" }, "Cost"))),
        el("tbody", {}, groups.map((g) => {
          const bar = el("div", { class: "bar" });
          bar.style.width = Math.round((g.requests / max) * 80) + "px";
          return el("tr", {}, el("td", { class: "wrap" }, g.key === null ? nullLabel : g.key), el("td", { class: "num" }, num(g.requests)),
            el("td", {}, bar), el("td", { class: "num" }, num(g.errors)), el("td", { class: "num" }, num(g.total_tokens)),
            el("td", { class: "num" }, usd(g.cost)));
        }))));
}

async function overviewPage(view) {
  const r = range();
  const props = (await api("POST", "/v1/property/query", {})).map((p) => p.property);
  if (!props.includes(state.overviewProperty)) state.overviewProperty = props[0] || "";
  const body = { timeFilter: { startTimeUnixMs: r.start, endTimeUnixMs: r.end }, filter: "all" };
  if (state.overviewProperty) body.property = state.overviewProperty;
  // The charts' series: over the selected range, or for "All time" the requests' own first to last.
  const seriesBody = { filter: "all", timeZoneDifference: new Date().getTimezoneOffset() };
  if ($("range").value !== "all") seriesBody.timeFilter = body.timeFilter;
  const [data, series, charts] = await Promise.all([api("POST", "/v1/dashboard/overview", body),
    api("POST", "/v1/dashboard/timeseries", seriesBody), import("./charts.js")]);
  // Scores over the series' range (Helicone's scores query); the other charts stand without them.
  const scores = series.start === null ? null : await api("POST", "/v1/dashboard/scores/query", {
    timeFilter: { start: series.start, end: new Date(Date.parse(series.end) - 1).toISOString() }, userFilter: "all",
    dbIncrement: charts.scoresIncrement(series), timeZoneDifference: seriesBody.timeZoneDifference,
  }).catch(() => null);
  const t = data.totals;
  if (t.requests === 0 && !data.dead_letters) {
    const ever = await api("POST", "/v1/request/query", { filter: "all", limit: 1, offset: 0 });
    if (ever.length === 0) { view.replaceChildren(el("h1", {}, "Overview"), emptyState()); return; }
  }
  const select = el("select", { id: "overview-property", "aria-label": "Break down by property",
    onchange: (e) => { state.overviewProperty = e.target.value; route(); } },
  props.map((p) => el("option", { value: p, selected: p === state.overviewProperty }, p)));
  const lost = data.dead_letters > 0
    ? el("p", { class: "warning", role: "alert", id: "dead-letters" },
      `${num(data.dead_letters)} log record${data.dead_letters === 1 ? "" : "s"} could not be stored and ${data.dead_letters === 1 ? "was" : "were"} set aside. `,
      "See them with ", el("code", {}, "heliport logs dead-letters list"), ".")
    : null;
  view.replaceChildren(
    el("h1", {}, "Overview"),
    ...(lost ? [lost] : []),
    el("div", { class: "cards" },
      card("Requests", num(t.requests), `${num(t.users)} users · ${num(t.sessions)} sessions`, "card-requests"),
      card("Cost", usd(t.cost), null, "card-cost"),
      card("Tokens", num(t.total_tokens), `${num(t.prompt_tokens)} in · ${num(t.completion_tokens)} out`, "card-tokens"),
      card("Error rate", pct(t.error_rate), `${num(t.errors)} errors`, "card-errors"),
      card("Latency p50 / p95", `${ms(t.latency_p50)} / ${ms(t.latency_p95)}`, null, "card-latency"),
      card("TTFT p50 / p95", `${ms(t.ttft_p50)} / ${ms(t.ttft_p95)}`, "time to first token", "card-ttft"),
      card("Cache hits", num(t.cache_hits), t.requests ? pct(t.cache_hits / t.requests) + " of requests" : null, "card-cache"),
      card("Saved by cache", usd(t.cache_saved_cost), ms(t.cache_saved_latency_ms) + " of latency", "card-saved")),
    charts.chartsView(series, $("range").selectedOptions[0].textContent, scores),
    el("div", { class: "grid2" },
      groupTable("By model", data.by_model, "(no model)"),
      groupTable("By provider", data.by_provider, "(none)"),
      groupTable("By user", data.by_user, "(no user)"),
      el("div", {}, props.length ? el("div", { class: "row" }, el("label", { for: "overview-property" }, "Property"), select) : null,
        props.length ? groupTable(`By property ${state.overviewProperty}`, data.by_property, "(not set)")
          : el("div", { class: "panel" }, el("h2", {}, "By property"), el("p", { class: "muted" }, "No Helicone-Property-* headers seen yet.")))));
}

// --- requests -------------------------------------------------------------------------------------

// The leaves of the filter controls shared by the requests page and the alert form (no time, no text).
function filterLeaves(s) {
  const leaves = [];
  if (s.model) leaves.push({ request_response_rmt: { model: { contains: s.model } } });
  if (s.provider) leaves.push({ request_response_rmt: { provider: { equals: s.provider } } });
  if (s.user) leaves.push({ request_response_rmt: { user_id: { equals: s.user } } });
  if (s.status === "ok") leaves.push({ request_response_rmt: { status: { gte: 200 } } }, { request_response_rmt: { status: { lt: 300 } } });
  if (s.status === "error") leaves.push({ left: { request_response_rmt: { status: { lt: 200 } } }, operator: "or", right: { request_response_rmt: { status: { gte: 300 } } } });
  if (s.propKey) {
    const ops = s.propValue ? { equals: s.propValue } : null;
    leaves.push(ops ? { request_response_rmt: { properties: { [s.propKey]: ops } } } : { request_response_rmt: { property_key: { equals: s.propKey } } });
  }
  return leaves;
}

function requestFilter() {
  const s = state.requests;
  const leaves = [];
  if (s.window) {
    leaves.push(timeLeaf(s.window), { request_response_rmt: { request_created_at: { lte: new Date(s.window.end).toISOString() } } });
  } else if ($("range").value !== "all") leaves.push(timeLeaf(range()));
  leaves.push(...filterLeaves(s));
  if (s.extra) leaves.push(s.extra);
  if (s.search) {
    const pattern = likeLiteral(s.search);
    leaves.push({ left: { request_response_rmt: { request_body: { ilike: pattern } } }, operator: "or", right: { request_response_rmt: { response_body: { ilike: pattern } } } });
  }
  return and(leaves);
}

function sortHeader(label, key, numeric) {
  const s = state.requests;
  const direction = s.sort[key];
  const th = el("th", { class: numeric ? "num" : "", "aria-sort": direction ? (direction === "asc" ? "ascending" : "descending") : "none" },
    el("button", { type: "button", "data-sort": key, onclick: () => {
      s.sort = { [key]: direction === "desc" ? "asc" : "desc" };
      s.offset = 0;
      route();
    } }, label, direction ? (direction === "asc" ? " ▲" : " ▼") : ""));
  return th;
}

// A row's tick box: it selects the row for "Add selected to dataset" and never opens the detail.
let selectionChanged = () => {};
function selectBox(requestId) {
  const stop = (e) => e.stopPropagation();
  return el("input", { type: "checkbox", class: "select-request", "aria-label": "Select request " + requestId, checked: state.selected.has(requestId),
    onclick: stop, onkeydown: stop, onchange: (e) => {
      if (e.target.checked) state.selected.add(requestId);
      else state.selected.delete(requestId);
      selectionChanged();
    } });
}

async function requestsPage(view, openId) {
  const s = state.requests;
  const props = (await api("POST", "/v1/property/query", {})).map((p) => p.property);
  const [rows, datasets] = await Promise.all([
    api("POST", "/v1/request/query", { filter: requestFilter(), sort: s.sort, limit: PAGE + 1, offset: s.offset }),
    api("POST", DATASETS + "/query", {}).catch(() => [])]); // no datasets to offer must not cost the table
  const more = rows.length > PAGE;
  const page = rows.slice(0, PAGE);

  const input = (id, label, field, attrs = {}) => el("label", { for: id }, label,
    el("input", { id, value: s[field], ...attrs }));
  const form = el("form", { class: "filters", id: "request-filters", onsubmit: (e) => {
    e.preventDefault();
    for (const field of ["model", "provider", "user", "propValue", "search"]) s[field] = $("f-" + field).value.trim();
    s.status = $("f-status").value;
    s.propKey = $("f-propKey").value;
    s.offset = 0;
    route();
  } },
  input("f-search", "Search text", "search", { type: "search", placeholder: "in prompts and responses" }),
  input("f-model", "Model", "model", { placeholder: "contains" }),
  input("f-provider", "Provider", "provider", { placeholder: "e.g. OPENAI" }),
  input("f-user", "User", "user"),
  el("label", { for: "f-status" }, "Status", el("select", { id: "f-status" },
    [["", "Any"], ["ok", "Success (2xx)"], ["error", "Error"]].map(([v, t]) => el("option", { value: v, selected: s.status === v }, t)))),
  el("label", { for: "f-propKey" }, "Property", el("select", { id: "f-propKey" },
    el("option", { value: "" }, "Any"), props.map((p) => el("option", { value: p, selected: s.propKey === p }, p)))),
  input("f-propValue", "Property value", "propValue"),
  el("button", { type: "submit", class: "primary" }, "Apply"),
  el("button", { type: "button", onclick: () => { state.requests = freshRequestsState(); route(); } }, "Reset"));

  let table;
  const none = page.length === 0 && s.offset === 0 && (await api("POST", "/v1/request/query", { filter: "all", limit: 1 })).length === 0;
  if (none) table = emptyState();
  else if (page.length === 0) table = el("p", { class: "muted", "data-testid": "no-results" }, "No requests match these filters.");
  else {
    table = el("div", { class: "panel" }, el("table", { id: "requests-table" },
      el("thead", {}, el("tr", {}, sortHeader("Time", "created_at"), el("th", {}, "Status"), sortHeader("Model", "body_model"),
        el("th", {}, "Provider"), sortHeader("User", "user_id"), el("th", {}, "Properties"),
        sortHeader("Latency", "latency", true), sortHeader("TTFT", "time_to_first_token", true),
        sortHeader("Tokens", "total_tokens", true), sortHeader("Cost", "cost", true), el("th", {}, "Select"))),
      el("tbody", {}, page.map((row) => clickable(el("tr", { "data-request-id": row.request_id },
        el("td", {}, when(row.request_created_at)), el("td", {}, statusCell(row.response_status), blockedBy(row) ? el("span", { class: "chip blocked-chip" }, "blocked") : null), el("td", {}, row.model),
        el("td", {}, row.provider), el("td", {}, row.request_user_id || "–"),
        el("td", { class: "wrap" }, Object.entries(row.properties || {}).map(([k, v]) => el("span", { class: "chip" }, `${k}: ${v}`))),
        el("td", { class: "num" }, ms(row.delay_ms)), el("td", { class: "num" }, ms(row.time_to_first_token)),
        el("td", { class: "num" }, num(row.total_tokens)), el("td", { class: "num" }, usd(row.cost)), el("td", {}, selectBox(row.request_id))),
      () => { location.hash = "#/requests/" + row.request_id; })))));
  }
  // The ticked rows (kept across pages) go to a dataset together.
  const selectedCount = el("span", { class: "muted", id: "selected-count", role: "status" });
  const bulk = datasetPicker("bulk", datasets, () => [...state.selected], "Add selected to dataset");
  const showSelected = () => {
    selectedCount.textContent = `${num(state.selected.size)} selected`;
    bulk.button.disabled = state.selected.size === 0;
  };
  selectionChanged = showSelected;
  showSelected();
  const selection = page.length ? el("div", { class: "row selection", id: "selection" }, selectedCount, bulk.node,
    el("button", { type: "button", id: "selection-clear", onclick: () => {
      state.selected.clear();
      for (const box of document.querySelectorAll("input.select-request")) box.checked = false;
      showSelected();
    } }, "Clear selection")) : null;
  const pager = el("div", { class: "pager" },
    el("button", { type: "button", disabled: s.offset === 0, onclick: () => { s.offset = Math.max(0, s.offset - PAGE); route(); } }, "Previous"),
    el("span", { class: "muted" }, page.length ? `${s.offset + 1}–${s.offset + page.length}` : ""),
    el("button", { type: "button", disabled: !more, onclick: () => { s.offset += PAGE; route(); } }, "Next"));
  const scoped = s.window || s.extra ? el("p", { class: "notice", id: "requests-scope", role: "status" },
    s.window ? `The requests of an alert's window: from ${when(new Date(s.window.start).toISOString())} to ${when(new Date(s.window.end).toISOString())}` : "",
    s.window && s.extra ? ", " : "", s.extra ? "with the filter " : "", s.extra ? el("code", {}, JSON.stringify(s.extra)) : null, ". ",
    el("button", { type: "button", id: "requests-scope-clear", onclick: () => { s.window = null; s.extra = null; s.offset = 0; route(); } }, s.extra ? "Clear the window and filter" : "Clear the window")) : null;
  view.replaceChildren(...[el("h1", {}, "Requests"), scoped, form, selection, table, pager].filter(Boolean));
  if (openId) await openDetail(openId);
  else closeDetail();
}

// --- request detail -------------------------------------------------------------------------------

function textOf(content) {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => {
      if (typeof part === "string") return part;
      if (part.type === "text" || part.type === "input_text" || part.type === "output_text") return part.text;
      if (part.type === "tool_result") return "[tool result " + (part.tool_use_id || "") + "] " + textOf(part.content);
      if (part.type === "tool_use") return "";
      if (part.type === "image_url" || part.type === "image") return "[image]";
      return JSON.stringify(part);
    }).filter(Boolean).join("\n");
  }
  return JSON.stringify(content, null, 2);
}

function toolCallsOf(message) {
  const calls = [];
  for (const call of message.tool_calls || []) {
    const fn = call.function || {};
    calls.push(`${fn.name || call.type}(${fn.arguments || ""})${call.id ? "  #" + call.id : ""}`);
  }
  if (Array.isArray(message.content)) {
    for (const part of message.content) {
      if (part && part.type === "tool_use") calls.push(`${part.name}(${JSON.stringify(part.input)})  #${part.id}`);
    }
  }
  return calls;
}

function messageView(message) {
  const role = String(message.role || "message");
  const calls = toolCallsOf(message);
  return el("div", { class: "message " + role.replace(/[^a-z]/g, ""), "data-role": role },
    el("div", { class: "role" }, role + (message.name ? " · " + message.name : "") + (message.tool_call_id ? " · result of #" + message.tool_call_id : "")),
    el("div", { class: "content" }, textOf(message.content)),
    calls.map((c) => el("div", { class: "tool-call" }, "tool call: " + c)));
}

// Merge an OpenAI or Anthropic SSE stream into one assistant message.
function fromStream(text) {
  let content = "";
  const calls = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const payload = line.slice(5).trim();
    if (!payload || payload === "[DONE]") continue;
    let event;
    try { event = JSON.parse(payload); } catch { continue; }
    for (const choice of event.choices || []) {
      const delta = choice.delta || {};
      if (delta.content) content += delta.content;
      for (const call of delta.tool_calls || []) {
        const slot = (calls[call.index ?? 0] ||= { id: call.id, type: "function", function: { name: "", arguments: "" } });
        if (call.id) slot.id = call.id;
        if (call.function?.name) slot.function.name += call.function.name;
        if (call.function?.arguments) slot.function.arguments += call.function.arguments;
      }
    }
    if (event.type === "content_block_delta" && event.delta?.type === "text_delta") content += event.delta.text;
  }
  const toolCalls = Object.values(calls);
  return { role: "assistant", content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
}

function conversation(request, response) {
  const messages = [];
  if (request && typeof request === "object") {
    if (request.system) messages.push({ role: "system", content: request.system });
    if (request.instructions) messages.push({ role: "system", content: request.instructions });
    for (const m of request.messages || []) messages.push(m);
    if (typeof request.input === "string") messages.push({ role: "user", content: request.input });
    else if (Array.isArray(request.input)) for (const m of request.input) messages.push(m.role ? m : { role: m.type || "input", content: m.output || m.content || m });
    if (typeof request.prompt === "string") messages.push({ role: "user", content: request.prompt });
  }
  if (typeof response === "string") messages.push(fromStream(response));
  else if (response && typeof response === "object") {
    for (const choice of response.choices || []) messages.push(choice.message || { role: "assistant", content: choice.text });
    if (response.type === "message" && response.content) messages.push({ role: response.role || "assistant", content: response.content });
    for (const item of response.output || []) {
      if (item.type === "message") messages.push({ role: item.role, content: item.content });
      else if (item.type === "function_call") messages.push({ role: "assistant", content: "", tool_calls: [{ id: item.call_id, function: { name: item.name, arguments: item.arguments } }] });
    }
    if (response.error) messages.push({ role: "error", content: typeof response.error === "string" ? response.error : JSON.stringify(response.error) });
  }
  return messages;
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

// --- checks (Helicone-Moderations-Enabled, -LLM-Security-*, -Token-Limit-Exception-Handler, -Posthog-Key)
// A row's heliport_checks: check name -> the object that check recorded. The known checks get a
// one-line outcome and summary; every field of every check is listed as well, so nothing a check
// records is hidden, whatever its shape.

const CHECK_LABELS = { moderation: "Moderation", llm_security: "LLM security", token_limit: "Token limit", posthog: "PostHog export", prompt: "Prompt" };
// The codes a check answers a blocked request with (Helicone's), and the check each belongs to.
const BLOCK_CODES = { PROMPT_FLAGGED_FOR_MODERATION: "moderation", PROMPT_THREAT_DETECTED: "llm_security" };

const pick = (o, ...names) => { for (const n of names) if (o && o[n] !== undefined && o[n] !== null) return o[n]; return undefined; };
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const score = (v) => (typeof v === "number" ? (v < 0.001 && v > 0 ? v.toExponential(1) : v.toFixed(3)) : String(v));

// Category names from a list, or from {name: true|score} (only the true / flagged ones).
function categoryNames(value) {
  if (Array.isArray(value)) return value.map(String);
  if (isObject(value)) return Object.entries(value).filter(([, v]) => v === true).map(([k]) => k);
  return [];
}

function threatOf(v) { return pick(v, "threat", "threat_detected", "flagged", "blocked"); }

// Which check stopped this request before the model was called, if one did: "moderation", ... or null.
function blockedBy(r) {
  if (r.response_status !== 400) return null;
  const code = r.response_body && r.response_body.error && r.response_body.error.code;
  if (BLOCK_CODES[code]) return BLOCK_CODES[code];
  const checks = r.heliport_checks || {};
  if (checks.moderation && pick(checks.moderation, "flagged") === true) return "moderation";
  if (checks.llm_security && threatOf(checks.llm_security) === true) return "llm_security";
  for (const [name, v] of Object.entries(checks)) if (isObject(v) && v.blocked === true) return name;
  return null;
}

// [outcome text, tone ("ok" | "bad" | "warn" | ""), summary lines] of one check.
function checkOutcome(name, v) {
  const error = pick(v, "error");
  const notRun = v.screened === false || v.skipped !== undefined;
  const why = pick(v, "reason", "skipped", "error");
  if (name === "moderation") {
    const flagged = pick(v, "flagged");
    const cats = categoryNames(pick(v, "categories", "flagged_categories"));
    const scores = pick(v, "top_scores", "category_scores", "scores");
    const top = isObject(scores) ? Object.entries(scores).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, s]) => `${k} ${score(s)}`) : [];
    return [flagged === true ? "flagged" : flagged === false ? "not flagged" : notRun ? "not screened" : "recorded",
      flagged === true ? "bad" : flagged === false ? "ok" : "warn",
      [cats.length ? "Categories: " + cats.join(", ") : null, top.length ? "Top scores: " + top.join(" · ") : null,
        pick(v, "model") ? "Model: " + pick(v, "model") : null, pick(v, "message", "path") ? "Screened: " + pick(v, "message", "path") : null,
        pick(v, "latency_ms") !== undefined ? "Latency: " + ms(v.latency_ms) : null,
        notRun && why && why !== error ? "Not screened: " + why : null, v.fail_open ? "Failed open (HELIPORT_SAFETY_FAIL_OPEN)" : null]];
  }
  if (name === "llm_security") {
    const threat = threatOf(v);
    const lines = [];
    for (const m of Array.isArray(v.messages) ? v.messages : []) {
      if (!isObject(m)) { lines.push(String(m)); continue; }
      lines.push([pick(m, "path"), pick(m, "verdict")].filter(Boolean).join(" · "));
      for (const c of Array.isArray(m.checks) ? m.checks : []) {
        if (!isObject(c)) continue;
        lines.push("  " + [c.tier, [c.classifier, c.model ? `(${c.model})` : null].filter(Boolean).join(" "), c.verdict,
          c.score !== undefined && c.score !== null ? "score " + score(c.score) : null,
          categoryNames(c.categories).join(", ") || null, c.error ? "error: " + c.error : null].filter(Boolean).join(" · "));
      }
    }
    if (Array.isArray(v.tiers) && v.tiers.length) lines.push("Tiers: " + v.tiers.join(", "));
    if (v.skipped) lines.push("Skipped: " + v.skipped);
    if (v.failed_open) lines.push("Failed open (HELIPORT_SAFETY_FAIL_OPEN): " + v.failed_open);
    if (pick(v, "latency_ms") !== undefined) lines.push("Latency: " + ms(v.latency_ms));
    return [threat === true ? "threat detected" : threat === false ? (v.skipped ? "nothing to screen" : "no threat") : error ? "not run" : "recorded",
      threat === true ? "bad" : v.failed_open ? "warn" : threat === false ? "ok" : "warn", lines];
  }
  if (name === "token_limit") {
    const before = pick(v, "tokens_before", "estimated_before", "before");
    const after = pick(v, "tokens_after", "estimated_after", "after");
    const chosen = pick(v, "chosen_model", "fallback_model", "selected_model");
    const changed = pick(v, "changed", "trimmed", "applied");
    const skipped = v.skipped ?? (v.applied === false ? v.reason : undefined);
    const state = skipped !== undefined ? " · skipped" : v.fits === false ? " · does not fit"
      : changed === false ? " · fits, unchanged" : changed === true ? " · applied" : "";
    return [String(pick(v, "strategy") || "token limit") + state,
      error || v.fits === false || skipped !== undefined ? "warn" : "ok",
      [before !== undefined || after !== undefined ? `Tokens (estimated): ${num(before)} → ${num(after ?? before)}` : null,
        pick(v, "budget", "limit") !== undefined ? "Budget: " + num(pick(v, "budget", "limit")) : null,
        pick(v, "context_length", "context") !== undefined ? "Context length: " + num(pick(v, "context_length", "context")) : null,
        pick(v, "model") ? "Model: " + pick(v, "model") : null, chosen ? "Chosen model: " + chosen : null,
        v.removed_messages ? "Messages removed: " + num(v.removed_messages) : null,
        v.cut_texts ? "Texts cut: " + num(v.cut_texts) : null,
        skipped !== undefined ? "Skipped: " + skipped : null]];
  }
  if (name === "prompt") {
    // The AI gateway compiled a saved prompt (prompt_id): which version, chosen how, with which inputs.
    const inputs = pick(v, "inputs");
    return [[pick(v, "version") !== undefined ? "v" + pick(v, "version") : "compiled", pick(v, "environment")].filter(Boolean).join(" · "),
      error ? "warn" : "ok",
      [pick(v, "id") ? "Prompt: " + pick(v, "id") : null,
        pick(v, "version_id") ? "Version id: " + pick(v, "version_id") : null,
        pick(v, "environment") ? "Environment: " + pick(v, "environment") : null,
        isObject(inputs) ? "Inputs: " + (Object.entries(inputs).map(([k, x]) => `${k} = ${JSON.stringify(x)}`).join(", ") || "none") : null,
        Array.isArray(v.partials) && v.partials.length ? "Partials: " + v.partials.map((p) => `${p.prompt_id}:${p.index}:${p.environment}`).join(", ") : null,
        pick(v, "label") ? "Helicone-Prompt-Id label: " + pick(v, "label") : null]];
  }
  if (name === "posthog") {
    const delivered = pick(v, "delivered");
    return [delivered === true ? "delivered" : delivered === false ? "not delivered" : "recorded",
      delivered === true ? "ok" : "bad",
      [pick(v, "status") !== undefined ? "Status: " + pick(v, "status") : null,
        pick(v, "attempts") !== undefined ? "Attempts: " + pick(v, "attempts") : null, pick(v, "host") ? "Host: " + pick(v, "host") : null]];
  }
  return [error ? "error" : "recorded", error ? "warn" : "", []];
}

// Every field of a check as (dotted name, value) pairs; scalars as they are, lists and objects as JSON
// once they are more than one level deep.
function flatFields(value, prefix = "", depth = 0) {
  if (!isObject(value) || depth > 1) return [[prefix || "value", typeof value === "string" ? value : JSON.stringify(value)]];
  return Object.entries(value).flatMap(([k, v]) => flatFields(v, prefix ? prefix + "." + k : k, depth + 1));
}

function checkView(name, value, requestId) {
  const v = isObject(value) ? value : { value };
  const [outcome, tone, lines] = checkOutcome(name, v);
  const error = pick(v, "error");
  return el("section", { class: "check", "data-check": name },
    el("div", { class: "check-head" },
      el("span", { class: "check-name" }, CHECK_LABELS[name] || name),
      el("span", { class: "badge " + tone, "data-outcome": "" }, outcome)),
    lines.filter(Boolean).map((line) => el("div", { class: "check-line" }, line)),
    name === "prompt" && typeof v.id === "string" && typeof v.version_id === "string"
      ? el("div", { class: "check-line" }, el("a", { id: "prompt-link", href: promptHref(v.id, v.version_id, requestId) },
        `Open prompt ${v.id}${v.version !== undefined ? " v" + v.version : ""}`)) : null,
    error ? el("div", { class: "check-line error" }, "Error: " + (typeof error === "string" ? error : JSON.stringify(error))) : null,
    el("details", {}, el("summary", {}, "All fields"), facts(flatFields(v))));
}

function checksView(r) {
  const checks = r.heliport_checks || {};
  const names = Object.keys(checks);
  const blocker = blockedBy(r);
  const code = r.response_body && r.response_body.error && r.response_body.error.code;
  return [
    blocker ? el("p", { class: "blocked", id: "blocked", role: "status" },
      `Blocked by ${CHECK_LABELS[blocker] || blocker}: answered ${r.response_status}${code ? " " + code : ""}; the model was not called.`) : null,
    el("h3", {}, "Checks"),
    names.length ? el("div", { class: "checks", id: "checks" }, names.map((n) => checkView(n, checks[n], r.request_id)))
      : el("p", { class: "muted", id: "checks" }, "None asked for"),
  ].filter(Boolean);
}

function closeDetail() {
  const detail = $("detail");
  if (!detail.hidden) {
    detail.hidden = true;
    $("detail-body").replaceChildren();
  }
}

async function openDetail(id) {
  const detail = $("detail");
  const body = $("detail-body");
  detail.hidden = false;
  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  let r;
  try {
    r = await api("GET", `/v1/request/${encodeURIComponent(id)}?includeBody=true`);
  } catch (error) {
    body.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
    return;
  }
  const messages = conversation(r.request_body, r.response_body);
  const feedback = el("div", { class: "row", role: "group", "aria-label": "Feedback" });
  const status = el("span", { class: "muted", id: "feedback-status", role: "status" });
  const renderFeedback = (rating) => {
    feedback.replaceChildren(
      el("button", { type: "button", id: "feedback-up", "aria-pressed": rating === true ? "true" : "false", onclick: () => rate(true) }, "Good"),
      el("button", { type: "button", id: "feedback-down", "aria-pressed": rating === false ? "true" : "false", onclick: () => rate(false) }, "Bad"),
      status);
  };
  const rate = async (rating) => {
    try {
      await api("POST", `/v1/request/${r.request_id}/feedback`, { rating });
      renderFeedback(rating);
      status.textContent = "Saved";
    } catch (error) { status.textContent = "Not saved: " + error.message; }
  };
  renderFeedback(r.feedback_rating);
  let datasets = [];
  try { datasets = await api("POST", DATASETS + "/query", {}); } catch { /* the picker then offers a new dataset only */ }
  const picker = datasetPicker("detail-dataset", datasets, () => [r.request_id], "Add to dataset");

  const scores = el("dl", { class: "facts", id: "scores" });
  const renderScores = (values) => scores.replaceChildren(...Object.entries(values || {}).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  renderScores(r.scores);
  let current = { ...(r.scores || {}) };
  const scoreStatus = el("span", { class: "muted", role: "status" });
  const scoreForm = el("form", { class: "row", id: "score-form", onsubmit: async (e) => {
    e.preventDefault();
    const name = $("score-name").value.trim();
    const value = Number($("score-value").value);
    if (!name || !Number.isFinite(value)) { scoreStatus.textContent = "A name and a number, please."; return; }
    try {
      await api("POST", `/v1/request/${r.request_id}/score`, { scores: { [name]: value } });
      current = { ...current, [name]: value };
      renderScores(current);
      scoreStatus.textContent = "Saved";
    } catch (error) { scoreStatus.textContent = "Not saved: " + error.message; }
  } },
  el("input", { id: "score-name", "aria-label": "Score name", placeholder: "score name" }),
  el("input", { id: "score-value", "aria-label": "Score value", placeholder: "value", inputmode: "decimal" }),
  el("button", { type: "submit" }, "Add score"), scoreStatus);

  $("detail-title").textContent = `${r.model || "Request"} · ${r.response_status}${blockedBy(r) ? " · blocked" : ""}`;
  body.replaceChildren(
    facts([
      ["Request id", r.request_id],
      ["Time", when(r.request_created_at)],
      ["Provider", r.provider],
      ["Path", r.request_path],
      ["User", r.request_user_id || "–"],
      ["Latency", ms(r.delay_ms)],
      ["Time to first token", ms(r.time_to_first_token)],
      ["Tokens", `${num(r.prompt_tokens)} prompt · ${num(r.completion_tokens)} completion · ${num(r.total_tokens)} total`],
      ["Prompt cache", `${num(r.prompt_cache_read_tokens)} read · ${num(r.prompt_cache_write_tokens)} written`],
      ["Cost", usd(r.cost)],
      ["Response cache", r.cache_enabled ? "hit (replay of " + (r.cache_reference_id || "?") + ")" : "miss"],
      ["Rate limit", r.rate_limited ? "refused by Helicone-RateLimit-Policy" : "not limited"],
    ]),
    ...checksView(r),
    el("h3", {}, "Properties"),
    Object.keys(r.properties || {}).length
      ? facts(Object.entries(r.properties).map(([k, v]) => [k, v])) : el("p", { class: "muted" }, "None"),
    el("h3", {}, "Feedback"), feedback,
    el("h3", {}, "Scores"), scores, scoreForm,
    el("h3", {}, "Datasets"), picker.node,
    el("h3", {}, "Conversation"),
    messages.length ? el("div", { class: "messages", id: "conversation" }, messages.map(messageView))
      : el("p", { class: "muted" }, "No body stored (omitted, or not a chat)."),
    el("details", {}, el("summary", {}, "Request JSON"), el("pre", { id: "raw-request" }, JSON.stringify(r.request_body, null, 2))),
    el("details", {}, el("summary", {}, "Response JSON"),
      el("pre", { id: "raw-response" }, typeof r.response_body === "string" ? r.response_body : JSON.stringify(r.response_body, null, 2))));
  $("detail-close").focus();
}

// --- sessions -------------------------------------------------------------------------------------

async function sessionsPage(view) {
  const r = range();
  const search = state.sessionSearch || "";
  const sessions = await api("POST", "/v1/session/query", {
    search, timeFilter: { startTimeUnixMs: r.start, endTimeUnixMs: r.end },
    timezoneDifference: new Date().getTimezoneOffset(), filter: "all", limit: 100, offset: 0,
  });
  const form = el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); state.sessionSearch = $("session-search").value; route(); } },
    el("label", { for: "session-search" }, "Search", el("input", { id: "session-search", type: "search", value: search, placeholder: "session id or name" })),
    el("button", { type: "submit", class: "primary" }, "Search"));
  const duration = (s) => ms(new Date(s.latest_request_created_at) - new Date(s.created_at));
  view.replaceChildren(el("h1", {}, "Sessions"), form,
    sessions.length === 0 ? el("p", { class: "muted", "data-testid": "no-sessions" }, "No sessions in this range. Send a Helicone-Session-Id header (and Helicone-Session-Path) to follow an agent's calls.") :
      el("div", { class: "panel" }, el("table", { id: "sessions-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Session"), el("th", {}, "Id"), el("th", {}, "Started"), el("th", { class: "num" }, "Requests"),
          el("th", { class: "num" }, "Duration"), el("th", { class: "num" }, "Tokens"), el("th", { class: "num" }, "Cost"), el("th", {}, "Users"),
          el("th", {}, "Rating"))),
        el("tbody", {}, sessions.map((s) => clickable(el("tr", { "data-session-id": s.session_id },
          el("td", {}, s.session_name || "(unnamed)"), el("td", { class: "wrap" }, s.session_id), el("td", {}, when(s.created_at)),
          el("td", { class: "num" }, num(s.total_requests)), el("td", { class: "num" }, duration(s)),
          el("td", { class: "num" }, num(s.total_tokens)), el("td", { class: "num" }, usd(s.total_cost)), el("td", {}, s.user_ids.join(", ")),
          el("td", { class: "rating" }, ratingMark(s.feedback_rating))),
        () => { location.hash = "#/sessions/" + encodeURIComponent(s.session_id); }))))));
}

// A session's rating as a word in a badge (the checks' style): good, bad, or none. No emoji: not every
// system has a font for them, and the word is what a screen reader reads anyway.
function ratingMark(rating) {
  const [value, badge] = rating === true ? ["good", "badge ok"] : rating === false ? ["bad", "badge bad"] : ["none", "muted"];
  return el("span", { class: "rating-mark " + badge, "data-rating": value, title: "Session rating: " + value }, value);
}

// The session's rating (POST /v1/session/query answers feedback_rating): its id is searched, then matched exactly.
async function sessionRating(sessionId) {
  const found = await api("POST", "/v1/session/query", { search: sessionId, timeFilter: { startTimeUnixMs: 0, endTimeUnixMs: Date.now() + 60_000 },
    timezoneDifference: new Date().getTimezoneOffset(), filter: "all", limit: 100, offset: 0 });
  return found.find((s) => s.session_id === sessionId)?.feedback_rating ?? null;
}

// Good / Bad buttons for a session (POST /v1/session/{id}/feedback {rating}); the pressed one is the rating.
function sessionFeedback(sessionId, rating) {
  const group = el("div", { class: "row", id: "session-feedback", role: "group", "aria-label": "Rate this session" });
  const status = el("span", { class: "muted", id: "session-feedback-status", role: "status" });
  const render = (current) => group.replaceChildren(el("span", { class: "muted" }, "Rating"),
    el("button", { type: "button", id: "session-rate-up", "aria-pressed": current === true ? "true" : "false", onclick: () => rate(true) }, "Good"),
    el("button", { type: "button", id: "session-rate-down", "aria-pressed": current === false ? "true" : "false", onclick: () => rate(false) }, "Bad"),
    status);
  const rate = async (value) => {
    status.textContent = "";
    try {
      await api("POST", `/v1/session/${encodeURIComponent(sessionId)}/feedback`, { rating: value });
      render(value);
      status.textContent = value ? "Saved: rated good." : "Saved: rated bad.";
      $(value ? "session-rate-up" : "session-rate-down").focus();
    } catch (error) { status.textContent = "Not saved: " + error.message; }
  };
  render(rating);
  return group;
}

async function sessionPage(view, sessionId) {
  const [calls, rating] = await Promise.all([api("POST", "/v1/dashboard/session-tree", { sessionId }), sessionRating(sessionId)]);
  if (calls.length === 0) { view.replaceChildren(el("h1", {}, "Session"), el("p", { class: "muted" }, "No such session in this organisation.")); return; }
  const start = Math.min(...calls.map((c) => Date.parse(c.created_at)));
  const end = Math.max(...calls.map((c) => Date.parse(c.created_at) + (c.delay_ms || 0)));
  const span = Math.max(1, end - start);
  const root = { name: "", children: new Map(), calls: [] };
  for (const call of calls) {
    let node = root;
    for (const part of (call.session_path || "/").split("/").filter(Boolean)) {
      if (!node.children.has(part)) node.children.set(part, { name: part, children: new Map(), calls: [] });
      node = node.children.get(part);
    }
    node.calls.push(call);
  }
  const callItem = (c) => {
    const bar = el("span");
    bar.style.left = ((Date.parse(c.created_at) - start) / span) * 100 + "%";
    bar.style.width = ((c.delay_ms || 0) / span) * 100 + "%";
    const row = el("div", { class: "call", role: "treeitem", "data-request-id": c.request_id, title: c.request_preview || "" },
      el("span", {}, statusCell(c.status), " ", c.model || "?", " · ", ms(c.delay_ms), " · ", usd(c.cost)),
      el("div", { class: "timeline", "aria-hidden": "true" }, bar));
    return el("li", {}, clickable(row, () => { location.hash = "#/requests/" + c.request_id; }));
  };
  const render = (node, path) => el("ul", { class: path ? "tree" : "tree root", role: path ? "group" : "tree", "aria-label": path ? null : "Session tree" },
    node.calls.map(callItem),
    [...node.children.values()].map((child) => el("li", { "data-path": path + "/" + child.name },
      el("div", { class: "node" }, "/" + child.name), render(child, path + "/" + child.name))));
  const total = calls.reduce((sum, c) => sum + (c.cost || 0), 0);
  view.replaceChildren(
    el("p", {}, el("a", { href: "#/sessions" }, "← Sessions")),
    el("h1", {}, "Session ", calls.find((c) => c.session_name)?.session_name || sessionId),
    el("div", { class: "cards" }, card("Requests", num(calls.length)), card("Duration", ms(end - start)), card("Cost", usd(total))),
    sessionFeedback(sessionId, rating),
    el("div", { class: "panel", id: "session-tree" }, render(root, "")));
}

// --- users ----------------------------------------------------------------------------------------

async function usersPage(view) {
  const r = range();
  const body = { filter: "all", offset: state.usersOffset || 0, limit: PAGE, sort: { last_active: "desc" },
    timeZoneDifferenceMinutes: new Date().getTimezoneOffset() };
  if ($("range").value !== "all") body.timeFilter = { startTimeUnixSeconds: r.start / 1000, endTimeUnixSeconds: r.end / 1000 };
  const data = await api("POST", "/v1/user/metrics/query", body);
  const offset = body.offset;
  view.replaceChildren(el("h1", {}, "Users"),
    data.users.length === 0 ? el("p", { class: "muted", "data-testid": "no-users" }, "No users in this range. Send a Helicone-User-Id header to see per-user cost.") :
      el("div", { class: "panel" }, el("table", { id: "users-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "User"), el("th", { class: "num" }, "Requests"), el("th", { class: "num" }, "Cost"),
          el("th", { class: "num" }, "Tokens / request"), el("th", { class: "num" }, "Active days"), el("th", {}, "First active"), el("th", {}, "Last active"))),
        el("tbody", {}, data.users.map((u) => clickable(el("tr", { "data-user-id": u.user_id },
          el("td", {}, u.user_id), el("td", { class: "num" }, num(u.total_requests)), el("td", { class: "num" }, usd(u.cost)),
          el("td", { class: "num" }, num(Math.round(u.average_tokens_per_request))), el("td", { class: "num" }, num(u.active_for)),
          el("td", {}, when(u.first_active)), el("td", {}, when(u.last_active))),
        () => { state.requests = { ...freshRequestsState(), user: u.user_id }; location.hash = "#/requests"; }))))),
    el("div", { class: "pager" },
      el("button", { type: "button", disabled: offset === 0, onclick: () => { state.usersOffset = Math.max(0, offset - PAGE); route(); } }, "Previous"),
      el("span", { class: "muted" }, `${num(data.count)} users`),
      el("button", { type: "button", disabled: offset + PAGE >= data.count, onclick: () => { state.usersOffset = offset + PAGE; route(); } }, "Next")));
}

// --- prompts --------------------------------------------------------------------------------------
// Helicone's Prompts 2025 through /v1/prompt-2025/* (the same key, the same {data, error} answers):
// the list (search, tags), one prompt's versions with their environments, a version's body with its
// {{hc:name:type}} variables and {{hcp:...}} partials marked, a line diff of two versions, a new
// version and an environment move. Bad input is refused by the API; its message is shown by the form.

const PROMPTS = "/v1/prompt-2025";
const STANDARD_ENVIRONMENTS = ["production", "staging", "development"];
// The AI gateway's own patterns (heliport/prompts/assemble.py): a variable, or a partial.
const TEMPLATE_TAG = new RegExp(
  String.raw`\{\{\s*hc\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*\}\}|` +
  String.raw`\{\{\s*hcp\s*:\s*([A-Za-z0-9_-]{1,64})\s*:\s*(\d{1,6})\s*(?::\s*([A-Za-z0-9_-][A-Za-z0-9_.-]*))?\s*\}\}`, "g");
// Two bodies whose changed middles hold more lines than this product are shown as removed-then-added:
// the table the longest common subsequence needs grows with it (4 bytes a cell).
const DIFF_CELLS = 2_000_000;
const NEW_PROMPT_BODY = { model: "gpt-4o-mini", messages: [
  { role: "system", content: "You are a helpful assistant for {{hc:company:string}}." },
  { role: "user", content: "{{hc:question:string}}" }] };

function freshPromptsState() { return { search: "", tags: [], page: 0 }; }

const promptHref = (promptId, versionId, requestId) => "#/prompts/" + encodeURIComponent(promptId) +
  (versionId ? "/" + encodeURIComponent(versionId) + (requestId ? "/" + encodeURIComponent(requestId) : "") : "");
const versionLabel = (v) => `v${v.major_version}.${v.minor_version}`;
const pretty = (body) => JSON.stringify(body ?? {}, null, 2);
const envChip = (name) => el("span", { class: "chip env" + (name === "production" ? " env-production" : ""), "data-env": name }, name);

// The variables (name -> type, first one seen) and partials a body's JSON text holds, keys included.
function templateTags(text) {
  const variables = new Map();
  const partials = new Map();
  for (const m of text.matchAll(TEMPLATE_TAG)) {
    if (m[1]) { if (!variables.has(m[1])) variables.set(m[1], m[2]); }
    else partials.set(m[0], { promptId: m[3], index: Number(m[4]), environment: m[5] || "production" });
  }
  return { variables, partials };
}

// The text as nodes, each variable and partial in a <mark> (text nodes only: nothing is parsed as HTML).
function highlighted(text) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(TEMPLATE_TAG)) {
    if (m.index > last) nodes.push(text.slice(last, m.index));
    nodes.push(m[1]
      ? el("mark", { class: "var", "data-var": m[1], "data-type": m[2], title: `variable ${m[1]} (${m[2]})` }, m[0])
      : el("mark", { class: "partial", "data-partial": m[3], title: `message ${m[4]} of prompt ${m[3]} (${m[5] || "production"})` }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

// A line diff as [op, line] pairs (" " kept, "-" only in a, "+" only in b): the common head and tail
// are trimmed, then the longest common subsequence of what is left, within DIFF_CELLS.
function lineDiff(a, b) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const x = a.slice(start, endA);
  const y = b.slice(start, endB);
  const middle = [];
  if (x.length * y.length > DIFF_CELLS) {
    for (const line of x) middle.push(["-", line]);
    for (const line of y) middle.push(["+", line]);
  } else {
    const lcs = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
    let i = 0;
    let j = 0;
    while (i < x.length && j < y.length) {
      if (x[i] === y[j]) { middle.push([" ", x[i]]); i++; j++; }
      else if (lcs[i + 1][j] >= lcs[i][j + 1]) middle.push(["-", x[i++]]);
      else middle.push(["+", y[j++]]);
    }
    while (i < x.length) middle.push(["-", x[i++]]);
    while (j < y.length) middle.push(["+", y[j++]]);
  }
  return [...a.slice(0, start).map((l) => [" ", l]), ...middle, ...a.slice(endA).map((l) => [" ", l])];
}

// A prompt body typed as JSON: [body, null] or [null, why not]. The API checks the rest (and says so).
function parseBody(text) {
  let body;
  try { body = JSON.parse(text); } catch (error) { return [null, "Not valid JSON: " + error.message]; }
  if (!isObject(body)) return [null, "The body must be a JSON object (an OpenAI chat completion request)."];
  if (body.messages !== undefined && !Array.isArray(body.messages)) return [null, "messages must be a list of message objects."];
  return [body, null];
}

// A textarea for a body with its validation shown as it is typed; read() is the body or null.
function bodyEditor(id, text) {
  const area = el("textarea", { id, rows: 14, spellcheck: "false", "aria-describedby": id + "-check" });
  area.value = text;
  const check = el("p", { id: id + "-check", role: "status" });
  const read = () => {
    const [body, problem] = parseBody(area.value);
    area.setAttribute("aria-invalid", problem ? "true" : "false");
    check.className = problem ? "error" : "muted";
    if (problem) { check.textContent = problem; return null; }
    const { variables, partials } = templateTags(area.value);
    check.textContent = `Valid JSON · ${num((body.messages || []).length)} message${(body.messages || []).length === 1 ? "" : "s"}` +
      (variables.size ? " · variables: " + [...variables].map(([n, t]) => `${n} (${t})`).join(", ") : "") +
      (partials.size ? ` · ${partials.size} partial${partials.size === 1 ? "" : "s"}` : "");
    return body;
  };
  area.addEventListener("input", read);
  read();
  return { area, check, read };
}

const environmentOptions = (id, names) => el("datalist", { id }, names.map((n) => el("option", { value: n })));

// Submits a form's API call: the button disabled meanwhile, the API's refusal shown in `error`.
async function submitting(form, error, action) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try { await action(); } catch (failure) { error.textContent = failure.message; } finally { button.disabled = false; }
}

async function promptsPage(view) {
  closeDetail();
  const s = state.prompts;
  const [allTags, total] = await Promise.all([api("GET", PROMPTS + "/tags"), api("GET", PROMPTS + "/count")]);
  s.tags = s.tags.filter((t) => allTags.includes(t));
  const found = await api("POST", PROMPTS + "/query", { search: s.search, tagsFilter: s.tags, page: s.page, pageSize: PAGE + 1 });
  const more = found.length > PAGE;
  const prompts = found.slice(0, PAGE);

  const form = el("form", { class: "filters", id: "prompt-filters", onsubmit: (e) => {
    e.preventDefault();
    s.search = $("prompt-search").value.trim();
    s.page = 0;
    route();
  } },
  el("label", { for: "prompt-search" }, "Search", el("input", { id: "prompt-search", type: "search", value: s.search, placeholder: "prompt name" })),
  el("button", { type: "submit", class: "primary" }, "Search"),
  allTags.length ? el("div", { class: "row", id: "prompt-tags", role: "group", "aria-label": "Filter by tag" },
    el("span", { class: "muted" }, "Tags"),
    allTags.map((tag) => el("button", { type: "button", "data-tag": tag, "aria-pressed": s.tags.includes(tag) ? "true" : "false", onclick: () => {
      s.tags = s.tags.includes(tag) ? s.tags.filter((t) => t !== tag) : [...s.tags, tag];
      s.page = 0;
      route();
    } }, tag))) : null);

  const name = el("input", { id: "np-name", required: true, maxlength: 256, placeholder: "support-agent" });
  const tags = el("input", { id: "np-tags", placeholder: "support, v2" });
  const editor = bodyEditor("np-body", pretty(NEW_PROMPT_BODY));
  const error = el("p", { class: "error", id: "np-error", role: "alert" });
  const create = el("form", { class: "stack", id: "new-prompt-form", onsubmit: (e) => {
    e.preventDefault();
    const body = editor.read();
    if (!body) { error.textContent = "Fix the body first: " + editor.check.textContent; return; }
    submitting(create, error, async () => {
      const made = await api("POST", PROMPTS, { name: name.value.trim(), tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean), promptBody: body });
      state.promptFlash = `Created prompt ${made.id} (v0.0, in production).`;
      location.hash = promptHref(made.id);
    });
  } },
  el("label", { for: "np-name" }, "Name"), name,
  el("label", { for: "np-tags" }, "Tags (comma-separated)"), tags,
  el("label", { for: "np-body" }, "Body (JSON: an OpenAI chat completion request)"), editor.area, editor.check,
  el("div", { class: "row" }, el("button", { type: "submit" }, "Create prompt")), error);

  const filtered = s.search || s.tags.length;
  let table;
  if (total === 0) {
    table = el("div", { class: "empty", "data-testid": "no-prompts" }, el("h2", {}, "No prompts yet"),
      el("p", {}, "Create one below, or with the Prompts API (POST /v1/prompt-2025). Use it on the AI gateway with prompt_id and inputs:"),
      el("pre", {}, el("code", {}, 'client.chat.completions.create(model="gpt-4o-mini", extra_body={"prompt_id": "<id>", "inputs": {"company": "Acme"}})')));
  } else if (prompts.length === 0) {
    table = el("p", { class: "muted", "data-testid": "no-prompt-results" }, filtered ? "No prompts match this search." : "No more prompts.");
  } else {
    table = el("div", { class: "panel" }, el("table", { id: "prompts-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Id"), el("th", {}, "Tags"), el("th", {}, "Created"))),
      el("tbody", {}, prompts.map((p) => clickable(el("tr", { "data-prompt-id": p.id },
        el("td", { class: "wrap" }, p.name), el("td", {}, el("code", {}, p.id)),
        el("td", { class: "wrap" }, p.tags.map((t) => el("span", { class: "chip", "data-tag": t }, t))), el("td", {}, when(p.created_at))),
      () => { location.hash = promptHref(p.id); })))));
  }
  const pager = el("div", { class: "pager" },
    el("button", { type: "button", disabled: s.page === 0, onclick: () => { s.page = Math.max(0, s.page - 1); route(); } }, "Previous"),
    el("span", { class: "muted" }, `${num(total)} prompt${total === 1 ? "" : "s"}`),
    el("button", { type: "button", disabled: !more, onclick: () => { s.page += 1; route(); } }, "Next"));
  view.replaceChildren(el("h1", {}, "Prompts"), form, table, pager,
    el("details", { class: "panel", id: "new-prompt", open: total === 0 }, el("summary", {}, "New prompt"), create));
}

async function promptPage(view, arg) {
  closeDetail();
  const [promptId, wanted, requestId] = arg.split("/");
  const back = el("p", {}, el("a", { href: "#/prompts" }, "← Prompts"));
  let prompt;
  try {
    prompt = await api("GET", `${PROMPTS}/id/${encodeURIComponent(promptId)}`);
  } catch (error) {
    view.replaceChildren(back, el("h1", {}, "Prompt"), el("p", { class: "error", role: "alert", id: "prompt-error" }, error.message));
    return;
  }
  const [versions, known] = await Promise.all([api("POST", PROMPTS + "/query/versions", { promptId }), api("GET", PROMPTS + "/environments")]);
  const flash = state.promptFlash;
  state.promptFlash = "";
  const head = [back, el("h1", {}, prompt.name),
    el("p", { class: "row" }, el("code", { id: "prompt-id" }, prompt.id), prompt.tags.map((t) => el("span", { class: "chip", "data-tag": t }, t)),
      el("span", { class: "muted" }, "created " + when(prompt.created_at))),
    flash ? el("p", { class: "notice", id: "prompt-flash", role: "status" }, flash) : null];
  if (versions.length === 0) { view.replaceChildren(...head, el("p", { class: "muted" }, "This prompt has no versions left.")); return; }

  const selected = versions.find((v) => v.id === wanted) || versions.find((v) => v.environments.includes("production")) || versions[0];
  const missing = wanted && selected.id !== wanted
    ? el("p", { class: "warning", role: "alert", id: "version-missing" }, `No version ${wanted} of this prompt (deleted?); showing ${versionLabel(selected)}.`) : null;
  const bodies = new Map();
  const bodyOf = async (id) => {
    if (!bodies.has(id)) bodies.set(id, (await api("POST", PROMPTS + "/query/version", { promptVersionId: id })).prompt_body || {});
    return bodies.get(id);
  };
  const selectedBody = await bodyOf(selected.id);
  const environments = [...new Set([...STANDARD_ENVIRONMENTS, ...known])];

  // Opened from a request's detail: the inputs the AI gateway compiled this version with, for that request.
  let used = null;
  if (requestId && selected.id === wanted) {
    let inputs = null;
    let problem = "";
    try { inputs = await api("GET", `${PROMPTS}/id/${encodeURIComponent(promptId)}/${encodeURIComponent(wanted)}/inputs?requestId=${encodeURIComponent(requestId)}`); }
    catch (error) { problem = error.message; }
    used = el("section", { class: "panel", id: "request-inputs", "aria-labelledby": "request-inputs-title" },
      el("h2", { id: "request-inputs-title" }, "Inputs of request ", el("a", { href: "#/requests/" + encodeURIComponent(requestId) }, requestId)),
      inputs ? [facts(Object.entries(inputs.inputs).map(([k, x]) => [k, typeof x === "string" ? x : JSON.stringify(x)])),
        inputs.environment ? el("p", { class: "muted" }, "Chosen by environment " + inputs.environment) : null]
        : el("p", { class: "muted" }, "Not available: " + problem));
  }

  // The versions, newest first; a row opens that version.
  const versionsTable = el("div", { class: "panel" }, el("h2", {}, "Versions"), el("table", { id: "versions-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Environments"), el("th", {}, "Commit message"), el("th", {}, "Model"), el("th", {}, "Created"))),
    el("tbody", {}, versions.map((v) => clickable(el("tr", { "data-version-id": v.id, "data-version": versionLabel(v),
      class: v.id === selected.id ? "selected" : null, "aria-selected": v.id === selected.id ? "true" : "false" },
    el("td", {}, versionLabel(v)), el("td", { class: "wrap" }, v.environments.map(envChip)),
    el("td", { class: "wrap" }, v.commit_message), el("td", {}, v.model || "–"), el("td", {}, when(v.created_at))),
    () => { location.hash = promptHref(promptId, v.id); })))));

  // The selected version: its body with variables and partials marked, and what it needs as inputs.
  const text = pretty(selectedBody);
  const { variables, partials } = templateTags(text);
  const versionPanel = el("section", { class: "panel", id: "version", "data-version-id": selected.id, "aria-labelledby": "version-title" },
    el("h2", { id: "version-title" }, `Version ${versionLabel(selected)} `, selected.environments.map(envChip)),
    facts([["Version id", selected.id], ["Model", selected.model || "–"], ["Created", when(selected.created_at)], ["Commit message", selected.commit_message || "–"]]),
    el("h3", {}, "Variables"),
    variables.size ? el("div", { id: "variables" }, [...variables].map(([n, t]) => el("span", { class: "chip var-chip", "data-var": n }, `${n}: ${t}`)))
      : el("p", { class: "muted", id: "variables" }, "None"),
    partials.size ? [el("h3", {}, "Partials"), el("ul", { id: "partials" }, [...partials.values()].map((p) =>
      el("li", {}, el("a", { href: promptHref(p.promptId) }, p.promptId), ` message ${p.index}, ${p.environment}`)))] : null,
    el("h3", {}, "Body"), el("pre", { id: "prompt-body", class: "body" }, highlighted(text)));

  // A diff of two versions: by default from the one before the selected one to it (for the first
  // version, from it to the one after).
  const at = versions.indexOf(selected);
  const [older, newer] = at + 1 < versions.length ? [versions[at + 1], selected] : [selected, versions[at - 1] || selected];
  const pickVersion = (id, current) => el("select", { id }, versions.map((v) => el("option", { value: v.id, selected: v.id === current.id },
    `${versionLabel(v)}${v.commit_message ? " · " + v.commit_message.slice(0, 60) : ""}`)));
  const from = pickVersion("diff-from", older);
  const to = pickVersion("diff-to", newer);
  const diffView = el("div", { id: "diff" });
  const renderDiff = async () => {
    diffView.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try {
      const [a, b] = await Promise.all([bodyOf(from.value), bodyOf(to.value)]);
      const lines = lineDiff(pretty(a).split("\n"), pretty(b).split("\n"));
      const added = lines.filter(([op]) => op === "+").length;
      const removed = lines.filter(([op]) => op === "-").length;
      diffView.replaceChildren(
        el("p", { class: "muted", id: "diff-summary" }, added || removed ? `+${added} −${removed} lines` : "No differences"),
        el("pre", { class: "diff", id: "diff-view" }, lines.map(([op, line]) =>
          el("div", { class: "diff-line" + (op === "+" ? " add" : op === "-" ? " del" : ""), "data-op": op }, op + " " + line))));
    } catch (error) { diffView.replaceChildren(el("p", { class: "error", role: "alert" }, error.message)); }
  };
  from.addEventListener("change", renderDiff);
  to.addEventListener("change", renderDiff);
  const diffPanel = el("section", { class: "panel", "aria-labelledby": "diff-title" }, el("h2", { id: "diff-title" }, "Compare versions"),
    el("div", { class: "filters" }, el("label", { for: "diff-from" }, "From", from), el("label", { for: "diff-to" }, "To", to)), diffView);

  // Point an environment at the selected version.
  const envName = el("input", { id: "env-name", list: "env-options", required: true, placeholder: "production", autocomplete: "off" });
  const envError = el("p", { class: "error", id: "env-error", role: "alert" });
  const envForm = el("form", { class: "stack", id: "env-form", onsubmit: (e) => {
    e.preventDefault();
    const environment = envName.value.trim();
    submitting(envForm, envError, async () => {
      await api("POST", PROMPTS + "/update/environment", { promptId, promptVersionId: selected.id, environment });
      state.promptFlash = `${environment} now points at ${versionLabel(selected)}.`;
      route();
    });
  } },
  el("h2", {}, `Move an environment to ${versionLabel(selected)}`),
  el("p", { class: "muted" }, "Requests naming this environment get this version from the AI gateway as soon as each instance's cache of it expires (HELIPORT_PROMPT_CACHE_TTL, 10 s by default)."),
  el("label", { for: "env-name" }, "Environment"), envName, environmentOptions("env-options", environments),
  el("div", { class: "row" }, el("button", { type: "submit" }, "Move here")), envError);

  // A new version from the selected one: the numbers are the store's (a minor under the selected
  // version's major, or the next major).
  const nextMinor = 1 + Math.max(...versions.filter((v) => v.major_version === selected.major_version).map((v) => v.minor_version));
  const nextMajor = 1 + Math.max(...versions.map((v) => v.major_version));
  const editor = bodyEditor("nv-body", text);
  const message = el("input", { id: "nv-message", maxlength: 10000, placeholder: "what changed" });
  const nvEnv = el("input", { id: "nv-env", list: "env-options", placeholder: "none", autocomplete: "off" });
  const nvError = el("p", { class: "error", id: "nv-error", role: "alert" });
  const kind = (value, label) => el("label", { class: "choice" },
    el("input", { type: "radio", name: "nv-kind", value, id: "nv-" + value, checked: value === "minor" }), " ", label);
  const newForm = el("form", { class: "stack", id: "new-version-form", onsubmit: (e) => {
    e.preventDefault();
    const body = editor.read();
    if (!body) { nvError.textContent = "Fix the body first: " + editor.check.textContent; return; }
    const major = newForm.querySelector("input[name=nv-kind]:checked").value === "major";
    const environment = nvEnv.value.trim();
    submitting(newForm, nvError, async () => {
      const made = await api("POST", PROMPTS + "/update", { promptId, promptVersionId: selected.id, newMajorVersion: major,
        commitMessage: message.value.trim(), promptBody: body, ...(environment ? { environment } : {}) });
      state.promptFlash = `Created ${major ? `v${nextMajor}.0` : `v${selected.major_version}.${nextMinor}`}` + (environment ? ` in ${environment}.` : ".");
      location.hash = promptHref(promptId, made.id);
    });
  } },
  el("h2", {}, `New version from ${versionLabel(selected)}`),
  el("div", { class: "row", role: "radiogroup", "aria-label": "Version number" },
    kind("minor", `Minor (v${selected.major_version}.${nextMinor})`), kind("major", `Major (v${nextMajor}.0)`)),
  el("label", { for: "nv-message" }, "Commit message"), message,
  el("label", { for: "nv-env" }, "Environment (optional)"), nvEnv,
  el("label", { for: "nv-body" }, "Body (JSON)"), editor.area, editor.check,
  el("div", { class: "row" }, el("button", { type: "submit" }, "Create version")), nvError);

  view.replaceChildren(...head.filter(Boolean), el("div", { class: "stacked" }, missing, used, versionsTable,
    el("div", { class: "grid2" }, versionPanel, diffPanel),
    el("div", { class: "grid2" }, el("div", { class: "panel" }, envForm), el("div", { class: "panel" }, newForm))));
  await renderDiff();
}

// --- webhooks -------------------------------------------------------------------------------------
// Helicone's Webhooks API (/v1/webhooks) and heliport's additions to it: each webhook with its
// delivery log, its dead letters and a test delivery. The API words every refusal (a destination the
// delivery rules refuse is a 400 naming `destination`); the form shows it as it is.

const WEBHOOKS = "/v1/webhooks";

// Shows a flash notice once (the page after a create or a delete).
function takeFlash(id) {
  const text = state.flash;
  state.flash = "";
  return text ? el("p", { class: "notice", id, role: "status" }, text) : null;
}

// Copies a secret shown in a read-only input; where the clipboard is refused, selects it instead.
async function copyField(input, status) {
  try {
    await navigator.clipboard.writeText(input.value);
    status.textContent = "Copied to the clipboard.";
  } catch {
    input.focus();
    input.select();
    status.textContent = "The browser refused the clipboard: the key is selected, press Ctrl+C (⌘C) to copy it.";
  }
}

// A "Delete" button that asks first: the same place then holds "Delete …? [Yes, delete] [Cancel]".
function confirmDelete(what, action, error) {
  const slot = el("span", { class: "row confirm" });
  const ask = () => slot.replaceChildren(
    el("span", { class: "confirm-question", role: "alert" }, `Delete ${what}?`),
    el("button", { type: "button", class: "danger confirm-yes", onclick: async (e) => {
      e.target.disabled = true;
      try { await action(); } catch (failure) { error.textContent = failure.message; idle(); }
    } }, "Yes, delete"),
    el("button", { type: "button", class: "confirm-no", onclick: () => { idle(); slot.querySelector("button").focus(); } }, "Cancel"));
  const idle = () => slot.replaceChildren(el("button", { type: "button", class: "delete", onclick: () => { ask(); slot.querySelector(".confirm-no").focus(); } }, "Delete"));
  idle();
  return slot;
}

function parseConfig(text) {
  try { const c = typeof text === "string" ? JSON.parse(text) : text; return { sampleRate: c.sampleRate ?? 100, propertyFilters: c.propertyFilters || [] }; }
  catch { return { sampleRate: 100, propertyFilters: [] }; }
}

// Rows of key = value inputs with add and remove; read() is [{key, value}] of the filled rows.
function pairRows(id, labels) {
  const list = el("div", { class: "pairs", id });
  const add = () => {
    const n = list.children.length;
    const key = el("input", { class: "pair-key", "aria-label": `${labels[0]} ${n + 1}`, placeholder: labels[0].toLowerCase() });
    const value = el("input", { class: "pair-value", "aria-label": `${labels[1]} ${n + 1}`, placeholder: labels[1].toLowerCase() });
    const row = el("div", { class: "row pair" }, key, el("span", { class: "muted" }, "="), value,
      el("button", { type: "button", "aria-label": `Remove ${labels[0].toLowerCase()} ${n + 1}`, onclick: () => { row.remove(); } }, "Remove"));
    list.append(row);
    key.focus();
  };
  const read = () => [...list.querySelectorAll(".pair")].map((row) => ({ key: row.querySelector(".pair-key").value.trim(), value: row.querySelector(".pair-value").value }))
    .filter((p) => p.key);
  return { list, add, read };
}

function webhookView(w) {
  const config = parseConfig(w.config);
  const d = w.delivery || {};
  const error = el("p", { class: "error webhook-error", role: "alert" });
  const key = el("input", { class: "hmac-key", readonly: true, value: w.hmac_key, "aria-label": "HMAC key of " + w.destination, spellcheck: "false", size: 66 });
  const copied = el("span", { class: "muted copy-status", role: "status" });
  const testResult = el("p", { class: "test-result", role: "status" });
  const letters = el("div", { class: "dead-letters" });
  const test = el("button", { type: "button", class: "send-test", onclick: async () => {
    test.disabled = true;
    error.textContent = "";
    testResult.className = "test-result muted";
    testResult.textContent = "Sending a test delivery…";
    try {
      const r = await api("POST", `${WEBHOOKS}/${encodeURIComponent(w.id)}/test`, {});
      testResult.className = "test-result " + (r.ok ? "status-ok" : "status-bad");
      testResult.dataset.ok = String(r.ok);
      // queued: in AWS the API cannot reach the internet; the delivery function sends it and logs the outcome.
      testResult.textContent = r.queued ? "Test queued: the delivery function sends it; its outcome shows in the delivery log (Reload)."
        : (r.ok ? "Test delivered" : "Test failed") + (r.status ? ` (HTTP ${r.status})` : "") + (r.error ? ": " + r.error : ".");
    } catch (failure) { testResult.textContent = ""; error.textContent = failure.message; } finally { test.disabled = false; }
  } }, "Send a test");
  const showLetters = el("button", { type: "button", class: "show-dead-letters", "aria-expanded": "false", onclick: async () => {
    if (showLetters.getAttribute("aria-expanded") === "true") { letters.replaceChildren(); showLetters.setAttribute("aria-expanded", "false"); return; }
    error.textContent = "";
    try {
      const found = await api("GET", `${WEBHOOKS}/${encodeURIComponent(w.id)}/dead-letters`);
      showLetters.setAttribute("aria-expanded", "true");
      letters.replaceChildren(el("h3", {}, "Dead letters"), found.length === 0 ? el("p", { class: "muted no-dead-letters" }, "None: no delivery was given up on.")
        : el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Failed"), el("th", {}, "Request"), el("th", { class: "num" }, "Attempts"),
          el("th", {}, "Status"), el("th", {}, "Error"), el("th", {}, "Payload"))),
        el("tbody", {}, found.map((l) => el("tr", { "data-dead-letter-id": l.id }, el("td", {}, when(l.failed_at)),
          el("td", {}, el("a", { href: "#/requests/" + encodeURIComponent(l.request_id) }, l.request_id)), el("td", { class: "num" }, num(l.attempts)),
          el("td", {}, l.status ?? "–"), el("td", { class: "wrap" }, l.error),
          el("td", { class: "wrap" }, el("details", {}, el("summary", {}, "Body"), el("pre", {}, l.payload))))))));
    } catch (failure) { error.textContent = failure.message; }
  } }, "Dead letters");
  const remove = confirmDelete("this webhook (deliveries stop, its dead letters go)", async () => {
    await api("DELETE", `${WEBHOOKS}/${encodeURIComponent(w.id)}`);
    state.flash = `Deleted the webhook to ${w.destination}.`;
    route();
  }, error);
  const filters = config.propertyFilters.length ? config.propertyFilters.map((f) => el("span", { class: "chip" }, `${f.key} = ${f.value}`)) : "none (every request)";
  return el("section", { class: "panel webhook", "data-webhook-id": w.id, "aria-label": "Webhook to " + w.destination },
    el("h2", { class: "destination" }, w.destination),
    el("div", { class: "grid2 tight" },
      facts([["Id", el("code", {}, w.id)], ["Created", when(w.created_at)], ["Sample rate", `${config.sampleRate}%`],
        ["Property filters", el("span", { class: "filters-cell" }, filters)], ["Include data", w.includeData ? "yes (bodies in the payload)" : "no"],
        ["Version", w.version]]),
      facts([["Delivered", el("span", { class: "delivered status-ok" }, num(d.delivered))],
        ["Failed", el("span", { class: "failed" + (d.failed ? " status-bad" : "") }, num(d.failed))],
        ["Last status", el("span", { class: "last-status" }, d.last_status ?? "–")],
        ["Last error", el("span", { class: "last-error wrap" }, d.last_error || "–")],
        ["Last attempt", el("span", { class: "last-attempt" }, when(d.last_attempt_at))]])),
    el("div", { class: "row key-row" }, el("span", { class: "muted" }, "HMAC key"), key,
      el("button", { type: "button", class: "copy-key", onclick: () => copyField(key, copied) }, "Copy key"), copied),
    el("div", { class: "row" }, test, showLetters, remove),
    testResult, error, letters);
}

async function webhooksPage(view) {
  closeDetail();
  const hooks = await api("GET", WEBHOOKS);
  const destination = el("input", { id: "nw-destination", type: "url", required: true, placeholder: "an https URL: your receiver", size: 48, autocomplete: "off" });
  const rate = el("input", { id: "nw-rate", type: "number", min: 0, max: 100, step: "any", value: 100, required: true });
  const props = pairRows("nw-filters", ["Property", "Value"]);
  const include = el("input", { id: "nw-include", type: "checkbox" });
  const error = el("p", { class: "error", id: "nw-error", role: "alert" });
  const form = el("form", { class: "stack", id: "new-webhook-form", onsubmit: (e) => {
    e.preventDefault();
    submitting(form, error, async () => {
      const made = await api("POST", WEBHOOKS, { destination: destination.value.trim(),
        config: { sampleRate: Number(rate.value), propertyFilters: props.read() }, includeData: include.checked });
      state.flash = `Added the webhook to ${made.destination}. Its HMAC key is below.`;
      route();
    });
  } },
  el("label", { for: "nw-destination" }, "Destination (receives a signed POST per logged request)"), destination,
  el("label", { for: "nw-rate" }, "Sample rate (% of matching requests)"), rate,
  el("span", { class: "label-like" }, "Property filters (all must match)"), props.list,
  el("div", { class: "row" }, el("button", { type: "button", id: "nw-add-filter", onclick: props.add }, "Add property filter")),
  el("label", { class: "choice", for: "nw-include" }, include, " Include the request and response bodies"),
  el("div", { class: "row" }, el("button", { type: "submit" }, "Add webhook")), error);
  view.replaceChildren(...[el("h1", {}, "Webhooks"), takeFlash("webhook-flash"),
    el("p", { class: "muted" }, "Every logged request that matches a webhook's filters and sample rate is POSTed to it, signed: receivers check the ",
      el("code", {}, "Helicone-Signature"), " header, the HMAC-SHA256 of the raw body with the webhook's key. Failures are retried, then kept as dead letters."),
    el("div", { class: "row" }, el("button", { type: "button", id: "webhooks-reload", onclick: () => route() }, "Reload")),
    hooks.length === 0 ? el("div", { class: "empty", "data-testid": "no-webhooks" }, el("h2", {}, "No webhooks yet"), el("p", {}, "Add one below."))
      : el("div", { class: "stacked", id: "webhooks" }, hooks.map(webhookView)),
    el("details", { class: "panel", id: "new-webhook", open: hooks.length === 0 }, el("summary", {}, "Add a webhook"), form)].filter(Boolean));
}

// --- alerts ---------------------------------------------------------------------------------------
// Alerts (/v1/alerts): a metric over a trailing window, per group, compared with a threshold; the
// evaluator notifies the channels when a group goes over and when it comes back. The form previews
// the metric over the chosen window as it is edited (POST /v1/alerts/preview, debounced).

const ALERTS = "/v1/alerts";
// [metric, label, unit]
const METRICS = [
  ["error_rate", "Error rate", "%"], ["cost", "Cost", "USD"], ["latency", "Latency", "ms"],
  ["total_tokens", "Total tokens", "tokens"], ["prompt_tokens", "Prompt tokens", "tokens"],
  ["completion_tokens", "Completion tokens", "tokens"], ["prompt_cache_read_tokens", "Cache read tokens", "tokens"],
  ["prompt_cache_write_tokens", "Cache write tokens", "tokens"], ["count", "Requests", "requests"]];
const UNATTACHED = new Set(["error_rate", "count"]); // metrics the aggregation does not apply to
const WINDOWS = [[30, "30 min"], [60, "1 h"], [1440, "24 h"], [10080, "7 d"], [43200, "30 d"]];
const AGGREGATIONS = [["sum", "Sum"], ["avg", "Average"], ["min", "Minimum"], ["max", "Maximum"], ["p50", "p50"], ["p90", "p90"],
  ["p95", "p95"], ["p99", "p99"], ["pN", "Other percentile…"]];
const PREVIEW_DELAY_MS = 400;

const metricOf = (name) => METRICS.find(([m]) => m === name) || [name, name, ""];
const unitOf = (name) => metricOf(name)[2];

function metricValue(metric, v) {
  if (v === null || v === undefined) return "–";
  if (metric === "error_rate") return Number(v).toFixed(2) + "%";
  if (metric === "cost") return usd(Number(v));
  if (metric === "latency") return ms(Number(v));
  return Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }) + (metric === "count" ? "" : " tokens");
}

function windowLabel(minutes) {
  const preset = WINDOWS.find(([m]) => m === minutes);
  if (preset) return preset[1];
  if (minutes % 1440 === 0) return `${minutes / 1440} d`;
  if (minutes % 60 === 0) return `${minutes / 60} h`;
  return `${minutes} min`;
}

const groupLabel = (groupBy) => (!groupBy ? "none" : groupBy.startsWith("property:") ? "property " + groupBy.slice(9) : groupBy);
const channelLabel = (c) => (c.type === "slack" ? "Slack " + c.url : "E-mail " + c.address);

// "p95 of latency" and "p95 of latency ≥ 2.00 s over 1 h, per model"
const measure = (a) => (UNATTACHED.has(a.metric) || !a.aggregation ? metricOf(a.metric)[1] : `${a.aggregation} of ${metricOf(a.metric)[1].toLowerCase()}`);
const per = (a) => (a.groupBy ? `, per ${groupLabel(a.groupBy)}` : "");
const condition = (a) => `${measure(a)} ≥ ${metricValue(a.metric, a.threshold)} over ${windowLabel(a.windowMinutes)}${per(a)}`;

function stateBadge(a) {
  if (!a.enabled) return el("span", { class: "badge alert-state", "data-state": "disabled" }, "disabled");
  const triggered = a.state === "triggered";
  return el("span", { class: "badge alert-state " + (triggered ? "bad" : "ok"), "data-state": a.state },
    triggered ? "triggered" + (a.triggeredGroups && a.triggeredGroups.length && a.triggeredGroups[0] !== "*" ? ": " + a.triggeredGroups.join(", ") : "") : "ok");
}

// The filter leaf of one group's value, for a link to the requests behind it.
function groupLeaf(groupBy, group) {
  if (!groupBy || group === null || group === undefined || group === "*") return null;
  if (groupBy === "user") return { request_response_rmt: { user_id: { equals: group } } };
  if (groupBy === "model") return { request_response_rmt: { model: { equals: group } } };
  if (groupBy === "provider") return { request_response_rmt: { provider: { equals: group } } };
  if (groupBy.startsWith("property:")) return { request_response_rmt: { properties: { [groupBy.slice(9)]: { equals: group } } } };
  return null;
}

// The requests a history entry counted: its window before `at`, the alert's filter, its group.
function historyHref(alert, entry) {
  if (entry.requestsUrl) {
    // The API's link is absolute (the deployment's public URL); on this dashboard, follow its hash.
    try { const url = new URL(entry.requestsUrl, location.href); if (url.pathname.replace(/\/$/, "") === location.pathname.replace(/\/$/, "") && url.hash) return url.hash; }
    catch { /* not a URL: build one below */ }
  }
  const end = Date.parse(entry.at);
  const leaves = [alert.filter && alert.filter !== "all" ? alert.filter : null, groupLeaf(alert.groupBy, entry.group)].filter(Boolean);
  const q = new URLSearchParams({ from: new Date(end - alert.windowMinutes * 60_000).toISOString(), to: new Date(end).toISOString() });
  if (leaves.length) q.set("filter", JSON.stringify(and(leaves)));
  return "#/requests?" + q.toString();
}

async function alertsPage(view) {
  closeDetail();
  const alerts = await api("GET", ALERTS);
  const props = (await api("POST", "/v1/property/query", {})).map((p) => p.property);
  const listError = el("p", { class: "error", id: "alerts-error", role: "alert" });
  const toggle = (a) => el("button", { type: "button", class: "toggle-enabled", "aria-pressed": a.enabled ? "true" : "false",
    "aria-label": (a.enabled ? "Disable " : "Enable ") + a.name, onclick: async (e) => {
      e.target.disabled = true;
      try { await api("PATCH", `${ALERTS}/${encodeURIComponent(a.id)}`, { enabled: !a.enabled }); route(); }
      catch (failure) { listError.textContent = failure.message; e.target.disabled = false; }
    } }, a.enabled ? "Enabled" : "Disabled");
  const table = alerts.length === 0
    ? el("div", { class: "empty", "data-testid": "no-alerts" }, el("h2", {}, "No alerts yet"),
      el("p", {}, "Create one below: pick a metric and a window, watch its current value, set the threshold and where to send the notice."))
    : el("div", { class: "panel" }, el("table", { id: "alerts-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Condition"), el("th", {}, "State"), el("th", {}, "Last evaluated"),
        el("th", {}, "Channels"), el("th", {}, "Enabled"), el("th", {}, ""))),
      el("tbody", {}, alerts.map((a) => el("tr", { "data-alert-id": a.id },
        el("td", {}, el("a", { href: "#/alerts/" + encodeURIComponent(a.id), class: "alert-name" }, a.name)),
        el("td", { class: "wrap" }, condition(a)), el("td", { class: "wrap" }, stateBadge(a)), el("td", {}, when(a.lastEvaluatedAt)),
        el("td", { class: "wrap" }, a.channels.map((c) => el("span", { class: "chip" }, c.type === "slack" ? "Slack" : c.address))),
        el("td", {}, toggle(a)),
        el("td", {}, confirmDelete(`the alert ${a.name}`, async () => {
          await api("DELETE", `${ALERTS}/${encodeURIComponent(a.id)}`);
          state.flash = `Deleted the alert ${a.name}.`;
          route();
        }, listError)))))));
  view.replaceChildren(...[el("h1", {}, "Alerts"), takeFlash("alert-flash"), table, listError,
    alertForm(props, alerts.length === 0)].filter(Boolean));
}

// The new-alert form in a <details> (open when there is no alert yet), previewing once opened.
function alertForm(props, open) {
  const field = (id, label, control, hint) => el("div", { class: "field" }, el("label", { for: id }, label), control, hint || null);
  const name = el("input", { id: "na-name", required: true, maxlength: 200, placeholder: "High error rate" });
  const metric = el("select", { id: "na-metric" }, METRICS.map(([m, label, unit]) => el("option", { value: m }, `${label} (${unit})`)));
  const aggregation = el("select", { id: "na-aggregation" }, AGGREGATIONS.map(([v, label]) => el("option", { value: v }, label)));
  const percentile = el("input", { id: "na-percentile", type: "number", min: 1, max: 99, step: 1, value: 95, "aria-label": "Percentile", hidden: true });
  const threshold = el("input", { id: "na-threshold", type: "number", step: "any", min: 0, required: true, value: 5 });
  const unit = el("span", { class: "muted", id: "na-unit" });
  const windowSelect = el("select", { id: "na-window" }, WINDOWS.map(([m, label]) => el("option", { value: m, selected: m === 60 }, label)),
    el("option", { value: "custom" }, "Custom…"));
  const customWindow = el("input", { id: "na-window-minutes", type: "number", min: 1, max: 43200, step: 1, value: 90, "aria-label": "Window in minutes", title: "minutes", hidden: true });
  const minimum = el("input", { id: "na-minimum", type: "number", min: 0, step: 1, value: 1 });
  const groupBy = el("select", { id: "na-group" }, [["", "None"], ["user", "User"], ["model", "Model"], ["provider", "Provider"], ["property", "Property…"]]
    .map(([v, label]) => el("option", { value: v }, label)));
  const groupProperty = el("input", { id: "na-group-property", list: "na-properties", placeholder: "property name", "aria-label": "Group by property", hidden: true });
  const f = {
    model: el("input", { id: "na-f-model", placeholder: "contains" }), provider: el("input", { id: "na-f-provider", placeholder: "e.g. OPENAI" }),
    user: el("input", { id: "na-f-user" }),
    status: el("select", { id: "na-f-status" }, [["", "Any"], ["ok", "Success (2xx)"], ["error", "Error"]].map(([v, t]) => el("option", { value: v }, t))),
    propKey: el("input", { id: "na-f-propKey", list: "na-properties", placeholder: "name" }), propValue: el("input", { id: "na-f-propValue", placeholder: "any value" }),
  };
  const channels = el("div", { class: "channels", id: "na-channels" });
  const addChannel = (type, value = "") => {
    const n = channels.children.length + 1;
    const input = el("input", { class: "channel-target", "data-type": type, value, type: type === "email" ? "email" : "url", size: 44, required: true,
      "aria-label": (type === "slack" ? "Slack webhook URL " : "E-mail address ") + n,
      placeholder: type === "slack" ? "Slack incoming webhook URL (hooks.slack.com/services/…)" : "ops@example.com" });
    const row = el("div", { class: "row channel", "data-type": type }, el("span", { class: "chip" }, type === "slack" ? "Slack" : "E-mail"), input,
      el("button", { type: "button", "aria-label": "Remove channel " + n, onclick: () => row.remove() }, "Remove"));
    channels.append(row);
    return input;
  };
  const enabled = el("input", { id: "na-enabled", type: "checkbox", checked: true });
  const error = el("p", { class: "error", id: "na-error", role: "alert" });
  const preview = el("div", { id: "alert-preview", "aria-live": "polite" }, el("p", { class: "muted" }, "Pick a metric and a window to see its value."));

  const windowMinutes = () => (windowSelect.value === "custom" ? Math.round(Number(customWindow.value)) : Number(windowSelect.value));
  const aggregationValue = () => (aggregation.value === "pN" ? "p" + Math.round(Number(percentile.value)) : aggregation.value);
  const groupValue = () => (groupBy.value === "property" ? (groupProperty.value.trim() ? "property:" + groupProperty.value.trim() : null) : groupBy.value || null);
  const filterValue = () => and(filterLeaves(Object.fromEntries(Object.entries(f).map(([k, c]) => [k, c.value.trim()]))));
  const common = () => {
    const body = { metric: metric.value, windowMinutes: windowMinutes(), minimumRequests: Math.round(Number(minimum.value || 0)),
      groupBy: groupValue(), filter: filterValue() };
    if (!UNATTACHED.has(metric.value)) body.aggregation = aggregationValue();
    return body;
  };
  const sync = () => {
    unit.textContent = unitOf(metric.value);
    aggregation.disabled = UNATTACHED.has(metric.value);
    percentile.hidden = aggregation.value !== "pN" || aggregation.disabled;
    customWindow.hidden = windowSelect.value !== "custom";
    groupProperty.hidden = groupBy.value !== "property";
  };

  let timer = null;
  let asked = 0;
  const refresh = async () => {
    const number = ++asked;
    const body = common();
    if (threshold.value !== "" && Number.isFinite(Number(threshold.value))) body.threshold = Number(threshold.value);
    preview.setAttribute("aria-busy", "true");
    try {
      const data = await api("POST", ALERTS + "/preview", body);
      if (number !== asked) return; // a newer edit's answer is coming
      const groups = data.groups || [];
      const over = groups.filter((g) => g.over).length;
      preview.replaceChildren(
        el("p", { class: "muted", id: "preview-window" }, `${measure(body)} over ${windowLabel(body.windowMinutes)}${per(body)}: from ${when(data.from)} to ${when(data.to)}`),
        groups.length === 0 ? el("p", { class: "muted", id: "preview-empty" }, "No requests in this window match.")
          : el("table", { id: "preview-table" },
            el("thead", {}, el("tr", {}, el("th", {}, "Group"), el("th", { class: "num" }, "Value"), el("th", { class: "num" }, "Requests"), el("th", {}, "Threshold"))),
            el("tbody", {}, groups.map((g) => el("tr", { "data-group": g.group ?? "", "data-over": String(g.over) },
              el("td", {}, g.group ?? (body.groupBy ? "(none)" : "all requests")), el("td", { class: "num preview-value" }, metricValue(body.metric, g.value)),
              el("td", { class: "num preview-requests" }, num(g.requests)),
              el("td", {}, el("span", { class: "badge preview-over " + (g.over ? "bad" : "ok") }, g.over ? "over" : "under")))))),
        el("p", { class: "muted", id: "preview-summary" }, groups.length ? `${over} of ${groups.length} group${groups.length === 1 ? "" : "s"} over the threshold now.` : ""));
    } catch (failure) {
      if (number !== asked) return;
      preview.replaceChildren(el("p", { class: "error", id: "preview-error", role: "alert" }, failure.message));
    } finally { if (number === asked) preview.removeAttribute("aria-busy"); }
  };
  const edited = () => { sync(); clearTimeout(timer); timer = setTimeout(refresh, PREVIEW_DELAY_MS); };

  const form = el("form", { class: "stack", id: "new-alert-form", oninput: edited, onchange: edited, onsubmit: (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), ...common(), threshold: Number(threshold.value), enabled: enabled.checked,
      channels: [...channels.querySelectorAll(".channel-target")].map((c) => (c.dataset.type === "slack" ? { type: "slack", url: c.value.trim() } : { type: "email", address: c.value.trim() })) };
    submitting(form, error, async () => {
      const made = await api("POST", ALERTS, body);
      state.flash = `Created the alert ${made.name}.`;
      location.hash = "#/alerts/" + encodeURIComponent(made.id);
    });
  } },
  field("na-name", "Name", name),
  el("div", { class: "row fields" }, field("na-metric", "Metric", metric), field("na-aggregation", "Aggregation", el("span", { class: "row" }, aggregation, percentile))),
  el("div", { class: "row fields" }, field("na-threshold", "Threshold (value ≥ threshold is over)", el("span", { class: "row" }, threshold, unit)),
    field("na-window", "Window", el("span", { class: "row" }, windowSelect, customWindow)),
    field("na-minimum", "Minimum requests", minimum)),
  field("na-group", "Group by", el("span", { class: "row" }, groupBy, groupProperty)),
  el("fieldset", { class: "filters", id: "na-filter" }, el("legend", {}, "Only requests matching (empty: all)"),
    el("label", { for: "na-f-model" }, "Model", f.model), el("label", { for: "na-f-provider" }, "Provider", f.provider),
    el("label", { for: "na-f-user" }, "User", f.user), el("label", { for: "na-f-status" }, "Status", f.status),
    el("label", { for: "na-f-propKey" }, "Property", f.propKey), el("label", { for: "na-f-propValue" }, "Property value", f.propValue)),
  el("datalist", { id: "na-properties" }, props.map((p) => el("option", { value: p }))),
  el("span", { class: "label-like" }, "Notify (when a group goes over, and when it is back under)"), channels,
  el("div", { class: "row" }, el("button", { type: "button", id: "na-add-slack", onclick: () => addChannel("slack").focus() }, "Add Slack channel"),
    el("button", { type: "button", id: "na-add-email", onclick: () => addChannel("email").focus() }, "Add e-mail address")),
  el("label", { class: "choice", for: "na-enabled" }, enabled, " Enabled"),
  el("div", { class: "row" }, el("button", { type: "submit" }, "Create alert")), error);
  addChannel("email");
  sync();
  let previewed = false;
  return el("details", { class: "panel", id: "new-alert", open, ontoggle: (e) => { if (e.target.open && !previewed) { previewed = true; refresh(); } } },
    el("summary", {}, "New alert"),
    el("div", { class: "grid2" }, form, el("section", { class: "preview", "aria-labelledby": "preview-title" },
      el("h2", { id: "preview-title" }, "Now, over the window"), preview)));
}

async function alertPage(view, alertId) {
  closeDetail();
  const back = el("p", {}, el("a", { href: "#/alerts" }, "← Alerts"));
  let alert;
  try {
    alert = await api("GET", `${ALERTS}/${encodeURIComponent(alertId)}`);
  } catch (failure) {
    view.replaceChildren(back, el("h1", {}, "Alert"), el("p", { class: "error", role: "alert", id: "alert-missing" }, failure.message));
    return;
  }
  const history = await api("GET", `${ALERTS}/${encodeURIComponent(alertId)}/history?limit=50`);
  const error = el("p", { class: "error", id: "alert-error", role: "alert" });
  const results = el("div", { id: "test-results", "aria-live": "polite" });
  const test = el("button", { type: "button", id: "alert-test", onclick: async () => {
    test.disabled = true;
    error.textContent = "";
    results.replaceChildren(el("p", { class: "muted" }, "Sending…"));
    try {
      const sent = await api("POST", `${ALERTS}/${encodeURIComponent(alertId)}/test`, {});
      results.replaceChildren(el("table", { id: "test-results-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Channel"), el("th", {}, "Target"), el("th", {}, "Result"))),
        el("tbody", {}, sent.map((r) => el("tr", { "data-channel": r.channel, "data-ok": String(r.ok) }, el("td", {}, r.channel === "slack" ? "Slack" : "E-mail"),
          el("td", { class: "wrap" }, r.target),
          el("td", { class: "wrap" }, el("span", { class: r.ok ? "status-ok" : "status-bad" }, r.ok ? "sent" : "failed"), r.error ? ": " + r.error : ""))))));
    } catch (failure) { results.replaceChildren(); error.textContent = failure.message; } finally { test.disabled = false; }
  } }, "Send test notification");
  const toggle = el("button", { type: "button", id: "alert-toggle", "aria-pressed": alert.enabled ? "true" : "false", onclick: async () => {
    toggle.disabled = true;
    try {
      await api("PATCH", `${ALERTS}/${encodeURIComponent(alertId)}`, { enabled: !alert.enabled });
      state.flash = alert.enabled ? "Disabled: it is not evaluated until enabled again." : "Enabled.";
      route();
    } catch (failure) { error.textContent = failure.message; toggle.disabled = false; }
  } }, alert.enabled ? "Disable" : "Enable");
  const remove = confirmDelete(`the alert ${alert.name}`, async () => {
    await api("DELETE", `${ALERTS}/${encodeURIComponent(alertId)}`);
    state.flash = `Deleted the alert ${alert.name}.`;
    location.hash = "#/alerts";
  }, error);
  const config = el("section", { class: "panel", id: "alert-config", "aria-labelledby": "alert-config-title" }, el("h2", { id: "alert-config-title" }, "Configuration"),
    facts([["Condition", condition(alert)], ["Metric", `${metricOf(alert.metric)[1]} (${unitOf(alert.metric)})`],
      ["Aggregation", alert.aggregation || "– (not applicable)"], ["Threshold", metricValue(alert.metric, alert.threshold)],
      ["Window", windowLabel(alert.windowMinutes) + ` (${num(alert.windowMinutes)} minutes)`], ["Minimum requests", num(alert.minimumRequests)],
      ["Group by", groupLabel(alert.groupBy)],
      ["Filter", alert.filter === "all" || !alert.filter ? "all requests" : el("code", { id: "alert-filter" }, JSON.stringify(alert.filter))],
      ["Channels", el("ul", { class: "plain", id: "alert-channels" }, alert.channels.map((c) => el("li", { "data-type": c.type }, channelLabel(c))))],
      ["Enabled", alert.enabled ? "yes" : "no"], ["Id", el("code", {}, alert.id)], ["Created", when(alert.created_at)], ["Updated", when(alert.updated_at)]]));
  const status = el("section", { class: "panel", id: "alert-status", "aria-labelledby": "alert-status-title" }, el("h2", { id: "alert-status-title" }, "State"),
    facts([["State", stateBadge(alert)], ["Triggered groups", alert.triggeredGroups && alert.triggeredGroups.length ? alert.triggeredGroups.join(", ") : "none"],
      ["Last evaluated", el("span", { id: "alert-evaluated" }, when(alert.lastEvaluatedAt))],
      alert.lastError ? ["Last error", el("span", { class: "status-bad", id: "alert-last-error" }, alert.lastError)] : ["Last error", "none"]]),
    el("div", { class: "row" }, test, toggle, el("button", { type: "button", id: "alert-reload", onclick: () => route() }, "Reload"), remove),
    error, results);
  const historyPanel = el("section", { class: "panel", "aria-labelledby": "history-title" }, el("h2", { id: "history-title" }, "History"),
    history.length === 0 ? el("p", { class: "muted", id: "no-history" }, "Nothing yet: an entry is written when a group goes over or comes back under.")
      : el("table", { id: "alert-history" },
        el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "State"), el("th", {}, "Group"), el("th", { class: "num" }, "Value"),
          el("th", { class: "num" }, "Threshold"), el("th", { class: "num" }, "Requests"), el("th", {}, ""))),
        el("tbody", {}, history.map((h) => el("tr", { "data-state": h.state, "data-group": h.group ?? "" },
          el("td", {}, when(h.at)), el("td", {}, el("span", { class: "badge " + (h.state === "triggered" ? "bad" : "ok") }, h.state)),
          el("td", {}, h.group ?? "all requests"), el("td", { class: "num history-value" }, metricValue(alert.metric, h.value)),
          el("td", { class: "num" }, metricValue(alert.metric, h.threshold)), el("td", { class: "num" }, num(h.requests)),
          el("td", {}, el("a", { class: "history-requests", href: historyHref(alert, h) }, "Requests")))))));
  view.replaceChildren(...[back, el("h1", {}, alert.name, " ", stateBadge(alert)), takeFlash("alert-flash"),
    el("div", { class: "grid2" }, config, status), historyPanel].filter(Boolean));
}

// --- datasets -------------------------------------------------------------------------------------
// Helicone's datasets API (/v1/helicone-dataset*): the list and a new dataset, a dataset's items
// (paged, newest first) with remove and edit (the item's own request/response bodies; the log is never
// changed), delete after a confirm step, and the JSONL / CSV export, downloaded from a Blob URL.

const DATASETS = "/v1/helicone-dataset";
const datasetHref = (id) => "#/datasets/" + encodeURIComponent(id);

// A dataset choice plus "New dataset…" (a name then), and a button adding ids() to it. One request is
// added by the documented route, several by mutate; a new dataset is created with them in one call.
function datasetPicker(prefix, datasets, ids, label) {
  const select = el("select", { id: prefix + "-select" },
    datasets.map((d) => el("option", { value: d.id }, `${d.name} (${num(d.requests_count)})`)),
    el("option", { value: "" }, "New dataset…"));
  const name = el("input", { id: prefix + "-name", "aria-label": "New dataset name", placeholder: "new dataset name", maxlength: 200 });
  const status = el("span", { id: prefix + "-status", class: "muted dataset-add-status", role: "status" });
  const showName = () => { name.hidden = select.value !== ""; };
  select.addEventListener("change", showName);
  showName();
  const button = el("button", { type: "button", id: prefix + "-add", onclick: async () => {
    const chosen = ids();
    status.className = "muted dataset-add-status";
    status.replaceChildren();
    if (!chosen.length) return;
    button.disabled = true;
    try {
      let id = select.value;
      let title = select.selectedOptions[0]?.textContent.replace(/ \(\d[\d,]*\)$/, "") || "";
      if (!id) {
        title = name.value.trim();
        if (!title) { status.className = "error dataset-add-status"; status.textContent = "Name the new dataset first."; name.focus(); return; }
        id = (await api("POST", DATASETS, { name: title, requestIds: chosen })).id;
        select.insertBefore(el("option", { value: id }, title), select.lastElementChild);
        select.value = id;
        name.value = "";
        showName();
      } else if (chosen.length === 1) {
        await api("POST", `${DATASETS}/${encodeURIComponent(id)}/request/${encodeURIComponent(chosen[0])}`);
      } else {
        await api("POST", `${DATASETS}/${encodeURIComponent(id)}/mutate`, { addRequests: chosen, removeRequests: [] });
      }
      const count = await api("POST", `${DATASETS}/${encodeURIComponent(id)}/count`, {});
      select.selectedOptions[0].textContent = `${title} (${num(count)})`;
      status.className = "status-ok dataset-add-status";
      status.replaceChildren(`Added ${chosen.length === 1 ? "the request" : num(chosen.length) + " requests"} to ${title}: ${num(count)} item${count === 1 ? "" : "s"} now. `,
        el("a", { href: datasetHref(id), class: "open-dataset" }, "Open the dataset"));
    } catch (failure) {
      status.className = "error dataset-add-status";
      status.textContent = "Not added: " + failure.message;
    } finally { button.disabled = false; }
  } }, label);
  const node = el("div", { class: "row dataset-add", id: prefix, role: "group", "aria-label": label },
    el("label", { for: prefix + "-select" }, "Dataset "), select, name, button, status);
  return { node, button };
}

// Text as a file the browser downloads: a Blob URL behind an <a download> (a navigation the CSP allows).
function download(text, fileName, contentType) {
  const url = URL.createObjectURL(new Blob([text], { type: contentType }));
  const link = el("a", { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function datasetsPage(view) {
  closeDetail();
  const datasets = await api("POST", DATASETS + "/query", {});
  const name = el("input", { id: "nd-name", required: true, maxlength: 200, placeholder: "support-finetune" });
  const description = el("textarea", { id: "nd-description", rows: 2, maxlength: 10000 });
  const error = el("p", { class: "error", id: "nd-error", role: "alert" });
  const form = el("form", { class: "stack", id: "new-dataset-form", onsubmit: (e) => {
    e.preventDefault();
    submitting(form, error, async () => {
      const made = await api("POST", DATASETS, { name: name.value.trim(), description: description.value.trim() || null });
      state.flash = `Created the dataset ${made.name}. Add requests from a request's detail or the requests table.`;
      location.hash = datasetHref(made.id);
    });
  } },
  el("label", { for: "nd-name" }, "Name"), name,
  el("label", { for: "nd-description" }, "Description"), description,
  el("div", { class: "row" }, el("button", { type: "submit" }, "Create dataset")), error);
  view.replaceChildren(...[el("h1", {}, "Datasets"), takeFlash("dataset-flash"),
    datasets.length === 0 ? el("div", { class: "empty", "data-testid": "no-datasets" }, el("h2", {}, "No datasets yet"),
      el("p", {}, "Create one below, then add requests to it from the requests page; export it as JSONL for fine-tuning or as CSV."))
      : el("div", { class: "panel" }, el("table", { id: "datasets-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Description"), el("th", { class: "num" }, "Items"), el("th", {}, "Created"))),
        el("tbody", {}, datasets.map((d) => clickable(el("tr", { "data-dataset-id": d.id },
          el("td", { class: "wrap" }, d.name), el("td", { class: "wrap" }, d.description || "–"),
          el("td", { class: "num items" }, num(d.requests_count)), el("td", {}, when(d.created_at))),
        () => { location.hash = datasetHref(d.id); }))))),
    el("details", { class: "panel", id: "new-dataset", open: datasets.length === 0 }, el("summary", {}, "New dataset"), form)].filter(Boolean));
}

// A body typed as JSON, checked as it is typed; read() is [ok, value]. The request must be an object.
function jsonEditor(id, value, mustBeObject) {
  const area = el("textarea", { id, rows: 12, spellcheck: "false", "aria-describedby": id + "-check" });
  area.value = value === undefined ? "null" : typeof value === "string" && !mustBeObject ? JSON.stringify(value) : JSON.stringify(value, null, 2);
  const check = el("p", { id: id + "-check", role: "status" });
  const read = () => {
    let parsed;
    let problem = null;
    try { parsed = JSON.parse(area.value); } catch (failure) { problem = "Not valid JSON: " + failure.message; }
    if (!problem && mustBeObject && !isObject(parsed)) problem = "The request body must be a JSON object.";
    area.setAttribute("aria-invalid", problem ? "true" : "false");
    check.className = problem ? "error" : "muted";
    check.textContent = problem || (isObject(parsed) && Array.isArray(parsed.messages)
      ? `Valid JSON · ${num(parsed.messages.length)} message${parsed.messages.length === 1 ? "" : "s"}` : "Valid JSON");
    return [!problem, parsed];
  };
  area.addEventListener("input", read);
  read();
  return { area, check, read };
}

// The editor of one item: its own copies if edited, else the logged bodies, saved as the item's copies.
async function itemEditor(slot, dataset, item, error) {
  error.textContent = "";
  let requestBody = item.request_body;
  let responseBody = item.response_body;
  if (requestBody === null || responseBody === null) {
    const logged = await api("GET", `/v1/request/${encodeURIComponent(item.origin_request_id)}?includeBody=true`);
    if (requestBody === null) requestBody = logged.request_body;
    if (responseBody === null) responseBody = logged.response_body;
  }
  const request = jsonEditor("item-request", requestBody, true);
  const response = jsonEditor("item-response", responseBody, false);
  const problem = el("p", { class: "error", id: "item-error", role: "alert" });
  const path = `${DATASETS}/${encodeURIComponent(dataset.id)}/request/${encodeURIComponent(item.id)}`;
  const form = el("form", { class: "stack", id: "item-form", onsubmit: (e) => {
    e.preventDefault();
    const [requestOk, requestValue] = request.read();
    const [responseOk, responseValue] = response.read();
    if (!requestOk || !responseOk) { problem.textContent = "Fix the JSON first."; return; }
    submitting(form, problem, async () => {
      await api("POST", path, { requestBody: requestValue, responseBody: responseValue });
      state.flash = "Saved the item's edit (the logged request is unchanged).";
      route();
    });
  } },
  el("h2", {}, "Edit item ", el("code", {}, item.id)),
  el("p", { class: "muted" }, "The item keeps its own copy of the bodies; the logged request is never changed."),
  el("label", { for: "item-request" }, "Request body (JSON object)"), request.area, request.check,
  el("label", { for: "item-response" }, "Response body (JSON)"), response.area, response.check,
  el("div", { class: "row" }, el("button", { type: "submit" }, "Save edit"),
    item.edited ? el("button", { type: "button", id: "item-revert", onclick: async () => {
      try { await api("POST", path, {}); state.flash = "Reverted the item to the logged request."; route(); } catch (failure) { problem.textContent = failure.message; }
    } }, "Revert to the log") : null,
    el("button", { type: "button", id: "item-cancel", onclick: () => slot.replaceChildren() }, "Cancel")),
  problem);
  slot.replaceChildren(el("section", { class: "panel", id: "item-editor", "data-item-id": item.id }, form));
  request.area.focus();
}

function exportResult(result) {
  const what = result.format === "jsonl" ? "fine-tuning examples" : "rows";
  return el("div", { id: "export-result", role: "status", "data-format": result.format },
    el("p", { class: "notice" }, `Exported ${num(result.exported)} ${what} to ${result.fileName}.`,
      result.truncated ? " The dataset is larger than one export: the file holds its oldest items." : ""),
    result.skipped.length === 0 ? null : el("div", { class: "panel", id: "export-skipped" },
      el("h3", {}, `Skipped (${num(result.skipped.length)})`),
      el("p", { class: "muted" }, result.format === "jsonl" ? "Left out of the file:" : "In the file, with the reason in the note column:"),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Request"), el("th", {}, "Reason"))),
        el("tbody", {}, result.skipped.map((k) => el("tr", { "data-item-id": k.itemId },
          el("td", {}, el("a", { href: "#/requests/" + encodeURIComponent(k.requestId) }, k.requestId)), el("td", { class: "wrap" }, k.reason)))))));
}

async function datasetPage(view, datasetId) {
  closeDetail();
  const back = el("p", {}, el("a", { href: "#/datasets" }, "← Datasets"));
  const [dataset] = await api("POST", DATASETS + "/query", { datasetIds: [datasetId] });
  if (!dataset) { view.replaceChildren(back, el("h1", {}, "Dataset"), el("p", { class: "muted", "data-testid": "no-dataset" }, "No such dataset in this organisation.")); return; }
  if (state.datasetItems.id !== dataset.id) state.datasetItems = { id: dataset.id, offset: 0 };
  const paging = state.datasetItems;
  const base = `${DATASETS}/${encodeURIComponent(dataset.id)}`;
  const found = await api("POST", base + "/query", { offset: paging.offset, limit: PAGE + 1 });
  const more = found.length > PAGE;
  const items = found.slice(0, PAGE);
  // The items carry their request's id only: the page's models come from one request query.
  const models = new Map();
  if (items.length) {
    const leaves = items.map((i) => ({ request_response_rmt: { request_id: { equals: i.origin_request_id } } }));
    const filter = leaves.reduce((left, right) => (left === null ? right : { left, operator: "or", right }), null);
    for (const r of await api("POST", "/v1/request/query", { filter, limit: items.length })) models.set(r.request_id, r.model);
  }
  const error = el("p", { class: "error", id: "dataset-error", role: "alert" });
  const editorSlot = el("div", { id: "item-editor-slot" });
  const exported = el("div", { id: "export-slot" });
  const exportButton = (format, label) => el("button", { type: "button", id: "export-" + format, disabled: dataset.requests_count === 0, onclick: async (e) => {
    e.target.disabled = true;
    error.textContent = "";
    try {
      const result = await api("GET", `${base}/export?format=${format}`);
      download(result.content, result.fileName, result.contentType);
      exported.replaceChildren(exportResult(result));
    } catch (failure) { error.textContent = "Export failed: " + failure.message; } finally { e.target.disabled = false; }
  } }, label);
  const remove = confirmDelete(`the dataset ${dataset.name} and its ${num(dataset.requests_count)} item${dataset.requests_count === 1 ? "" : "s"}`, async () => {
    await api("POST", base + "/delete", {});
    state.flash = `Deleted the dataset ${dataset.name}.`;
    location.hash = "#/datasets";
  }, error);
  const table = items.length === 0 ? el("p", { class: "muted", "data-testid": "no-items" },
    paging.offset ? "No more items." : "No items yet. Add requests from a request's detail or the requests table (Select, then Add selected to dataset).")
    : el("div", { class: "panel" }, el("table", { id: "items-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Request"), el("th", {}, "Model"), el("th", {}, "Added"), el("th", {}, "Edited"), el("th", {}, "Actions"))),
      el("tbody", {}, items.map((item) => el("tr", { "data-item-id": item.id, "data-request-id": item.origin_request_id },
        el("td", {}, el("a", { href: "#/requests/" + encodeURIComponent(item.origin_request_id), class: "item-request" }, item.origin_request_id)),
        el("td", { class: "item-model" }, models.get(item.origin_request_id) || "–"),
        el("td", {}, when(item.created_at)),
        el("td", { class: "item-edited" }, item.edited ? el("span", { class: "chip edited", title: "Edited " + when(item.edited_at) }, "edited") : "–"),
        el("td", {}, el("div", { class: "row" },
          el("button", { type: "button", class: "item-edit", "aria-label": "Edit item of request " + item.origin_request_id, onclick: async () => {
            try { await itemEditor(editorSlot, dataset, item, error); } catch (failure) { error.textContent = failure.message; }
          } }, "Edit"),
          el("button", { type: "button", class: "item-remove", "aria-label": "Remove request " + item.origin_request_id + " from the dataset", onclick: async (e) => {
            e.target.disabled = true;
            try {
              await api("DELETE", `${base}/request/${encodeURIComponent(item.id)}`);
              state.flash = `Removed request ${item.origin_request_id} from the dataset.`;
              route();
            } catch (failure) { error.textContent = failure.message; e.target.disabled = false; }
          } }, "Remove"))))))));
  const pager = el("div", { class: "pager" },
    el("button", { type: "button", disabled: paging.offset === 0, onclick: () => { paging.offset = Math.max(0, paging.offset - PAGE); route(); } }, "Previous"),
    el("span", { class: "muted" }, items.length ? `${paging.offset + 1}–${paging.offset + items.length} of ${num(dataset.requests_count)}` : ""),
    el("button", { type: "button", disabled: !more, onclick: () => { paging.offset += PAGE; route(); } }, "Next"));
  view.replaceChildren(...[back, el("h1", {}, "Dataset ", dataset.name), takeFlash("dataset-flash"),
    el("div", { class: "panel" }, facts([["Id", el("code", {}, dataset.id)], ["Description", dataset.description || "–"],
      ["Items", el("span", { id: "dataset-count" }, num(dataset.requests_count))], ["Created", when(dataset.created_at)], ["Updated", when(dataset.updated_at)]])),
    el("div", { class: "row dataset-actions" }, exportButton("jsonl", "Export JSONL"), exportButton("csv", "Export CSV"), remove),
    error, exported, table, pager, editorSlot].filter(Boolean));
}

// --- start ----------------------------------------------------------------------------------------

$("sign-in-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", () => signOut(""));
$("range").addEventListener("change", () => { state.requests.offset = 0; state.requests.window = null; state.usersOffset = 0; route(); });
$("detail-close").addEventListener("click", () => {
  closeDetail();
  if (location.hash.startsWith("#/requests/")) history.replaceState(null, "", "#/requests");
});
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("detail").hidden) $("detail-close").click(); });
window.addEventListener("hashchange", route);
route();
