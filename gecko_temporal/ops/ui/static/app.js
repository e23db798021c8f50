// gecko-temporal live page. Every name and value is written with DOM text nodes (never innerHTML),
// so a node called <img src=x onerror=...> is shown as those characters.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "gecko-ui-token";
const STATUSES = ["not_run", "running", "completed", "failed", "waiting", "cached"];
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
  return e;
}

// -- the token: ?token=T once, then kept for this tab only ------------------------------------------
(function takeToken() {
  const url = new URL(location.href);
  const t = url.searchParams.get("token");
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search);
  }
})();

function headers(write) {
  const h = {};
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) h["Authorization"] = "Bearer " + t;
  if (write) { h["Content-Type"] = "application/json"; h["X-Gecko-UI"] = "1"; }
  return h;
}

async function api(path, body) {
  const opts = body === undefined ? { headers: headers(false) } : { method: "POST", headers: headers(true), body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { data = { error: `HTTP ${r.status}` }; }
  if (!r.ok) {
    if (r.status === 401) $("#token-form").hidden = false;
    throw new Error(data.error || `HTTP ${r.status}`);
  }
  return data;
}

function say(text, ok) {
  const m = $("#message");
  m.hidden = !text;
  m.className = ok ? "ok" : "error";
  m.textContent = text || "";
}

function confirmThen(text, action) {
  const box = $("#confirm");
  $("#confirm-text").textContent = text;
  box.hidden = false;
  const yes = $("#confirm-yes"), no = $("#confirm-no");
  const done = () => { box.hidden = true; yes.onclick = null; no.onclick = null; };
  yes.onclick = async () => { done(); await action(); };
  no.onclick = done;
  yes.focus();
}

function age(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function badge(status) { return el("span", { class: `badge b-${status || "unknown"}`, "data-run-status": status || "" }, status || "?"); }
function pretty(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 1); }

$("#token-form") && $("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value);
  location.reload();
});

// -- the runs list -----------------------------------------------------------------------------------
async function showRuns() {
  const url = new URL(location.href);
  const pipeline = url.searchParams.get("pipeline") || "", status = url.searchParams.get("status") || "";
  $("#where").textContent = "Runs";
  const main = $("#main");
  const statusSel = el("select", { name: "status", id: "filter-status" },
    ["", "running", "waiting", "completed", "failed", "cancelled"].map((s) => el("option", { value: s, selected: s === status }, s || "any status")));
  const form = el("form", { class: "filters", id: "filters" },
    el("input", { type: "text", name: "pipeline", id: "filter-pipeline", placeholder: "pipeline", value: pipeline }),
    statusSel, el("button", { type: "submit" }, "Filter"));
  main.replaceChildren(form, el("p", { class: "muted" }, "Loading runs..."));
  let data;
  try { data = await api(`/api/runs?pipeline=${encodeURIComponent(pipeline)}&status=${encodeURIComponent(status)}`); }
  catch (e) { say(e.message); return; }
  const extra = ["version", "usage"].filter((k) => data.runs.some((r) => r[k] !== undefined));
  const table = el("table", { id: "runs" },
    el("thead", {}, el("tr", {}, ["Pipeline", "Session", "Status", "Step", "Age", ...extra.map((k) => k[0].toUpperCase() + k.slice(1))].map((h) => el("th", {}, h)))),
    el("tbody", {}, data.runs.map((r) => el("tr", { "data-session": r.session },
      el("td", {}, r.pipeline || ""),
      el("td", {}, el("a", { href: `/runs/${encodeURIComponent(r.session)}` }, r.session)),
      el("td", {}, badge(r.gecko_status || r.status || r.temporal_status)),
      el("td", {}, r.step ?? ""),
      el("td", { title: r.started || "" }, age(r.started)),
      extra.map((k) => el("td", {}, r[k] === undefined ? "" : pretty(r[k])))))));
  main.replaceChildren(form, data.runs.length ? table : el("p", { class: "muted" }, "No runs match."));
  document.body.setAttribute("data-loaded", String(Date.now()));
}

