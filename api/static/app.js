// The page's whole behaviour: upload, follow jobs, ask with a streamed answer, show citations.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("rag-key") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("rag-key", keyInput.value));

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (keyInput.value.trim()) h["Authorization"] = "Bearer " + keyInput.value.trim();
  return h;
}

async function problemText(resp) {
  try {
    const p = await resp.json();
    return (p.title || "Error") + ": " + (p.detail || "") + (p.code ? " (" + p.code + ")" : "");
  } catch (e) {
    return "HTTP " + resp.status;
  }
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

// --- upload -------------------------------------------------------------------------------
$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("upload-error").textContent = "";
  const files = $("files").files;
  if (!files.length) { $("upload-error").textContent = "Choose at least one file."; return; }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  form.append("collection", $("collection").value.trim() || "default");
  const resp = await fetch("/v1/documents", { method: "POST", headers: headers(), body: form });
  if (!resp.ok) { $("upload-error").textContent = await problemText(resp); return; }
  const body = await resp.json();
  for (const item of body.items) {
    const li = text("li", "");
    li.dataset.document = item.document_id;
    $("jobs").appendChild(li);
    if (item.job_id) followJob(li, item.filename, item.job_id);
    else { li.dataset.state = "succeeded"; li.textContent = item.filename + ": already indexed"; }
  }
});

// Polite polling: slower as a job runs on, and a 429, a 5xx or a lost connection means "ask
// again later" (after Retry-After when the server says), never that the job failed.
const POLL_FIRST_MS = 700, POLL_MAX_MS = 5000, RETRY_MAX_MS = 30000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function followJob(li, name, jobId) {
  li.dataset.job = jobId;
  let delay = POLL_FIRST_MS;
  for (;;) {
    let resp = null;
    try { resp = await fetch("/v1/jobs/" + jobId, { headers: headers() }); } catch (e) { resp = null; }
    if (!resp || resp.status === 429 || resp.status >= 500) {
      const after = resp ? Number(resp.headers.get("Retry-After")) * 1000 : 0;
      delay = Math.min(Math.max(delay * 2, after || 0), RETRY_MAX_MS);
      li.dataset.waiting = "true";
      await sleep(delay);
      continue;
    }
    li.dataset.waiting = "false";
    if (!resp.ok) { li.dataset.state = "failed"; li.textContent = name + ": " + (await problemText(resp)); return; }
    const job = await resp.json();
    li.dataset.state = job.state;
    const p = job.progress || {};
    let line = name + ": " + job.state;
    if (job.state === "running") line += " (" + (p.stage || "") + ", pages " + (p.pages_read || 0) + "/" + (p.pages_total || "?") + ", chunks " + (p.chunks_embedded || 0) + ")";
    if (job.state === "succeeded" && job.result) line += " (" + job.result.pages + " pages, " + job.result.chunks + " chunks)";
    if (job.state === "failed" && job.error) line += ": " + job.error.message + " (" + job.error.code + ")";
    li.textContent = line;
    if (job.state === "succeeded" || job.state === "failed") return;
    await sleep(delay);
    delay = Math.min(delay * 1.5, POLL_MAX_MS);
  }
}

// --- ask ----------------------------------------------------------------------------------
function showAnswer(answer) {
  $("answer").textContent = answer.answer;
  $("answer").dataset.abstained = String(answer.abstained);
  const list = $("citations");
  list.replaceChildren();
  for (const c of answer.citations) {
    const li = document.createElement("li");
    li.className = "citation";
    li.value = c.n;
    li.appendChild(text("strong", c.document_name, "doc"));
    const pages = c.pages.length > 1 ? "pages " + c.pages[0] + "-" + c.pages[c.pages.length - 1] : "page " + c.pages[0];
    li.appendChild(text("span", ", " + pages, "pages"));
    li.appendChild(text("span", c.snippet, "snippet"));
    list.appendChild(li);
  }
  const u = answer.usage || {};
  $("answer-meta").textContent = "provider " + answer.provider + (answer.cached ? " (cached)" : "") +
    ", " + Math.round((answer.timings || {}).total || 0) + " ms, " + (u.input_tokens || 0) + "+" + (u.output_tokens || 0) + " tokens";
  $("answer").dataset.done = "true";
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("ask-error").textContent = "";
  $("answer").textContent = "";
  $("answer").dataset.done = "false";
  $("citations").replaceChildren();
  $("answer-meta").textContent = "";
  const payload = {
    question: $("question").value,
    collection: $("collection").value.trim() || "default",
    stream: true,
  };
  const resp = await fetch("/v1/query", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(payload),
  });
  if (!resp.ok) { $("ask-error").textContent = await problemText(resp); return; }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      handleEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
});

function handleEvent(raw) {
  let name = "message";
  const data = [];
  for (const line of raw.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  const body = JSON.parse(data.join("\n") || "null");
  if (name === "delta") $("answer").textContent += body.text;
  else if (name === "answer") showAnswer(body);
  else if (name === "error") $("ask-error").textContent = (body.title || "Error") + ": " + (body.detail || "");
}
