// The page at "/": documents (upload, progress, delete), conversations with streamed, cited
// answers, feedback, and the cited page beside the answer with the passage highlighted.
//
// Safety rule for this file: text that comes from documents, answers, file names or errors is
// only ever put into the page with textContent / createElement, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
const collectionInput = $("collection");

// ---------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function el(tag, opts, ...children) {
  const node = document.createElement(tag);
  const o = opts || {};
  if (o.cls) node.className = o.cls;
  if (o.text !== undefined) node.textContent = String(o.text);
  if (o.attrs) for (const [k, v] of Object.entries(o.attrs)) node.setAttribute(k, String(v));
  if (o.data) for (const [k, v] of Object.entries(o.data)) node.dataset[k] = String(v);
  for (const c of children) if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return node;
}

function announce(message) {
  // the polite live region: cleared first so the same message is announced again
  const box = $("status");
  box.textContent = "";
  setTimeout(() => { box.textContent = message; }, 50);
}

function currentCollection() {
  return collectionInput.value.trim() || "default";
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = keyInput.value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function api(path, opts) {
  const o = opts || {};
  const init = { method: o.method || "GET", headers: headers(o.json !== undefined ? { "Content-Type": "application/json" } : {}) };
  if (o.json !== undefined) init.body = JSON.stringify(o.json);
  if (o.body !== undefined) init.body = o.body;
  return fetch(path, init);
}

// An RFC 9457 problem as one line of text (shown with textContent only).
async function problemOf(resp) {
  let p = {};
  try { p = await resp.json(); } catch (e) { p = {}; }
  const title = typeof p.title === "string" ? p.title : "HTTP " + resp.status;
  const detail = typeof p.detail === "string" ? p.detail : "";
  return {
    status: resp.status,
    code: typeof p.code === "string" ? p.code : "",
    text: detail ? title + ": " + detail : title,
    retryAfter: Number(resp.headers.get("Retry-After")) || 0,
  };
}

function pagesLabel(pages) {
  if (!pages || !pages.length) return "";
  return pages.length > 1 ? "pages " + pages[0] + "–" + pages[pages.length - 1] : "page " + pages[0];
}

function plural(n, one, many) {
  return n + " " + (n === 1 ? one : many);
}

// ---------------------------------------------------------------------------------------------
// settings: API key (this tab only) and collection
// ---------------------------------------------------------------------------------------------

keyInput.value = sessionStorage.getItem("rag-key") || "";
collectionInput.value = sessionStorage.getItem("rag-collection") || "default";
let shownCollection = currentCollection();

keyInput.addEventListener("input", () => sessionStorage.setItem("rag-key", keyInput.value));
keyInput.addEventListener("change", () => refreshAll());
collectionInput.addEventListener("change", () => applyCollection());
$("settings-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("rag-key", keyInput.value);
  applyCollection(true);
});

function applyCollection(force) {
  const c = currentCollection();
  sessionStorage.setItem("rag-collection", c);
  if (c !== shownCollection) {
    shownCollection = c;
    docs.clear();
    $("documents").replaceChildren();
    newConversation(false);
    refreshAll();
  } else if (force) {
    refreshAll();
  }
}

async function loadCollections() {
  let resp;
  try { resp = await api("/v1/models"); } catch (e) { return; }
  if (!resp.ok) return;
  const body = await resp.json();
  const list = $("collection-options");
  list.replaceChildren();
  for (const m of body.data || []) list.appendChild(el("option", { attrs: { value: m.id } }));
}

// The key/collection problem stays until a request succeeds: clearing it at once would move the
// page under the pointer in the middle of a click (the key field's change fires on mousedown).
function clearAuthProblem() {
  if ($("global-error").textContent) $("global-error").textContent = "";
}

function refreshAll() {
  loadCollections();
  pollNow();
  loadConversations();
}

function showAuthProblem(p) {
  if (p.status === 401) $("global-error").textContent = "The server needs an API key: enter yours above. (" + p.text + ")";
  else if (p.status === 403) $("global-error").textContent = "This key may not do that: " + p.text;
  else $("global-error").textContent = p.text;
}

// ---------------------------------------------------------------------------------------------
// documents: the collection's list, progress of the ones being indexed, upload, delete
// ---------------------------------------------------------------------------------------------

