// daguq dashboard: plain JavaScript, no build step, nothing from another
// origin. It reads /api/v1 and draws its charts as inline SVG. Everything
// from the database is put in the page as text (textContent), never as HTML.
"use strict";

const API = "/api/v1";
const SVGNS = "http://www.w3.org/2000/svg";
let info = { read_only: true, auth: false, refresh_ms: 5000, db: "", db_flag: "" };
let timer = null;
let view = null; // { refresh: async fn } of the page shown

// ---- small helpers ---------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "on") {
      // The handlers live in e._on, so that update() can give a kept
      // element the handlers of its newer copy.
      e._on = v;
      for (const ev of Object.keys(v)) e.addEventListener(ev, (x) => e._on && e._on[ev] && e._on[ev](x));
    }
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// replace puts new children in parent, skipping empty ones.
function replace(parent, ...kids) {
  parent.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false && k !== ""));
}

// update makes parent's children look like kids, keeping the elements that
// are already there (a refresh must not replace a link or a button under
// the pointer, nor an input being typed in).
function update(parent, ...kids) {
  kids = kids.flat().filter((k) => k !== null && k !== undefined && k !== false && k !== "")
    .map((k) => (k instanceof Node ? k : document.createTextNode(String(k))));
  const old = [...parent.childNodes];
  kids.forEach((k, i) => (i < old.length ? morph(old[i], k) : parent.append(k)));
  for (let i = kids.length; i < old.length; i++) old[i].remove();
}

function morph(old, neu) {
  if (old.nodeType !== neu.nodeType || old.nodeName !== neu.nodeName) {
    old.replaceWith(neu);
    return;
  }
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== neu.nodeValue) old.nodeValue = neu.nodeValue;
    return;
  }
  for (const a of [...old.attributes]) if (!neu.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of neu.attributes) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  if (neu._on) old._on = neu._on;
  update(old, ...neu.childNodes);
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) e.append(c);
  return e;
}

function fmtInt(n) { return Number(n).toLocaleString("en-US"); }

function fmtDuration(s) {
  if (s === null || s === undefined) return "—";
  if (s < 1) return s === 0 ? "0s" : (s * 1000).toFixed(0) + "ms";
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + sec + "s";
  return sec + "s";
}

