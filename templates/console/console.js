// dbaas console. Plain JavaScript, no libraries: each page is drawn from the
// JSON API with the session cookie; every change sends the page's CSRF token.
// Text from the server goes into the DOM as text, never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const BODY = document.body.dataset;
const ID = BODY.id || "";
const NAME = BODY.name || "";

// ---- helpers --------------------------------------------------------------

async function api(method, path, body, headers = {}) {
  const opts = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = CSRF;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    return { ok: false, status: 0, data: { error: { code: "network", message: "the server did not answer: " + e.message } }, headers: new Headers() };
  }
  if (res.status === 401) {
    location.href = "/login";
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { code: "bad_reply", message: text.slice(0, 300) } }; }
  return { ok: res.ok, status: res.status, data, headers: res.headers };
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, v);
  for (const k of kids.flat()) if (k) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

const $ = (sel) => document.querySelector(sel);
const errMessage = (r) => (r.data && r.data.error ? r.data.error.message : "HTTP " + r.status);

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + u[i];
}
const num = (n, d = 1) => (n === null || n === undefined ? "–" : Number(n).toFixed(d).replace(/\.0+$/, ""));
const pct = (n) => (n === null || n === undefined ? "–" : (n * 100).toFixed(1) + "%");
function age(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

function badge(status) {
  const s = status || "unknown";
  return el("span", { class: "badge s-" + s, text: s });
}

function setStatus(node, text) { if (node) node.textContent = text; }

// Field errors: the API's error names its field in detail.field.
function showFieldErrors(prefix, form, r) {
  form.querySelectorAll(".field-error, .form-error").forEach((p) => (p.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
  if (!r) return;
  const field = r.data && r.data.error && r.data.error.detail && r.data.error.detail.field;
  const target = field && document.getElementById(prefix + field);
  const input = field && form.querySelector('[name="' + field + '"]');
  if (target) {
    target.textContent = errMessage(r);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  } else {
    const f = document.getElementById(prefix + "form");
    if (f) f.textContent = errMessage(r);
  }
}

// The filled fields as a JSON body: `integers` and `decimals` as numbers
// when they look like one (anything else goes as typed, for the server's
// validation to name).
function formBody(form, integers = [], decimals = []) {
  const body = {};
  for (const input of form.querySelectorAll("input[name], select[name]")) {
    if (input.type === "checkbox") { if (input.checked) body[input.name] = true; continue; }
    const v = input.value.trim();
    if (v === "") continue;
    const number = (integers.includes(input.name) && /^\d+$/.test(v)) || (decimals.includes(input.name) && /^(\d+(\.\d*)?|\.\d+)$/.test(v));
    body[input.name] = number ? Number(v) : v;
  }
  return body;
}

// ---- overview -------------------------------------------------------------

function overviewRows(instances, summaries) {
  const byId = new Map((summaries || []).map((s) => [s.id, s]));
  const tbody = $("#instances tbody");
  const rows = instances.map((i) => {
    const s = (byId.get(i.id) || {}).summary || {};
    const sa = (byId.get(i.id) || {}).sample_age_seconds;
    const conns = s.connections === null || s.connections === undefined ? "–" : s.connections + "/" + (s.max_connections ?? "–");
    return el("tr", { "data-name": i.name, "data-status": i.status },
      el("th", { scope: "row" }, el("a", { href: "/ui/instances/" + encodeURIComponent(i.id), text: i.name })),
      el("td", {}, badge(i.status)),
      el("td", { class: "num", text: i.version }),
      el("td", {}, el("code", { text: (i.bind_address === "0.0.0.0" ? "127.0.0.1" : i.bind_address) + ":" + i.port })),
      el("td", { class: "num", text: i.memory }),
      el("td", { class: "num", text: num(i.cpus, 2) }),
      el("td", { class: "num", text: conns }),
      el("td", { class: "num", text: num(s.tps, 1) }),
      el("td", { class: "num", text: pct(s.cache_hit_ratio) }),
      el("td", { class: "num", text: bytes(s.db_size_bytes) }),
      el("td", { class: "num", text: age(sa) }),
    );
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 11, class: "muted", text: "No instances yet: create one below." })));
  tbody.replaceChildren(...rows);
}

async function refreshOverview() {
  const [a, b] = await Promise.all([api("GET", "/instances"), api("GET", "/monitoring/summaries")]);
  if (a.ok) {
    overviewRows(a.data, b.ok ? b.data : []);
    setStatus($("#refresh-state"), "Live: refreshed " + new Date().toLocaleTimeString() + ".");
  } else {
    setStatus($("#refresh-state"), "Not refreshed: " + errMessage(a));
  }
}

function initOverview() {
  const initial = JSON.parse($("#initial").textContent || "null");
  if (initial) overviewRows(initial.instances, initial.summaries);
  setInterval(refreshOverview, 2000);
  const form = $("#create-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showFieldErrors("err-", form, null);
    const body = formBody(form, ["version", "port", "metrics_interval"], ["cpus"]);
    const button = $("#create-button");
    button.disabled = true;
    setStatus($("#create-state"), "Creating " + (body.name || "") + "…");
    // The new row shows as creating as soon as the server records it.
    const sent = api("POST", "/instances", body);
    refreshOverview();
    const poll = setInterval(refreshOverview, 250);
    const r = await sent;
    clearInterval(poll);
    button.disabled = false;
    if (r.ok) {
      const name = r.data.instance.name;
      $("#create-state").replaceChildren("Created ", el("a", { href: "/ui/instances/" + encodeURIComponent(r.data.instance.id), text: name }), r.data.from_pool ? " (from the warm pool)." : ".");
      form.reset();
    } else {
      setStatus($("#create-state"), "");
      showFieldErrors("err-", form, r);
    }
    refreshOverview();
  });
}