// document id -> { li, nameEl, statusEl, progressEl, info: DocumentOut|null, job: JobOut|null,
//                  tracked: bool (uploaded from this tab: kept even when the list drops it, so a
//                  failed job stays visible with its error) }
const docs = new Map();

const POLL_FAST_MS = 800, POLL_MAX_MS = 4000, POLL_IDLE_MS = 15000, RETRY_MAX_MS = 30000;
let pollTimer = null, pollBusy = false, pollAgain = false, pollDelay = POLL_FAST_MS, retryDelay = 0;
let pollGeneration = 0;

function schedulePoll(ms) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(pollDocuments, ms);
}

function pollNow() {
  pollDelay = POLL_FAST_MS;
  retryDelay = 0;
  if (pollBusy) { pollAgain = true; return; }
  schedulePoll(0);
}

function setWaiting(waiting, message) {
  const note = $("documents-poll");
  note.dataset.waiting = String(waiting);
  note.textContent = waiting ? message : "";
  for (const d of docs.values()) d.li.dataset.waiting = String(waiting && isPending(d));
}

// "Ask again later": a 429, a 5xx or a lost connection never means that a job failed.
function isTransient(resp) {
  return !resp || resp.status === 429 || resp.status >= 500;
}

async function backOff(resp) {
  const after = resp ? Number(resp.headers.get("Retry-After")) * 1000 || 0 : 0;
  retryDelay = Math.min(Math.max(retryDelay ? retryDelay * 2 : 2000, after), RETRY_MAX_MS);
  const why = !resp ? "the server cannot be reached" : resp.status === 429 ? "too many requests" : "the server is busy";
  setWaiting(true, "Progress paused: " + why + "; trying again in " + Math.round(retryDelay / 1000) + " s.");
  return retryDelay;
}

async function pollDocuments() {
  if (pollBusy) { pollAgain = true; return; }
  pollBusy = true;
  const generation = pollGeneration;
  let next = POLL_IDLE_MS;
  try {
    next = await pollOnce(generation);
  } catch (e) {
    next = await backOff(null);
  } finally {
    pollBusy = false;
  }
  if (generation !== pollGeneration) return;
  if (pollAgain) { pollAgain = false; next = 0; }
  if (next !== null) schedulePoll(next);
}

// One round: the list, then the progress of each document being indexed. Returns the delay
// before the next round (null: stop until something changes).
async function pollOnce(generation) {
  const collection = currentCollection();
  let resp = null;
  try {
    resp = await api("/v1/documents?limit=1000&collection=" + encodeURIComponent(collection));
  } catch (e) { resp = null; }
  if (generation !== pollGeneration || collection !== currentCollection()) return 0;
  if (isTransient(resp)) return backOff(resp);
  if (!resp.ok) {
    const p = await problemOf(resp);
    setWaiting(false);
    showAuthProblem(p);
    return null;
  }
  const body = await resp.json();
  retryDelay = 0;
  setWaiting(false);
  clearAuthProblem();
  const listed = new Set();
  for (const info of body.documents || []) {
    listed.add(info.id);
    const d = upsertDoc(info.id, info.name);
    d.info = info;
    if (info.state === "indexed" || info.state === "failed") d.job = null;
  }
  for (const [id, d] of docs) {
    if (!listed.has(id) && !d.tracked) removeDoc(id);
  }
  orderDocs((body.documents || []).map((x) => x.id));
  // progress: a job for each document being indexed, and for uploads the list no longer shows
  for (const [id, d] of docs) {
    const jobId = (d.info && d.info.job_id) || (d.job && d.job.id) || d.jobId;
    const wantJob = jobId && ((d.info && d.info.state === "indexing") || (!listed.has(id) && d.tracked && !isFinal(d)));
    if (!wantJob) continue;
    let jr = null;
    try { jr = await api("/v1/jobs/" + encodeURIComponent(jobId)); } catch (e) { jr = null; }
    if (generation !== pollGeneration) return 0;
    if (isTransient(jr)) { renderAll(); return backOff(jr); }
    if (jr.status === 404) { if (!listed.has(id)) removeDoc(id); continue; }
    if (!jr.ok) continue;
    d.job = await jr.json();
  }
  renderAll();
  const pending = [...docs.values()].some(isPending);
  if (!pending) { pollDelay = POLL_FAST_MS; return POLL_IDLE_MS; }
  const delay = pollDelay;
  pollDelay = Math.min(pollDelay * 1.5, POLL_MAX_MS);
  return delay;
}

