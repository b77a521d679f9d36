// admin.js -- the ops console: the queue, the processes, a chart of the
// last ten minutes, dead letters and parked notifications (replay,
// drop), products with their gate, orders with their actions.  It uses
// only /api/admin/... and /api/orders; it polls once a second (the
// views are O(1) in Redis, see docs/ARCHITECTURE.md).  Strings are
// rendered as text, the token kept in sessionStorage.
"use strict";
// $, el and row: common.js.

let token = sessionStorage.getItem("admin-token") || "";

function button(text, attrs, fn) {
  const b = el("button", text, Object.assign({ type: "button",
    class: "quiet" }, attrs));
  b.addEventListener("click", fn);
  return b;
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = new Error(data && data.error ? data.error.message : r.status);
    e.status = r.status;
    throw e;
  }
  return data;
}

function age(ms) {
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return Math.round(ms / 1000) + " s";
  return Math.round(ms / 60000) + " min";
}

async function loadQueue() {
  const q = await api("GET", "/api/admin/queue");
  $("waiting").textContent = q.waiting;
  $("pending").textContent = q.pending;
  $("drain").textContent = q.drainPerSec.toFixed(1);
  $("oldest").textContent = q.pending ? age(q.oldestPendingAgeMs) : "–";
  $("dead-count").textContent = q.deadLetters;
  $("consumers").replaceChildren(...q.consumers.map((c) =>
    row([c.name, c.pending, age(c.idleMs)])));
}

async function loadWorkers() {
  const w = await api("GET", "/api/admin/workers");
  $("workers").replaceChildren(...w.items.map((p) =>
    row([p.name, p.kind, p.batchesPerSec, p.ordersPerSec,
      p.lastBatchAt || "–"])));
}

function plot(ctx, xs, color, max, h, w) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  xs.forEach((v, i) => {
    const x = xs.length > 1 ? i * (w - 10) / (xs.length - 1) + 5 : 5;
    const y = h - 5 - (max ? v / max : 0) * (h - 10);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

async function loadChart() {
  const h = await api("GET", "/api/admin/history");
  const c = $("chart"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const sub = h.items.map((x) => x.submitsPerSec);
  const ord = h.items.map((x) => x.ordersPerSec);
  const dep = h.items.map((x) => x.queue);
  const rate = Math.max(1, ...sub, ...ord), depth = Math.max(1, ...dep);
  plot(ctx, sub, "#3c5bd6", rate, c.height, c.width);
  plot(ctx, ord, "#0f9d58", rate, c.height, c.width);
  plot(ctx, dep, "#f0a500", depth, c.height, c.width);
}

async function loadDead() {
  const d = await api("GET", "/api/admin/deadletters");
  $("dead").replaceChildren(...d.items.map((x) => {
    const tr = row([x.id, x.checkoutId, x.reason, x.deliveries,
      el("span")]);
    tr.dataset.entry = x.id;
    tr.lastChild.append(
      button("Replay", { "data-replay": x.id }, () => deadAct(x.id, 1)),
      button("Drop", { "data-drop": x.id }, () => deadAct(x.id, 0)));
    return tr;
  }));
}

async function deadAct(id, replay) {
  try {
    if (replay) {
      const r = await api("POST", "/api/admin/deadletters/" + id +
        "/replay", {});
      $("dead-msg").textContent = "checkout " + r.checkoutId +
        " queued again";
    } else {
      await api("DELETE", "/api/admin/deadletters/" + id);
      $("dead-msg").textContent = "dropped " + id;
    }
  } catch (e) {
    $("dead-msg").textContent = e.message;
  }
  loadDead();
}

async function loadParked() {
  const p = await api("GET", "/api/admin/notifications?limit=50");
  $("parked").replaceChildren(...p.items.map((n) => row([n.id, n.event,
    n.targets.map((t) => t.kind + " " + t.to + ": " + t.lastError)
      .join("; "), el("span")])));
  p.items.forEach((n, i) => $("parked").children[i].lastChild.append(
    button("Replay", {}, async () => {
      await api("POST", "/api/admin/notifications/" + n.id + "/replay", {});
      loadParked();
    }),
    button("Drop", {}, async () => {
      await api("DELETE", "/api/admin/notifications/" + n.id);
      loadParked();
    })));
}

async function loadProducts() {
  const p = await api("GET", "/api/admin/products?limit=50");
  $("products").replaceChildren(...p.items.map((x) => row([x.title, x.stock,
    x.gate === null ? "–" : x.gate,
    (x.saleStartsAt || "") + (x.saleEndsAt ? " → " + x.saleEndsAt : ""),
    x.perCustomerLimit || ""])));
}

async function loadOrders() {
  const st = $("status").value;
  const o = await api("GET", "/api/orders?limit=50" +
    (st ? "&status=" + st : ""));
  $("orders").replaceChildren(...o.items.map((x) => {
    const acts = el("span");
    if (x.status === "awaiting_payment")
      acts.append(button("Record payment", { "data-pay": x.id }, () =>
        withReference("Payment reference", (reference) =>
          orderAct(x.id, "payment", { reference, amount: x.total }))));
    if (x.status === "confirmed")
      acts.append(button("Fulfil", {}, () => orderAct(x.id, "fulfil")));
    if (x.status === "confirmed" || x.status === "awaiting_payment")
      acts.append(button("Cancel", {}, () => orderAct(x.id, "cancel")));
    if (x.refund && x.refund.status === "due")
      acts.append(button("Mark refunded", { "data-refund": x.id }, () =>
        withReference("Refund reference", (reference) =>
          orderAct(x.id, "refund", { reference }))));
    const state = x.status + (x.refund ? " (refund " + x.refund.status +
      ")" : "");
    return row([x.id, state, x.userId, x.total, acts]);
  }));
}

// The provider's reference for a payment or refund, asked for in a
// prompt (typed, never rendered as markup); nothing is sent without one.
function withReference(what, then) {
  const reference = window.prompt(what + " (the provider's id):", "");
  if (reference) then(reference.trim());
}

async function orderAct(id, what, body) {
  try {
    await api("POST", "/api/orders/" + id + "/" + what, body || {});
    $("orders-msg").textContent = "";
  } catch (e) {
    $("orders-msg").textContent = e.message;
  }
  loadOrders();
}

async function refresh() {
  try {
    await Promise.all([loadQueue(), loadWorkers(), loadChart(),
      loadDead()]);
  } catch (e) { /* shown on the next tick */ }
}

async function start() {
  try {
    const me = await api("GET", "/api/auth/me");
    if (me.role !== "admin") throw new Error("an admin login is needed");
    $("who").textContent = me.email;
  } catch (e) {
    $("login-msg").textContent = token ? e.message : "";
    return;
  }
  $("login-box").classList.add("hidden");
  for (const id of ["queue-box", "workers-box", "chart-box", "dead-box",
    "parked-box", "products-box", "orders-box"])
    $(id).classList.remove("hidden");
  refresh();
  loadParked();
  loadProducts();
  loadOrders();
  setInterval(refresh, 1000);
  setInterval(() => { loadParked(); loadProducts(); }, 5000);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const r = await fetch("/api/auth/login", { method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value,
        password: $("password").value }) });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error.message);
    token = data.token;
    sessionStorage.setItem("admin-token", token);
    start();
  } catch (err) {
    $("login-msg").textContent = err.message;
  }
});
$("orders-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadOrders();
});
start();