// ---- instance page --------------------------------------------------------

let view = null;
let revealed = null;

function maskedUrl(v) {
  return "postgresql://" + encodeURIComponent(v.user) + ":••••••••@" + v.connect_host_shown + ":" + v.port + "/" + encodeURIComponent(v.database);
}

async function credentials() {
  const r = await api("GET", "/instances/" + encodeURIComponent(ID) + "/credentials");
  if (!r.ok) { setStatus($("#copy-state"), errMessage(r)); return null; }
  return r.data;
}

function detailsList(v) {
  const rows = [
    ["Status", badge(v.status)], ["Health", v.health || "–"], ["Id", v.id], ["Version", "PostgreSQL " + v.version],
    ["Memory", v.memory], ["CPUs", num(v.cpus, 2)], ["Address", v.bind_address + ":" + v.port],
    ["Database", v.database], ["User", v.user], ["Created", v.created_at],
    ["Metrics interval", v.metrics_interval + " s"],
    ["Backups", v.backups ? "every " + v.backups.schedule + ", kept " + v.backups.retention : "off"],
    ["Pending restart", (v.pending_restart || []).join(", ") || "none"],
  ];
  if (v.error) rows.push(["Error", v.error]);
  $("#details").replaceChildren(...rows.flatMap(([k, val]) => [el("dt", { text: k }), el("dd", {}, val)]));
}

async function refreshInstance() {
  const r = await api("GET", "/instances/" + encodeURIComponent(ID));
  if (!r.ok) { setStatus($("#action-state"), errMessage(r)); return; }
  view = r.data;
  view.connect_host_shown = view.bind_address === "0.0.0.0" ? "127.0.0.1" : view.bind_address;
  $("#status").replaceChildren(badge(view.status));
  document.body.dataset.status = view.status;
  detailsList(view);
  if (!revealed) $("#conn-url").textContent = maskedUrl(view);
  for (const [k, input] of [["memory", "#r-memory"], ["cpus", "#r-cpus"], ["port", "#r-port"]]) {
    const i = $(input);
    if (document.activeElement !== i) i.placeholder = String(view[k]);
  }
}

