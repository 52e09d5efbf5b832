// The cinet console. It speaks only to this broker's API, with the session
// cookie its sign-in code bought; every request that changes something
// carries the session's CSRF token. Text from the broker is put in the page
// as text, never as markup.
import { verifyReceipt, checkCheckpoint, checkConsistency } from "./verify.js";

const state = { session: null, timer: null, follow: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// api calls the broker; it returns the decoded JSON, or throws the
// problem the broker answered with.
async function api(method, path, body, contentType) {
  const headers = {};
  if (method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrf;
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  const resp = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (resp.status === 204) return null;
  const type = resp.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const err = new Error((data && data.detail) || resp.statusText);
    err.problem = data;
    err.status = resp.status;
    throw err;
  }
  return data;
}

// put replaces a node's children, flattening lists and leaving out nulls.
function put(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
}

function money(m) { return m ? `${m.amount} ${m.currency}` : "–"; }
function when(t) { return t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–"; }

function problemView(err) {
  const box = el("div", { role: "alert", class: "error" }, el("p", {}, err.message));
  const list = err.problem && err.problem.errors;
  if (list && list.length) {
    box.append(el("ul", { class: "errors" }, list.map((e) => el("li", {}, `line ${e.line}, column ${e.column}: ${e.path}: ${e.message}`))));
  }
  return box;
}

function show(title, ...content) {
  clearInterval(state.timer);
  if (state.follow) { state.follow.abort(); state.follow = null; }
  const main = document.getElementById("main");
  put(main, el("h1", {}, title), content);
  document.title = `${title} · cinet console`;
  main.focus();
}

const views = {
  tenant: [["jobs", "Jobs"], ["submit", "Submit a job"], ["balance", "Balance"], ["statement", "Statement"], ["offers", "Offers"], ["verify", "Verify"]],
  provider: [["offers", "Offers"], ["balance", "Earnings"], ["statement", "Statement"], ["verify", "Verify"]],
  regulator: [["balance", "Books"], ["statement", "Statements"], ["audit", "Audit log"], ["verify", "Verify"], ["federation", "Federation"]],
  operator: [["jobs", "Jobs"], ["offers", "Offers"], ["balance", "Books"], ["statement", "Statements"], ["audit", "Audit log"], ["verify", "Verify"], ["federation", "Federation"], ["operate", "Operate"]],
};

function renderChrome(current) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  if (!state.session) { nav.replaceChildren(); who.replaceChildren(); return; }
  nav.replaceChildren(...(views[state.session.role] || []).map(([id, label]) =>
    el("a", { href: `#/${id}`, "aria-current": id === current ? "page" : false }, label)));
  who.replaceChildren(`${state.session.role} ${state.session.principal.slice(0, 20)}… `,
    el("button", { class: "secondary", type: "button", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try { await api("DELETE", "/v1/console/session"); } catch (e) { /* signed out either way */ }
  state.session = null;
  location.hash = "#/";
  route();
}

function signInView(message) {
  const input = el("input", { type: "text", id: "code", name: "code", autocomplete: "off", required: true });
  const out = el("div", { "aria-live": "polite" }, message ? el("p", { class: "error", role: "alert" }, message) : null);
  const form = el("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    await redeem(input.value.trim(), out);
  } }, el("label", { for: "code" }, "Sign-in code"), input, " ", el("button", { type: "submit" }, "Sign in"));
  show("Sign in", el("p", {}, "Sign in with a one-time code: run ",
    el("code", {}, "cinet console login"), " with your key, or open the link ", el("code", {}, "cinet dev"),
    " prints. Your key never enters the browser."), form, out);
}

async function redeem(code, out) {
  try {
    state.session = await api("POST", "/v1/console/session", JSON.stringify({ code }));
    history.replaceState(null, "", "#/");
    route();
  } catch (err) {
    if (out) out.replaceChildren(problemView(err)); else signInView(err.message);
  }
}

async function jobsView() {
  const body = el("tbody");
  const table = el("div", { class: "scroll" }, el("table", {}, el("caption", { class: "hint" }, "Your jobs, newest first; refreshed every 2 seconds."),
    el("thead", {}, el("tr", {}, ["Job", "Name", "State", "Home", "Ran in", "Cost"].map((h, i) => el("th", { scope: "col", class: i === 3 ? "wide" : null }, h)))), body));
  show("Jobs", table);
  const load = async () => {
    try {
      const list = await api("GET", "/v1/jobs?limit=100");
      body.replaceChildren(...list.jobs.map((j) => {
        const a = j.attempts && j.attempts.length ? j.attempts[j.attempts.length - 1] : null;
        return el("tr", {},
          el("td", {}, el("a", { href: `#/job/${encodeURIComponent(j.id)}`, class: "mono" }, j.id)),
          el("td", {}, j.name),
          el("td", { class: "state" }, j.outcome && j.outcome !== j.state ? `${j.state} (${j.outcome})` : j.state),
          el("td", { class: "wide" }, j.homeRegion || "–"),
          el("td", {}, a ? a.region : "–"),
          el("td", {}, money(j.cost)));
      }));
      if (!list.jobs.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 6 }, "No jobs yet. ", el("a", { href: "#/submit" }, "Submit one."))));
    } catch (err) { body.replaceChildren(el("tr", {}, el("td", { colspan: 6 }, problemView(err)))); }
  };
  await load();
  state.timer = setInterval(load, 2000);
}

