// caja's web till: plain JavaScript, no build step, served from the binary.
//
// Three rules hold everywhere below:
// - A write is an Action with one Idempotency-Key for its whole life: a double or triple
//   click sends one request, and a retry after a network error sends the same key, so the
//   server does it once whatever the network did.
// - Nothing is cleared or shown as done before the server confirmed it.
// - Screens follow the change feed from the last seq they applied; an event is applied
//   only if its seq is newer, so nothing is applied twice, and a reconnect resumes after
//   that seq, so nothing is missed.
"use strict";

const STRINGS = window.CAJA_STRINGS;
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
};

// ---------------------------------------------------------------- language

function pickLanguage() {
  const saved = sessionStorage.getItem("caja.lang");
  if (saved && STRINGS[saved]) return saved;
  const wanted = navigator.languages || [navigator.language || "en"];
  return wanted.some((l) => l.toLowerCase().startsWith("es")) ? "es-MX" : "en";
}

let lang = pickLanguage();

function t(key, vars = {}) {
  let s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, v);
  return s;
}

function translatePage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  $("#lang").value = lang;
}

// ---------------------------------------------------------------- money and time

let currency = "MXN";

function money(minor) {
  const f = new Intl.NumberFormat(lang, { style: "currency", currency });
  const digits = f.resolvedOptions().maximumFractionDigits;
  return f.format(minor / 10 ** digits);
}

/** Minor units from what a person typed in major units ("45.5" → 4550). */
function minorUnits(text) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
    .maximumFractionDigits;
  const n = Number(text);
  return Number.isFinite(n) && n > 0 ? Math.round(n * 10 ** digits) : 0;
}

function clock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}`;
}

// ---------------------------------------------------------------- the API

const session = {
  key: sessionStorage.getItem("caja.key"),
  role: sessionStorage.getItem("caja.role"),
};

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`.replace(".", "");
}

/** A refusal or a failure of one request: `retryable` says whether the same request
 * may be sent again (network errors, 5xx, 429, a key still in flight). */
class ApiFailure extends Error {
  constructor(status, problem, detail) {
    super(detail);
    this.status = status;
    this.problem = problem;
    this.retryable =
      status === 0 || status >= 500 || status === 429 || problem?.type === "idempotency-key-in-flight";
  }
}

async function api(method, path, { body, idempotencyKey, ifMatch } = {}) {
  const headers = { Authorization: `Bearer ${session.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  if (ifMatch) headers["If-Match"] = ifMatch;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiFailure(0, null, e.message || "network error");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;
  }
  if (!res.ok) throw new ApiFailure(res.status, data, data?.detail || res.statusText);
  return { data, etag: res.headers.get("etag"), status: res.status };
}

/** Every page of a list. */
async function all(path) {
  const out = [];
  let after = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=200${after ? `&after=${after}` : ""}`);
    out.push(...page.data.data);
    if (!page.data.next_cursor) return out;
    after = page.data.next_cursor;
  }
}

// ---------------------------------------------------------------- actions

/** Writes being sent now. Pages whose buttons are rebuilt on render (tabs, orders) wait
 * for them before re-rendering, so a button in the middle of its request is never swapped
 * for a fresh one that a second click could fire again. */
let inFlight = 0;
let renderPending = false;

/** One write with one Idempotency-Key for its whole life, and the button that fires it:
 * idle → sending → done | failed (retryable, same key) | refused (a new attempt gets a
 * new key). Clicks while sending or after done do nothing. */
class Action {
  constructor(button, status, run, { onDone } = {}) {
    this.button = button;
    this.status = status;
    this.run = run;
    this.onDone = onDone;
    this.state = "idle";
    this.key = null;
    button.addEventListener("click", (e) => {
      e.preventDefault();
      this.fire();
    });
  }

  async fire() {
    if (this.state === "sending" || this.state === "done") return;
    if (this.state !== "failed") this.key = newKey();
    this.show("sending", t("pay.sending"));
    inFlight += 1;
    try {
      const result = await this.run(this.key);
      this.show("done", result.message);
      this.onDone?.(result);
      // The next click is the next operation, with a key of its own.
      this.reset();
    } catch (e) {
      if (e instanceof ApiFailure && e.retryable) this.show("failed", t("pay.failed", { detail: e.message }));
      else this.show("refused", t("pay.refused", { detail: e.message }));
    } finally {
      inFlight -= 1;
      if (inFlight === 0 && renderPending) {
        renderPending = false;
        render();
      }
    }
  }