async function refreshAgent() {
  const r = await api("GET", "/monitoring/" + encodeURIComponent(ID) + "/agent");
  if (!r.ok) { $("#agent").replaceChildren(el("dt", { text: "Agent" }), el("dd", { text: errMessage(r) })); return; }
  const a = r.data;
  const rows = [["State", a.state + (a.stale ? " (stale: no sample for three intervals)" : "")], ["Container", a.container || "–"],
    ["Interval", a.interval_seconds + " s"], ["Last sample", a.last_sample ? a.last_sample + " (" + age(a.last_sample_age_seconds) + " ago)" : "none yet"],
    ["Last error", a.last_error ? a.last_error + " at " + a.last_error_at : "none"]];
  $("#agent").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

async function refreshLog() {
  const r = await api("GET", "/instances/" + encodeURIComponent(ID) + "/logs?tail=40");
  const pre = $("#pg-log");
  pre.textContent = r.ok ? (r.data.lines || []).join("\n") || "(empty)" : errMessage(r);
}

async function backupsView() {
  const box = $("#backups");
  if (!view) return;
  if (!view.backups) {
    box.replaceChildren(el("p", { class: "muted", text: "Backups are off for this instance (created with no_backups)." }));
    $("#backup-now").disabled = true;
    return;
  }
  const r = await api("GET", "/instances/" + encodeURIComponent(ID) + "/backups");
  if (!r.ok) { box.replaceChildren(el("p", { text: errMessage(r) })); return; }
  const list = r.data.backups || [];
  const win = r.data.window;
  const table = el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["Label", "Type", "Finished", "Size", "Verified"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.slice().reverse().map((b) => el("tr", {},
      el("td", {}, el("code", { text: b.label })), el("td", { text: b.type + " (" + b.reason + ")" }), el("td", { text: b.stop }),
      el("td", { class: "num", text: bytes(b.size_bytes) }),
      el("td", { text: b.verified === null || b.verified === undefined ? "pending" : b.verified ? "yes" : "FAILED" + (b.verification && b.verification.reason ? ": " + b.verification.reason : "") }),
    ))));
  box.replaceChildren(
    win ? el("p", { class: "muted", text: "Recoverable from " + win.from + " to " + win.to + "." }) : el("p", { class: "muted", text: list.length ? "" : "No backup yet." }),
    list.length ? el("div", { class: "scroll" }, table) : "",
  );
}

async function action(name) {
  const buttons = document.querySelectorAll("[data-action]");
  buttons.forEach((b) => (b.disabled = true));
  setStatus($("#action-state"), name[0].toUpperCase() + name.slice(1) + "ing…");
  const r = await api("POST", "/instances/" + encodeURIComponent(ID) + "/" + name);
  buttons.forEach((b) => (b.disabled = false));
  setStatus($("#action-state"), r.ok ? "Done: " + name + "." : errMessage(r));
  refreshInstance();
}