function fmtRate(perSecond) {
  if (perSecond === null || perSecond === undefined) return "—";
  const perMin = perSecond * 60;
  return (perMin >= 100 ? fmtInt(Math.round(perMin)) : perMin.toFixed(perMin >= 10 ? 0 : 1)) + "/min";
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// runLink shows a Dagu DAG run ("dag/run-id"), linked to its page in Dagu
// when the server gave a URL (it builds them from its --dagu-url).
function runLink(text, url, id) {
  if (!text) return "—";
  if (!url || !/^https?:\/\//.test(url)) return el("span", { id, text });
  return el("a", { id, href: url, target: "_blank", rel: "noopener noreferrer", text });
}

// command is the daguq command line that does the same as a button.
function command(...args) {
  const parts = ["daguq", ...args];
  if (info.db_flag) parts.push(info.db_flag);
  return parts.join(" ");
}

function showBanner(text, kind) {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.className = "banner" + (kind ? " " + kind : "");
}

function clearBanner() { document.getElementById("banner").className = "banner hidden"; }

// clearError hides the banner when it shows an error. The result of an
// action stays until the user leaves the page: hiding it on the next
// refresh would move the page under the pointer.
function clearError() {
  const b = document.getElementById("banner");
  if (!b.classList.contains("info")) clearBanner();
}

class HTTPError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// leaving is set once the page is on its way out (log out): no request
// starts after it, since the session may already be gone.
let leaving = false;

async function api(path, options) {
  if (leaving) throw new HTTPError(0, "leaving the page");
  const opts = Object.assign({ headers: {} }, options || {});
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers["Content-Type"] = "application/json";
    delete opts.json;
  }
  const res = await fetch(API + path, opts);
  if (res.status === 401) {
    window.location.assign("/login");
    throw new HTTPError(401, "log in first");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new HTTPError(res.status, body.error || res.status + " " + res.statusText);
  return body;
}

// act runs a change after the user confirms it, naming the equivalent
// command, then shows the result and refreshes the page.
async function act(question, cmd, fn) {
  if (!window.confirm(question + "\n\nThe same on the command line:\n" + cmd)) return;
  try {
    const msg = await fn();
    showBanner(msg, "info");
    await refresh(true);
  } catch (e) {
    showBanner(e.message);
  }
}

function actionRow(button, cmd) {
  return [button, el("code", { text: cmd })];
}

// ---- charts ------------------------------------------------------------------

// chart draws series [{name, cls, points: [[ms, value]...]}] as lines.
function chart(title, series, yfmt) {
  const W = 480, H = 150, L = 52, R = 8, T = 8, B = 22;
  const all = series.flatMap((s) => s.points);
  const box = el("div", { class: "chart" }, el("h3", { text: title }));
  if (all.length < 2) {
    box.append(el("p", { class: "muted", text: "Not enough history yet: the server records a sample every minute." }));
    return box;
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const ymax = Math.max(1, ...all.map((p) => p[1]));
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  g.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  g.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  g.append(svg("text", { class: "tick", x: L - 4, y: T + 8, "text-anchor": "end", text: yfmt(ymax) }));
  g.append(svg("text", { class: "tick", x: L - 4, y: H - B, "text-anchor": "end", text: yfmt(0) }));
  const tfmt = (t) => new Date(t).toLocaleString(undefined, t1 - t0 > 86400e3 ? { month: "short", day: "numeric", hour: "2-digit" } : { hour: "2-digit", minute: "2-digit" });
  g.append(svg("text", { class: "tick", x: L, y: H - 6, text: tfmt(t0) }));
  g.append(svg("text", { class: "tick", x: W - R, y: H - 6, "text-anchor": "end", text: tfmt(t1) }));
  for (const s of series) {
    if (s.points.length < 2) continue;
    const pts = s.points.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ");
    g.append(svg("polyline", { class: "line " + s.cls, points: pts }, svg("title", { text: s.name })));
  }
  box.append(g, el("div", { class: "legend" }, series.map((s) => el("span", { class: s.cls, text: s.name }))));
  return box;
}

function sparkline(samples) {
  const g = svg("svg", { class: "spark", viewBox: "0 0 120 24", role: "img", "aria-label": "ready, last 6 hours" });
  if (samples.length < 2) return g;
  const t0 = Date.parse(samples[0].at), t1 = Date.parse(samples[samples.length - 1].at);
  const ymax = Math.max(1, ...samples.map((s) => s.ready));
  const pts = samples.map((s) => (((Date.parse(s.at) - t0) / Math.max(1, t1 - t0)) * 118 + 1).toFixed(1) + "," + (22 - (s.ready / ymax) * 20).toFixed(1)).join(" ");
  g.append(svg("polyline", { class: "line s-ready", points: pts }));
  return g;
}

// rates turns counter samples into per-minute rates between samples.
function rates(samples, key) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (Date.parse(samples[i].at) - Date.parse(samples[i - 1].at)) / 60000;
    if (dt <= 0) continue;
    out.push([Date.parse(samples[i].at), Math.max(0, (samples[i][key] - samples[i - 1][key]) / dt)]);
  }
  return out;
}

const historyCache = new Map(); // "queue|since" -> {at, samples}

async function history(queue, since, maxAgeMs) {
  const key = queue + "|" + since;
  const hit = historyCache.get(key);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.samples;
  const h = await api(`/queues/${encodeURIComponent(queue)}/history?since=${since}`);
  historyCache.set(key, { at: Date.now(), samples: h.samples });
  return h.samples;
}

// ---- overview ------------------------------------------------------------------

function overviewPage() {
  const root = document.getElementById("view");
  const body = el("div");
  const disp = el("div", { id: "dispatch" });
  replace(root, el("h1", { text: "Queues" }), body, disp);
  return {
    async refresh() {
      if (info.dispatch) await drawDispatch(disp);
      const { queues } = await api("/queues");
      if (queues.length === 0) {
        update(body, el("div", { class: "empty" },
          el("p", { text: "No queues in this database yet. Enqueue messages (JSON Lines) to make one:" }),
          el("code", { text: command("enqueue", "--queue", "orders", "--file", "orders.jsonl") })));
        return;
      }
      const rows = [];
      for (const q of queues) {
        const samples = await history(q.queue, "6h", 60000).catch(() => []);
        const limit = q.in_flight_limit > 0 ? " / " + q.in_flight_limit : "";
        rows.push(el("tr", { "data-queue": q.queue, class: q.dead > 0 ? "nonzero-dead" : "" },
          el("td", {}, el("a", { href: "#/q/" + encodeURIComponent(q.queue), text: q.queue }),
            q.paused ? el("span", { class: "badge paused", text: "paused" }) : null),
          el("td", { class: "n ready", text: fmtInt(q.ready) }),
          el("td", { class: "n delayed", text: fmtInt(q.delayed) }),
          el("td", { class: "n inflight", title: q.leases + " lease(s)" + (limit ? ", limit " + q.in_flight_limit : ", no limit"), text: fmtInt(q.in_flight) + " (" + q.leases + limit + ")" }),
          el("td", { class: "n dead", text: fmtInt(q.dead) }),
          el("td", { class: "n age", text: q.ready > 0 ? fmtDuration(q.oldest_ready_age_seconds) : "—" }),
          el("td", { class: "n in", text: fmtRate(q.in_per_second) }),
          el("td", { class: "n out", text: fmtRate(q.out_per_second) }),
          el("td", { class: "n drain", text: q.drain_seconds === null ? (q.in_per_second === null ? "—" : "not draining") : fmtDuration(q.drain_seconds) }),
          el("td", {}, sparkline(samples))));
      }
      update(body, el("table", { id: "queues" },
        el("thead", {}, el("tr", {},
          el("th", { text: "Queue" }), el("th", { class: "n", text: "Ready" }), el("th", { class: "n", text: "Delayed" }),
          el("th", { class: "n", text: "In flight (leases / limit)" }), el("th", { class: "n", text: "Dead" }),
          el("th", { class: "n", text: "Oldest ready" }), el("th", { class: "n", text: "In" }), el("th", { class: "n", text: "Out" }),
          el("th", { class: "n", text: "Drain" }), el("th", { text: "Ready, 6 h" }))),
        el("tbody", {}, rows)));
    },
  };
}

// drawDispatch shows the rules and runs in flight of the dispatcher that
// runs beside the server (daguq serve --dispatch).
async function drawDispatch(box) {
  const d = await api("/dispatch");
  if (!d.running) { update(box); return; }
  update(box,
    el("h2", { text: "Dispatcher" }),
    el("table", { id: "dispatch-rules" },
      el("thead", {}, el("tr", {}, el("th", { text: "Queue" }), el("th", { text: "DAG" }), el("th", { class: "n", text: "Batch" }), el("th", { class: "n", text: "Concurrency" }))),
      el("tbody", {}, d.rules.map((r) => el("tr", {},
        el("td", {}, el("a", { href: "#/q/" + encodeURIComponent(r.queue), text: r.queue })),
        el("td", { text: r.dag }), el("td", { class: "n", text: String(r.batch_size) }), el("td", { class: "n", text: String(r.concurrency) }))))),
    el("h3", { text: "Runs in flight" }),
    d.runs.length === 0 ? el("p", { class: "muted", text: "None." }) : el("table", { id: "dispatch-runs" },
      el("thead", {}, el("tr", {}, el("th", { text: "Queue" }), el("th", { text: "Run" }), el("th", { class: "n", text: "Messages" }), el("th", { text: "Phase" }), el("th", { text: "Started" }))),
      el("tbody", {}, d.runs.map((r) => el("tr", { "data-run": r.run_id },
        el("td", { text: r.queue }),
        el("td", {}, runLink(r.dag_name + "/" + r.run_id, r.url)),
        el("td", { class: "n", text: fmtInt(r.messages) }),
        el("td", { text: r.phase }),
        el("td", { text: r.started ? fmtTime(r.started) : "—" }))))));
}

// ---- queue page -------------------------------------------------------------------

const STATES = [["ready", "Ready"], ["delayed", "Delayed"], ["in_flight", "In flight"], ["dead", "Dead"]];
const RANGES = [["1h", "1 h"], ["6h", "6 h"], ["24h", "24 h"], ["168h", "7 d"]];

function queuePage(queue, state) {
  const root = document.getElementById("view");
  const q = encodeURIComponent(queue);
  const title = el("h1", {}, queue);
  const cards = el("div", { class: "cards" });
  const actions = el("div", { class: "actions" });
  const charts = el("div", { class: "charts" });
  const list = el("div");
  const groups = el("div");
  let range = "6h";
  const rangeButtons = RANGES.map(([r, label]) => el("button", { type: "button", "data-range": r, class: r === range ? "current" : "", text: label,
    on: { click: () => { range = r; rangeButtons.forEach((b) => b.classList.toggle("current", b.dataset.range === r)); drawCharts().catch((e) => showBanner(e.message)); } } }));
  const filters = el("form", { class: "filters", id: "filters" },
    el("label", { for: "f-priority", text: "priority" }), el("input", { id: "f-priority", name: "priority", type: "number", step: 1 }),
    el("label", { for: "f-group", text: "group" }), el("input", { id: "f-group", name: "group", type: "text", size: 12 }),
    el("label", { for: "f-error", text: "error contains" }), el("input", { id: "f-error", name: "error", type: "text", size: 24 }),
    el("button", { type: "submit", text: "Filter" }));
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); loadList().catch((e) => showBanner(e.message)); });
  const tabs = el("nav", { class: "tabs" }, STATES.map(([s, label]) =>
    el("a", { href: `#/q/${q}/${s}`, class: s === state ? "current" : "", "data-state": s, text: label })));
  replace(root,
    el("div", { class: "crumbs" }, el("a", { href: "#/", text: "Queues" }), " / ", queue),
    title, cards,
    info.read_only ? null : el("h2", { text: "Actions" }), info.read_only ? null : actions,
    el("h2", {}, "History", el("span", { class: "ranges" }, rangeButtons)), charts,
    el("h2", { text: "Messages" }), tabs,
    state === "dead" ? el("div", {}, el("h2", { text: "Dead letters by error" }), groups) : null,
    filters, list);

  function card(id, label, value, cls, sub) {
    return el("div", { class: "card " + (cls || ""), id: "stat-" + id }, el("div", { class: "label", text: label }),
      el("div", { class: "value" + (cls === "dead" && value !== "0" ? " nonzero" : ""), text: value }),
      sub ? el("div", { class: "sub", text: sub }) : null);
  }

  function drawActions(v) {
    if (info.read_only) return;
    const limitInput = el("input", { type: "number", min: 0, max: 1000000, step: 1, id: "limit-input", value: v.in_flight_limit });
    const rateInput = el("input", { type: "number", min: 1, max: 10000, step: 1, id: "rate-input", placeholder: "all", size: 6 });
    update(actions,
      ...actionRow(v.paused
        ? el("button", { type: "button", "data-action": "resume", text: "Resume", on: { click: () => act(`Resume ${queue}: consumers claim from it again.`, command("resume", queue), async () => { await api(`/queues/${q}/resume`, { method: "POST" }); return `${queue} resumed`; }) } })
        : el("button", { type: "button", "data-action": "pause", text: "Pause", on: { click: () => act(`Pause ${queue}: claims take nothing until resumed; enqueues still work.`, command("pause", queue), async () => { await api(`/queues/${q}/pause`, { method: "POST" }); return `${queue} paused`; }) } }),
      v.paused ? command("resume", queue) : command("pause", queue)),
      ...actionRow(el("span", { class: "inline" }, limitInput, el("button", { type: "button", "data-action": "limit", text: "Set in-flight limit",
        on: { click: () => { const n = Number(document.getElementById("limit-input").value); act(`Set the in-flight limit of ${queue} to ${n} (0: no limit).`, command("limit", queue, String(n)), async () => { await api(`/queues/${q}/limit`, { method: "PUT", json: { limit: n } }); return `${queue}: limit ${n}`; }); } } })),
      command("limit", queue, "N")),
      ...actionRow(el("span", { class: "inline" }, el("button", { type: "button", "data-action": "redrive-all", disabled: v.dead === 0, text: `Redrive all dead (${fmtInt(v.dead)})`,
        on: { click: () => {
          const typed = document.getElementById("rate-input").value; // the element on the page: a refresh keeps it, not this copy
          const rate = typed === "" ? 0 : Math.floor(Number(typed));
          if (rate > 0) {
            act(`Put all ${v.dead} dead letter(s) of ${queue} back to ready, ${rate} a second, attempts reset?`, command("dlq", "redrive", queue) + " (all at once; the rate is the server's)", async () => { const r = await api(`/queues/${q}/dead/redrive?rate=${rate}`, { method: "POST" }); return `redriving ${r.scheduled} dead letter(s), ${r.rate} a second (about ${fmtDuration(r.seconds)})`; });
          } else {
            act(`Put all ${v.dead} dead letter(s) of ${queue} back to ready, attempts reset?`, command("dlq", "redrive", queue), async () => { const r = await api(`/queues/${q}/dead/redrive`, { method: "POST" }); return `redrove ${r.redriven} dead letter(s)`; });
          }
        } } }), " at ", rateInput, " per second (empty: all at once)"),
      command("dlq", "redrive", queue)),
      ...actionRow(el("button", { type: "button", class: "danger", "data-action": "purge-dead", disabled: v.dead === 0, text: `Purge dead (${fmtInt(v.dead)})`,
        on: { click: () => act(`Delete all ${v.dead} dead letter(s) of ${queue}? This cannot be undone.`, command("dlq", "purge", queue, "--yes"), async () => { const r = await api(`/queues/${q}/dead/purge`, { method: "POST" }); return `deleted ${r.purged} dead letter(s)`; }) } }),
      command("dlq", "purge", queue, "--yes")),
      ...actionRow(el("button", { type: "button", class: "danger", "data-action": "purge", text: "Purge queue",
        on: { click: () => act(`Delete EVERY message of ${queue}, in-flight ones too? This cannot be undone.`, command("purge", queue, "--yes"), async () => { const r = await api(`/queues/${q}`.concat("/messages"), { method: "DELETE" }); return `deleted ${r.purged} message(s)`; }) } }),
      command("purge", queue, "--yes")));
  }

  async function drawCharts() {
    const samples = await history(queue, range, 30000);
    const pts = (key) => samples.map((s) => [Date.parse(s.at), s[key]]);
    update(charts,
      chart("Depth (messages)", [
        { name: "ready", cls: "s-ready", points: pts("ready") }, { name: "delayed", cls: "s-delayed", points: pts("delayed") },
        { name: "in flight", cls: "s-inflight", points: pts("in_flight") }, { name: "dead", cls: "s-dead", points: pts("dead") }], fmtInt),
      chart("Rates (messages per minute)", [
        { name: "in (enqueued)", cls: "s-in", points: rates(samples, "enqueued_total") },
        { name: "out (acked)", cls: "s-out", points: rates(samples, "acked_total") }], (v) => v.toFixed(v < 10 ? 1 : 0)),
      chart("Oldest ready message (age)", [{ name: "oldest ready", cls: "s-age", points: pts("oldest_ready_age_seconds") }], fmtDuration));
  }

  async function loadList() {
    const p = new URLSearchParams({ state, limit: "100" });
    const f = new FormData(filters);
    for (const k of ["priority", "group", "error"]) if (f.get(k) !== "") p.set(k, f.get(k));
    const r = await api(`/queues/${q}/messages?${p}`);
    if (r.messages.length === 0) {
      update(list, el("div", { class: "empty", text: "No messages here." }));
      return;
    }
    const finished = state === "dead";
    update(list, el("table", { id: "messages" },
      el("thead", {}, el("tr", {}, el("th", { class: "n", text: "Id" }), el("th", { class: "n", text: "Priority" }),
        el("th", { class: "n", text: "Attempts" }), el("th", { text: "Group" }), el("th", { text: "Enqueued" }),
        el("th", { text: finished ? "Died" : "Visible at" }), el("th", { text: "Last error" }))),
      el("tbody", {}, r.messages.map((m) => el("tr", { "data-id": m.id },
        el("td", { class: "n" }, el("a", { href: `#/q/${q}/m/${m.id}`, text: String(m.id) })),
        el("td", { class: "n", text: String(m.priority) }),
        el("td", { class: "n", text: m.attempts + " / " + m.max_attempts }),
        el("td", { text: m.group || "" }),
        el("td", { text: fmtTime(m.enqueued_at) }),
        el("td", { text: fmtTime(finished ? m.finished_at : m.visible_at) }),
        el("td", { class: "err", text: m.last_error || "" }))))),
      r.truncated ? el("p", { class: "muted", text: "Showing the first 100; narrow the filter to see others." }) : null);
  }

  async function loadGroups() {
    const r = await api(`/queues/${q}/dead/groups`);
    if (r.groups.length === 0) {
      update(groups, el("div", { class: "empty", text: "No dead letters." }));
      return;
    }
    update(groups, el("table", { id: "dead-groups" },
      el("thead", {}, el("tr", {}, el("th", { text: "Last error" }), el("th", { class: "n", text: "Count" }), el("th", { text: "Latest" }), info.read_only ? null : el("th", { text: "" }))),
      el("tbody", {}, r.groups.map((g) => {
        const idArgs = g.ids.length <= 20 ? g.ids.flatMap((id) => ["--id", String(id)]) : ["--id", g.ids.slice(0, 3).join(",") + ",…"];
        return el("tr", {},
          el("td", { class: "err", text: g.error || "(no error text)" }),
          el("td", { class: "n", text: fmtInt(g.count) }),
          el("td", { text: fmtTime(g.last_at) }),
          info.read_only ? null : el("td", {},
            el("button", { type: "button", "data-action": "redrive-group", text: `Redrive ${g.count}`,
              on: { click: () => act(`Redrive the ${g.count} dead letter(s) of ${queue} that failed with:\n${g.error}`, command("dlq", "redrive", queue, ...idArgs), async () => { const x = await api(`/queues/${q}/dead/redrive`, { method: "POST", json: { ids: g.ids } }); return `redrove ${x.redriven} dead letter(s)`; }) } }),
            " ",
            el("button", { type: "button", class: "danger", "data-action": "purge-group", text: `Purge ${g.count}`,
              on: { click: () => act(`Delete the ${g.count} dead letter(s) of ${queue} that failed with:\n${g.error}\nThis cannot be undone.`, command("dlq", "purge", queue, ...idArgs, "--yes"), async () => { const x = await api(`/queues/${q}/dead/purge`, { method: "POST", json: { ids: g.ids } }); return `deleted ${x.purged} dead letter(s)`; }) } })));
      }))),
      r.truncated ? el("p", { class: "muted", text: `Grouped the newest ${fmtInt(r.scanned)} dead letters only.` }) : null);
  }

  let chartsAt = 0;
  return {
    async refresh(force) {
      let v;
      try {
        v = await api(`/queues/${q}`);
      } catch (e) {
        if (e.status !== 404) throw e;
        v = { queue, ready: 0, delayed: 0, in_flight: 0, dead: 0, leases: 0, in_flight_limit: 0, paused: false, oldest_ready_age_seconds: 0, in_per_second: null, out_per_second: null, drain_seconds: null };
      }
      update(title, queue, v.paused ? el("span", { class: "badge paused", text: "paused" }) : "");
      update(cards,
        card("ready", "Ready", fmtInt(v.ready)), card("delayed", "Delayed", fmtInt(v.delayed)),
        card("inflight", "In flight", fmtInt(v.in_flight), "", v.in_flight_limit > 0 ? `${v.leases} of ${v.in_flight_limit} leases` : `${v.leases} leases, no limit`),
        card("dead", "Dead", fmtInt(v.dead), "dead"),
        card("age", "Oldest ready", v.ready > 0 ? fmtDuration(v.oldest_ready_age_seconds) : "—"),
        card("in", "In", fmtRate(v.in_per_second)), card("out", "Out", fmtRate(v.out_per_second)),
        card("drain", "Time to drain", v.drain_seconds === null ? (v.in_per_second === null ? "—" : "not draining") : fmtDuration(v.drain_seconds)));
      drawActions(v);
      const jobs = [loadList()];
      if (state === "dead") jobs.push(loadGroups());
      if (force || Date.now() - chartsAt > 30000) { chartsAt = Date.now(); jobs.push(drawCharts()); }
      await Promise.all(jobs);
    },
  };
}

