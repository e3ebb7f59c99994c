// The dashboard's live parts, in plain JavaScript (no build step, nothing fetched from
// elsewhere). Pages work without it; with it, runs and their status follow the realtime
// feed over Server-Sent Events.
"use strict";

const STATUS_CLASS = {
  COMPLETED: "ok", CANCELED: "muted", FAILED: "bad", CRASHED: "bad", SYSTEM_FAILURE: "bad",
  EXPIRED: "bad", TIMED_OUT: "bad", EXECUTING: "live", DEQUEUED: "live", WAITING: "wait",
};
const MAX_LIVE_ROWS = 500;
const FINAL = new Set(["COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"]);

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge " + (STATUS_CLASS[status] || "queued");
  span.dataset.status = "";
  span.textContent = status;
  return span;
}

function setBadge(el, status) {
  if (!el) return;
  el.className = "badge " + (STATUS_CLASS[status] || "queued");
  el.textContent = status;
}

function duration(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " m " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " m";
}

function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "–";
}

function cell(content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  return td;
}

function runLink(id) {
  const a = document.createElement("a");
  a.href = "/dashboard/runs/" + encodeURIComponent(id);
  const code = document.createElement("code");
  code.textContent = id;
  a.appendChild(code);
  return a;
}

function tagLinks(tags) {
  const frag = document.createDocumentFragment();
  for (const t of tags || []) {
    const a = document.createElement("a");
    a.className = "tag";
    a.href = "/dashboard/runs?tag=" + encodeURIComponent(t);
    a.textContent = t;
    frag.appendChild(a);
    frag.appendChild(document.createTextNode(" "));
  }
  return frag;
}

// -- the runs list --------------------------------------------------------------------------

function followRunsList(table) {
  const list = (name) => (table.dataset[name] || "").split(",").filter(Boolean);
  const want = {
    status: list("filterStatus"), task: list("filterTask"),
    tag: table.dataset.filterTag || "", batch: table.dataset.filterBatch || "",
  };
  const matches = (run) =>
    (!want.status.length || want.status.includes(run.status)) &&
    (!want.task.length || want.task.includes(run.taskIdentifier)) &&
    (!want.tag || (run.tags || []).includes(want.tag)) &&
    (!want.batch || run.batchId === want.batch);
  const body = table.tBodies[0];
  const source = new EventSource(table.dataset.live);
  source.addEventListener("update", (event) => {
    const { change, run } = JSON.parse(event.data);
    let row = body.querySelector(`tr[data-run="${CSS.escape(run.id)}"]`);
    if (row) {
      setBadge(row.querySelector("[data-status]"), run.status);
      if (run.startedAt) row.querySelector("[data-duration]").textContent = duration(run.durationMs);
      return;
    }
    if (change !== "created" || !matches(run)) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    row = document.createElement("tr");
    row.dataset.run = run.id;
    row.className = "fresh";
    const created = document.createElement("time");
    created.dateTime = run.createdAt;
    created.textContent = when(run.createdAt);
    const dur = cell(run.startedAt ? duration(run.durationMs) : "–");
    dur.dataset.duration = "";
    for (const c of [cell(runLink(run.id)), cell(run.taskIdentifier), cell(badge(run.status)),
                     cell(tagLinks(run.tags)), cell(created), dur, cell(run.version || "–")]) {
      row.appendChild(c);
    }
    body.insertBefore(row, body.firstChild);
    // A busy environment must not grow the page without end: keep the newest rows.
    while (body.rows.length > MAX_LIVE_ROWS) body.deleteRow(body.rows.length - 1);
  });
  table.dataset.liveState = "open";
  source.addEventListener("open", () => { table.dataset.liveState = "open"; });
}

// -- a run ----------------------------------------------------------------------------------