function initInstance() {
  refreshInstance().then(backupsView);
  refreshAgent();
  refreshLog();
  setInterval(refreshInstance, 3000);
  setInterval(backupsView, 15000);
  setInterval(refreshAgent, 5000);
  setInterval(refreshLog, 10000);
  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => action(b.dataset.action)));
  $("#show-password").addEventListener("click", async (ev) => {
    const b = ev.currentTarget;
    if (revealed) {
      revealed = null;
      b.setAttribute("aria-pressed", "false");
      b.textContent = "Show password";
      if (view) $("#conn-url").textContent = maskedUrl(view);
      return;
    }
    const c = await credentials();
    if (!c) return;
    revealed = c.url;
    $("#conn-url").textContent = c.url;
    b.setAttribute("aria-pressed", "true");
    b.textContent = "Hide password";
  });
  $("#copy-url").addEventListener("click", async () => {
    const c = revealed ? { url: revealed } : await credentials();
    if (!c) return;
    try {
      await navigator.clipboard.writeText(c.url);
      setStatus($("#copy-state"), "Copied (with the password).");
    } catch {
      // No clipboard permission: select it for a manual copy.
      $("#conn-url").textContent = c.url;
      revealed = c.url;
      getSelection().selectAllChildren($("#conn-url"));
      setStatus($("#copy-state"), "Selected: press Ctrl+C to copy.");
    }
  });
  const rf = $("#resize-form");
  rf.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showFieldErrors("rerr-", rf, null);
    const body = formBody(rf, ["port"], ["cpus"]);
    if (!Object.keys(body).length) { $("#rerr-form").textContent = "Enter a new memory, CPUs or port."; return; }
    if (body.port && !confirm("A port change recreates the container: a short restart. Go on?")) return;
    setStatus($("#action-state"), "Resizing…");
    const r = await api("PATCH", "/instances/" + encodeURIComponent(ID), body);
    if (r.ok) {
      setStatus($("#action-state"), "Resized." + ((r.data.pending_restart || []).length ? " Needs a restart for: " + r.data.pending_restart.join(", ") + "." : ""));
      rf.reset();
    } else {
      setStatus($("#action-state"), "");
      showFieldErrors("rerr-", rf, r);
    }
    refreshInstance();
  });
  const df = $("#destroy-form");
  df.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const typed = $("#destroy-confirm").value.trim();
    const err = $("#destroy-error");
    if (typed !== NAME) {
      err.textContent = "That is not the instance's name: type " + NAME + " exactly to destroy it.";
      $("#destroy-confirm").setAttribute("aria-invalid", "true");
      return;
    }
    err.textContent = "Destroying…";
    const r = await api("DELETE", "/instances/" + encodeURIComponent(ID));
    if (r.ok) location.href = "/";
    else err.textContent = errMessage(r);
  });
  $("#backup-now").addEventListener("click", async () => {
    setStatus($("#backup-state"), "Backing up…");
    const r = await api("POST", "/instances/" + encodeURIComponent(ID) + "/backups", {});
    setStatus($("#backup-state"), r.ok ? "Backup " + (r.data.label || "taken") + "." : errMessage(r));
    backupsView();
  });
  const bf = $("#restore-form");
  bf.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const kind = ev.submitter ? ev.submitter.dataset.kind : "restore";
    const name = $("#b-name").value.trim();
    const time = $("#b-time").value.trim();
    const body = kind === "clone" ? { name } : { to: name };
    if (time) body.time = time;
    setStatus($("#backup-state"), (kind === "clone" ? "Cloning" : "Restoring") + " into " + name + "…");
    const r = await api("POST", "/instances/" + encodeURIComponent(ID) + "/" + kind, body);
    setStatus($("#backup-state"), r.ok ? "Done: " + name + " is created." : errMessage(r));
  });
  initCharts();
}

// ---- charts ---------------------------------------------------------------

const CHARTS = [
  { title: "Transactions per second", keys: [["tps", "TPS"]], fmt: (v) => num(v, 1) },
  { title: "Connections by state", keys: [["connections_active", "active"], ["connections_idle", "idle"], ["connections_idle_in_transaction", "idle in tx"], ["connections_waiting", "waiting"]], fmt: (v) => num(v, 0) },
  { title: "Cache hit ratio", keys: [["cache_hit_ratio", "hit"]], fmt: pct, max: 1 },
  { title: "Database size", keys: [["db_size_bytes", "size"]], fmt: bytes },
  { title: "Rows written per second", keys: [["rows_written_per_second", "rows/s"]], fmt: (v) => num(v, 1) },
  { title: "Locks waiting", keys: [["locks_waiting", "waiting"]], fmt: (v) => num(v, 0) },
  { title: "Longest transaction", keys: [["longest_transaction_seconds", "seconds"]], fmt: (v) => num(v, 1) + " s" },
];
let chartWindow = "1h";

function timeLabel(t, long) {
  const d = new Date(t * 1000);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return long ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm : hm;
}