function isFinal(d) {
  const s = viewOf(d).state;
  return s === "indexed" || s === "failed";
}

function isPending(d) {
  return !isFinal(d);
}

function upsertDoc(id, name) {
  let d = docs.get(id);
  if (d) return d;
  const nameEl = el("span", { cls: "doc-name", text: name });
  const statusEl = el("span", { cls: "doc-status" });
  const progressEl = el("progress", { cls: "doc-progress", attrs: { max: 1, value: 0 } });
  progressEl.hidden = true;
  const del = el("button", { cls: "doc-delete", text: "Delete", attrs: { type: "button" } });
  const li = el("li", { cls: "doc-item", data: { id: id, state: "queued", waiting: "false" } },
    el("div", { cls: "doc-main" }, nameEl, statusEl, progressEl), del);
  d = { id, name, li, nameEl, statusEl, progressEl, del, info: null, job: null, tracked: false, jobId: null };
  progressEl.setAttribute("aria-label", "Progress of " + name);
  del.setAttribute("aria-label", "Delete " + name);
  del.addEventListener("click", () => confirmDelete(d));
  docs.set(id, d);
  $("documents").appendChild(li);
  return d;
}

function removeDoc(id) {
  const d = docs.get(id);
  if (!d) return;
  const hadFocus = d.li.contains(document.activeElement);
  d.li.remove();
  docs.delete(id);
  if (hadFocus) $("files").focus();
  updateEmpty();
}

function orderDocs(order) {
  const list = $("documents");
  const want = order.filter((id) => docs.has(id)).map((id) => docs.get(id).li);
  for (const d of docs.values()) if (!want.includes(d.li)) want.push(d.li); // tracked, not listed
  const have = [...list.children];
  if (have.length === want.length && have.every((node, i) => node === want[i])) return;
  const focused = document.activeElement;
  for (const li of want) list.appendChild(li);
  if (focused && list.contains(focused)) focused.focus();
}

function doneText(x) {
  const pages = x.pages || 0, ocr = x.ocr_pages || 0;
  const parts = [];
  if (pages) parts.push(plural(pages, "page", "pages"));
  if (ocr) parts.push(ocr + " OCR");
  if (x.chunks) parts.push(plural(x.chunks, "chunk", "chunks"));
  return parts.length ? "done (" + parts.join(", ") + ")" : "done";
}

// What one document's line says: { state: queued|indexing|indexed|failed, text, value, max }
function viewOf(d) {
  const info = d.info, job = d.job;
  if (info && info.state === "indexed") return { state: "indexed", text: doneText(info) };
  if (job && job.state === "failed") return { state: "failed", text: "failed: " + (job.error ? job.error.message : "unknown error") };
  if (info && info.state === "failed") return { state: "failed", text: "failed: " + (info.error ? info.error.message : "unknown error") };
  if (job && job.state === "succeeded") return { state: "indexed", text: doneText(job.result || {}) };
  if (d.duplicate) return { state: "indexed", text: "already in the collection" };
  if (job && job.state === "running") {
    const p = job.progress || {};
    const read = p.pages_read || 0, total = p.pages_total || 0, ocr = p.ocr_pages || 0;
    if (p.stage === "embedding") {
      return { state: "indexing", text: "embedding " + plural(p.chunks_embedded || 0, "chunk", "chunks"), value: read, max: total };
    }
    if (p.stage === "indexing") return { state: "indexing", text: "writing the index", value: total, max: total };
    if (p.stage === "done") return { state: "indexing", text: "finishing", value: total, max: total };
    if (total) {
      let text = "reading page " + Math.min(read + 1, total) + " of " + total;
      if (ocr && ocr >= read) text = "OCR, page " + Math.min(read + 1, total) + " of " + total;
      else if (ocr) text += " (" + ocr + " by OCR)";
      return { state: "indexing", text: text, value: read, max: total };
    }
    return { state: "indexing", text: "reading" };
  }
  if (job && job.state === "queued") return { state: "queued", text: "queued" };
  if (info && info.state === "indexing") return { state: "indexing", text: "indexing" };
  return { state: "queued", text: "queued" };
}

function renderAll() {
  for (const d of docs.values()) renderDoc(d);
  updateEmpty();
}