function followRun(root) {
  const panels = document.getElementById("panels");
  const streams = followStreams(root);
  let shown = panels.querySelector("[data-status-now]")?.dataset.statusNow;
  let refreshing = null;
  let again = false;
  const refresh = async () => {
    if (refreshing) { again = true; return; }
    refreshing = (async () => {
      do {
        again = false;
        const response = await fetch(root.dataset.panelsUrl, { credentials: "same-origin" });
        if (response.ok) {
          const html = await response.text();
          const doc = new DOMParser().parseFromString(html, "text/html");
          const fresh = doc.querySelector("#panels") || doc.body;
          panels.replaceChildren(...fresh.childNodes);
          shown = panels.querySelector("[data-status-now]")?.dataset.statusNow;
          streams(); // streams that started since, or that a quiet minute ended
        }
      } while (again);
    })();
    try { await refreshing; } finally { refreshing = null; }
  };
  const source = new EventSource(root.dataset.liveUrl);
  source.addEventListener("update", (event) => {
    const { run } = JSON.parse(event.data);
    setBadge(document.querySelector("h1 [data-status]"), run.status);
    document.getElementById("metadata").textContent = JSON.stringify(run.metadata || {}, null, 2);
    const progress = run.metadata && run.metadata.progress;
    if (typeof progress === "number") {
      const fraction = Math.max(0, Math.min(1, progress > 1 ? progress / 100 : progress));
      document.getElementById("progress-wrap").hidden = false;
      document.getElementById("progress").value = fraction;
      document.getElementById("progress-text").textContent = Math.round(fraction * 100) + "%";
    }
    const tags = document.getElementById("tags");
    tags.replaceChildren(run.tags && run.tags.length ? tagLinks(run.tags) : document.createTextNode("none"));
    if (FINAL.has(run.status)) document.getElementById("cancel-form")?.remove();
    if (run.status !== shown) refresh();
  });
  source.addEventListener("end", () => { source.close(); refresh(); });
}

// -- a run's streams ---------------------------------------------------------------------------

function followStreams(root) {
  const container = document.getElementById("streams");
  const readers = new Map(); // stream id -> {source, next}
  const attach = (box) => {
    const name = box.dataset.stream;
    const state = readers.get(name) || { source: null, next: Number(box.dataset.start || 0) };
    readers.set(name, state);
    if (state.source) return;
    const list = box.querySelector("ol.chunks");
    const url = "/realtime/v1/streams/" + encodeURIComponent(root.dataset.run) + "/" +
      encodeURIComponent(name) + "?token=" + encodeURIComponent(root.dataset.token) +
      "&startIndex=" + state.next;
    const source = new EventSource(url);
    state.source = source;
    source.addEventListener("chunk", (event) => {
      const item = document.createElement("li");
      item.textContent = event.data;
      list.appendChild(item);
      state.next = Number(event.lastEventId) + 1;
    });
    source.addEventListener("end", () => { source.close(); state.source = null; });
  };
  const discover = () => {
    const holder = document.getElementById("stream-names");
    const names = holder ? JSON.parse(holder.dataset.streams || "[]") : [];
    for (const name of names) {
      if (container.querySelector(`[data-stream="${CSS.escape(name)}"]`)) continue;
      const box = document.createElement("div");
      box.className = "stream";
      box.dataset.stream = name;
      box.dataset.start = "0";
      const title = document.createElement("h3");
      title.textContent = name;
      const list = document.createElement("ol");
      list.className = "chunks code";
      list.start = 0;
      box.append(title, list);
      container.appendChild(box);
    }
    document.getElementById("no-streams").hidden = container.children.length > 0;
    for (const box of container.querySelectorAll(".stream")) attach(box);
  };
  discover();
  return discover;
}

// -- the Test page's JSON editor -------------------------------------------------------------

function checkJson(area) {
  const hint = document.getElementById(area.id + "-check");
  const check = () => {
    if (!hint) return;
    try {
      if (area.value.trim()) JSON.parse(area.value);
      hint.textContent = "Valid JSON.";
      hint.className = "hint ok-text";
      area.removeAttribute("aria-invalid");
    } catch (error) {
      hint.textContent = "Not valid JSON: " + error.message;
      hint.className = "hint error-text";
      area.setAttribute("aria-invalid", "true");
    }
  };
  area.addEventListener("input", check);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) area.form.requestSubmit();
    if (event.key === "Tab" && !event.shiftKey && area.selectionStart !== area.selectionEnd) return;
  });
  check();
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table[data-live]");
  if (table) followRunsList(table);
  const run = document.getElementById("run");
  if (run && run.dataset.liveUrl) followRun(run);
  for (const area of document.querySelectorAll("textarea[data-json-editor]")) checkJson(area);
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
});