async function jobView(id) {
  let j;
  try { j = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`); } catch (err) { show("Job", problemView(err)); return; }
  const summary = el("dl", {});
  const timeline = el("tbody");
  const attempts = el("tbody");
  const endpoints = el("div");
  const logs = el("pre", { class: "logs", "aria-label": "Output of the job's first task", tabindex: "0" });
  const cancel = el("button", { type: "button", class: "secondary", onclick: async () => {
    try { await api("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`); await fill(); } catch (err) { summary.after(problemView(err)); }
  } }, "Cancel");
  const fill = async () => {
    j = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    const a = j.attempts && j.attempts.length ? j.attempts[j.attempts.length - 1] : null;
    const row = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
    summary.replaceChildren(...row("State", j.outcome && j.outcome !== j.state ? `${j.state} (${j.outcome})` : j.state),
      ...row("Home region", j.homeRegion), ...row("Ran in", a ? a.region : "–"),
      ...row("Offer", a ? el("span", { class: "mono" }, a.offer) : "–"), ...row("Provider", a ? el("span", { class: "mono" }, a.provider) : "–"),
      ...row("Cost", money(j.cost)), ...(j.hold && j.state !== "settled" ? row("Held", money(j.hold)) : []),
      ...(j.detail ? row("Detail", j.detail) : []));
    timeline.replaceChildren(...j.history.map((t) => el("tr", {},
      el("td", { class: "time" }, el("time", { datetime: t.at, title: when(t.at) }, when(t.at).slice(11, 19))),
      el("td", { class: "state" }, t.state), el("td", {}, t.detail || ""))));
    attempts.replaceChildren(...(j.attempts || []).map((x) => el("tr", {}, el("td", { class: "mono" }, x.id), el("td", {}, x.state || "–"),
      el("td", {}, String(x.exitCode)), el("td", {}, money(x.charge)),
      el("td", { class: "mono wide" }, x.record ? el("a", { href: `#/verify/${encodeURIComponent(x.record)}`, title: "Verify it in this browser" }, x.record) : "–"))));
    const eps = a && !a.endedAt ? a.endpoints || [] : [];
    endpoints.replaceChildren(...(eps.length ? [el("h2", {}, "Endpoints"), el("ul", {}, eps.map((e) =>
      el("li", {}, `${e.name}, replica ${e.replica}: `, /^https?:\/\//.test(e.url || "") ? el("a", { href: e.url, rel: "noreferrer" }, e.url) : el("code", {}, e.url || e.address),
        e.ready ? " (ready)" : " (not ready)")))] : []));
    cancel.hidden = ["settled", "succeeded", "failed", "cancelled"].includes(j.state) || j.cancelRequested;
    if (j.state === "settled") clearInterval(state.timer);
  };
  const why = el("section", { "aria-labelledby": "why" });
  show(`Job ${j.name}`, el("p", { class: "mono" }, id), summary, cancel, endpoints, why,
    el("h2", {}, "Attempts"), el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Attempt", "State", "Exit", "Charge", "Usage record"].map((h, i) => el("th", { scope: "col", class: i === 4 ? "wide" : null }, h)))), attempts)),
    el("h2", {}, "Timeline"), el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["At", "State", "Detail"].map((h) => el("th", { scope: "col" }, h)))), timeline)),
    el("h2", {}, "Output"), logs);
  await fill();
  state.timer = setInterval(() => fill().catch(() => {}), 1000);
  explainInto(why, JSON.stringify(j.document));
  followLogs(id, logs);
}

