// The ras server's status page (docs/ADMIN.md). Everything shown comes
// from the admin API with the bearer token the operator typed in; strings
// from the API are only ever set as text (textContent), never as HTML.
"use strict";

const POLL_MS = 2000;
// Five minutes of 2-second polls.
const GRAPH_POINTS = 150;
const CERT_WARN_DAYS = 14;
const TOKEN_KEY = "ras-admin-token";

let timer = null;
let previous = null; // {t: ms, bytes: total} of the last poll
const rates = []; // bytes per second, oldest first

const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// Calls the API with the token; a 401 logs out.
async function api(method, path) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + token() },
    cache: "no-store",
  });
  if (response.status === 401) {
    logout("The token was refused.");
    throw new Error("unauthorized");
  }
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : "HTTP " + response.status);
  }
  return body;
}

function text(tag, value, className) {
  const element = document.createElement(tag);
  element.textContent = value === null || value === undefined ? "" : String(value);
  if (className) element.className = className;
  return element;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x) => String(x).padStart(2, "0");
  return h + ":" + pad(m) + ":" + pad(s % 60);
}

function clientAddress(s) {
  if (s.client_address === null) return s.peer;
  return s.client_port === null ? s.client_address : s.client_address + ":" + s.client_port;
}

function tunnelAddress(s) {
  return [s.tunnel_ipv4, s.tunnel_ipv6].filter((a) => a !== null).join(" ");
}

async function disconnect(id, button) {
  button.disabled = true;
  try {
    await api("POST", "/v1/sessions/" + encodeURIComponent(id) + "/disconnect");
    await poll();
  } catch (e) {
    $("poll-error").textContent = "Disconnect failed: " + e.message;
    button.disabled = false;
  }
}

// The cells of a session row, in column order: [class, value of s].
const SESSION_CELLS = [
  ["user", (s) => s.user],
  ["protocol", (s) => s.protocol],
  ["state", (s) => s.state],
  ["client", clientAddress],
  ["tunnel", tunnelAddress],
  ["duration", (s, now) => duration(now - s.started_at)],
  ["num bytes-in", (s) => bytes(s.bytes_in)],
  ["num bytes-out", (s) => bytes(s.bytes_out)],
];

// A row for session `id`, its cells empty, with its Disconnect button.
function sessionRow(id) {
  const row = document.createElement("tr");
  row.className = "session";
  row.dataset.sessionId = String(id);
  for (const [className] of SESSION_CELLS) row.append(text("td", "", className));
  const cell = document.createElement("td");
  const button = text("button", "Disconnect", "disconnect");
  button.type = "button";
  button.addEventListener("click", () => disconnect(id, button));
  cell.append(button);
  row.append(cell);
  return row;
}

// Rows are kept and updated in place, keyed by session id, so that a
// Disconnect button is never replaced under the pointer by a poll.
function renderSessions(sessions, now) {
  const rows = $("session-rows");
  const existing = new Map();
  for (const row of rows.children) existing.set(row.dataset.sessionId, row);
  let next = rows.firstChild;
  for (const s of sessions) {
    const key = String(s.id);
    let row = existing.get(key);
    existing.delete(key);
    if (!row) row = sessionRow(s.id);
    SESSION_CELLS.forEach(([, value], i) => {
      const v = value(s, now);
      row.children[i].textContent = v === null || v === undefined ? "" : String(v);
    });
    // The exact counters, for the tooltip and for tests.
    row.dataset.bytesIn = String(s.bytes_in);
    row.dataset.bytesOut = String(s.bytes_out);
    row.title = s.bytes_in + " bytes in, " + s.bytes_out + " bytes out";
    if (row !== next) rows.insertBefore(row, next);
    next = row.nextSibling;
  }
  for (const gone of existing.values()) gone.remove();
  $("session-count").textContent = "(" + sessions.length + ")";
  $("no-sessions").hidden = sessions.length > 0;
}