function renderDoc(d) {
  const v = viewOf(d);
  const was = d.li.dataset.state;
  d.li.dataset.state = v.state;
  if (d.statusEl.textContent !== v.text) d.statusEl.textContent = v.text;
  if (v.max) {
    d.progressEl.hidden = false;
    d.progressEl.max = v.max;
    d.progressEl.value = Math.min(v.value || 0, v.max);
  } else {
    d.progressEl.hidden = true;
  }
  if (was !== v.state && (v.state === "indexed" || v.state === "failed") && (was === "queued" || was === "indexing")) {
    announce(d.name + ": " + v.text);
  }
}

function updateEmpty() {
  $("documents-empty").hidden = docs.size > 0;
}

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = $("upload-error");
  error.textContent = "";
  const input = $("files");
  const files = input.files;
  if (!files.length) { error.textContent = "Choose at least one file."; input.focus(); return; }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  form.append("collection", currentCollection());
  const button = $("upload-btn");
  button.disabled = true;
  button.textContent = "Uploading…";
  let resp = null;
  try {
    resp = await api("/v1/documents", { method: "POST", body: form });
  } catch (e) {
    resp = null;
  } finally {
    button.disabled = false;
    button.textContent = "Upload";
  }
  if (!resp) { error.textContent = "The upload did not reach the server; try again."; return; }
  if (!resp.ok) { error.textContent = (await problemOf(resp)).text; return; }
  const body = await resp.json();
  for (const item of body.items || []) {
    const d = upsertDoc(item.document_id, item.filename);
    d.tracked = true;
    if (item.job_id) {
      d.jobId = item.job_id;
      if (!d.info || d.info.state !== "indexed") {
        d.info = null;
        d.job = { id: item.job_id, state: item.status === "running" ? "running" : "queued", progress: {} };
      }
    } else {
      d.duplicate = true;
    }
    renderDoc(d);
  }
  updateEmpty();
  input.value = "";
  announce("Uploaded " + plural((body.items || []).length, "file", "files") + "; indexing.");
  pollNow();
});

// Deleting asks first, in a modal dialog (keyboard: Esc keeps the document).
let pendingDelete = null;

function confirmDelete(d) {
  pendingDelete = d;
  $("confirm-text").textContent = "";
  $("confirm-text").append("“", el("span", { cls: "break", text: d.name }), "” will be removed from the collection, with its pages. Answers that cited it keep their text.");
  $("confirm-dialog").returnValue = "";
  $("confirm-dialog").showModal();
  $("confirm-cancel").focus();
}

$("confirm-dialog").addEventListener("close", async () => {
  const d = pendingDelete;
  pendingDelete = null;
  if (!d) return;
  if ($("confirm-dialog").returnValue !== "delete") { d.del.focus(); return; }
  d.del.disabled = true;
  d.statusEl.textContent = "deleting…";
  let resp = null;
  try { resp = await api("/v1/documents/" + encodeURIComponent(d.id), { method: "DELETE" }); } catch (e) { resp = null; }
  if (resp && (resp.ok || resp.status === 404)) {
    removeDoc(d.id);
    announce(d.name + " deleted.");
    return;
  }
  d.del.disabled = false;
  renderDoc(d);
  $("upload-error").textContent = "Could not delete " + d.name + ": " + (resp ? (await problemOf(resp)).text : "the server cannot be reached");
  d.del.focus();
});

// ---------------------------------------------------------------------------------------------
// conversations
// ---------------------------------------------------------------------------------------------

let conversationId = null;
let asking = false;

async function loadConversations() {
  let resp;
  try { resp = await api("/v1/conversations?limit=100"); } catch (e) { return; }
  if (!resp.ok) return;
  const body = await resp.json();
  const list = $("conversations");
  list.replaceChildren();
  const collection = currentCollection();
  for (const c of body.conversations || []) {
    if (c.collection !== collection) continue;
    const when = new Date(c.updated_at * 1000).toLocaleString();
    const button = el("button", { cls: "conv-open", attrs: { type: "button" }, data: { id: c.id } },
      el("span", { cls: "conv-title", text: c.title || "Untitled conversation" }),
      el("span", { cls: "conv-when", text: when }));
    if (c.id === conversationId) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => openConversation(c.id));
    list.appendChild(el("li", {}, button));
  }
  if (!list.children.length) list.appendChild(el("li", { cls: "hint", text: "No conversations yet." }));
}

