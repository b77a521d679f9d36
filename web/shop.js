// shop.js -- the storefront demo: log in or register, browse and search,
// a cart, checkout with its status pushed over the WebSocket (queue
// position, then the result), order history with cancel (and, with
// APP_ENV=development and a payment window, a test payment).  Every string
// from the server is rendered as text (textContent), never as markup;
// the token lives in sessionStorage (gone when the tab closes).
"use strict";
// $, el and row: common.js.

let token = sessionStorage.getItem("token") || "";
let me = null;

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok && r.status !== 202) {
    const e = new Error(data && data.error ? data.error.message : r.status);
    e.code = data && data.error ? data.error.code : "";
    e.status = r.status;
    throw e;
  }
  return data;
}

function say(id, text, bad) {
  $(id).textContent = text;
  $(id).classList.toggle("error", !!bad);
}

async function login(register) {
  const email = $("email").value, password = $("password").value;
  try {
    if (register) await api("POST", "/api/auth/register", { email, password });
    const r = await api("POST", "/api/auth/login", { email, password });
    token = r.token;
    sessionStorage.setItem("token", token);
    say("account-msg", "");
    await signedIn();
  } catch (e) {
    say("account-msg", e.message, true);
  }
}

async function signedIn() {
  if (!token) return;
  try {
    me = await api("GET", "/api/auth/me");
  } catch (e) {
    token = "";
    sessionStorage.removeItem("token");
    return;
  }
  $("who").textContent = me.email;
  $("logout").classList.remove("hidden");
  $("account").classList.add("hidden");
  await Promise.all([loadCart(), loadOrders()]);
}

async function loadProducts() {
  const q = $("q").value.trim();
  const page = await api("GET", "/api/products?limit=50" +
    (q ? "&q=" + encodeURIComponent(q) : ""));
  const body = $("products");
  body.replaceChildren();
  for (const p of page.items) {
    const add = el("button", "Add", { type: "button", "data-product": p.id,
      "aria-label": "Add " + p.title + " to the cart" });
    add.addEventListener("click", () => addToCart(p.id));
    body.appendChild(row([p.title, p.price, p.stock, add]));
  }
}

async function addToCart(productId) {
  if (!token) return say("checkout-status", "log in first", true);
  const cart = await api("GET", "/api/cart/me");
  const line = cart.items.find((l) => l.productId === productId);
  await api("POST", "/api/cart/me",
    { productId, quantity: line ? line.quantity + 1 : 1 });
  await loadCart();
}

async function loadCart() {
  const cart = await api("GET", "/api/cart/me");
  const body = $("cart");
  body.replaceChildren();
  for (const l of cart.items)
    body.appendChild(row([l.title || l.productId, "× " + l.quantity,
      l.lineTotal === undefined ? "" : l.lineTotal]));
  $("subtotal").textContent = cart.subtotal;
}

function showStatus(st) {
  let text = st.status;
  if (st.status === "queued" && st.position !== undefined)
    text += " — position " + st.position +
      (st.etaMs !== undefined ? ", about " + Math.ceil(st.etaMs / 1000) +
        " s" : "");
  if (st.status === "waitlisted" && st.position !== undefined)
    text += " — place " + st.position + " on the waitlist";
  if (st.status === "completed") text += " — order " + st.orderId;
  if (st.status === "failed") text += " — " + st.error.code + ": " +
    st.error.message;
  const p = $("checkout-status");
  p.textContent = text;
  p.dataset.status = st.status;
  p.classList.toggle("error", st.status === "failed");
}

async function checkout() {
  try {
    const r = await api("POST", "/api/checkout",
      $("waitlist").checked ? { waitlist: true } : {});
    showStatus(r);
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/api/checkout/" +
      r.checkoutId + "/events?access_token=" + encodeURIComponent(token));
    ws.onmessage = (m) => {
      const st = JSON.parse(m.data);
      showStatus(st);
      if (st.status === "completed" || st.status === "failed") {
        loadCart();
        loadOrders();
        loadProducts();
      }
    };
  } catch (e) {
    say("checkout-status", e.message, true);
  }
}

async function loadOrders() {
  const page = await api("GET", "/api/orders?limit=20");
  const body = $("orders");
  body.replaceChildren();
  for (const o of page.items) {
    const action = el("span");
    if (o.status === "awaiting_payment") {
      // A test payment: taken only with APP_ENV=development (else 403).
      const pay = el("button", "Pay (test)", { type: "button",
        "data-pay": o.id });
      pay.addEventListener("click", () => act(o.id, "test-payment"));
      action.appendChild(pay);
    }
    if (o.status === "awaiting_payment" || o.status === "confirmed") {
      const c = el("button", "Cancel", { type: "button", class: "quiet",
        "data-cancel": o.id });
      c.addEventListener("click", () => act(o.id, "cancel"));
      action.appendChild(c);
    }
    const lines = o.items.map((i) => i.quantity + " × " + i.title).join(", ");
    const tr = row([o.id, o.status, o.total, lines, action]);
    tr.dataset.order = o.id;
    body.appendChild(tr);
  }
}

async function act(id, what) {
  try {
    await api("POST", "/api/orders/" + id + "/" + what, {});
  } catch (e) {
    say("checkout-status", e.message, true);
  }
  await Promise.all([loadOrders(), loadProducts()]);
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  login(false);
});
$("register").addEventListener("click", () => login(true));
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadProducts();
});
$("checkout").addEventListener("click", checkout);
$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/auth/logout"); } catch (e) { /* gone */ }
  sessionStorage.removeItem("token");
  location.reload();
});
loadProducts();
signedIn();