  show(state, message) {
    this.state = state;
    this.button.dataset.state = state;
    this.button.disabled = state === "sending";
    this.status.className = `status ${state}`;
    this.status.textContent = message;
    if (this.button.dataset.i18n) {
      this.button.textContent = t(state === "failed" ? "pay.retry" : this.button.dataset.i18n);
    }
  }

  /** Ready for the next operation (a new key); the last message stays. */
  reset() {
    this.state = "idle";
    this.key = null;
    this.button.disabled = false;
    this.button.dataset.state = "idle";
    if (this.button.dataset.i18n) this.button.textContent = t(this.button.dataset.i18n);
  }
}

// ---------------------------------------------------------------- the live feed

/** Follows the change feed: WebSocket first, long polling when WebSocket is unavailable,
 * jittered back-off between attempts, resume after the last applied seq. */
class Feed {
  constructor(onEvent, onReset) {
    this.onEvent = onEvent;
    this.onReset = onReset;
    this.seq = 0;
    this.attempt = 0;
    this.mode = "ws";
    this.wsFailures = 0;
    this.stopped = false;
    this.lastBeat = 0;
  }

  start(after) {
    this.seq = after;
    this.connect();
    this.watchdog = setInterval(() => this.checkAlive(), 5000);
    addEventListener("online", () => this.connect());
    addEventListener("offline", () => this.status("offline"));
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.ws?.close();
  }

  status(state) {
    const node = $("#conn");
    node.className = `conn ${state}`;
    node.dataset.state = state;
    node.dataset.attempt = String(this.attempt);
    node.textContent = state === "reconnecting" ? t("conn.reconnecting", { n: this.attempt }) : t(`conn.${state}`);
  }

  connect() {
    if (this.stopped || this.connecting) return;
    this.connecting = true;
    if (this.mode === "poll") return this.poll();
    let opened = false;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (_) {
      this.connecting = false;
      this.mode = "poll";
      return this.connect();
    }
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: "subscribe", key: session.key, topics: TOPICS, after: this.seq }));
    };
    ws.onmessage = (m) => this.message(JSON.parse(m.data));
    ws.onclose = () => {
      this.connecting = false;
      if (this.ws === ws) this.ws = null;
      if (!opened && ++this.wsFailures >= 3) this.mode = "poll";
      this.retry();
    };
  }

  message(msg) {
    this.lastBeat = Date.now();
    if (msg.type === "subscribed") {
      this.attempt = 0;
      this.wsFailures = 0;
      this.status("online");
    } else if (msg.type === "heartbeat") {
      this.status("online");
    } else if (msg.type === "error" && msg.status === 401) {
      signOut();
    } else if (msg.type === "reset") {
      this.seq = msg.resume_from;
      this.onReset();
    } else if (typeof msg.seq === "number") {
      this.apply(msg);
    }
  }

  apply(event) {
    if (event.seq <= this.seq) return;
    this.seq = event.seq;
    // What this page applied, in order: a diagnostic for support, and what the browser
    // tests check for gaps and repeats.
    (window.__caja_seqs ||= []).push(event.seq);
    this.onEvent(event);
  }

  retry() {
    if (this.stopped) return;
    this.attempt += 1;
    this.status(navigator.onLine === false ? "offline" : "reconnecting");
    const base = Math.min(10000, 250 * 2 ** Math.min(this.attempt, 6));
    setTimeout(() => this.connect(), base / 2 + Math.random() * base);
  }

  async poll() {
    const topics = TOPICS.join(",");
    // The first request answers at once (so the indicator knows), the rest wait for news.
    let wait = 0;
    while (!this.stopped) {
      try {
        const page = await api("GET", `/v1/changes?after=${this.seq}&wait=${wait}&topics=${topics}`);
        wait = 20;
        this.lastBeat = Date.now();
        this.attempt = 0;
        this.status("online");
        for (const e of page.data.data) this.apply(e);
        this.seq = Math.max(this.seq, Number(page.data.next_cursor));
      } catch (e) {
        if (e.status === 410) {
          this.seq = e.problem.resume_from;
          this.onReset();
          continue;
        }
        this.connecting = false;
        return this.retry();
      }
    }
  }

  checkAlive() {
    // Heartbeats come every few seconds on an idle stream: a silent one is a dead one.
    if (this.mode === "ws" && this.ws && Date.now() - this.lastBeat > 45000) this.ws.close();
  }
}