function markCurrentConversation() {
  for (const b of document.querySelectorAll(".conv-open")) {
    if (b.dataset.id === conversationId) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

function newConversation(focus) {
  conversationId = null;
  $("turns").replaceChildren();
  $("chat-title").textContent = "New conversation";
  $("ask-error").textContent = "";
  closeViewer(false);
  markCurrentConversation();
  if (focus) $("question").focus();
}

$("new-conversation").addEventListener("click", () => newConversation(true));

async function openConversation(id) {
  if (asking) return;
  $("ask-error").textContent = "";
  let resp;
  try { resp = await api("/v1/conversations/" + encodeURIComponent(id)); } catch (e) { resp = null; }
  if (!resp || !resp.ok) {
    $("ask-error").textContent = resp ? (await problemOf(resp)).text : "The server cannot be reached.";
    return;
  }
  const conv = await resp.json();
  conversationId = conv.id;
  closeViewer(false);
  $("chat-title").textContent = conv.title || "Conversation";
  const turns = $("turns");
  turns.replaceChildren();
  for (const answer of conv.turns || []) {
    const t = createTurn(answer.question || "");
    renderAnswer(t, answer);
  }
  markCurrentConversation();
  announce("Opened conversation " + (conv.title || "") + " with " + plural((conv.turns || []).length, "answer", "answers") + ".");
  $("question").focus();
}

// ---------------------------------------------------------------------------------------------
// asking: one turn = the question, the streamed answer, its citations and feedback
// ---------------------------------------------------------------------------------------------

function createTurn(question) {
  const answerText = el("div", { cls: "answer-text", attrs: { "aria-live": "polite", "aria-busy": "false" } });
  const li = el("li", { cls: "turn", data: { done: "false" } },
    el("p", { cls: "question" }, el("span", { cls: "visually-hidden", text: "You asked: " }), el("span", { text: question })),
    el("div", { cls: "answer" }, answerText));
  $("turns").appendChild(li);
  return { li, answerText };
}

const CITATION_MARKER = /\[\s*(\d+(?:\s*[,;\-–]\s*\d+)*)\s*\]/g;

function markerNumbers(inner) {
  const out = [];
  for (const part of inner.split(/\s*[,;]\s*/)) {
    const range = part.split(/\s*[-–]\s*/).map(Number);
    if (range.length === 2 && range[1] >= range[0] && range[1] - range[0] < 50) {
      for (let n = range[0]; n <= range[1]; n++) out.push(n);
    } else {
      for (const n of range) out.push(n);
    }
  }
  return out;
}

function citeButton(citation, cls) {
  const label = "Source " + citation.n + ": " + citation.document_name + (citation.pages && citation.pages.length ? ", " + pagesLabel(citation.pages) : "");
  const b = el("button", {
    cls: cls,
    text: "[" + citation.n + "]",
    attrs: { type: "button", "aria-label": label, "aria-controls": "viewer", "aria-expanded": "false" },
    data: { n: citation.n },
  });
  b.addEventListener("click", () => openCitation(citation, b));
  return b;
}

// The answer's text with each [n] (or [1, 2], [1-3]) made into buttons for its citations.
function answerWithMarkers(text, citations) {
  const byN = new Map((citations || []).map((c) => [c.n, c]));
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(CITATION_MARKER)) {
    const numbers = markerNumbers(m[1]);
    if (!numbers.some((n) => byN.has(n))) continue;
    frag.append(text.slice(last, m.index));
    numbers.forEach((n, i) => {
      if (i) frag.append(" ");
      frag.append(byN.has(n) ? citeButton(byN.get(n), "cite-ref") : "[" + n + "]");
    });
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

function renderAnswer(turn, answer) {
  const box = turn.answerText;
  box.replaceChildren(answerWithMarkers(answer.answer || "", answer.citations));
  box.setAttribute("aria-busy", "false");
  turn.li.dataset.done = "true";
  turn.li.dataset.abstained = String(!!answer.abstained);
  if (answer.id) turn.li.dataset.answerId = answer.id;
  const container = box.parentNode;
  for (const old of container.querySelectorAll(".citations, .answer-meta, .feedback, .abstained-note")) old.remove();
  if (answer.abstained) {
    container.appendChild(el("p", { cls: "abstained-note", text: "The documents do not answer this question." }));
  }
  if (answer.citations && answer.citations.length) {
    const heading = el("h3", { cls: "citations-title", text: "Sources" });
    const list = el("ol", { cls: "citations" });
    for (const c of answer.citations) {
      const item = el("li", { cls: "citation", data: { n: c.n, document: c.document_id } },
        el("div", { cls: "citation-head" },
          citeButton(c, "cite-open"),
          el("span", { cls: "doc", text: c.document_name }),
          el("span", { cls: "pages", text: pagesLabel(c.pages) })),
        el("p", { cls: "snippet", text: c.snippet }));
      list.appendChild(item);
    }
    container.appendChild(el("div", { cls: "citations" }, heading, list));
  }
  const meta = [];
  if (answer.provider) meta.push(answer.provider + (answer.model ? " " + answer.model : ""));
  if (answer.cached) meta.push("cached");
  if (answer.timings && answer.timings.total) meta.push(Math.round(answer.timings.total) + " ms");
  if (answer.rewrite_method && answer.rewrite_method !== "none" && answer.retrieval_query) meta.push("searched for: " + answer.retrieval_query);
  if (meta.length) container.appendChild(el("p", { cls: "answer-meta", text: meta.join(" · ") }));
  if (answer.id) container.appendChild(feedbackButtons(answer.id));
}

function feedbackButtons(answerId) {
  const note = el("span", { cls: "feedback-note", attrs: { role: "status" } });
  const group = el("div", { cls: "feedback", attrs: { role: "group", "aria-label": "Was this answer helpful?" } },
    el("span", { cls: "feedback-label", text: "Helpful?" }));
  for (const [rating, symbol, label] of [["up", "Yes", "Yes, a helpful answer"], ["down", "No", "No, not helpful"]]) {
    const b = el("button", { cls: "feedback-btn", text: symbol, attrs: { type: "button", "aria-label": label, "aria-pressed": "false" }, data: { rating } });
    b.addEventListener("click", async () => {
      for (const other of group.querySelectorAll(".feedback-btn")) other.disabled = true;
      let resp = null;
      try { resp = await api("/v1/answers/" + encodeURIComponent(answerId) + "/feedback", { method: "POST", json: { rating } }); } catch (e) { resp = null; }
      for (const other of group.querySelectorAll(".feedback-btn")) other.disabled = false;
      if (resp && resp.ok) {
        for (const other of group.querySelectorAll(".feedback-btn")) other.setAttribute("aria-pressed", String(other === b));
        group.dataset.sent = rating;
        note.textContent = "Thanks, noted.";
      } else {
        note.textContent = "Not saved: " + (resp ? (await problemOf(resp)).text : "the server cannot be reached");
      }
    });
    group.appendChild(b);
  }
  group.appendChild(note);
  return group;
}

async function ensureConversation() {
  if (conversationId) return conversationId;
  const resp = await api("/v1/conversations", { method: "POST", json: { collection: currentCollection() } });
  if (!resp.ok) throw new Error((await problemOf(resp)).text);
  const conv = await resp.json();
  conversationId = conv.id;
  return conversationId;
}

$("question").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("ask-form").requestSubmit();
  }
});

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const question = $("question").value.trim();
  const error = $("ask-error");
  if (asking) return;
  if (!question) { error.textContent = "Type a question first."; return; }
  error.textContent = "";
  asking = true;
  $("ask-btn").disabled = true;
  let turn = null;
  try {
    const id = await ensureConversation();
    if ($("chat-title").textContent === "New conversation") $("chat-title").textContent = question;
    turn = createTurn(question);
    turn.li.scrollIntoView({ block: "nearest" });
    turn.answerText.setAttribute("aria-busy", "true");
    turn.answerText.textContent = "…";
    $("question").value = "";
    await ask(turn, { question, conversation_id: id, stream: true });
  } catch (e) {
    const message = e && e.message ? e.message : "The question could not be asked.";
    error.textContent = message;
    if (turn) {
      turn.answerText.setAttribute("aria-busy", "false");
      turn.answerText.textContent = "";
      turn.li.dataset.done = "error";
      turn.answerText.appendChild(el("span", { cls: "error", text: message }));
    }
  } finally {
    asking = false;
    $("ask-btn").disabled = false;
    loadConversations();
  }
});