// explainInto shows where a job could run among the offers now in the
// book: the ranked ones, then the rest grouped by the reason they fail.
async function explainInto(box, doc) {
  let x;
  try { x = await api("POST", "/v1/explain?filename=job.json", doc, "application/json"); } catch (err) { box.replaceChildren(problemView(err)); return; }
  const ranked = x.fates.filter((f) => f.status !== "rejected");
  const byReason = new Map();
  for (const f of x.fates.filter((f) => f.status === "rejected")) {
    if (!byReason.has(f.reason)) byReason.set(f.reason, []);
    byReason.get(f.reason).push(f);
  }
  put(box, el("h2", { id: "why" }, "Where it could run"),
    el("p", {}, `Against the ${x.total} offers in the book now: ${x.feasible} could serve it.`),
    ranked.length ? el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Rank", "Offer", "Region", "Estimated cost"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ranked.map((f) => el("tr", {}, el("td", {}, String(f.rank)), el("td", { class: "mono" }, f.offer), el("td", {}, f.region),
        el("td", {}, f.parts ? `${f.parts.cost} ${f.parts.currency}` : "–")))))) : null,
    [...byReason].map(([reason, fates]) => el("details", {},
      el("summary", {}, `${fates.length} × ${reason}: ${fates[0].detail}`),
      el("ul", {}, fates.map((f) => el("li", {}, el("span", { class: "mono" }, f.offer), ` (${f.region}): ${f.detail}`))))));
}

// followLogs streams the first task's output into the page until the
// attempt ends.
async function followLogs(id, pre) {
  const ctl = new AbortController();
  state.follow = ctl;
  try {
    const resp = await fetch(`/v1/jobs/${encodeURIComponent(id)}/logs?follow=true`, { credentials: "same-origin", signal: ctl.signal });
    if (!resp.ok) { pre.textContent = (await resp.json()).detail; return; }
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pre.textContent += dec.decode(value, { stream: true });
    }
  } catch (err) { if (err.name !== "AbortError") pre.textContent += `\n[${err.message}]`; }
}

function submitView() {
  const text = el("textarea", { id: "doc", name: "doc", spellcheck: "false", "aria-describedby": "doc-hint" });
  const file = el("input", { type: "file", id: "file", accept: ".yaml,.yml,.json" });
  const out = el("div", { "aria-live": "polite" });
  file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
  const form = el("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    const isJSON = text.value.trim().startsWith("{");
    try {
      const j = await api("POST", `/v1/jobs?filename=${isJSON ? "job.json" : "job.yaml"}`, text.value, isJSON ? "application/json" : "application/yaml");
      location.hash = `#/job/${encodeURIComponent(j.id)}`;
    } catch (err) { out.replaceChildren(problemView(err)); }
  } },
  el("label", { for: "file" }, "Job file (YAML or JSON)"), file,
  el("label", { for: "doc" }, "Job document"), el("p", { id: "doc-hint", class: "hint" }, "A cinet/v1 Job, as in spec/descriptor-v1.md; errors are shown with their line."),
  text, el("p", {}, el("button", { type: "submit" }, "Submit")));
  show("Submit a job", form, out);
}