/** The newest seq of the feed: asking for events after a seq that does not exist yet is
 * answered 410 with the seq to resume from, which is the head. */
async function feedHead() {
  try {
    await api("GET", "/v1/changes?after=999999999999999&limit=1");
  } catch (e) {
    if (e.status === 410) return e.problem.resume_from;
    throw e;
  }
  return 0;
}

// ---------------------------------------------------------------- state

const TOPICS = ["products", "orders", "tabs"];
const state = { products: new Map(), orders: new Map(), tabs: new Map(), cart: new Map() };
let feed = null;

async function loadAll() {
  const [products, orders, tabs] = await Promise.all([
    all("/v1/products"),
    all("/v1/orders"),
    all("/v1/tabs?status=open"),
  ]);
  state.products = new Map(products.map((p) => [p.id, p]));
  state.orders = new Map(orders.map((o) => [o.id, o]));
  state.tabs = new Map(tabs.map((tab) => [tab.id, tab]));
  if (products[0]) currency = products[0].price.currency;
}

function onEvent(event) {
  const family = event.type.split(".")[0];
  if (family === "product") {
    if (event.type === "product.archived") state.products.delete(event.id);
    else state.products.set(event.id, event.data);
  } else if (family === "order") {
    state.orders.set(event.id, event.data);
  } else if (family === "tab") {
    if (event.data.status === "open") state.tabs.set(event.id, event.data);
    else state.tabs.delete(event.id);
  }
  render();
}

async function onReset() {
  await loadAll();
  render();
}

// ---------------------------------------------------------------- pages

const PAGES = ["till", "tabs", "orders", "dashboard"];

function currentPage() {
  const wanted = location.hash.replace("#/", "");
  if (!PAGES.includes(wanted)) return "till";
  if (wanted === "dashboard" && session.role !== "admin") return "till";
  return wanted;
}

