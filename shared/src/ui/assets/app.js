// The tickwork dashboard: a client of the public JSON API, nothing more. Every number and
// every action here is a request any script can make with the same key.
//
// The API key is kept in sessionStorage (gone when the browser session ends) and sent as
// `Authorization: Bearer`; no cookie is ever set, so no other site can act on a user's
// behalf. Pages are built with DOM calls and textContent, never from HTML strings.

const KEY = "tickwork.apiKey";
const main = document.getElementById("main");
const who = document.getElementById("who");
const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/// What the API answered when it refused.
class ApiFailure extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

/// One API call; throws ApiFailure on any answer but 2xx.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: { message: text } };
  }
  if (!response.ok) throw new ApiFailure(response.status, (data && data.error) || {});
  return data;
}

/// An element: h("a", {href: "#/"}, "text", child, …). Attributes starting with "on" are
/// listeners; `class` sets the class name.
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/// A time in a zone, labelled with it: "2026-12-06 09:30:00 Europe/Paris".
function inZone(iso, zone) {
  if (!iso) return "—";
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone,
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso));
  const part = (type) => (parts.find((p) => p.type === type) || {}).value;
  return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}:${part("second")} ${zone}`;
}

/// A time in the job's zone and, when it differs, the viewer's.
function times(iso, zone) {
  if (!iso) return h("span", { class: "muted" }, "—");
  if (zone === viewerZone) return h("span", {}, inZone(iso, zone));
  return h("span", {}, inZone(iso, zone), h("br"), h("span", { class: "muted" }, inZone(iso, viewerZone)));
}

function statusOf(job) {
  if (job.deletedAt) return "deleted";
  return job.isActive ? "active" : "paused";
}

function badge(text) {
  return h("span", { class: `status status-${text}` }, text || "—");
}

/// The last outcomes of a job as a strip of marks, oldest first.
function strip(executions) {
  return h("span", { class: "strip", role: "img", "aria-label": `last ${executions.length} runs: ${executions.map((e) => e.status).join(", ") || "none"}` },
    executions.slice().reverse().map((e) => h("span", { class: `s-${e.status}`, title: `${e.scheduledAt} ${e.status}` })));
}

function notice(text, kind = "") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/// Whether the caller may change things (an editor's key, the operator's, or keys off).
function canWrite() {
  return !state.me || state.me.role !== "viewer";
}

const state = { me: null };

/// Asks for an API key, keeps it for this browser session, and renders again.
function askForKey(message) {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", {
    class: "stack",
    onsubmit: (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      render();
    },
  },
  h("label", { for: "api-key" }, "API key", h("span", { class: "hint" }, "Kept in this browser tab's session only, and sent as Authorization: Bearer.")),
  input,
  h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Use this key")));
  main.replaceChildren(h("h1", {}, "Sign in with an API key"), message ? notice(message, "error") : null, form);
  input.focus();
}

async function loadMe() {
  try {
    state.me = await api("GET", "/api/v1/me");
    const signOut = h("button", {
      type: "button",
      onclick: () => {
        sessionStorage.removeItem(KEY);
        state.me = null;
        render();
      },
    }, "Sign out");
    who.replaceChildren(`${state.me.tenant} · ${state.me.role}${state.me.operator ? " · operator" : ""} `, sessionStorage.getItem(KEY) ? signOut : "");
    return true;
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) {
      who.replaceChildren();
      askForKey(sessionStorage.getItem(KEY) ? error.message : "");
      return false;
    }
    throw error;
  }
}

// ---- Pages ----

const SVG = "http://www.w3.org/2000/svg";

/// An SVG element with attributes.
function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children.flat()) if (child) element.append(child);
  return element;
}

/// A time of day in the viewer's zone, for chart axes.
function clock(iso, withDay) {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: viewerZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    ...(withDay ? { weekday: "short" } : {}),
  }).format(new Date(iso));
}

/// A chart of `series` ({label, key, kind: "bar"|"line", css}) over `points`; bars stack.
function chart(title, points, series, unit) {
  const width = 600, height = 160, left = 44, bottom = 22, top = 8;
  const bars = series.filter((s) => s.kind === "bar");
  const lines = series.filter((s) => s.kind === "line");
  const total = (p) => bars.reduce((sum, s) => sum + (p[s.key] || 0), 0);
  const max = Math.max(1, ...points.map(total), ...points.flatMap((p) => lines.map((s) => p[s.key] || 0)));
  const x = (i) => left + (i * (width - left)) / points.length;
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const step = (width - left) / points.length;
  const marks = [];
  points.forEach((p, i) => {
    let base = 0;
    for (const s of bars) {
      const v = p[s.key] || 0;
      if (v > 0) marks.push(svg("rect", { x: x(i) + 0.5, y: y(base + v), width: Math.max(1, step - 1), height: y(base) - y(base + v), class: s.css }, svg("title", {}, `${clock(p.at, false)} ${s.label}: ${v}`)));
      base += v;
    }
  });
  for (const s of lines) {
    const path = points.map((p, i) => (p[s.key] == null ? null : `${x(i) + step / 2},${y(p[s.key])}`)).filter(Boolean);
    if (path.length) marks.push(svg("polyline", { points: path.join(" "), class: `line ${s.css}` }));
    points.forEach((p, i) => {
      if (p[s.key] != null) marks.push(svg("circle", { cx: x(i) + step / 2, cy: y(p[s.key]), r: 2.5, class: `dot ${s.css}` }, svg("title", {}, `${clock(p.at, false)} ${s.label}: ${p[s.key]} ms`)));
    });
  }
  const anchors = ["start", "middle", "end"];
  const ticks = [0, Math.floor(points.length / 2), points.length - 1].map((i, n) => svg("text", { x: n === 2 ? width : x(i), y: height - 6, class: "tick", "text-anchor": anchors[n] }, clock(points[i].at, points.length > 60)));
  const scale = [svg("text", { x: 0, y: top + 10, class: "tick" }, `${Math.round(max)}${unit}`), svg("text", { x: 0, y: height - bottom, class: "tick" }, `0${unit}`)];
  const axis = svg("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" });
  const summary = series.map((s) => `${s.label}`).join(", ");
  return h("figure", { class: "chart" },
    h("figcaption", {}, title, " ", h("span", { class: "legend" }, series.map((s) => h("span", { class: `key ${s.css}` }, s.label)))),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}: ${summary}, ${points.length} points, times in ${viewerZone}` }, axis, ...scale, ...marks, ...ticks));
}