function renderTraffic(sessions) {
  const t = Date.now();
  const total = sessions.reduce((sum, s) => sum + s.bytes_in + s.bytes_out, 0);
  if (previous !== null && t > previous.t) {
    // A session that ended takes its bytes with it: never a negative rate.
    rates.push(Math.max(0, ((total - previous.bytes) * 1000) / (t - previous.t)));
    if (rates.length > GRAPH_POINTS) rates.shift();
  }
  previous = { t, bytes: total };
  const peak = Math.max(1, ...rates);
  // Headroom above the peak, so that a steady rate is not drawn on the top edge.
  const max = peak * 1.25;
  const width = 600;
  const height = 120;
  const step = width / (GRAPH_POINTS - 1);
  const offset = GRAPH_POINTS - rates.length;
  const points = rates.map(
    (r, i) => ((offset + i) * step).toFixed(1) + "," + (height - (r / max) * (height - 4)).toFixed(1),
  );
  $("traffic-line").setAttribute("points", points.join(" "));
  // The area under the line, closed along the bottom edge.
  const area = points.length
    ? [(offset * step).toFixed(1) + "," + height, ...points, width + "," + height]
    : [];
  $("traffic-area").setAttribute("points", area.join(" "));
  $("rate-now").textContent = rates.length
    ? bytes(Math.round(rates[rates.length - 1])) + "/s (peak " + bytes(Math.round(peak)) + "/s)"
    : "–";
}

function renderPools(pools) {
  const rows = $("pool-rows");
  rows.replaceChildren();
  for (const p of pools) {
    const row = document.createElement("tr");
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = Math.max(1, p.capacity);
    meter.value = p.in_use;
    meter.high = meter.max * 0.9;
    const cell = document.createElement("td");
    cell.append(meter);
    row.append(
      text("td", p.name),
      text("td", p.ranges.join(", ")),
      text("td", p.in_use, "num"),
      text("td", p.free, "num"),
      cell,
    );
    rows.append(row);
  }
}

function renderRadius(snapshot) {
  const rows = $("radius-rows");
  rows.replaceChildren();
  for (const r of snapshot.radius_servers) {
    const row = document.createElement("tr");
    row.append(text("td", r.role), text("td", r.address), text("td", r.state, "state-" + (r.state === "up" ? "up" : "down")));
    rows.append(row);
  }
  $("no-radius").hidden = snapshot.radius_servers.length > 0;
  $("accounting-pending").textContent =
    snapshot.accounting_pending === null ? "" : "Accounting records waiting: " + snapshot.accounting_pending;
}

function renderCertificate(cert, now) {
  const expiry = $("cert-expiry");
  if (cert === null) {
    $("cert-subject").textContent = "none";
    expiry.textContent = "";
    $("cert-fingerprint").textContent = "";
    return;
  }
  $("cert-subject").textContent = cert.subject + (cert.self_signed ? " (self-signed)" : "");
  const days = Math.floor((cert.not_after - now) / 86400);
  const when = new Date(cert.not_after * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  expiry.textContent = when + (days < 0 ? " (expired)" : " (in " + days + " days)");
  expiry.className = days < CERT_WARN_DAYS ? "warn" : "";
  $("cert-fingerprint").textContent = cert.sha256_fingerprint;
}

async function poll() {
  try {
    const [snapshot, sessions] = await Promise.all([api("GET", "/v1/status"), api("GET", "/v1/sessions")]);
    $("server-name").textContent = snapshot.server_name;
    $("server-info").textContent =
      "version " + snapshot.version + ", up " + duration(snapshot.now - snapshot.started_at);
    renderSessions(sessions, snapshot.now);
    renderTraffic(sessions);
    renderPools(snapshot.pools);
    renderRadius(snapshot);
    renderCertificate(snapshot.certificate, snapshot.now);
    $("poll-error").textContent = "";
  } catch (e) {
    if (e.message !== "unauthorized") {
      $("poll-error").textContent = "Cannot reach the server: " + e.message;
    }
  }
}

function show(loggedIn) {
  $("login-section").hidden = loggedIn;
  $("dashboard").hidden = !loggedIn;
  $("logout").hidden = !loggedIn;
}

function start() {
  show(true);
  previous = null;
  rates.length = 0;
  poll();
  timer = setInterval(poll, POLL_MS);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer !== null) clearInterval(timer);
  timer = null;
  show(false);
  $("login-error").textContent = message || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("login-error").textContent = "";
    start();
  });
  $("logout").addEventListener("click", () => logout(""));
  if (token()) start();
  else show(false);
});