async function ask(turn, payload) {
  const resp = await api("/v1/query", { method: "POST", json: payload });
  if (!resp.ok) throw new Error((await problemOf(resp)).text);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", started = false, finished = false;
  const handle = (raw) => {
    let name = "message";
    const data = [];
    for (const line of raw.split(/\r?\n/)) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return;
    const body = JSON.parse(data.join("\n"));
    if (name === "delta") {
      if (!started) { turn.answerText.textContent = ""; started = true; }
      turn.answerText.append(body.text || "");
    } else if (name === "answer") {
      finished = true;
      renderAnswer(turn, body);
      announce(body.abstained ? "The documents do not answer this." : "Answer complete, " + plural((body.citations || []).length, "source", "sources") + ".");
    } else if (name === "error") {
      finished = true;
      throw new Error((body.title || "Error") + (body.detail ? ": " + body.detail : ""));
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      handle(raw);
    }
  }
  if (buffer.trim()) handle(buffer);
  if (!finished) throw new Error("The answer stream ended early; ask again.");
}

// ---------------------------------------------------------------------------------------------
// the evidence viewer: the cited page with the passage highlighted, beside the answer
// ---------------------------------------------------------------------------------------------

let viewerToken = 0;
let viewerTrigger = null;

function closeViewer(restoreFocus) {
  viewerToken++;
  const viewer = $("viewer");
  const wasOpen = !viewer.hidden;
  viewer.hidden = true;
  document.querySelector("main").classList.remove("with-viewer");
  for (const b of document.querySelectorAll("[aria-controls=viewer][aria-expanded=true]")) {
    b.setAttribute("aria-expanded", "false");
    b.classList.remove("active");
  }
  if (wasOpen && restoreFocus && viewerTrigger && document.contains(viewerTrigger)) viewerTrigger.focus();
  viewerTrigger = null;
}