/// Milliseconds for a card.
function ms(value) {
  return value == null ? "—" : value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

async function overview(params) {
  const window = params.get("window") === "day" ? "day" : "hour";
  const [stats, activity, failing, dead] = await Promise.all([
    api("GET", "/queue/stats"),
    api("GET", `/api/v1/activity?window=${window}`),
    api("GET", "/api/v1/jobs?status=FAILED&limit=10&recent=20"),
    api("GET", "/api/v1/dead-letters?limit=5"),
  ]);
  const counts = stats.queue_stats;
  const totals = activity.totals;
  const card = (label, value) => h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "value" }, value ?? "—"));
  const windowLink = (name, label) => window === name
    ? h("strong", { "aria-current": "true" }, label)
    : h("a", { href: `#/?window=${name}` }, label);
  const points = activity.points;
  return [
    h("h1", {}, "Overview"),
    h("h2", {}, "Now"),
    h("div", { class: "grid" },
      card("Ready", counts.ready), card("Waiting for their time", counts.scheduled),
      card("Running", counts.processing), card("Retrying", counts.retrying),
      card("Dead letters waiting", counts.failed), card("Jobs failing now", failing.jobs.length >= 10 ? "10+" : failing.jobs.length)),
    h("h2", {}, "Jobs failing now"),
    failing.jobs.length === 0
      ? h("p", { class: "muted" }, "No job's latest fire failed.")
      : h("ul", { class: "failing" }, failing.jobs.map((job) => h("li", {},
        h("a", { href: `#/jobs/${job.id}` }, job.name), " ", strip(job.recent || []),
        h("span", { class: "muted" }, ` ${job.scheduleDescription || job.cronExpression}`)))),
    h("h2", {}, "Activity ", h("span", { class: "window-choice" }, windowLink("hour", "last hour"), " · ", windowLink("day", "last day"))),
    h("div", { class: "grid" },
      card("Fires", totals.fires), card("Succeeded", totals.succeeded), card("Failed", totals.failed),
      card("Retried attempts", totals.retried),
      card("Lateness p50 / p95", `${ms(totals.latenessP50Ms)} / ${ms(totals.latenessP95Ms)}`),
      card("Target latency p50 / p95", `${ms(totals.latencyP50Ms)} / ${ms(totals.latencyP95Ms)}`)),
    h("div", { class: "charts" },
      chart(`Outcomes per ${window === "day" ? "15 minutes" : "minute"}`, points, [
        { label: "succeeded", key: "succeeded", kind: "bar", css: "c-ok" },
        { label: "failed", key: "failed", kind: "bar", css: "c-bad" },
        { label: "retried", key: "retried", kind: "bar", css: "c-warn" },
      ], ""),
      chart("Lateness (first request sent less scheduled time)", points, [
        { label: "p50", key: "latenessP50Ms", kind: "line", css: "c-accent" },
        { label: "p95", key: "latenessP95Ms", kind: "line", css: "c-warn" },
      ], " ms"),
      chart("Target latency", points, [
        { label: "p50", key: "latencyP50Ms", kind: "line", css: "c-accent" },
        { label: "p95", key: "latencyP95Ms", kind: "line", css: "c-warn" },
      ], " ms")),
    h("p", { class: "muted" }, `Times in ${viewerZone}. Counted by the workers as they record outcomes, written every few seconds.`),
    h("h2", {}, "Latest dead letters"),
    dead.executions.length === 0
      ? h("p", { class: "muted" }, "No dead letters.")
      : executionTable(dead.executions, { withJob: true }),
    h("p", {}, h("a", { href: "#/dead-letters" }, "All dead letters")),
  ];
}