// ---- message page ------------------------------------------------------------------

function messagePage(queue, id) {
  const root = document.getElementById("view");
  const q = encodeURIComponent(queue);
  const fields = el("dl", { class: "fields" });
  const bodyBox = el("div");
  const buttons = el("div", { class: "actions" });
  replace(root,
    el("div", { class: "crumbs" }, el("a", { href: "#/", text: "Queues" }), " / ", el("a", { href: `#/q/${q}`, text: queue }), " / message " + id),
    el("h1", { text: `Message ${id}` }), fields, buttons,
    el("h2", { text: "Body" }), bodyBox);
  const showBody = el("button", { type: "button", id: "show-body", text: "Show body", on: { click: async () => {
    try {
      const m = await api(`/queues/${q}/messages/${id}?body=true`);
      bodyBox.replaceChildren(el("pre", { id: "body", text: JSON.stringify(m.body, null, 2) }));
    } catch (e) { showBanner(e.message); }
  } } });
  bodyBox.replaceChildren(el("p", { class: "muted", text: "Hidden until asked: bodies may hold personal data. " }), showBody);
  let shown = false;
  return {
    async refresh() {
      let m;
      try {
        m = await api(`/queues/${q}/messages/${id}`);
      } catch (e) {
        if (e.status !== 404) throw e;
        update(fields, el("dt", { text: "state" }), el("dd", { text: "gone: acked and deleted, or purged" }));
        update(buttons);
        return;
      }
      const row = (k, v) => [el("dt", { text: k }), el("dd", {}, v)];
      update(fields,
        ...row("queue", el("a", { href: `#/q/${q}`, text: queue })),
        ...row("state", m.state === "waiting" ? "waiting (delayed, retrying or in flight)" : m.state.replace("_", " ")),
        ...row("priority", String(m.priority)),
        ...row("attempts", `${m.attempts} of ${m.max_attempts}`),
        ...row("group", m.group || "—"),
        ...row("dedupe key", m.dedupe_key || "—"),
        ...row("enqueued", fmtTime(m.enqueued_at)),
        ...(m.finished_at ? row(m.state === "dead" ? "died" : "acked", fmtTime(m.finished_at)) : row(m.state === "ready" ? "ready since" : "visible at", fmtTime(m.visible_at))),
        ...row("enqueued by", runLink(m.enqueued_by, m.enqueued_by_url, "enqueued-by")),
        ...row("last claimed by", runLink(m.claimed_by, m.claimed_by_url, "claimed-by")),
        ...row("size", fmtInt(m.size) + " bytes"),
        ...row("last error", m.last_error ? el("pre", { id: "last-error", text: m.last_error }) : "—"));
      if (m.state === "dead" && !info.read_only && !shown) {
        shown = true;
        update(buttons,
          ...actionRow(el("button", { type: "button", "data-action": "redrive-one", text: "Redrive",
            on: { click: () => act(`Put message ${id} back to ready, attempts reset?`, command("dlq", "redrive", queue, "--id", String(id)), async () => { const r = await api(`/queues/${q}/dead/redrive`, { method: "POST", json: { ids: [Number(id)] } }); return `redrove ${r.redriven} dead letter(s)`; }) } }),
          command("dlq", "redrive", queue, "--id", String(id))),
          ...actionRow(el("button", { type: "button", class: "danger", "data-action": "purge-one", text: "Purge",
            on: { click: () => act(`Delete message ${id}? This cannot be undone.`, command("dlq", "purge", queue, "--id", String(id), "--yes"), async () => { const r = await api(`/queues/${q}/dead/purge`, { method: "POST", json: { ids: [Number(id)] } }); return `deleted ${r.purged} dead letter(s)`; }) } }),
          command("dlq", "purge", queue, "--id", String(id), "--yes")));
      } else if (m.state !== "dead") {
        shown = false;
        update(buttons);
      }
    },
  };
}