async function balanceView() {
  try {
    const b = await api("GET", "/v1/ledger/balances");
    const rows = b.balances.map((x) => el("tr", {}, el("td", { class: "mono" }, x.account), el("td", {}, x.currency), el("td", {}, x.amount)));
    const trial = Object.entries(b.trialBalance || {}).map(([c, n]) => el("li", { class: n === "0" ? "ok" : "error" }, `${c}: ${n}`));
    let holds = [];
    if (state.session.role === "tenant") {
      try {
        const list = await api("GET", "/v1/jobs?limit=1000");
        holds = list.jobs.filter((j) => j.hold && j.state !== "settled");
      } catch (err) { /* holds are left out */ }
    }
    show({ provider: "Earnings", tenant: "Balance" }[state.session.role] || "Books",
      holds.length ? [el("h2", {}, "Held for jobs under way"), el("ul", {}, holds.map((j) => el("li", {},
        el("a", { href: `#/job/${encodeURIComponent(j.id)}`, class: "mono" }, j.id), `: ${money(j.hold)} held while it ${j.state === "running" ? "runs" : "waits"}`)))] : null,
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Account", "Currency", "Amount"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows))),
      trial.length ? [el("h2", {}, "Trial balance"), el("ul", {}, trial)] : []);
  } catch (err) { show("Balances", problemView(err)); }
}

async function offersView() {
  const provider = state.session.role === "provider";
  const out = el("div", { "aria-live": "polite" });
  const body = el("tbody");
  const load = async () => {
    const o = await api("GET", provider ? `/v1/offers?provider=${encodeURIComponent(state.session.principal)}` : "/v1/offers");
    body.replaceChildren(...o.offers.map((x) => el("tr", {},
      el("td", { class: "mono" }, x.computeId), el("td", {}, x.region), el("td", {}, `${x.free} of ${x.quantity}`), el("td", { class: "wide" }, when(x.validUntil)),
      el("td", {}, provider || state.session.role === "operator" ? el("button", { type: "button", class: "secondary", "aria-label": `Withdraw ${x.name}`, onclick: async () => {
        try { await api("DELETE", `/v1/offers/${x.name.split("/").map(encodeURIComponent).join("/")}`); out.replaceChildren(el("p", { class: "ok" }, `Withdrew ${x.name}.`)); await load(); } catch (err) { out.replaceChildren(problemView(err)); }
      } }, "Withdraw") : null))));
    if (!o.offers.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 5 }, provider ? "You have no offers here yet." : "No offers.")));
  };
  const file = el("input", { type: "file", id: "offer-file", accept: ".json" });
  const register = el("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) { out.replaceChildren(el("p", { class: "error", role: "alert" }, "Choose a signed offer file first.")); return; }
    if (f.size > 1 << 20) { out.replaceChildren(el("p", { class: "error", role: "alert" }, "That file is over 1 MiB; a signed offer is a few kilobytes.")); return; }
    try {
      const v = await api("POST", "/v1/offers", await f.text(), "application/json");
      out.replaceChildren(el("p", { class: "ok" }, `Registered ${v.name}: ${v.quantity} instances in ${v.region}.`));
      await load();
    } catch (err) { out.replaceChildren(problemView(err)); }
  } }, el("h2", {}, "Register an offer"),
  el("p", {}, "An offer is signed with your key, which never enters the browser: sign it with ",
    el("code", {}, "cinet provider register offer.yaml --key provider.key --out offer.signed.json"), " and upload the file here (or leave out ", el("code", {}, "--out"), " to register it from the command line)."),
  el("label", { for: "offer-file" }, "Signed offer"), file, " ", el("button", { type: "submit" }, "Register"));
  const running = el("div");
  show(provider ? "Your offers" : "Offers", el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {},
    ["Offer", "Region", "Free", "Valid until", ""].map((h, i) => el("th", { scope: "col", class: i === 3 ? "wide" : null }, h)))), body)),
  out, running, provider ? register : null);
  try { await load(); } catch (err) { out.replaceChildren(problemView(err)); }
  if (provider || state.session.role === "operator") {
    try {
      const p = await api("GET", "/v1/placements");
      put(running, el("h2", {}, "Running on this capacity"), p.placements.length ? el("div", { class: "scroll" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Placement", "Offer", "State", "Since"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", { id: "placements" }, p.placements.map((x) => el("tr", {}, el("td", { class: "mono" }, x.placement), el("td", { class: "mono" }, x.offer),
          el("td", {}, x.state), el("td", { class: "time" }, when(x.startedAt || x.provisionedAt))))))) : el("p", {}, "Nothing runs on your offers now."));
    } catch (err) { put(running, problemView(err)); }
  }
}