/// The jobs page's address with `changes` made to its parameters.
function jobsAddress(params, changes) {
  const next = new URLSearchParams(params);
  for (const [name, value] of Object.entries(changes)) {
    if (value) next.set(name, value);
    else next.delete(name);
  }
  const query = next.toString();
  return `#/jobs${query ? `?${query}` : ""}`;
}

async function jobsPage(params) {
  const query = new URLSearchParams({ limit: "50", recent: "20" });
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));
  if (params.get("q")) query.set("q", params.get("q"));
  if (params.get("include") === "deleted") query.set("includeDeleted", "true");
  if (params.get("status")) query.set("status", params.get("status"));
  if (params.get("sort")) query.set("sort", params.get("sort"));
  if (params.get("active")) query.set("isActive", params.get("active"));
  const page = await api("GET", `/api/v1/jobs?${query}`);
  const rows = page.jobs.map((job) => h("tr", {},
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.name)),
    h("td", {}, job.scheduleDescription || h("code", {}, job.cronExpression)),
    h("td", { class: "hide-narrow" }, times(job.nextRunAt, job.timezone)),
    h("td", {}, badge(job.lastStatus), " ", strip(job.recent || [])),
    h("td", {}, badge(statusOf(job)))));
  const search = h("input", { id: "search", name: "q", type: "search", value: params.get("q") || "", placeholder: "name or description" });
  const choice = (id, value, options) => {
    const s = h("select", { id }, options.map(([v, label]) => h("option", { value: v }, label)));
    s.value = value || "";
    return s;
  };
  const status = choice("last-status", params.get("status"), [["", "any"], ["SUCCEEDED", "SUCCEEDED"], ["FAILED", "FAILED"], ["RETRYING", "RETRYING"]]);
  const sort = choice("sort", params.get("sort"), [["", "newest first"], ["name", "name"], ["nextRun", "next run (first page)"]]);
  const active = choice("active", params.get("active"), [["", "any"], ["true", "active"], ["false", "paused"]]);
  const toolbar = h("form", {
    class: "toolbar",
    role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      location.hash = jobsAddress(params, { q: search.value.trim(), status: status.value, sort: sort.value, active: active.value, cursor: null });
    },
  },
  h("label", { for: "search" }, "Search", search),
  h("label", { for: "last-status" }, "Last outcome", status),
  h("label", { for: "active" }, "State", active),
  h("label", { for: "sort" }, "Order", sort),
  h("button", { type: "submit" }, "Search"),
  canWrite() ? h("a", { class: "button", href: "#/new" }, "New job") : null,
  params.get("include") === "deleted"
    ? h("a", { href: jobsAddress(params, { include: null, cursor: null }) }, "Hide deleted jobs")
    : h("a", { href: jobsAddress(params, { include: "deleted", cursor: null }) }, "Show deleted jobs too"));
  const next = page.nextCursor
    ? h("a", { class: "button", href: jobsAddress(params, { cursor: page.nextCursor }) }, "Next page")
    : null;
  return [
    h("h1", {}, "Jobs"),
    toolbar,
    rows.length === 0
      ? h("p", { class: "muted" }, params.get("q") || params.get("status") || params.get("active") ? "No job matches." : "No jobs yet.")
      : h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Schedule", "Next run", "Last runs", "State"].map((t, i) => h("th", { scope: "col", class: i === 2 ? "hide-narrow" : undefined }, t)))),
        h("tbody", {}, rows))),
    h("div", { class: "actions" }, next),
  ];
}

