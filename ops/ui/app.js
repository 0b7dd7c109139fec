// Manta status page: plain JS, no build step. It polls the member's JSON
// endpoints and redraws; every value from the server goes into the DOM as
// text (never as HTML).
"use strict";

const REFRESH_MS = 2000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v; // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)) + " " + u[i];
}

function dur(msv) {
  if (msv === null || msv === undefined) return "";
  if (msv === 0) return "0";
  if (msv < 1) return (msv * 1000).toFixed(0) + " µs";
  if (msv < 1000) return msv.toFixed(msv < 10 ? 2 : 1) + " ms";
  return (msv / 1000).toFixed(2) + " s";
}

function ago(iso) {
  if (!iso || iso.startsWith("0001")) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
  return (s / 86400).toFixed(1) + " d ago";
}

// A member that requires a bearer token (manta serve --http-token) is
// opened as /#token=<token>: the token moves to session storage (out of
// the address bar and history) and goes with every request.
const TOKEN = (() => {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("manta-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("manta-token") || "";
})();

async function getJSON(path) {
  const headers = { "Accept": "application/json" };
  if (TOKEN) headers["Authorization"] = "Bearer " + TOKEN;
  const r = await fetch(path, { cache: "no-store", headers });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

// members: /v1/members when mounted, else /v1/status (members without
// details) with this member's details from /v1/member.
async function load() {
  const local = await getJSON("v1/member").catch(() => null);
  let members;
  try {
    members = (await getJSON("v1/members")).members || [];
  } catch (e) {
    const st = (await getJSON("v1/status")).members || [];
    members = st.map((m) => {
      const isLocal = !!local && (st.length === 1 || m.http === location.host);
      return Object.assign({}, m, { local: isLocal, detail: isLocal ? local : null });
    });
  }
  return { members, local };
}

function memberName(m) {
  return (m.detail && m.detail.member) || m.address || m.id;
}

function renderMembers(members) {
  const box = document.getElementById("members");
  box.replaceChildren();
  for (const m of members) {
    const budget = m.budget_bytes || 0;
    const pct = (x) => budget > 0 ? Math.min(100, 100 * x / budget).toFixed(2) + "%" : "0%";
    const active = m.active_models || [];
    const card = el("div", { class: "member" + (m.local ? " local" : ""), "data-member": memberName(m) },
      el("h3", {}, memberName(m), m.local ? el("span", { class: "muted" }, " (this member)") : null),
      el("div", { class: "addr" }, "cluster " + (m.address || "?") + (m.http ? " · http " + m.http : "")),
      el("div", { class: "bar", title: "model memory" },
        el("div", { class: "used", style: "width:" + pct(m.used_bytes) }),
        el("div", { class: "pinned", style: "width:" + pct(m.pinned_bytes) }),
        el("div", { class: "high", style: "left:" + pct(m.high_water_bytes) })),
      el("div", { class: "memtext" }, bytes(m.used_bytes) + " of " + bytes(budget) + " used (" + pct(m.used_bytes) +
        ") · pinned " + bytes(m.pinned_bytes) + " · high water " + bytes(m.high_water_bytes)),
      el("div", { class: "facts" },
        el("span", {}, el("b", {}, m.models_loaded || 0), " loaded"),
        el("span", {}, el("b", {}, active.length), " active"),
        el("span", {}, el("b", {}, m.activations || 0), " activations"),
        el("span", {}, el("b", {}, m.loads || 0), " loads"),
        el("span", {}, el("b", {}, m.evictions || 0), " evictions")),
      el("div", { class: "chips" }, ...active.map((a) => el("span", { class: "chip", "data-model": a }, a))),
      m.error ? el("div", { class: "error" }, m.error) : null,
      m.detail_error ? el("div", { class: "error" }, "details: " + m.detail_error) : null);
    box.append(card);
  }
}

function renderModels(members) {
  const body = document.querySelector("#models tbody");
  body.replaceChildren();
  let rows = 0, total = 0;
  for (const m of members) {
    const d = m.detail;
    if (!d) continue;
    total += d.models_total || 0;
    for (const s of d.models || []) {
      rows++;
      body.append(el("tr", { class: s.active ? "active" : "", "data-model": s.model },
        el("td", { class: "model" }, s.model),
        el("td", {}, s.version || ""),
        el("td", {}, memberName(m)),
        el("td", { class: "state" }, s.active ? "active" : "idle"),
        el("td", { class: "num requests" }, s.count),
        el("td", { class: "num errors" + (s.errors ? " some" : "") }, s.errors),
        el("td", { class: "num" }, dur(s.mean_ms)),
        el("td", { class: "num" }, dur(s.p50_ms)),
        el("td", { class: "num" }, dur(s.p95_ms)),
        el("td", { class: "num" }, dur(s.p99_ms)),
        el("td", { class: "num" }, dur(s.max_ms)),
        el("td", { class: "num" }, s.batches),
        el("td", { class: "num" }, bytes(s.memory_bytes)),
        el("td", {}, ago(s.since)),
        qualityCell(s.quality),
        driftCell(s.quality)));
    }
  }
  document.getElementById("models-note").textContent =
    rows < total ? "showing " + rows + " of " + total : rows + " with traffic";
  if (rows === 0) {
    body.append(el("tr", {}, el("td", { colSpan: 16, class: "muted" }, "no model has served a request yet")));
  }
}

// qualityCell shows a monitored model's live measures (and, on hover,
// its first window's), with its primary measure over time as a sparkline.
function qualityCell(q) {
  if (!q) return el("td", { class: "quality muted" }, "–");
  const fmt = (m) => Object.keys(m || {}).sort().map((k) => k + " " + Number(m[k]).toPrecision(3)).join(" · ");
  const text = fmt(q.measures) || "no labels";
  const td = el("td", { class: "quality", title: q.joined + " labels joined, " + q.unknown_ids + " unknown ids" +
    (q.first ? "; first window: " + fmt(q.first) : "") }, text);
  const h = q.history || [];
  if (h.length > 1) td.append(" ", spark(h.map((p) => p.value), h[h.length - 1].measure));
  return td;
}

function driftCell(q) {
  if (!q || q.drift === undefined || q.drift === null) return el("td", { class: "num drift muted" }, "–");
  return el("td", { class: "num drift" + (q.drift > 0.25 ? " some" : ""), title: "largest feature PSI" }, q.drift.toFixed(3));
}

// spark draws values as a small SVG line.
function spark(values, measure) {
  const ns = "http://www.w3.org/2000/svg";
  const W = 80, H = 18;
  const lo = Math.min(...values), hi = Math.max(...values);
  const pts = values.map((v, i) =>
    (W * i / (values.length - 1)).toFixed(1) + "," + (H - 2 - (H - 4) * (hi > lo ? (v - lo) / (hi - lo) : 0.5)).toFixed(1));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  const title = document.createElementNS(ns, "title");
  title.textContent = measure + " over time: " + values.map((v) => Number(v).toPrecision(3)).join(" → ");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2f7de1");
  line.setAttribute("stroke-width", "1.5");
  svg.append(title, line);
  return svg;
}

function renderChart(points) {
  const c = document.getElementById("latency");
  const ctx = c.getContext("2d");
  const W = c.width, H = c.height, L = 60, R = 50, T = 10, B = 24;
  ctx.clearRect(0, 0, W, H);
  points = points || [];
  const n = points.length;
  const note = document.getElementById("chart-note");
  if (n === 0) { note.textContent = "no metrics attached"; return; }
  const timed = points.filter((p) => p.p99_ms > 0);
  const maxMS = Math.max(1, ...timed.map((p) => p.p99_ms)) * 1.15;
  const maxRPS = Math.max(1, ...points.map((p) => p.requests)) * 1.15;
  const x = (i) => L + (W - L - R) * (n <= 1 ? 0 : i / (n - 1));
  const yMS = (v) => H - B - (H - B - T) * v / maxMS;
  const yRPS = (v) => H - B - (H - B - T) * v / maxRPS;
  ctx.font = "11px sans-serif";
  ctx.strokeStyle = "#e2e5ea";
  ctx.fillStyle = "#6b7480";
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const y = T + (H - B - T) * k / 4;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText(dur(maxMS * (4 - k) / 4), L - 6, y + 4);
    ctx.textAlign = "left"; ctx.fillText(Math.round(maxRPS * (4 - k) / 4) + "/s", W - R + 6, y + 4);
  }
  ctx.textAlign = "center";
  for (let i = 0; i < n; i += 60) {
    ctx.fillText("-" + (n - 1 - i) + " s", x(i), H - 6);
  }
  ctx.fillStyle = "#cdd6e3";
  const bw = Math.max(1, (W - L - R) / n - 1);
  points.forEach((p, i) => {
    if (p.requests > 0) ctx.fillRect(x(i) - bw / 2, yRPS(p.requests), bw, H - B - yRPS(p.requests));
  });
  const line = (key, color) => {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    let open = false;
    points.forEach((p, i) => {
      if (!(p[key] > 0)) { open = false; return; }
      if (!open) { ctx.moveTo(x(i), yMS(p[key])); open = true; } else ctx.lineTo(x(i), yMS(p[key]));
      ctx.fillStyle = color; ctx.fillRect(x(i) - 1.5, yMS(p[key]) - 1.5, 3, 3);
    });
    ctx.stroke();
  };
  line("p99_ms", "#e0862f");
  line("p50_ms", "#2f7de1");
  const reqs = points.reduce((a, p) => a + p.requests, 0);
  note.textContent = reqs + " requests in the window";
}

let failures = 0;

async function refresh() {
  const conn = document.getElementById("conn");
  try {
    const { members, local } = await load();
    renderMembers(members);
    renderModels(members);
    renderChart(local ? local.recent : []);
    const active = members.reduce((a, m) => a + (m.active_models || []).length, 0);
    document.getElementById("summary").textContent =
      members.length + (members.length === 1 ? " member" : " members") + " · " + active + " active models";
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    conn.textContent = "live"; conn.className = "pill ok";
    document.body.setAttribute("data-ready", "1");
    failures = 0;
  } catch (e) {
    failures++;
    conn.textContent = "unreachable"; conn.className = "pill bad";
    conn.title = String(e);
  }
  setTimeout(refresh, failures > 0 ? Math.min(REFRESH_MS * 2 ** failures, 30000) : REFRESH_MS);
}

refresh();