function chart(spec, s) {
  const W = 600, H = 170, L = 52, R = 8, T = 8, B = 22;
  const n = s.times.length;
  const x = (i) => L + ((W - L - R) * (i + 0.5)) / n;
  let max = spec.max || 0;
  for (const [k] of spec.keys) for (const v of s[k]) if (v !== null && v > max) max = v;
  if (max <= 0) max = 1;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": spec.title + ", " + (chartWindow === "1h" ? "last hour" : "last 24 hours") });
  const bw = (W - L - R) / n;
  // Gaps (no sample) and outages (database down) as shaded columns.
  // Runs of buckets of one kind become one rectangle; before the instance
  // existed there is nothing to miss.
  const born = view ? Date.parse(view.created_at) / 1000 : 0;
  const kind = (i) => (s.down[i] ? "down" : s.samples[i] === 0 && s.times[i] > born ? "gap" : null);
  for (let i = 0; i < n;) {
    const k = kind(i);
    let j = i + 1;
    while (j < n && kind(j) === k) j++;
    if (k) g.append(svg("rect", { class: k, x: (L + bw * i).toFixed(1), y: T, width: (bw * (j - i)).toFixed(1), height: H - T - B }));
    i = j;
  }
  g.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  g.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  g.append(svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, spec.fmt(max)));
  g.append(svg("text", { x: L - 4, y: H - B, "text-anchor": "end" }, spec.fmt(0)));
  const long = chartWindow !== "1h";
  for (let j = 0; j <= 4; j++) {
    const i = Math.min(n - 1, Math.round(((n - 1) * j) / 4));
    g.append(svg("text", { x: x(i), y: H - 6, "text-anchor": j === 0 ? "start" : j === 4 ? "end" : "middle" }, timeLabel(s.times[i], long)));
  }
  // The most points of one line: "two samples drawn" means a line.
  let points = 0;
  spec.keys.forEach(([k], c) => {
    let mine = 0;
    let seg = [];
    const flush = () => {
      if (seg.length > 1) g.append(svg("polyline", { class: "line c" + c, points: seg.join(" ") }));
      seg = [];
    };
    s[k].forEach((v, i) => {
      if (v === null) { flush(); return; }
      const p = x(i).toFixed(1) + "," + y(v).toFixed(1);
      seg.push(p);
      points = Math.max(points, ++mine);
      g.append(svg("circle", { class: "pt c" + c, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 1.8 }, svg("title", {}, timeLabel(s.times[i], long) + ": " + spec.fmt(v))));
    });
    flush();
  });
  const latest = spec.keys.map(([k, label], c) => {
    const vals = s[k].filter((v) => v !== null);
    return el("i", { class: "c" + c }, label + " " + (vals.length ? spec.fmt(vals[vals.length - 1]) : "–"));
  });
  const key = el("span", { class: "key" }, ...latest.flatMap((e, i) => (i ? [" · ", e] : [e])));
  return el("figure", { class: "chart", "data-points": points }, el("figcaption", {}, el("span", { text: spec.title }), key), g);
}

async function refreshCharts() {
  const r = await api("GET", "/monitoring/" + encodeURIComponent(ID) + "/metrics/series?window=" + chartWindow);
  const box = $("#charts");
  if (!r.ok) { box.replaceChildren(el("p", { text: errMessage(r) })); return; }
  box.replaceChildren(...CHARTS.map((c) => chart(c, r.data)));
}

function initCharts() {
  document.querySelectorAll("[data-window]").forEach((b) => b.addEventListener("click", () => {
    chartWindow = b.dataset.window;
    document.querySelectorAll("[data-window]").forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
    refreshCharts();
  }));
  refreshCharts();
  setInterval(refreshCharts, 5000);
}

// ---- tables ---------------------------------------------------------------