/// The HTTP status of each attempt, oldest first ("503 → 503 → 200"), or the last one.
function codes(execution) {
  const each = (execution.attempts || []).map((a) => a.httpStatus ?? "—");
  if (each.length > 1) return each.join(" → ");
  return String(execution.httpStatus ?? each[0] ?? "—");
}

/// A table of executions with their last answer.
function executionTable(executions, { withJob = false, select = null } = {}) {
  const head = [select ? "" : null, "Scheduled", withJob ? "Job" : null, "Status", "Attempts", "HTTP", "Latency", "Lateness", "Answer"].filter((c) => c !== null);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, executions.map((execution) => {
      const last = execution.attempts && execution.attempts.length ? execution.attempts[execution.attempts.length - 1] : null;
      const answer = (last && (last.responseBody || last.error)) || execution.error || "";
      return h("tr", {},
        select ? h("td", {}, select(execution)) : null,
        h("td", {}, inZone(execution.scheduledAt, "UTC")),
        withJob ? h("td", {}, h("a", { href: `#/jobs/${execution.jobId}`, class: "mono" }, `${execution.jobId.slice(0, 8)}…`)) : null,
        h("td", {}, badge(execution.status)),
        h("td", {}, String(execution.attempt)),
        h("td", {}, codes(execution)),
        h("td", {}, execution.durationMs != null ? `${execution.durationMs} ms` : "—"),
        h("td", {}, execution.latenessMs != null ? `${execution.latenessMs} ms` : "—"),
        h("td", {}, answer ? h("code", { class: "answer" }, answer.slice(0, 200)) : h("span", { class: "muted" }, "—")));
    }))));
}

