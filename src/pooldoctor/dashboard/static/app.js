// pooldoctor dashboard: polls /api/state and draws it. No build step, no dependencies.
// Everything from the API is written with textContent (never as HTML).
"use strict";

const SERIES = [["used", "checked out"], ["idle", "idle"], ["overflow", "overflow"], ["waiting", "waiting"]];
const SERVER_SERIES = [["total", "total"], ["active", "active"], ["idle", "idle"], ["transaction", "in transaction"]];
const COLORS = { used: "--used", idle: "--idle", overflow: "--overflow", waiting: "--waiting",
                 total: "--fg", active: "--active", transaction: "--txn" };
const WINDOW = 600;           // samples shown in a chart
const openGroups = new Set(); // holds groups whose stacks are shown
let openCode = null;
let pollMs = 1000;
let failures = 0;

function $(sel) { return document.querySelector(sel); }
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function color(name) { return getComputedStyle(document.documentElement).getPropertyValue(COLORS[name]).trim(); }
function secs(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function bound(b) { return b === null ? "+inf" : (b < 1 ? Math.round(b * 1000) + "ms" : b + "s"); }
function clock(t) { return new Date(t * 1000).toLocaleTimeString(); }
function where(site) { return site ? `${site.file}:${site.line}` : ""; }

// ---------------------------------------------------------------- charts

function lineChart(node, hist, series, ymin) {
  const n = hist.t.length;
  const W = 600, H = 160, L = 30, B = 16, T = 6;
  node.setAttribute("viewBox", `0 0 ${W} ${H}`);
  node.setAttribute("preserveAspectRatio", "none");
  node.setAttribute("data-points", String(n));
  node.replaceChildren();
  const start = Math.max(0, n - WINDOW);
  let ymax = ymin || 1;
  for (const [k] of series) for (let i = start; i < n; i++) ymax = Math.max(ymax, hist[k][i]);
  const x = (i) => L + (n - start <= 1 ? 0 : (i - start) * (W - L - 4) / (n - start - 1));
  const y = (v) => H - B - (v / ymax) * (H - B - T);
  for (const v of [0, Math.ceil(ymax / 2), ymax]) {
    node.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "grid" }));
    const t = svg("text", { x: 2, y: y(v) + 3 }); t.textContent = String(v); node.append(t);
  }
  if (n) {
    const t0 = svg("text", { x: L, y: H - 3 }); t0.textContent = clock(hist.t[start]); node.append(t0);
    const t1 = svg("text", { x: W - 60, y: H - 3 }); t1.textContent = clock(hist.t[n - 1]); node.append(t1);
  }
  for (const [k] of series) {
    const pts = [];
    for (let i = start; i < n; i++) pts.push(`${x(i).toFixed(1)},${y(hist[k][i]).toFixed(1)}`);
    node.append(svg("polyline", { points: pts.join(" "), stroke: color(k), "data-series": k }));
  }
}

function legend(node, series) {
  node.replaceChildren(...series.map(([k, label]) => {
    const i = el("i"); i.style.background = color(k); return el("span", {}, i, label);
  }));
}

function histogram(title, h) {
  const late = h.timed_out ? `, ${h.timed_out} timed out` : "";
  const box = el("div", { class: "hist" }, el("h4", { text: `${title} (${h.count}${late}, mean ${secs(h.count ? h.sum / h.count : null)})` }));
  const W = 300, H = 130, B = 22;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const max = Math.max(1, ...h.counts);
  const bw = W / h.counts.length;
  h.counts.forEach((c, i) => {
    const bh = (c / max) * (H - B - 12);
    const r = svg("rect", { x: i * bw + 1, y: H - B - bh, width: bw - 2, height: bh });
    const tip = svg("title"); tip.textContent = `<= ${bound(h.le[i])}: ${c}`; r.append(tip);
    s.append(r);
    if (c) { const t = svg("text", { x: i * bw + 2, y: H - B - bh - 2 }); t.textContent = String(c); s.append(t); }
    if (i % 2 === 0) { const t = svg("text", { x: i * bw + 1, y: H - 4 }); t.textContent = bound(h.le[i]); s.append(t); }
  });
  box.append(s);
  return box;
}

// ---------------------------------------------------------------- sections

function figure(label, value, bad) {
  return el("div", { class: "figure" + (bad ? " bad" : "") }, el("span", { text: label }), el("b", { text: String(value) }));
}