// -- one run -----------------------------------------------------------------------------------------
const run = { session: null, data: null, selected: null, after: -1, timer: null, refreshing: false, streaming: false };

function drawGraph(graph) {
  const M = 24;
  const root = svg("svg", { width: graph.width + 2 * M, height: graph.height + 2 * M + 20, id: "graph", role: "img" });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#7d8597" }))));
  const layer = svg("g", { transform: `translate(${M},${M + 20})` });
  root.append(layer);
  drawInto(layer, graph, 0, 0, true);
  return root;
}

function drawInto(parent, graph, ox, oy, top) {
  const boxes = {};
  for (const n of graph.nodes) boxes[n.name] = n;
  const edges = svg("g", { class: "edges" });
  parent.append(edges);
  if (top && graph.entry && boxes[graph.entry]) {
    const e = boxes[graph.entry];
    parent.append(svg("g", { class: "start" }, svg("circle", { cx: ox + e.x + e.w / 2, cy: oy + e.y - 14, r: 5 })));
  }
  graph.edges.forEach((e, i) => {
    const a = boxes[e.source]; if (!a) return;
    const b = e.target ? boxes[e.target] : null;
    const x1 = ox + a.x + a.w / 2, y1 = oy + a.y + a.h;
    let d, lx, ly;
    if (!b) { d = `M${x1},${y1} L${x1 + 40},${y1 + 30}`; lx = x1 + 44; ly = y1 + 34; }
    else {
      const x2 = ox + b.x + b.w / 2, y2 = oy + b.y;
      if (b.layer > a.layer) { const my = (y1 + y2) / 2; d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`; lx = (x1 + x2) / 2; ly = my; }
      else { // a loop or a same-layer edge: around the right side
        const rx = ox + Math.max(a.x + a.w, b.x + b.w) + 30 + (i % 3) * 8, ya = oy + a.y + a.h / 2, yb = oy + b.y + b.h / 2;
        d = `M${ox + a.x + a.w},${ya} C${rx},${ya} ${rx},${yb} ${ox + b.x + b.w},${yb}`; lx = rx - 6; ly = (ya + yb) / 2;
      }
    }
    const g = svg("g", { class: `edge ${e.kind}`, "data-edge": `${e.source}->${e.target ?? "*"}`, "data-kind": e.kind });
    g.append(svg("path", { d, "marker-end": "url(#arrow)" }));
    if (e.label) g.append(svg("text", { x: lx + 4, y: ly - 3 }, e.label));
    edges.append(g);
  });
  for (const n of graph.nodes) parent.append(drawNode(n, ox, oy));
}

function drawNode(n, ox, oy) {
  const group = !!(n.members || n.inner);
  const g = svg("g", { class: `node ${n.kind}${group ? " group" : ""}`, "data-node": n.name, "data-status": n.status || "not_run", transform: `translate(${ox + n.x},${oy + n.y})` });
  g.append(svg("rect", { class: "box", width: n.w, height: n.h }));
  const sub = [];
  if (n.runs > 1) sub.push(`ran ${n.runs}x`);
  if (n.instances) sub.push(`${n.instances} Send instances`);
  if (n.members) sub.push(`${n.members.length} members${n.strategy ? ", " + n.strategy : ""}`);
  if (n.inner) sub.push(`subgraph ${n.graph || ""}`);
  if (n.kind === "wait") sub.push("waits for input");
  sub.push(n.status ? n.status.replace("_", " ") : "not run");
  if (group) {
    g.append(svg("text", { class: "label", x: 8, y: 15 }, clip(`${n.label}  ·  ${sub.join(" · ")}`, Math.floor((n.w - 12) / 6.6))));
    for (const m of n.members || []) {
      const mg = svg("g", { class: "node member", "data-node": m.name, "data-status": m.status || "not_run", transform: `translate(${m.x},${m.y})` });
      mg.append(svg("rect", { class: "box", width: m.w, height: m.h }), svg("text", { class: "label", x: 8, y: 20 }, clip(m.label, 16)));
      g.append(mg);
    }
    if (n.inner) drawInto(g, n.inner, 14, 36, false);
  } else {
    g.append(svg("text", { class: "label", x: 10, y: 19 }, clip(n.label, 22)), svg("text", { class: "sub", x: 10, y: 36 }, sub.join(" · ")));
  }
  g.append(svg("title", {}, `${n.label} (${n.status})`));
  g.addEventListener("click", (ev) => { ev.stopPropagation(); selectNode(n.name); });
  return g;
}

function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

function nodeNames(graph) {
  const out = [];
  for (const n of graph.nodes || []) out.push(n.name);
  return out;
}

async function selectNode(name) {
  run.selected = name;
  document.querySelectorAll("svg .node.selected").forEach((e) => e.classList.remove("selected"));
  const target = [...document.querySelectorAll("svg .node")].find((e) => e.getAttribute("data-node") === name);
  if (target) target.classList.add("selected");
  const box = $("#node-detail");
  box.replaceChildren(el("h3", {}, "Node ", el("code", {}, name)), el("p", { class: "muted" }, "Loading..."));
  let d;
  try { d = await api(`/api/runs/${encodeURIComponent(run.session)}/node?name=${encodeURIComponent(name)}`); }
  catch (e) { box.replaceChildren(el("h3", {}, "Node ", el("code", {}, name)), el("p", { class: "error" }, e.message)); return; }
  const st = run.data.state || {};
  const w = (st.waiting || {})[name];
  const parts = [el("h3", {}, "Node ", el("code", {}, name))];
  if (d.hidden) parts.push(el("p", { class: "muted" }, d.hidden));
  if (d.step !== undefined) parts.push(el("p", { class: "muted" }, `latest run at step ${d.step}`));
  if (w) parts.push(el("label", {}, "waiting with"), el("pre", {}, pretty(w)));
  if (d.input !== undefined) parts.push(el("label", {}, "input"), el("pre", { class: "value" }, d.input));
  if (d.output !== undefined) parts.push(el("label", {}, "output"), el("pre", { class: "value" }, d.output));
  if (d.writes && Object.keys(d.writes).length) parts.push(el("label", {}, "state writes"), el("pre", { class: "value" }, Object.entries(d.writes).map(([k, v]) => `${k} = ${v}`).join("\n")));
  if (d.deletes && d.deletes.length) parts.push(el("label", {}, "state deletes"), el("pre", {}, d.deletes.join(", ")));
  if (d.interrupt !== undefined) parts.push(el("label", {}, "interrupt payload"), el("pre", {}, d.interrupt));
  if (d.note) parts.push(el("p", { class: "muted" }, d.note));
  if (d.problem) parts.push(el("p", { class: "muted" }, d.problem));
  box.replaceChildren(...parts);
}

async function write(action, body, what) {
  try {
    const r = await api(`/api/runs/${encodeURIComponent(run.session)}/${action}`, body);
    say(`${what}: done. ${JSON.stringify(r.result)}`, true);
    run.sent = true;  // the forms' drafts were sent: the next render starts them empty
  } catch (e) { say(`${what} refused: ${e.message}`); }  // (a refused draft stays, to be fixed)
  await refresh();
}

// A live update redraws the page; what a person typed into a form and has not sent stays.
function fieldKey(e) { return `${e.id}|${e.className}|${e.dataset.for || ""}`; }
function drafts() {
  const kept = {};
  for (const e of document.querySelectorAll("#main textarea, #main input[type=text]")) if (e.value) kept[fieldKey(e)] = e.value;
  return kept;
}
function restore(kept) {
  for (const e of document.querySelectorAll("#main textarea, #main input[type=text]")) {
    const v = kept[fieldKey(e)];
    if (v !== undefined) e.value = v;
  }
}

function waitingCards(state) {
  const cards = [];
  for (const [node, w] of Object.entries(state.waiting || {})) {
    const value = el("textarea", { class: "answer-value", "data-for": node, placeholder: "your answer (JSON, or plain text)" });
    const card = el("div", { class: "card waiting-box", "data-waiting": node },
      el("h3", {}, "Waiting: ", el("code", {}, node)),
      w.prompt ? el("div", { class: "prompt" }, w.prompt) : null,
      w.payload !== undefined ? [el("label", {}, "interrupt payload"), el("pre", { class: "payload value" }, pretty(w.payload))] : null,
      w.input !== undefined ? [el("label", {}, "its input"), el("pre", { class: "value" }, pretty(w.input))] : null,
      w.hidden ? el("p", { class: "muted" }, "payload and input hidden (encrypted run, no token)") : null,
      el("label", {}, "Answer"), value,
      el("div", { class: "row" }, el("button", { type: "button", class: "primary answer-go", "data-for": node,
        onclick: () => confirmThen(`Answer ${node}?`, () => write("answer", { node, value: value.value }, `Answer to ${node}`)) }, "Answer")));
    cards.push(card);
  }
  return cards;
}

function controls(data) {
  const names = data.graph ? nodeNames(data.graph) : [];
  const list = el("datalist", { id: "node-names" }, names.map((n) => el("option", { value: n })));
  const jumpNode = el("input", { type: "text", id: "jump-node", list: "node-names", placeholder: "node" });
  const jumpInput = el("textarea", { id: "jump-input", placeholder: "input for it (JSON, optional)" });
  const values = el("textarea", { id: "state-values", placeholder: '{"key": "value"}' });
  const del = el("input", { type: "text", id: "state-delete", placeholder: "keys to delete, comma-separated" });
  const ended = !["running", "waiting"].includes(data.status);
  return el("div", { class: "card", id: "controls" }, el("h3", {}, "Steer"), list,
    el("label", {}, "Jump to a node after the running layer"), jumpNode, jumpInput,
    el("div", { class: "row" }, el("button", { type: "button", id: "jump-go",
      onclick: () => confirmThen(`Jump to ${jumpNode.value}?`, () => write("jump", { node: jumpNode.value, input: jumpInput.value }, "Jump")) }, "Jump")),
    el("label", {}, "Edit state (set values, delete keys) at the next safe point"), values, del,
    el("div", { class: "row" }, el("button", { type: "button", id: "state-go",
      onclick: () => confirmThen("Edit the state?", () => write("state", { values: values.value, delete: del.value }, "State edit")) }, "Edit state")),
    el("div", { class: "row" }, el("button", { type: "button", id: "cancel-go", class: "danger", disabled: ended,
      onclick: () => confirmThen(`Cancel ${data.session}?`, () => write("cancel", {}, "Cancel")) }, "Cancel run")));
}

function stepsCard(steps) {
  return el("div", { class: "card" }, el("h3", {}, "Steps"),
    steps && steps.length ? el("ol", { class: "steps", id: "steps" }, steps.map((s) => el("li", { "data-step": s.step },
      `step ${s.step}: ${(s.nodes || []).join(", ") || "start"} `, el("span", { class: "muted" }, s.time ? new Date(s.time).toLocaleTimeString() : ""), " ",
      s.rewindable ? el("button", { type: "button", class: "rewind-go", "data-step": s.step,
        onclick: () => confirmThen(`Rewind to step ${s.step}? (a new run goes on from there)`, () => write("rewind", { step: s.step }, `Rewind to step ${s.step}`)) }, "rewind here") : null)))
      : el("p", { class: "muted" }, "No steps yet."));
}

function eventsCard(events) {
  return el("div", { class: "card" }, el("h3", {}, "Events"),
    el("ol", { class: "events", id: "events" }, events.slice(-80).map((e) => el("li", {},
      `${e.type}${e.node ? " " + e.node : ""}${e.status ? " " + e.status : ""}${e.data !== undefined ? " " + clip(pretty(e.data), 120) : ""}${e.error ? " " + e.error : ""}`))));
}

function render(data) {
  $("#where").replaceChildren("Run ", el("code", {}, data.session), " ", badge(data.status));
  document.title = `${data.session} · gecko-temporal`;
  const state = data.state || {};
  const legend = el("div", { class: "legend" }, STATUSES.map((s) => el("span", { class: `s-${s}` }, s.replace("_", " "))));
  const left = el("div", {}, el("div", { class: "card graph" },
    el("h3", {}, data.pipeline || "", " ", el("span", { class: "muted" }, `step ${state.step ?? "?"}`)), legend,
    data.graph ? drawGraph(data.graph) : el("p", { class: "muted" }, "No graph to draw.")));
  const links = el("div", { class: "card" }, el("h3", {}, "Links"),
    data.temporal_url ? el("div", {}, el("a", { href: data.temporal_url, target: "_blank", rel: "noopener noreferrer", id: "temporal-link" }, "This run in the Temporal UI")) : el("div", { class: "muted" }, "(no Temporal UI URL configured: --temporal-ui)"),
    (data.children || []).map((c) => el("div", {}, "child run", c.node ? [" of ", el("code", {}, c.node)] : null, ": ", el("a", { href: `/runs/${encodeURIComponent(c.session)}`, class: "child-link" }, c.session))));
  const problems = (data.problems || []).length ? el("div", { class: "card" }, el("h3", {}, "Notes"), data.problems.map((p) => el("p", { class: "muted" }, p))) : null;
  const hidden = state.hidden ? el("div", { class: "card", id: "hidden-note" }, state.hidden) : null;
  const stateCard = el("div", { class: "card" }, el("h3", {}, "State"),
    state.hidden ? el("p", { class: "muted" }, "hidden") : el("pre", { id: "state", class: "value" }, pretty(state.state || {})),
    state.pending_jumps && state.pending_jumps.length ? [el("label", {}, "pending jumps"), el("pre", {}, pretty(state.pending_jumps))] : null);
  const detail = el("div", { class: "card", id: "node-detail" }, el("p", { class: "muted" }, "Click a node to see its input, output and state writes."));
  const right = el("div", {}, hidden, waitingCards(state), detail, controls(data), stepsCard(data.steps), stateCard, eventsCard(data.events || []), links, problems);
  const kept = run.sent ? {} : drafts();
  run.sent = false;
  $("#main").replaceChildren(el("div", { class: "run" }, left, right));
  restore(kept);
  if (run.selected) selectNode(run.selected);
}

async function refresh() {
  if (run.refreshing) { run.again = true; return; }
  run.refreshing = true;
  try {
    const data = await api(`/api/runs/${encodeURIComponent(run.session)}`);
    const typing = document.activeElement && ["TEXTAREA", "INPUT"].includes(document.activeElement.tagName) && document.activeElement.value;
    run.data = data;
    if (!typing) render(data);
    $("#live").textContent = run.streaming ? "live" : (["running", "waiting"].includes(data.status) ? "polling" : "ended");
    document.body.setAttribute("data-loaded", String(Date.now()));
  } catch (e) { say(e.message); }
  run.refreshing = false;
  if (run.again) { run.again = false; setTimeout(refresh, 50); }
}

let pending = null;
function soon() { clearTimeout(pending); pending = setTimeout(refresh, 300); }

async function follow() {
  // The run's event stream (server-sent events read with fetch, so the token header goes along).
  for (let tries = 0; tries < 50; tries++) {
    try {
      const r = await fetch(`/api/runs/${encodeURIComponent(run.session)}/events?after=${run.after}`, { headers: headers(false) });
      if (!r.ok || !r.body) break;
      run.streaming = true;
      $("#live").textContent = "live";
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          if (chunk.startsWith("event: end")) { run.streaming = false; soon(); return; }
          const line = chunk.split("\n").find((l) => l.startsWith("data: "));
          if (!line) continue;
          try { const e = JSON.parse(line.slice(6)); if (typeof e.offset === "number") run.after = Math.max(run.after, e.offset); } catch (err) { /* a comment */ }
          soon();
        }
      }
    } catch (e) { /* fall back to polling below, then try again */ }
    run.streaming = false;
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

async function showRun(session) {
  run.session = session;
  await refresh();
  follow();
  // Short polling as well: the stream says when something happened, polling catches the rest
  // (state edits, answers, a run whose stream cannot be read).
  run.timer = setInterval(() => { if (!run.data || ["running", "waiting"].includes(run.data.status)) refresh(); }, 2500);
}

const m = location.pathname.match(/^\/runs\/(.+)$/);
if (m) showRun(decodeURIComponent(m[1])); else showRuns();