async function jobPage(id) {
  const [job, schedule, history] = await Promise.all([
    api("GET", `/api/v1/jobs/${id}`),
    api("GET", `/api/v1/jobs/${id}/schedule?count=10`),
    api("GET", `/api/v1/jobs/${id}/history?limit=20`),
  ]);
  const act = (label, run, kind = "") => h("button", {
    type: "button",
    class: kind,
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        const message = await run();
        await render(message);
      } catch (error) {
        event.target.disabled = false;
        main.prepend(notice(error.message, "error"));
      }
    },
  }, label);
  const actions = canWrite() && !job.deletedAt ? h("div", { class: "actions" },
    job.isActive
      ? act("Pause", async () => { await api("POST", `/api/v1/jobs/${id}/pause`); return "Paused: no new fires; fires already queued still run."; })
      : act("Resume", async () => { await api("POST", `/api/v1/jobs/${id}/resume`); return "Resumed."; }),
    act("Trigger now", async () => { const fire = await api("POST", `/api/v1/jobs/${id}/trigger`); return `Queued a manual fire (${fire.id}).`; }),
    h("a", { class: "button", href: `#/jobs/${id}/edit` }, "Edit"),
    act("Rotate signing secret", async () => {
      const rotated = await api("POST", `/api/v1/jobs/${id}/signing-secret`);
      return `New signing secret (shown once): ${rotated.signingSecret}`;
    }),
    act("Delete", async () => {
      if (!window.confirm(`Delete "${job.name}"? It stops firing, fires waiting in the queue are cancelled (a fire already being sent finishes), and its history stays readable.`)) {
        throw new Error("Not deleted.");
      }
      await api("DELETE", `/api/v1/jobs/${id}`);
      return "Deleted.";
    }, "danger")) : null;
  const setting = (term, value) => [h("dt", {}, term), h("dd", {}, value ?? "—")];
  return [
    h("h1", {}, job.name, " ", badge(statusOf(job))),
    h("p", { class: "words" }, schedule.description),
    actions,
    h("h2", {}, "Settings"),
    h("dl", { class: "settings" },
      setting("Expression", h("code", {}, job.cronExpression)),
      setting("Time zone", job.timezone),
      setting("Target", h("code", {}, `${job.httpMethod} ${job.httpUrl}`)),
      setting("Guarantee", job.executionType),
      setting("Retries", String(job.maxRetries)),
      setting("Timeout", `${job.timeoutSeconds} s`),
      setting("Misfires", job.misfirePolicy),
      setting("Overlap", job.concurrencyPolicy),
      setting("Starting deadline", job.startingDeadlineSeconds != null ? `${job.startingDeadlineSeconds} s` : "none"),
      setting("Last run", times(job.lastRunAt, job.timezone)),
      setting("Description", job.description || "—")),
    h("h2", {}, "Next fire times"),
    h("ol", {}, schedule.nextRuns.map((t) => h("li", {}, times(t, job.timezone)))),
    h("h2", {}, "History"),
    history.executions.length === 0 ? h("p", { class: "muted" }, "No fires yet.") : executionTable(history.executions),
  ];
}