function renderPools(pools) {
  const box = $("#pools");
  $("#pools-empty").hidden = pools.length > 0;
  const seen = new Set();
  for (const p of pools) {
    seen.add(p.key);
    let card = box.querySelector(`[data-key="${CSS.escape(p.key)}"]`);
    if (!card) {
      const chart = svg("svg", { class: "chart", "data-points": "0" });
      card = el("div", { class: "pool", "data-key": p.key },
        el("div", { class: "pool-head" }), el("div", { class: "figures" }),
        el("div", { class: "pool-body" },
          el("div", { class: "chart-wrap" }, chart, el("div", { class: "legend" })),
          el("div", { class: "hist-wait" }), el("div", { class: "hist-hold" })));
      legend(card.querySelector(".legend"), SERIES);
      box.append(card);
    }
    card.querySelector(".pool-head").replaceChildren(el("b", { text: p.label }), el("span", { class: "muted", text: p.pool_class }));
    const cap = p.max !== null ? ` / ${p.max}` : "";
    card.querySelector(".figures").replaceChildren(
      figure("checked out", p.used + cap), figure("idle", p.idle), figure("overflow", p.overflow),
      figure("waiting", p.waiting, p.waiting > 0), figure("size", p.size === null ? "-" : p.size),
      figure("checkouts", p.checkouts), figure("waited", p.waits), figure("timeouts", p.timeouts, p.timeouts > 0),
      figure("max wait", secs((p.max_wait_ms || 0) / 1000)), figure("peak out", p.peak_checked_out),
      figure("GC reclaimed", p.gc_reclaimed, p.gc_reclaimed > 0));
    lineChart(card.querySelector("svg.chart"), p.history, SERIES, p.max || p.size || 1);
    card.querySelector(".hist-wait").replaceChildren(histogram("checkout wait", p.wait_s));
    card.querySelector(".hist-hold").replaceChildren(histogram("hold time", p.hold_s));
  }
  for (const card of [...box.children]) if (!seen.has(card.dataset.key)) card.remove();
}

function stackList(stack) {
  return el("pre", { text: (stack || []).map((s) => `${s.file}:${s.line} in ${s.function || "?"}`).join("\n") || "(no stack)" });
}

function renderHolds(holds) {
  const body = $("#holds tbody");
  $("#holds-total").textContent = `(${holds.total})`;
  $("#holds-empty").hidden = holds.total > 0;
  const rows = [];
  for (const g of holds.groups) {
    const key = g.where;
    const procs = g.holds.map((h) => h.pid).filter((v, i, a) => v !== undefined && a.indexOf(v) === i);
    const tr = el("tr", { class: "group", "data-site": where(g.site) },
      el("td", { class: "mono", text: (openGroups.has(key) ? "▾ " : "▸ ") + g.where }),
      el("td", { class: "num", text: String(g.count) }),
      el("td", { class: "num", text: secs(g.oldest_s) }),
      el("td", { text: g.pools.filter((x) => x).join(", ") }),
      el("td", { text: procs.map((p) => "pid " + p).join(", ") }));
    tr.addEventListener("click", () => { openGroups.has(key) ? openGroups.delete(key) : openGroups.add(key); poll(); });
    rows.push(tr);
    if (openGroups.has(key)) {
      for (const h of g.holds) {
        const info = [`held ${secs(h.age_s)}`, h.kind, h.thread && `thread ${h.thread}`, h.task && `task ${h.task}`,
          h.server_id !== undefined && h.server_id !== null && `server id ${h.server_id}`,
          h.transaction_age_s !== undefined && h.transaction_age_s !== null && `transaction ${secs(h.transaction_age_s)}`,
          h.pid && `pid ${h.pid} ${h.program || ""}`].filter((x) => x).join(" · ");
        rows.push(el("tr", { class: "detail" }, el("td", { colspan: "5" }, el("div", { class: "muted", text: info }), stackList(h.stack))));
      }
    }
  }
  body.replaceChildren(...rows);
}

function renderFindings(findings) {
  $("#findings-total").textContent = `(${findings.length})`;
  $("#findings-empty").hidden = findings.length > 0;
  $("#findings tbody").replaceChildren(...findings.map((f) => {
    const tr = el("tr", { class: "finding", "data-code": f.code },
      el("td", {}, el("span", { class: "sev-" + f.severity, text: f.code }), el("div", { class: "muted", text: f.name })),
      el("td", {}, el("div", { text: f.message }), el("div", { class: "muted", text: "fix: " + f.hint })),
      el("td", { class: "mono", text: f.where || "" }),
      el("td", { class: "num", text: String(f.count) }),
      el("td", { text: new Date(f.last_seen).toLocaleTimeString() }));
    tr.addEventListener("click", () => showCode(f.code));
    return tr;
  }));
}