// barChart draws labelled horizontal bars, as SVG made in the page (no
// library); the numbers are also in the table beside it.
function barChart(title, rows, unit) {
  const NS = "http://www.w3.org/2000/svg";
  const max = Math.max(...rows.map(([, v]) => v), 0) || 1;
  const rowH = 22, labelW = 110, width = 560;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * rowH + 4}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${rows.map(([k, v]) => `${k} ${v} ${unit}`).join(", ")}`);
  svg.setAttribute("class", "chart");
  rows.forEach(([label, v], i) => {
    const y = i * rowH + 2;
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", "0"); t.setAttribute("y", String(y + 15)); t.textContent = label;
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("x", String(labelW)); r.setAttribute("y", String(y + 3));
    r.setAttribute("height", "14"); r.setAttribute("width", String(Math.max(1, (width - labelW - 150) * v / max)));
    const n = document.createElementNS(NS, "text");
    n.setAttribute("x", String(labelW + Math.max(1, (width - labelW - 150) * v / max) + 6)); n.setAttribute("y", String(y + 15));
    n.textContent = `${v.toPrecision(3)} ${unit}`;
    svg.append(t, r, n);
  });
  return el("figure", {}, el("figcaption", {}, title), svg);
}

async function statementView() {
  const role = state.session.role;
  const month = new Date().toISOString().slice(0, 7);
  const period = el("input", { type: "text", id: "period", value: month, "aria-describedby": "period-hint" });
  const account = el("input", { type: "text", id: "account", autocomplete: "off" });
  const out = el("div", { "aria-live": "polite" });
  const own = role === "tenant" || role === "provider";
  let latest = 0;
  const load = async () => {
    const seq = ++latest;
    const q = new URLSearchParams({ period: period.value.trim() });
    if (!own && account.value.trim()) q.set("account", account.value.trim());
    let st;
    try { st = await api("GET", `/v1/ledger/statement?${q}`); } catch (err) { put(out, problemView(err)); return; }
    // Spend by day, and by the region each job ran in.
    let regionOf = new Map();
    if (role === "tenant") {
      try {
        const list = await api("GET", "/v1/jobs?limit=1000");
        regionOf = new Map(list.jobs.map((j) => [j.id, (j.attempts || []).map((a) => a.region).pop() || "–"]));
      } catch (err) { /* the chart by region is left out */ }
    }
    if (seq !== latest) return; // a later request has the page
    const byDay = new Map(), byRegion = new Map();
    let currency = "";
    for (const tx of st.transactions) {
      const v = Math.abs(Number(tx.amount));
      currency = tx.currency;
      const day = tx.periodStart.slice(0, 10);
      byDay.set(day, (byDay.get(day) || 0) + v);
      if (regionOf.size) { const r = regionOf.get(tx.job) || "–"; byRegion.set(r, (byRegion.get(r) || 0) + v); }
    }
    put(out,
      el("p", {}, `Account ${st.account}, ${when(st.from)} to ${when(st.to)}. Net: `,
        Object.entries(st.net).map(([c, n]) => `${n} ${c}`).join(", ") || "nothing"),
      st.transactions.length ? [
        el("div", { class: "charts" }, barChart("By day", [...byDay].sort(), currency),
          byRegion.size ? barChart("By region", [...byRegion].sort((a, b) => b[1] - a[1]), currency) : null),
        el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Start", "Job", "Amount", "Record"].map((h, i) => el("th", { scope: "col", class: i === 3 ? "wide" : null }, h)))),
          el("tbody", {}, st.transactions.map((tx) => el("tr", {}, el("td", { class: "time" }, when(tx.periodStart)), el("td", { class: "mono" }, tx.job),
            el("td", {}, `${tx.amount} ${tx.currency}`),
            el("td", { class: "mono wide" }, el("a", { href: `#/verify/${encodeURIComponent(tx.record)}` }, tx.record)))))))] : el("p", {}, "No transactions in this period."),
      role === "regulator" || role === "operator" ?
        el("p", {}, el("a", { href: `/v1/ledger/export?${new URLSearchParams({ period: period.value.trim(), format: "focus" })}`, download: `focus-${period.value.trim()}.csv` }, "Download the period's FOCUS export (CSV)")) : null);
  };
  show(own ? "Statement" : "Statements",
    el("form", { onsubmit: async (ev) => { ev.preventDefault(); await load(); } },
      el("label", { for: "period" }, "Period"), period, el("p", { id: "period-hint", class: "hint" }, "A month (2026-11), a day (2026-11-30) or START/END in RFC 3339, in UTC."),
      own ? null : [el("label", { for: "account" }, "Account"), account, el("p", { class: "hint" }, "Such as tenant/did:key:… or provider/did:key:…; the Books page lists them.")],
      el("p", {}, el("button", { type: "submit" }, "Show"))), out);
  if (own) await load();
}