/// Builds the JSON body of a create or a change from the form.
function formBody(form, original) {
  const value = (name) => form.elements[name].value.trim();
  const body = {
    name: value("name"),
    cronExpression: value("cronExpression"),
    timezone: value("timezone") || "UTC",
    httpMethod: value("httpMethod"),
    httpUrl: value("httpUrl"),
    executionType: value("executionType"),
    maxRetries: Number(value("maxRetries")),
    timeoutSeconds: Number(value("timeoutSeconds")),
    misfirePolicy: value("misfirePolicy"),
    concurrencyPolicy: value("concurrencyPolicy"),
    description: value("description"),
  };
  const headers = {};
  for (const line of form.elements.httpHeaders.value.split("\n")) {
    const at = line.indexOf(":");
    if (line.trim() === "") continue;
    if (at < 0) headers[line.trim()] = "";
    else headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  body.httpHeaders = headers;
  const secret = value("secretHeaders").split(",").map((n) => n.trim()).filter(Boolean);
  if (secret.length) body.secretHeaders = secret;
  body.catchUpLimit = Number(value("catchUpLimit"));
  body.isActive = form.elements.isActive.checked;
  const deadline = value("startingDeadlineSeconds");
  body.startingDeadlineSeconds = deadline === "" ? null : Number(deadline);
  const payload = form.elements.httpBody.value;
  body.httpBody = payload === "" ? null : payload;
  if (original) {
    for (const [name, v] of Object.entries(body)) {
      if (JSON.stringify(original[name] ?? null) === JSON.stringify(v ?? null)) delete body[name];
    }
    if (body.secretHeaders && !body.httpHeaders) body.httpHeaders = formBody(form, null).httpHeaders;
  }
  return body;
}

async function jobForm(id) {
  const job = id ? await api("GET", `/api/v1/jobs/${id}`) : null;
  const fields = {};
  const errors = {};
  const field = (name, label, control, hint) => {
    control.id = `f-${name}`;
    control.name = name;
    fields[name] = control;
    errors[name] = h("span", { class: "field-error", id: `e-${name}`, "aria-live": "polite" });
    control.setAttribute("aria-describedby", `e-${name}`);
    return h("label", { for: control.id }, label, hint ? h("span", { class: "hint" }, hint) : null, control, errors[name]);
  };
  const input = (value, attrs = {}) => h("input", { value: value ?? "", ...attrs });
  const select = (value, options) => {
    const s = h("select", {}, options.map((o) => h("option", { value: o }, o)));
    s.value = value;
    return s;
  };
  const preview = h("div", { class: "notice", "aria-live": "polite" }, "");
  const bodyView = h("pre", { id: "request-json" });
  const form = h("form", { class: "stack", novalidate: true },
    field("name", "Name", input(job?.name, { required: true, maxlength: 200 })),
    field("cronExpression", "Schedule (cron, seconds first)", input(job?.cronExpression ?? "0 */5 * * * *", { required: true, class: "mono" }), "Six fields: second minute hour day-of-month month day-of-week; five fields fire at second 0."),
    preview,
    field("timezone", "Time zone", input(job?.timezone ?? viewerZone), "An IANA name such as Europe/Paris."),
    field("httpMethod", "Method", select(job?.httpMethod ?? "POST", ["GET", "POST", "PUT", "PATCH", "DELETE"])),
    field("httpUrl", "Target URL", input(job?.httpUrl, { type: "url", required: true })),
    field("httpHeaders", "Request headers", h("textarea", { class: "mono" }, Object.entries(job?.httpHeaders ?? {}).map(([n, v]) => `${n}: ${v}`).join("\n")), "One per line, Name: value. Credential headers are sealed at rest and read back as ********; leave those lines as they are to keep them."),
    field("secretHeaders", "Also secret", input("", { class: "mono" }), "Names of other headers above to seal, separated by commas."),
    field("httpBody", "Request body", h("textarea", {}, job?.httpBody ?? "")),
    field("executionType", "Guarantee", select(job?.executionType ?? "AT_LEAST_ONCE", ["AT_LEAST_ONCE", "AT_MOST_ONCE"])),
    field("maxRetries", "Retries", input(job?.maxRetries ?? 3, { type: "number", min: 0, max: 20 })),
    field("timeoutSeconds", "Timeout (seconds)", input(job?.timeoutSeconds ?? 90, { type: "number", min: 1, max: 90 })),
    field("misfirePolicy", "Missed fires", select(job?.misfirePolicy ?? "FIRE_ONCE", ["FIRE_ONCE", "FIRE_ALL", "SKIP"])),
    field("catchUpLimit", "Catch-up limit", input(job?.catchUpLimit ?? 100, { type: "number", min: 1, max: 10000 }), "With FIRE_ALL: the most missed fires made up at once."),
    field("concurrencyPolicy", "Overlap", select(job?.concurrencyPolicy ?? "ALLOW", ["ALLOW", "FORBID"])),
    field("startingDeadlineSeconds", "Starting deadline (seconds)", input(job?.startingDeadlineSeconds, { type: "number", min: 1, max: 86400 }), "Empty: fires wait as long as it takes."),
    field("description", "Description", h("textarea", {}, job?.description ?? "")),
    field("isActive", "Active", h("input", { type: "checkbox", class: "check", checked: job ? job.isActive : true }), "Unchecked: stored paused, firing nothing until resumed."),
    h("h2", {}, "The request"),
    h("p", { class: "muted" }, "The same change from a terminal:"),
    bodyView,
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, job ? "Save" : "Create job")));

  const path = job ? `/api/v1/jobs/${job.id}` : "/api/v1/jobs";
  const method = job ? "PATCH" : "POST";
  const showRequest = () => {
    const body = formBody(form, job);
    const json = JSON.stringify(body, null, 2);
    bodyView.textContent = `curl -X ${method} ${location.origin}${path} \\\n  -H "Authorization: Bearer $TICKWORK_API_KEY" -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(body)}'\n\n${json}`;
  };
  let previewTimer = null;
  const refreshPreview = () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      const query = new URLSearchParams({ cron: fields.cronExpression.value, timezone: fields.timezone.value || "UTC", count: "5" });
      try {
        const schedule = await api("GET", `/api/v1/schedule/preview?${query}`);
        preview.replaceChildren(h("strong", {}, schedule.description), h("br"), "Next: ", schedule.nextRuns.map((t) => inZone(t, fields.timezone.value || "UTC")).join(", "));
        preview.classList.remove("error");
      } catch (error) {
        preview.replaceChildren(error.message);
        preview.classList.add("error");
      }
    }, 250);
  };
  form.addEventListener("input", (event) => {
    showRequest();
    if (["cronExpression", "timezone"].includes(event.target.name)) refreshPreview();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const [name, element] of Object.entries(errors)) {
      element.textContent = "";
      fields[name].classList.remove("invalid");
      fields[name].removeAttribute("aria-invalid");
    }
    try {
      const saved = await api(method, path, formBody(form, job));
      location.hash = `#/jobs/${saved.id}`;
    } catch (error) {
      const name = error.field && error.field.split(".")[0];
      if (name && errors[name]) {
        errors[name].textContent = error.message;
        fields[name].classList.add("invalid");
        fields[name].setAttribute("aria-invalid", "true");
        fields[name].focus();
      } else {
        form.prepend(notice(error.message, "error"));
      }
    }
  });
  showRequest();
  refreshPreview();
  return [h("h1", {}, job ? `Edit ${job.name}` : "New job"), form];
}