// ---- routing and refresh ---------------------------------------------------------------

function route() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "q" && parts[1]) {
    if (parts[2] === "m" && /^\d+$/.test(parts[3] || "")) return messagePage(parts[1], parts[3]);
    const state = STATES.some(([s]) => s === parts[2]) ? parts[2] : "ready";
    return queuePage(parts[1], state);
  }
  return overviewPage();
}

async function refresh(force) {
  if (!view) return;
  try {
    await view.refresh(force);
    if (!force) clearError();
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.status !== 401 && !leaving) showBanner(e.message);
  }
}

function navigate() {
  clearBanner();
  view = route();
  refresh(true);
}

async function start() {
  try {
    info = await api("/info");
  } catch (e) {
    showBanner(e.message);
    return;
  }
  document.getElementById("db").textContent = info.db;
  document.getElementById("readonly").classList.toggle("hidden", !info.read_only);
  document.getElementById("readonly").classList.add("readonly");
  document.getElementById("logout").classList.toggle("hidden", !info.auth);
  document.getElementById("logout").addEventListener("submit", () => {
    leaving = true;
    window.clearInterval(timer);
  });
  window.addEventListener("hashchange", navigate);
  navigate();
  timer = window.setInterval(() => refresh(false), info.refresh_ms);
}

start();