function principalsTable(p) {
  if (p.error) return el("p", { class: "error" }, p.error);
  return [el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Principal", "Role"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, p.principals.map((x) => el("tr", {}, el("td", { class: "mono" }, x.principal), el("td", {}, x.role)))))),
  el("p", { class: "hint" }, p.openTenancy ? "Any other signer is let in as a tenant (open tenancy)." : "No one else is let in.")];
}

async function operateView() {
  const out = el("div", { "aria-live": "polite" });
  let info = {}, ready = "", metrics = "";
  try { info = await api("GET", "/v1/info"); } catch (err) { info = { error: err.message }; }
  try { ready = JSON.stringify(await api("GET", "/readyz")); } catch (err) { ready = `not ready: ${err.message}`; }
  try { metrics = await api("GET", "/metrics"); } catch (err) { metrics = `# ${err.message}`; }
  const lines = String(metrics).split("\n").filter((l) => l.startsWith("cinet_"));
  let principals = null;
  try { principals = await api("GET", "/v1/principals"); } catch (err) { principals = { error: err.message }; }
  const tokens = el("div", { id: "tokens" });
  const listTokens = async () => {
    let list = [];
    try { list = (await api("GET", "/v1/tokens")).tokens; } catch (err) { put(tokens, problemView(err)); return; }
    if (list.length === 0) { put(tokens, el("p", { class: "hint" }, "No token is outstanding.")); return; }
    put(tokens, el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Token", "Principal", "Role", "Expires", "Revoked", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, list.map((t) => el("tr", {},
        el("td", { class: "mono" }, t.id), el("td", { class: "mono" }, t.principal), el("td", {}, t.role), el("td", {}, when(t.expires)),
        el("td", {}, t.revoked ? when(t.revoked) : "–"),
        el("td", {}, t.revoked ? "" : el("button", { type: "button", onclick: async () => {
          try { await api("DELETE", "/v1/tokens/" + encodeURIComponent(t.id)); put(out, el("p", { class: "ok" }, `Token ${t.id} revoked.`)); }
          catch (err) { put(out, problemView(err)); }
          listTokens();
        } }, "Revoke"))))))));
  };
  show("Operate",
    el("dl", {}, el("dt", {}, "Broker"), el("dd", { class: "mono" }, info.broker || info.error), el("dt", {}, "Region"), el("dd", {}, info.region || "–"),
      el("dt", {}, "Audit log"), el("dd", { class: "mono" }, info.logOrigin || "–"), el("dt", {}, "Verifier key"), el("dd", { class: "mono" }, info.verifierKey || "–"),
      el("dt", {}, "Ready"), el("dd", {}, ready)),
    el("h2", {}, "Principals"), principalsTable(principals),
    el("h2", {}, "Metrics"), el("pre", { class: "logs", tabindex: "0" }, lines.join("\n") || "none"),
    el("h2", {}, "Tokens"), tokens,
    el("p", { class: "hint" }, "Tokens are issued only to a request signed with the broker's key: cinet token issue --key BROKER_KEY --principal DID --role ROLE."),
    out);
  listTokens();
}