async function deadLettersPage(params) {
  const query = new URLSearchParams({ limit: "50" });
  if (params.get("job")) query.set("jobId", params.get("job"));
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));
  const page = await api("GET", `/api/v1/dead-letters?${query}`);
  const status = params.get("status") || "";
  const shown = page.executions.filter((e) => !status || e.status === status);
  const chosen = new Set();
  const box = (execution) => canWrite()
    ? h("input", { type: "checkbox", "aria-label": `select ${execution.id}`, onchange: (event) => (event.target.checked ? chosen.add(execution) : chosen.delete(execution)) })
    : null;
  const requeue = async () => {
    const sent = [...chosen].filter((e) => e.status !== "EXPIRED");
    const risky = sent.length > 0 && window.confirm(
      `${sent.length} of these were FAILED or ABANDONED: their target may already have acted on them. AT_MOST_ONCE fires among them are sent again only if you confirm. Send them again?`);
    const results = [];
    for (const execution of chosen) {
      const force = risky ? "?force=true" : "";
      try {
        await api("POST", `/api/v1/dead-letters/${execution.id}/requeue${force}`);
        results.push(`${execution.id}: queued`);
      } catch (error) {
        results.push(`${execution.id}: ${error.message}`);
      }
    }
    await render(results.join("\n"));
  };
  const filter = h("form", {
    class: "toolbar",
    onsubmit: (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      const data = new FormData(event.target);
      for (const [k, v] of data) if (v) next.set(k, v);
      location.hash = `#/dead-letters?${next}`;
    },
  },
  h("label", {}, "Job id", h("input", { name: "job", value: params.get("job") || "", class: "mono" })),
  h("label", {}, "Status", (() => {
    const s = h("select", { name: "status" }, ["", "FAILED", "ABANDONED", "EXPIRED"].map((v) => h("option", { value: v }, v || "any")));
    s.value = status;
    return s;
  })()),
  h("button", { type: "submit" }, "Filter"));
  return [
    h("h1", {}, "Dead letters"),
    filter,
    shown.length === 0 ? h("p", { class: "muted" }, "No dead letters here.") : executionTable(shown, { withJob: true, select: box }),
    canWrite() && shown.length ? h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: requeue }, "Requeue selected")) : null,
    page.nextCursor ? h("a", { class: "button", href: `#/dead-letters?cursor=${encodeURIComponent(page.nextCursor)}` }, "Next page") : null,
  ];
}