async function initTables() {
  const r = await api("GET", "/database/" + encodeURIComponent(ID) + "/tables");
  const tbody = $("#tables tbody");
  if (!r.ok) { tbody.replaceChildren(el("tr", {}, el("td", { colspan: 4, text: errMessage(r) }))); return; }
  const rows = r.data.map((t) => el("tr", {},
    el("th", { scope: "row" }, el("a", { href: "/ui/instances/" + encodeURIComponent(ID) + "/tables/" + encodeURIComponent(t.name) + (t.schema !== "public" ? "?schema=" + encodeURIComponent(t.schema) : ""), text: t.name })),
    el("td", { text: t.schema }), el("td", { class: "num", text: t.estimated_rows }), el("td", { class: "num", text: bytes(t.total_bytes) })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No tables in the public schema yet." })));
  tbody.replaceChildren(...rows);
}

const OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"];
const PAGE = 50;
const grid = { order: null, desc: false, offset: 0, columns: [] };
const schemaParam = new URLSearchParams(location.search).get("schema");

function cell(v) {
  if (v === null) return el("td", { class: "null", text: "null" });
  if (typeof v === "object") return el("td", {}, el("code", { text: JSON.stringify(v) }));
  return el("td", { class: typeof v === "number" ? "num" : null, text: String(v) });
}

function rowsQuery() {
  const q = new URLSearchParams();
  if (schemaParam) q.set("schema", schemaParam);
  for (const c of grid.columns) {
    const op = document.getElementById("op-" + c.name)?.value;
    const val = document.getElementById("fv-" + c.name)?.value.trim();
    if (op && val) q.append(c.name, op === "in" ? "in.(" + val + ")" : op + "." + val);
  }
  if (grid.order) q.set("order", grid.order + (grid.desc ? ".desc" : ".asc"));
  q.set("limit", PAGE);
  q.set("offset", grid.offset);
  return q.toString();
}

async function loadRows() {
  const exact = $("#exact-count").checked;
  const r = await api("GET", "/database/" + encodeURIComponent(ID) + "/tables/" + encodeURIComponent(BODY.table) + "/rows?" + rowsQuery(), undefined, exact ? { Prefer: "count=exact" } : {});
  $("#rows-error").textContent = r.ok ? "" : errMessage(r);
  if (!r.ok) return;
  const head = el("tr", {}, grid.columns.map((c) => {
    const sorted = grid.order === c.name;
    return el("th", { scope: "col", "aria-sort": sorted ? (grid.desc ? "descending" : "ascending") : "none" },
      el("button", { type: "button", class: "sort", "data-column": c.name, onclick: () => {
        grid.desc = grid.order === c.name ? !grid.desc : false;
        grid.order = c.name;
        grid.offset = 0;
        loadRows();
      } }, c.name + (sorted ? (grid.desc ? " ▼" : " ▲") : "")));
  }));
  $("#rows thead").replaceChildren(head);
  const body = r.data.map((row) => el("tr", {}, grid.columns.map((c) => cell(row[c.name]))));
  if (!body.length) body.push(el("tr", {}, el("td", { colspan: grid.columns.length || 1, class: "muted", text: "No rows match." })));
  $("#rows tbody").replaceChildren(...body);
  const range = r.headers.get("content-range") || "";
  const total = range.split("/")[1];
  const first = r.data.length ? grid.offset + 1 : 0;
  $("#range").textContent = "Rows " + first + "–" + (grid.offset + r.data.length) + (total && total !== "*" ? " of " + total : "");
  $("#prev").disabled = grid.offset === 0;
  $("#next").disabled = r.data.length < PAGE;
}

async function initTable() {
  const path = "/database/" + encodeURIComponent(ID) + "/tables/" + encodeURIComponent(BODY.table) + (schemaParam ? "?schema=" + encodeURIComponent(schemaParam) : "");
  const d = await api("GET", path);
  if (!d.ok) { $("#rows-error").textContent = errMessage(d); return; }
  const t = d.data;
  grid.columns = t.columns;
  $("#filters").replaceChildren(...t.columns.map((c) => el("div", { class: "field" },
    el("label", { for: "fv-" + c.name, text: c.name }),
    el("select", { id: "op-" + c.name, "aria-label": c.name + " operator" }, OPS.map((o) => el("option", { value: o, text: o }))),
    el("input", { id: "fv-" + c.name, "aria-label": c.name + " value", placeholder: c.type }))));
  const list = (items) => el("ul", {}, items.map((i) => el("li", {}, el("code", { text: i }))));
  $("#structure").replaceChildren(
    el("div", { class: "scroll" }, el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["Column", "Type", "Nullable", "Default"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, t.columns.map((c) => el("tr", {}, el("th", { scope: "row", text: c.name }), el("td", { text: c.type }), el("td", { text: c.nullable ? "yes" : "no" }), el("td", {}, c.default ? el("code", { text: c.default }) : "–")))))),
    el("h3", { text: "Primary key" }), t.primary_key.length ? list([t.primary_key.join(", ")]) : el("p", { class: "muted", text: "none" }),
    el("h3", { text: "Indexes" }), t.indexes.length ? list(t.indexes.map((i) => i.definition)) : el("p", { class: "muted", text: "none" }),
    el("h3", { text: "Foreign keys" }), t.foreign_keys.length ? list(t.foreign_keys.map((f) => f.name + ": " + f.definition)) : el("p", { class: "muted", text: "none" }),
  );
  $("#filter-form").addEventListener("submit", (ev) => { ev.preventDefault(); grid.offset = 0; loadRows(); });
  $("#prev").addEventListener("click", () => { grid.offset = Math.max(0, grid.offset - PAGE); loadRows(); });
  $("#next").addEventListener("click", () => { grid.offset += PAGE; loadRows(); });
  loadRows();
}

// ---- SQL console ----------------------------------------------------------

function showSqlError(sql, r) {
  const box = $("#sql-error");
  const e = (r.data && r.data.error) || {};
  const d = e.detail || {};
  const parts = [el("p", {}, el("strong", { text: "Error" }), " ", el("span", { text: e.message || "HTTP " + r.status }))];
  parts.push(el("p", {}, "SQLSTATE ", el("code", { class: "sqlstate", text: e.code || "–" })));
  if (d.detail) parts.push(el("p", { text: "Detail: " + d.detail }));
  if (e.hint) parts.push(el("p", { class: "hint", text: "Hint: " + e.hint }));
  if (d.position) {
    // PostgreSQL's position counts characters from 1.
    const chars = Array.from(sql);
    const p = Math.min(Math.max(d.position - 1, 0), chars.length);
    const at = chars.slice(p, p + 1).join("") || " ";
    parts.push(el("p", { text: "At character " + d.position + ":" }));
    parts.push(el("pre", { class: "position" }, chars.slice(0, p).join(""), el("mark", { text: at }), chars.slice(p + 1).join("")));
  }
  box.replaceChildren(...parts);
  box.hidden = false;
}

async function runSql() {
  const sql = $("#sql").value;
  if (!sql.trim()) return;
  $("#sql-error").hidden = true;
  setStatus($("#sql-meta"), "Running…");
  const t0 = performance.now();
  const r = await api("POST", "/database/" + encodeURIComponent(ID) + "/sql", { sql, read_only: $("#read-only").checked });
  const ms = Math.round(performance.now() - t0);
  if (!r.ok) {
    setStatus($("#sql-meta"), "Failed after " + ms + " ms.");
    $("#sql-result thead").replaceChildren();
    $("#sql-result tbody").replaceChildren();
    showSqlError(sql, r);
    return;
  }
  const res = r.data;
  setStatus($("#sql-meta"), res.command + ": " + res.row_count + (res.row_count === 1 ? " row" : " rows") + " in " + ms + " ms.");
  $("#sql-result thead").replaceChildren(el("tr", {}, res.columns.map((c) => el("th", { scope: "col", title: c.type, text: c.name }))));
  $("#sql-result tbody").replaceChildren(...res.rows.map((row) => el("tr", {}, res.columns.map((c) => cell(row[c.name])))));
}

function initSql() {
  $("#sql-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSql(); });
  $("#sql").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); runSql(); }
  });
  $("#sql").focus();
}

// ---- pages ----------------------------------------------------------------

async function statusBadge() {
  const r = await api("GET", "/instances/" + encodeURIComponent(ID));
  if (r.ok) $("#status").replaceChildren(badge(r.data.status));
}

({
  overview: initOverview,
  instance: initInstance,
  tables: () => { statusBadge(); initTables(); },
  table: () => { statusBadge(); initTable(); },
  sql: () => { statusBadge(); initSql(); },
})[BODY.page]?.();