// auditView verifies the log's latest checkpoint in the browser and that
// the log only grew since an older checkpoint (by default the last one
// this browser verified, which it remembers), and charts the log's size
// over time from the checkpoints the broker issued.
async function auditView() {
  const vkey = el("input", { type: "text", id: "audit-vkey", autocomplete: "off" });
  const older = el("textarea", { id: "older", spellcheck: "false", rows: "6" });
  const latest = el("pre", { class: "logs", id: "latest", tabindex: "0" });
  const out = el("div", { id: "audit-verdict", role: "status", "aria-live": "polite" });
  let kept = [];
  try { kept = (await api("GET", "/v1/audit/checkpoints?limit=1000")).checkpoints; } catch (err) { /* the chart is left out */ }
  // The log's size over time, by day: the largest checkpoint signed on each.
  const byDay = new Map();
  for (const k of kept.filter((k) => k.signedAt)) {
    const day = k.signedAt.slice(0, 10);
    byDay.set(day, Math.max(byDay.get(day) || 0, k.size));
  }
  let note = "";
  try {
    note = await api("GET", "/v1/audit/checkpoint");
    vkey.value = (await api("GET", "/v1/info")).verifierKey;
  } catch (err) { show("Audit log", problemView(err)); return; }
  latest.textContent = note;
  older.value = localStorage.getItem("cinet.audit.checkpoint") || "";
  const check = async () => {
    try {
      const c = await checkCheckpoint(note, vkey.value);
      const lines = [el("p", { class: "ok" }, `The latest checkpoint is signed by the key above: ${c.size} entries in ${c.origin}.`)];
      if (older.value.trim()) {
        const old = await checkCheckpoint(older.value, vkey.value);
        const p = await api("GET", `/v1/audit/consistency?old=${old.size}&new=${c.size}`);
        const v = await checkConsistency(older.value, note, p.proof, vkey.value);
        lines.push(el("p", { class: "ok" }, `Consistent: the log only grew, from ${v.from} to ${v.to} entries.`));
      }
      localStorage.setItem("cinet.audit.checkpoint", note);
      put(out, lines);
    } catch (err) {
      put(out, el("p", { class: "error" }, `Refused: ${err.message}`));
    }
  };
  show("Audit log",
    el("p", {}, "Checked here, in your browser, with the log's verifier key: compare it with the one you hold."),
    el("label", { for: "audit-vkey" }, "Verifier key"), vkey,
    el("h2", {}, "Latest checkpoint"), latest,
    el("label", { for: "older" }, "An older checkpoint you hold (this browser keeps the last it verified)"), older,
    el("p", {}, el("button", { type: "button", onclick: check }, "Verify in this browser")), out,
    byDay.size ? [el("h2", {}, "The log's size over time"), barChart("Entries, by the last checkpoint of each day", [...byDay].sort(), "entries"),
      el("p", { class: "hint" }, `From the ${kept.length} checkpoints the broker has issued; each can be checked above against the one you hold.`)] : null);
}

// verifyView fetches a record's receipt and checks it here, in the
// browser, under a verifier key the reader supplies: the broker is trusted
// for nothing but the bytes.
async function verifyView(record) {
  const rec = el("input", { type: "text", id: "record", value: record || "", autocomplete: "off" });
  const vkey = el("input", { type: "text", id: "vkey", autocomplete: "off", "aria-describedby": "vkey-hint" });
  const entry = el("textarea", { id: "entry", spellcheck: "false", rows: "6" });
  const receipt = el("textarea", { id: "receipt", spellcheck: "false", rows: "12" });
  const out = el("div", { id: "verdict", role: "status", "aria-live": "polite" });
  const fetchIt = async () => {
    out.replaceChildren();
    try {
      const p = await api("GET", `/v1/audit/proof?record=${encodeURIComponent(rec.value.trim())}`);
      entry.value = new TextDecoder().decode(Uint8Array.from(atob(p.entry), (ch) => ch.charCodeAt(0)));
      receipt.value = p.proof;
      if (!vkey.value) vkey.value = p.verifierKey;
    } catch (err) { out.replaceChildren(problemView(err)); }
  };
  const check = async () => {
    try {
      const v = await verifyReceipt(receipt.value, entry.value, vkey.value);
      out.replaceChildren(el("p", { class: "ok" }, `Verified in this browser: the entry is number ${v.index} of the ${v.size} in log ${v.origin}, whose checkpoint is signed by the key above.`));
    } catch (err) {
      out.replaceChildren(el("p", { class: "error" }, `Refused: ${err.message}`));
    }
  };
  show("Verify a usage record",
    el("p", {}, "A record's receipt is checked here, in your browser, with the log's verifier key: compare the key with the one you hold (",
      el("code", {}, "cinet id"), " prints it for a broker's key). The broker is not trusted for the result."),
    el("form", { onsubmit: async (ev) => { ev.preventDefault(); await fetchIt(); } },
      el("label", { for: "record" }, "Record"), rec, " ", el("button", { type: "submit", class: "secondary" }, "Fetch its receipt")),
    el("label", { for: "vkey" }, "Verifier key"), vkey, el("p", { id: "vkey-hint", class: "hint" }, "NAME+HASH+KEY, as in a C2SP signed note."),
    el("label", { for: "entry" }, "Log entry"), entry,
    el("label", { for: "receipt" }, "Receipt (c2sp.org/tlog-proof)"), receipt,
    el("p", {}, el("button", { type: "button", onclick: check }, "Verify in this browser")), out);
  if (record) await fetchIt();
}