async function keysPage() {
  const list = await api("GET", "/api/v1/api-keys");
  const made = h("div", { "aria-live": "polite" });
  const form = state.me && state.me.operator ? h("form", {
    class: "toolbar",
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      try {
        const key = await api("POST", "/api/v1/api-keys", { name: data.get("name"), tenant: data.get("tenant") || null, role: data.get("role") });
        made.replaceChildren(notice(`Key for ${key.tenant} (${key.role}), shown once: `), h("pre", { id: "new-key" }, key.key));
      } catch (error) {
        made.replaceChildren(notice(error.message, "error"));
      }
    },
  },
  h("label", {}, "Name", h("input", { name: "name", required: true })),
  h("label", {}, "Tenant", h("input", { name: "tenant", placeholder: "default" })),
  h("label", {}, "Role", h("select", { name: "role" }, h("option", { value: "editor" }, "editor"), h("option", { value: "viewer" }, "viewer"))),
  h("button", { type: "submit", class: "primary" }, "Make key")) : null;
  const revoke = (key) => canWrite() && !key.revokedAt ? h("button", {
    type: "button",
    class: "danger",
    onclick: async () => {
      if (!window.confirm(`Revoke ${key.prefix}…? Requests with it are refused at once.`)) return;
      await api("DELETE", `/api/v1/api-keys/${key.id}`);
      await render("Revoked.");
    },
  }, "Revoke") : null;
  return [
    h("h1", {}, "API keys"),
    form,
    made,
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Prefix", "Name", "Tenant", "Role", "Made", "Revoked", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.apiKeys.map((key) => h("tr", {},
        h("td", {}, h("code", {}, key.prefix)), h("td", {}, key.name), h("td", {}, key.tenant),
        h("td", {}, key.role), h("td", {}, inZone(key.createdAt, "UTC")),
        h("td", {}, key.revokedAt ? inZone(key.revokedAt, "UTC") : "—"), h("td", {}, revoke(key))))))),
  ];
}

// ---- Routing ----

const routes = [
  [/^#?\/?$/, (m, params) => overview(params)],
  [/^#\/jobs$/, (m, params) => jobsPage(params)],
  [/^#\/new$/, () => jobForm(null)],
  [/^#\/jobs\/([0-9a-f-]{36})$/, (m) => jobPage(m[1])],
  [/^#\/jobs\/([0-9a-f-]{36})\/edit$/, (m) => jobForm(m[1])],
  [/^#\/dead-letters$/, (m, params) => deadLettersPage(params)],
  [/^#\/keys$/, () => keysPage()],
];

/// Renders started so far: a render that finishes after a later one started draws nothing,
/// so the page always shows the latest address.
let renders = 0;

/// Renders the page the address names, with `message` above it.
async function render(message) {
  const mine = ++renders;
  if (!state.me && !(await loadMe())) return;
  if (mine !== renders) return;
  const [path, search] = location.hash.split("?");
  const params = new URLSearchParams(search || "");
  const route = routes.find(([pattern]) => pattern.test(path || ""));
  try {
    const content = route ? await route[1](path.match(route[0]), params) : [h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Overview"))];
    if (mine !== renders) return;
    main.replaceChildren(...(message ? [notice(message)] : []), ...content.flat().filter(Boolean));
  } catch (error) {
    if (mine !== renders) return;
    if (error instanceof ApiFailure && error.status === 401) {
      state.me = null;
      askForKey(error.message);
      return;
    }
    main.replaceChildren(h("h1", {}, "Something went wrong"), notice(error.message, "error"));
  }
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === (path || "#/")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

window.addEventListener("hashchange", () => render());
render();