// A small Markdown subset (headings, fenced code, paragraphs, list items), as text nodes.
function renderMarkdown(md) {
  const out = [];
  let code = null, para = [], item = null;
  const flush = () => {
    if (para.length) { out.push(el("p", { text: para.join(" ") })); para = []; }
    if (item !== null) { out.push(el("li", { text: item })); item = null; }
  };
  for (const line of md.split("\n")) {
    if (line.startsWith("```")) {
      if (code === null) { flush(); code = []; } else { out.push(el("pre", { text: code.join("\n") })); code = null; }
    } else if (code !== null) code.push(line);
    else if (/^#{1,3} /.test(line)) { flush(); const n = line.indexOf(" "); out.push(el("h" + n, { text: line.slice(n + 1) })); }
    else if (line.trim() === "") flush();
    else if (/^\s*[-*] /.test(line)) { flush(); item = line.replace(/^\s*[-*] /, ""); }
    else if (item !== null) item += " " + line.trim();
    else para.push(line.trim());
  }
  flush();
  if (code !== null) out.push(el("pre", { text: code.join("\n") }));
  return out;
}

async function showCode(code) {
  const box = $("#code-doc");
  if (openCode === code) { openCode = null; box.hidden = true; return; }
  openCode = code;
  const r = await fetch(`/api/codes/${encodeURIComponent(code)}`, { credentials: "same-origin" });
  if (!r.ok) { box.replaceChildren(el("p", { class: "error", text: `no page for ${code}` })); box.hidden = false; return; }
  const page = await r.json();
  box.replaceChildren(...(page.markdown ? renderMarkdown(page.markdown) : [el("h1", { text: `${page.code} ${page.name}` }), el("p", { text: page.title }), el("p", { text: "fix: " + page.hint })]));
  box.hidden = false;
}

function renderServer(s) {
  const sec = $("#server-section");
  sec.hidden = !s;
  if (!s) return;
  $("#server-url").textContent = s.url ? `${s.url} (${s.backend} ${s.server_version || ""})` : "";
  const err = $("#server-error");
  err.hidden = !s.error; err.textContent = s.error ? "server unreachable: " + s.error : "";
  if (s.total === undefined) return;
  const pct = s.limit ? Math.min(100, Math.round(100 * s.total / s.limit)) : 0;
  const fill = el("div"); fill.style.width = pct + "%";
  if (pct >= 80) fill.style.background = "#c92a2a";
  const chips = el("div", { class: "chips" }, ...Object.entries(s.states).map(([k, v]) => el("span", {}, el("b", { text: String(v) }), " " + k)));
  $("#server-summary").replaceChildren(
    el("p", {}, el("b", { text: `${s.total} / ${s.limit}` }), " connections against the limit ", el("span", { class: "bar" }, fill), ` ${pct} %`,
      el("span", { class: "muted", text: ` · ${s.attributed} attributed to a site of a guarded process` })), chips);
  lineChart($("#server-chart"), s.history, SERVER_SERIES, s.limit ? Math.min(s.limit, Math.max(...s.history.total, 1) * 2) : 1);
  legend($("#server-legend"), SERVER_SERIES);
  $("#server-apps tbody").replaceChildren(...s.applications.map((g) => el("tr", {},
    el("td", { text: g.value === null ? "(none)" : String(g.value) }), el("td", { class: "num", text: String(g.total) }),
    el("td", { class: "num", text: String(g.active) }), el("td", { class: "num", text: String(g.idle) }),
    el("td", { class: "num", text: String(g.in_transaction) }))));
  $("#server-sites-empty").hidden = s.sites.length > 0;
  $("#server-sites tbody").replaceChildren(...s.sites.map((g) => el("tr", { "data-site": where(g.site) },
    el("td", { class: "mono", text: g.where }), el("td", { class: "num", text: String(g.total) }),
    el("td", { text: Object.entries(g.states).map(([k, v]) => `${v} ${k}`).join(", ") }),
    el("td", { class: "num", text: secs(g.longest_held_s) }),
    el("td", { text: g.pids.map((p) => "pid " + p).join(", ") }))));
  $("#server-conns tbody").replaceChildren(...s.connections.map((c) => {
    const held = c.holder ? (c.holder.site ? el("details", {}, el("summary", { class: "mono", text: c.holder.text }), stackList(c.holder.stack)) : c.holder.text) : "";
    return el("tr", { "data-id": String(c.id) },
      el("td", { class: "num", text: String(c.id) + (c.own ? " *" : "") }), el("td", { text: c.user || "" }),
      el("td", { text: c.application || "" }), el("td", { text: c.client || "" }), el("td", { text: c.state }),
      el("td", { class: "num", text: secs(c.state_s) }), el("td", { class: "num", text: secs(c.xact_s) }),
      el("td", {}, held), el("td", { class: "mono query", text: (c.query || "").slice(0, 120) }));
  }));
  $("#server-notes").replaceChildren(...(s.notes || []).map((n) => el("li", { text: n })));
}

// ---------------------------------------------------------------- polling

async function poll() {
  try {
    const r = await fetch("/api/state", { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const s = await r.json();
    pollMs = Math.min(2000, Math.max(1000, (s.interval || 1) * 1000));
    $("#mode").textContent = s.mode === "process" ? `inside pid ${s.pid}` : "standalone";
    $("#updated").textContent = "updated " + clock(s.now);
    renderPools(s.pools);
    renderHolds(s.holds);
    renderFindings(s.findings);
    renderServer(s.server);
    failures = 0;
    $("#status").textContent = ""; $("#status").className = "status";
  } catch (e) {
    failures += 1;
    $("#status").textContent = `cannot reach the dashboard (${e.message}); retrying`;
    $("#status").className = "status bad";
  }
}

let timer = null;
async function loop() { await poll(); timer = setTimeout(loop, failures ? Math.min(10000, pollMs * 2 ** failures) : pollMs); }
document.addEventListener("DOMContentLoaded", loop);