// federationView shows this broker's place in the federation: the brokers
// it knows, its peers, how its clearing statements went, and any member
// seen signing two inconsistent checkpoints of its log.
async function federationView() {
  let f;
  try { f = await api("GET", "/v1/federation"); } catch (err) {
    show("Federation", err.status === 404 ? el("p", {}, "This broker runs alone: it is in no federation.") : problemView(err));
    return;
  }
  const regionOf = Object.fromEntries(f.brokers.map((b) => [b.broker, b.region]));
  const who = (did) => el("span", {}, regionOf[did] ? `${regionOf[did]} ` : "", el("code", {}, did));
  const table = (caption, heads, rows, none) => rows.length
    ? el("div", { class: "scroll" }, el("table", {}, el("caption", {}, caption),
      el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))))
    : el("p", {}, none);
  const differs = (c) => [c.detail || "",
    c.onlyHere && c.onlyHere.length ? ` Only here: ${c.onlyHere.join(", ")}.` : "",
    c.onlyThere && c.onlyThere.length ? ` Only there: ${c.onlyThere.join(", ")}.` : ""].join("") || "–";
  show("Federation",
    el("p", {}, "This broker is ", who(f.broker), f.open ? "; it admits any broker (open mode, for tests only)."
      : `; it admits the ${(f.members || []).length} members its operator lists.`),
    el("h2", {}, "Brokers"),
    table("The brokers whose signed announcements this broker holds", ["Region", "Broker", "API", "Fee"],
      f.brokers.map((b) => [b.region, el("code", {}, b.broker), b.api || "–", b.fee || "–"]), "No broker has announced itself yet."),
    table("Peers connected now", ["Broker", "In the offers mesh"],
      f.peers.map((p) => [who(p.broker), p.meshed ? "yes" : "not yet"]), "No peer is connected."),
    el("h2", {}, "Clearing statements"),
    table("This broker's latest statements, newest first", ["Counterparty", "Period", "Result", "Detail"],
      f.clearing.slice().reverse().map((c) => [who(c.counterparty), `${when(c.periodStart)} to ${when(c.periodEnd)}`, el("span", { class: "nowrap" }, c.result), differs(c)]),
      "No statement yet: statements are issued for periods in which this broker traded with another."),
    el("h2", {}, "Equivocations"),
    table("Members seen signing two inconsistent checkpoints of their logs", ["Broker", "What", "Seen"],
      f.equivocations.map((e) => [who(e.broker), e.detail, when(e.at)]),
      "None: every checkpoint of every member's log seen here is consistent with those before it."));
}

async function route() {
  const hash = location.hash || "#/";
  const code = /^#code=([A-Za-z0-9_-]+)$/.exec(hash);
  if (code) { await redeem(code[1]); return; }
  if (!state.session) {
    try { state.session = await api("GET", "/v1/console/session"); } catch (err) { renderChrome(); signInView(); return; }
  }
  const [, page, arg] = /^#\/([a-z]*)\/?(.*)$/.exec(hash) || [];
  const allowed = (views[state.session.role] || []).map(([id]) => id);
  const current = page === "job" ? "jobs" : allowed.includes(page) ? page : allowed[0];
  renderChrome(current);
  if (page === "job" && arg) return jobView(decodeURIComponent(arg));
  if (current === "verify") return verifyView(decodeURIComponent(arg || ""));
  return { jobs: jobsView, submit: submitView, balance: balanceView, statement: statementView, offers: offersView, audit: auditView, federation: federationView, operate: operateView }[current]();
}

window.addEventListener("hashchange", route);
route();