$("viewer-close").addEventListener("click", () => closeViewer(true));
$("viewer").addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") { ev.preventDefault(); closeViewer(true); }
});

function blobToDataUrl(blob) {
  // the page's Content-Security-Policy allows data: images but not blob: ones
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function passageQuery(c) {
  if (Number.isInteger(c.char_start) && Number.isInteger(c.char_end) && c.char_end > c.char_start) {
    return "start=" + c.char_start + "&end=" + c.char_end;
  }
  return "chunk=" + encodeURIComponent(c.chunk_id);
}

async function openCitation(c, trigger) {
  const viewer = $("viewer");
  for (const b of document.querySelectorAll("[aria-controls=viewer][aria-expanded=true]")) {
    b.setAttribute("aria-expanded", "false");
    b.classList.remove("active");
  }
  trigger.setAttribute("aria-expanded", "true");
  trigger.classList.add("active");
  viewerTrigger = trigger;
  viewer.hidden = false;
  document.querySelector("main").classList.add("with-viewer");
  viewer.dataset.document = c.document_id;
  viewer.dataset.start = String(c.char_start);
  viewer.dataset.end = String(c.char_end);
  viewer.dataset.n = String(c.n);
  $("viewer-title").textContent = "Source [" + c.n + "]";
  $("viewer-snippet").textContent = c.snippet;
  const pages = (c.pages || []).slice(0, 20);
  const nav = $("viewer-pages");
  nav.replaceChildren();
  nav.hidden = pages.length < 2;
  if (pages.length > 1) {
    nav.appendChild(el("span", { cls: "hint", text: "Cited pages:" }));
    for (const p of pages) {
      const b = el("button", { cls: "page-btn", text: String(p), attrs: { type: "button", "aria-label": "Page " + p, "aria-pressed": "false" }, data: { page: p } });
      b.addEventListener("click", () => showPage(c, p, false));
      nav.appendChild(b);
    }
  }
  $("viewer-title").focus();
  await showPage(c, pages.length ? pages[0] : null, true);
}

// Shows one page of a citation. With findPassage, a citation spanning pages opens on the first of
// them where the passage is placed (its layout has highlight rectangles).
async function showPage(c, page, findPassage) {
  const token = ++viewerToken;
  const viewer = $("viewer");
  const frame = $("page-frame");
  const image = $("page-image");
  const marks = $("page-marks");
  const docBase = "/v1/documents/" + encodeURIComponent(c.document_id) + "/pages/";
  const query = passageQuery(c);
  viewer.dataset.state = "loading";
  frame.hidden = true;
  image.removeAttribute("src");
  image.dataset.loaded = "false";
  marks.replaceChildren();
  const caption = (p, how) => {
    $("viewer-caption").replaceChildren(el("span", { cls: "caption-doc", text: c.document_name }),
      p === null ? "" : ", page " + p, how ? " (" + how + ")" : "");
  };
  caption(page, "");
  if (page === null) {
    viewer.dataset.page = "";
    viewer.dataset.state = "unavailable";
    $("viewer-message").textContent = "The citation names no page; the cited passage is below.";
    return;
  }
  $("viewer-message").textContent = "Loading the page…";

  let layout = null;
  let layoutTried = false;
  if (findPassage && c.pages.length > 1) {
    for (const p of c.pages.slice(0, 8)) {
      let r = null;
      try { r = await api(docBase + p + "/layout?" + query); } catch (e) { r = null; }
      if (token !== viewerToken) return;
      if (!r || !r.ok) break;
      const found = await r.json();
      if (found.highlight && found.highlight.length) { page = p; layout = found; layoutTried = true; break; }
    }
  }
  if (token !== viewerToken) return;
  viewer.dataset.page = String(page);
  caption(page, "");
  for (const b of document.querySelectorAll("#viewer-pages .page-btn")) {
    b.setAttribute("aria-pressed", String(b.dataset.page === String(page)));
  }

  const base = docBase + page;
  const available = Math.max(viewer.clientWidth - 32, 300);
  const width = Math.max(100, Math.min(2000, Math.round(available * (window.devicePixelRatio || 1))));
  let imageResp = null, layoutResp = null;
  try {
    [imageResp, layoutResp] = await Promise.all([
      api(base + "?width=" + width + "&" + query),
      layoutTried ? Promise.resolve(null) : api(base + "/layout?" + query).catch(() => null),
    ]);
  } catch (e) { imageResp = null; }
  if (token !== viewerToken) return;
  if (!imageResp || !imageResp.ok) {
    const p = imageResp ? await problemOf(imageResp) : { code: "", text: "the server cannot be reached", status: 0 };
    if (token !== viewerToken) return;
    if (p.code === "page_not_available") {
      viewer.dataset.state = "unavailable";
      $("viewer-message").textContent = "This document has no page images (text, HTML or Word); the cited passage is shown below.";
    } else {
      viewer.dataset.state = "error";
      $("viewer-message").textContent = "The page could not be shown: " + p.text + ". The cited passage is below.";
    }
    return;
  }
  const dataUrl = await blobToDataUrl(await imageResp.blob());
  if (token !== viewerToken) return;
  image.src = dataUrl;
  try { await image.decode(); } catch (e) { /* shown anyway */ }
  if (token !== viewerToken) return;
  image.alt = "Page " + page + " of " + c.document_name + ", the cited passage highlighted in yellow";
  frame.hidden = false;
  image.dataset.loaded = "true";
  $("viewer-message").textContent = "";
  if (!layoutTried && layoutResp && layoutResp.ok) {
    try { layout = await layoutResp.json(); } catch (e) { layout = null; }
  }
  if (token !== viewerToken) return;
  if (layout && Array.isArray(layout.highlight)) {
    for (const r of layout.highlight) {
      const mark = el("div", { cls: "mark" });
      mark.style.left = (r.x0 * 100) + "%";
      mark.style.top = (r.y0 * 100) + "%";
      mark.style.width = ((r.x1 - r.x0) * 100) + "%";
      mark.style.height = ((r.y1 - r.y0) * 100) + "%";
      marks.appendChild(mark);
    }
    caption(page, layout.source === "ocr" ? "read by OCR" : layout.source === "text-layer" ? "from the text layer" : "");
    if (!layout.highlight.length) {
      $("viewer-message").textContent = "The passage could not be placed on this page; it is shown below.";
    } else {
      // bring the passage into view inside the viewer (not the whole window)
      const top = Math.min(...layout.highlight.map((r) => r.y0));
      const y = frame.offsetTop + top * image.clientHeight - viewer.querySelector(".viewer-top").offsetHeight;
      if (viewer.scrollHeight > viewer.clientHeight) viewer.scrollTop = Math.max(0, y - viewer.clientHeight / 3);
    }
  }
  viewer.dataset.state = "loaded";
}

// ---------------------------------------------------------------------------------------------

updateEmpty();
refreshAll();