function show(page) {
  for (const p of ["signin", ...PAGES]) $(`#page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
}

function render() {
  if (!session.key) return show("signin");
  const page = currentPage();
  if (inFlight > 0 && (page === "tabs" || page === "orders")) {
    renderPending = true;
    return;
  }
  show(page);
  if (page === "till") renderTill();
  if (page === "tabs") renderTabs();
  if (page === "orders") renderOrders();
  if (page === "dashboard") renderDashboard();
}

// ---- till

function cartTotal() {
  let total = 0;
  for (const [id, q] of state.cart) total += (state.products.get(id)?.price.amount ?? 0) * q;
  return total + minorUnits($("#tip").value);
}

function renderTill() {
  const grid = $("#grid");
  grid.replaceChildren();
  for (const p of state.products.values()) {
    const inCart = state.cart.get(p.id) ?? 0;
    const left = p.stock - inCart;
    const button = el(
      "button",
      { className: `product${p.stock === 0 ? " sold-out" : ""}`, disabled: p.stock === 0 || left <= 0 },
      el("span", { textContent: p.name }),
      el("span", { className: "price", textContent: money(p.price.amount) }),
      el("span", { className: "stock", textContent: p.stock === 0 ? t("stock.sold_out") : t("stock.left", { n: p.stock }) }),
    );
    button.dataset.sku = p.sku;
    button.dataset.stock = String(p.stock);
    button.addEventListener("click", () => {
      state.cart.set(p.id, inCart + 1);
      renderTill();
    });
    grid.append(button);
  }
  const lines = $("#cart-lines");
  lines.replaceChildren();
  for (const [id, q] of state.cart) {
    const p = state.products.get(id);
    if (!p) continue;
    const remove = el("button", { textContent: "−", title: t("cart.remove") });
    remove.addEventListener("click", () => {
      if (q > 1) state.cart.set(id, q - 1);
      else state.cart.delete(id);
      renderTill();
    });
    lines.append(el("li", {}, el("span", { textContent: `${q} × ${p.name}` }), el("span", { textContent: money(p.price.amount * q) }), remove));
  }
  $("#cart-empty").hidden = state.cart.size > 0;
  $("#cart-total").textContent = money(cartTotal());
  renderPayment();
}

function method() {
  return document.querySelector("input[name=method]:checked").value;
}

function renderPayment() {
  const cash = method() === "cash";
  $("#tendered-row").hidden = !cash;
  $("#change-row").hidden = !cash;
  $("#reference-row").hidden = cash;
  const tendered = minorUnits($("#tendered").value);
  $("#change").textContent = cash && tendered ? money(Math.max(0, tendered - cartTotal())) : "—";
}

/** Charge: create the order, then pay it, each under its own key derived from the
 * action's one key, so a retry replays both instead of doing either twice. */
async function charge(key) {
  if (state.cart.size === 0) throw new ApiFailure(422, null, t("cart.empty"));
  const total = cartTotal();
  if (method() === "cash" && $("#tendered").value && minorUnits($("#tendered").value) < total) {
    throw new ApiFailure(422, null, t("pay.short"));
  }
  const lines = [...state.cart].map(([product_id, quantity]) => ({ product_id, quantity }));
  const body = { lines };
  const tip = minorUnits($("#tip").value);
  if (tip) body.tip = { amount: tip, currency };
  if ($("#note").value.trim()) body.note = $("#note").value.trim();
  window.__caja_charge_started = Date.now();
  const order = await api("POST", "/v1/orders", { body, idempotencyKey: `${key}-order` });
  return pay(order.data, key);
}

async function pay(order, key) {
  const payment = { method: method(), amount: order.total };
  if (method() !== "cash" && $("#reference").value.trim()) payment.reference = $("#reference").value.trim();
  const paid = await api("POST", `/v1/orders/${order.id}/payments`, { body: payment, idempotencyKey: `${key}-pay` });
  state.orders.set(paid.data.id, paid.data);
  return { message: t("pay.done", { number: paid.data.number }), order: paid.data };
}

let chargeAction = null;

function setUpTill() {
  chargeAction = new Action($("#charge"), $("#charge-status"), charge, {
    onDone: () => {
      // Cleared only now, after the server confirmed the payment.
      state.cart.clear();
      for (const id of ["#tip", "#note", "#tendered", "#reference"]) $(id).value = "";
      renderTill();
    },
  });
  for (const input of document.querySelectorAll("input[name=method], #tendered, #tip")) {
    input.addEventListener("input", () => {
      if (chargeAction.state === "refused") chargeAction.reset();
      renderTill();
    });
  }
}

// ---- tabs

function tabSeconds(tab, now) {
  let s = 0;
  for (const p of tab.periods) {
    const end = p.ended_at ? Date.parse(p.ended_at) : now;
    s += Math.max(0, (end - Date.parse(p.started_at)) / 1000);
  }
  return Math.floor(s);
}

/** What the server would bill now: its `due` moved forward by the time since. */
function tabDue(tab, now) {
  const items = tab.items.filter((i) => !i.removed_at).reduce((s, i) => s + i.line_total.amount, 0);
  const r = tab.rounding;
  const seconds = tabSeconds(tab, now);
  let minutes = 0;
  if (tab.rate.amount > 0 && seconds > r.grace_minutes * 60) {
    const unit = r.unit_minutes * 60;
    minutes = Math.max(r.minimum_minutes, Math.ceil((seconds - r.grace_minutes * 60) / unit) * r.unit_minutes);
  }
  return items + Math.floor((tab.rate.amount * minutes * 2 + 60) / 120);
}

function renderTabs() {
  const box = $("#tabs");
  box.replaceChildren();
  const now = Date.now();
  if (state.tabs.size === 0) box.append(el("p", { className: "empty", textContent: t("tabs.none") }));
  for (const tab of state.tabs.values()) {
    const card = el("article", { className: "card tab" });
    card.dataset.tab = tab.id;
    card.dataset.label = tab.label;
    const live = tab.items.filter((i) => !i.removed_at);
    card.append(
      el("h3", { textContent: tab.resource ? `${tab.label} · ${tab.resource}` : tab.label }),
      el("p", {
        className: "meta",
        textContent: `${tab.paused ? t("tabs.paused", { time: clock(tabSeconds(tab, now)) }) : t("tabs.running", { time: clock(tabSeconds(tab, now)) })} · ${t("tabs.items", { n: live.length })} · ${t("tabs.due", { amount: money(tabDue(tab, now)) })}`,
      }),
    );
    const select = el("select");
    select.setAttribute("aria-label", t("tabs.add"));
    for (const p of state.products.values()) {
      if (p.stock > 0) select.append(el("option", { value: p.id, textContent: p.name }));
    }
    const add = el("button", { textContent: t("tabs.add") });
    const status = el("p", { className: "status", role: "status" });
    new Action(add, status, async (key) => {
      await api("POST", `/v1/tabs/${tab.id}/items`, { body: { product_id: select.value, quantity: 1 }, idempotencyKey: key });
      return { message: "" };
    }, { onDone: () => render() });
    const toggle = el("button", { textContent: t(tab.paused ? "tabs.resume" : "tabs.pause") });
    new Action(toggle, status, async (key) => {
      await api("POST", `/v1/tabs/${tab.id}/${tab.paused ? "resume" : "pause"}`, { idempotencyKey: key });
      return { message: "" };
    });
    const close = el("button", { className: "primary", textContent: t("tabs.close") });
    close.dataset.action = "close";
    new Action(close, status, async (key) => {
      const order = await api("POST", `/v1/tabs/${tab.id}/close`, { idempotencyKey: `${key}-close` });
      const paid = await pay(order.data, key);
      return { message: t("tabs.closed", { number: paid.order.number }) };
    });
    card.append(el("div", { className: "add" }, select, add), el("div", { className: "actions" }, toggle, close), status);
    box.append(card);
  }
}

function setUpTabs() {
  const form = $("#open-tab");
  const submit = form.querySelector("button");
  new Action(submit, $("#open-tab-status"), async (key) => {
    if (!form.reportValidity()) throw new ApiFailure(422, null, t("tabs.label"));
    const body = { label: $("#tab-label").value.trim() };
    if ($("#tab-resource").value.trim()) body.resource = $("#tab-resource").value.trim();
    const rate = minorUnits($("#tab-rate").value);
    if (rate) body.rate = { amount: rate, currency };
    const opened = await api("POST", "/v1/tabs", { body, idempotencyKey: key });
    state.tabs.set(opened.data.id, opened.data);
    return { message: "" };
  }, {
    onDone: () => {
      form.reset();
      renderTabs();
    },
  });
  // Running times move on their own.
  setInterval(() => currentPage() === "tabs" && session.key && renderTabs(), 15000);
}

// ---- orders

function today(o) {
  return new Date(o.created_at).toDateString() === new Date().toDateString();
}

function renderOrders() {
  const filter = $("#order-filter").value;
  const rows = $("#order-rows");
  rows.replaceChildren();
  const orders = [...state.orders.values()].filter((o) => today(o) && (!filter || o.status === filter)).reverse();
  for (const o of orders) {
    const actions = el("td");
    const status = el("span", { className: "status" });
    if (o.status === "pending_payment") {
      const cancel = el("button", { textContent: t("orders.cancel") });
      new Action(cancel, status, async (key) => {
        await api("POST", `/v1/orders/${o.id}/cancel`, { idempotencyKey: key });
        return { message: "" };
      });
      actions.append(cancel);
    }
    if (session.role === "admin" && (o.status === "paid" || o.status === "fulfilled")) {
      const refund = el("button", { textContent: t("orders.refund") });
      new Action(refund, status, async (key) => {
        await api("POST", `/v1/orders/${o.id}/refund`, { body: { restock: true }, idempotencyKey: key });
        return { message: "" };
      });
      actions.append(refund);
    }
    actions.append(status);
    const row = el(
      "tr",
      {},
      el("td", { textContent: String(o.number) }),
      el("td", { textContent: new Date(o.created_at).toLocaleTimeString(lang) }),
      el("td", { textContent: t(`status.${o.status}`) }),
      el("td", { textContent: money(o.total.amount) }),
      actions,
    );
    row.dataset.order = o.id;
    row.dataset.status = o.status;
    rows.append(row);
  }
  if (orders.length === 0) rows.append(el("tr", {}, el("td", { colSpan: 5, className: "empty", textContent: t("orders.none") })));
}

// ---- dashboard

function renderDashboard() {
  const orders = [...state.orders.values()].filter(today);
  const perHour = new Array(24).fill(0);
  for (const o of orders) {
    if (["paid", "fulfilled"].includes(o.status)) perHour[new Date(o.created_at).getHours()] += o.total.amount;
  }
  const max = Math.max(1, ...perHour);
  $("#chart").replaceChildren(
    ...perHour.map((v, h) => {
      const bar = el("div", { className: "bar-h", title: `${h}:00 ${money(v)}` });
      bar.style.height = `${(100 * v) / max}%`;
      return bar;
    }),
  );
  const counts = {};
  for (const o of orders) counts[o.status] = (counts[o.status] ?? 0) + 1;
  $("#by-status").replaceChildren(
    ...Object.entries(counts).map(([s, n]) => el("li", {}, el("span", { textContent: t(`status.${s}`) }), el("strong", { textContent: String(n) }))),
  );
  const low = [...state.products.values()].filter((p) => p.stock < 5);
  $("#low-stock").replaceChildren(
    ...(low.length
      ? low.map((p) => el("li", {}, el("span", { textContent: p.name }), el("strong", { textContent: String(p.stock) })))
      : [el("li", { className: "empty", textContent: t("dash.none") })]),
  );
  $("#open-tabs").textContent = String(state.tabs.size);
}

/** The server's health, read on its own clock (every 10 s while the dashboard shows), not
 * once per event: a busy shop's feed must not turn into a stream of /ready requests. */
async function refreshHealth() {
  if (!session.key || currentPage() !== "dashboard") return;
  try {
    const res = await fetch("/ready");
    const health = await res.json();
    const checks = Object.entries(health.checks || {}).map(([name, c]) =>
      el("li", {}, el("span", { textContent: name }), el("strong", { textContent: [].concat(c)[0]?.status ?? "" })),
    );
    $("#health").dataset.status = health.status;
    $("#health").replaceChildren(el("li", {}, el("span", { textContent: res.ok ? t("dash.ready") : t("dash.not_ready") })), ...checks);
  } catch (_) {
    $("#health").replaceChildren(el("li", { textContent: t("dash.not_ready") }));
  }
}

// ---------------------------------------------------------------- start

async function signIn(key) {
  session.key = key;
  // The stream's greeting names the key's role; a list read checks the key first.
  try {
    await api("GET", "/v1/products?limit=1");
  } catch (e) {
    session.key = null;
    throw e;
  }
  let admin = true;
  try {
    await api("GET", "/v1/maintenance");
  } catch (e) {
    if (e.status !== 403) throw e;
    admin = false;
  }
  session.role = admin ? "admin" : "clerk";
  sessionStorage.setItem("caja.key", key);
  sessionStorage.setItem("caja.role", session.role);
}

async function begin() {
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  for (const a of document.querySelectorAll("#nav a[data-admin]")) a.hidden = session.role !== "admin";
  const head = await feedHead();
  await loadAll();
  feed = new Feed(onEvent, onReset);
  feed.start(head);
  render();
  refreshHealth();
}

function signOut() {
  feed?.stop();
  feed = null;
  session.key = null;
  session.role = null;
  sessionStorage.removeItem("caja.key");
  sessionStorage.removeItem("caja.role");
  state.cart.clear();
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#conn").className = "conn offline";
  $("#conn").textContent = "";
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  translatePage();
  $("#lang").addEventListener("change", (e) => {
    lang = e.target.value;
    sessionStorage.setItem("caja.lang", lang);
    translatePage();
    if (feed) feed.status($("#conn").dataset.state);
    render();
  });
  $("#signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#signin-error").textContent = "";
    try {
      await signIn($("#key").value.trim());
      $("#key").value = "";
      await begin();
    } catch (err) {
      $("#signin-error").textContent = err.status === 401 ? t("signin.bad") : err.message;
    }
  });
  $("#signout").addEventListener("click", signOut);
  $("#order-filter").addEventListener("change", renderOrders);
  addEventListener("hashchange", () => {
    render();
    refreshHealth();
  });
  setInterval(refreshHealth, 10000);
  setUpTill();
  setUpTabs();
  if (session.key) begin().catch(() => signOut());
  else render();
});
