// searchlm web page: search, read a document at the hit, ask with streamed, cited answers.
// Plain DOM code, no framework; all text from the server goes in through textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
};

const state = { query: "", asking: null, lastDoc: null };

function indexName() {
  return $("index").value || "";
}

// A server bound beyond loopback wants `Authorization: Bearer TOKEN`; the page takes the token once from
// the address /#token=TOKEN, keeps it for this tab only and removes it from the address bar.
const token = (() => {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("searchlm-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("searchlm-token");
})();

function authorized(headers) {
  return token ? { ...(headers || {}), Authorization: `Bearer ${token}` } : headers || {};
}

async function getJSON(url, options) {
  options = options || {};
  const response = await fetch(url, { ...options, headers: authorized(options.headers) });
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    /* not JSON */
  }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    throw new Error(detail);
  }
  return data;
}

// `path:line` (or `path#page=N`), with the path relative to the indexed folder when the server gave it.
function hitLocation(hit) {
  const path = hit.rel_path || hit.path;
  if (hit.page !== null && hit.page !== undefined) return `${path}#page=${hit.page}`;
  if (hit.start_line !== null && hit.start_line !== undefined) return `${path}:${hit.start_line}`;
  return path;
}

function setStatus(text, isError) {
  const node = $("status");
  node.textContent = text || "";
  node.classList.toggle("error", !!isError);
}

// -- indexes ----------------------------------------------------------------------------------------------
async function loadIndexes() {
  try {
    const data = await getJSON("/api/indexes");
    const select = $("index");
    select.textContent = "";
    for (const ix of data.indexes) {
      const option = el("option", null, ix.name);
      option.value = ix.name;
      option.selected = ix.name === data.default;
      option.dataset.info = `${ix.documents} documents, ${ix.chunks} passages · ${ix.model}`;
      select.append(option);
    }
    showIndexInfo();
  } catch (err) {
    setStatus(`Could not list indexes: ${err.message}`, true);
  }
}

function showIndexInfo() {
  const option = $("index").selectedOptions[0];
  $("index-info").textContent = option ? `Index “${option.value}”: ${option.dataset.info}` : "";
}

// -- search -----------------------------------------------------------------------------------------------
async function runSearch(query) {
  query = query.trim();
  if (!query) return;
  state.query = query;
  const params = new URLSearchParams({ q: query, k: $("k").value, mode: $("mode").value, snippets: "true" });
  if (indexName()) params.set("name", indexName());
  history.replaceState(null, "", `/?${new URLSearchParams({ q: query, name: indexName() })}`);
  setStatus("Searching…");
  const started = performance.now();
  try {
    const data = await getJSON(`/api/search?${params}`);
    renderResults(data.hits, performance.now() - started, data.corrected, data.filtered);
  } catch (err) {
    $("results").textContent = "";
    setStatus(err.message, true);
  }
}

function renderResults(hits, ms, corrected, filtered) {
  const list = $("results");
  list.textContent = "";
  $("empty").hidden = true;
  const shown = corrected ? `Showing results for “${corrected}”. ` : "";
  if (!hits.length) {
    setStatus(`${shown}No results for “${corrected || state.query}”${filtered ? `: ${filtered}` : ""}.`);
    return;
  }
  setStatus(`${shown}${hits.length} result${hits.length === 1 ? "" : "s"} in ${Math.round(ms)} ms`);
  for (const hit of hits) list.append(renderHit(hit));
}

function renderHit(hit) {
  const item = el("li", "hit");
  item.tabIndex = 0;
  item.dataset.doc = hit.doc_id;
  item.dataset.chunk = hit.chunk_id;
  const head = el("div", "hit-head");
  const loc = el("span", "loc", hitLocation(hit));
  loc.title = hit.path;
  head.append(loc);
  head.append(el("span", "score", hit.score.toFixed(3)));
  if (hit.doc_kind && hit.doc_kind !== "guide") head.append(el("span", "doc-kind", hit.doc_kind));  // guides: quiet
  item.append(head);
  const heading = hit.heading || hit.title;
  if (heading) item.append(el("div", "hit-heading", heading));
  const snippet = el("p", "snippet");
  for (const [piece, match] of hit.snippet || [[hit.text.slice(0, 300), false]]) {
    if (match) {
      const trimmed = piece.replace(/\s+$/, "");
      snippet.append(el("mark", null, trimmed), piece.slice(trimmed.length));
    } else {
      snippet.append(piece);
    }
  }
  item.append(snippet);
  const open = () => openDocument(hit.doc_id, hit.chunk_id, item);
  item.addEventListener("click", open);
  item.addEventListener("keydown", (e) => {
    if (e.key === "Enter") open();
  });
  return item;
}

// -- documents --------------------------------------------------------------------------------------------
async function openDocument(docId, chunkId, fromItem) {
  for (const node of document.querySelectorAll(".hit.active")) node.classList.remove("active");
  if (fromItem) fromItem.classList.add("active");
  const params = new URLSearchParams();
  if (chunkId !== null && chunkId !== undefined) params.set("chunk", chunkId);
  if (indexName()) params.set("name", indexName());
  const viewer = $("viewer");
  viewer.hidden = false;
  document.body.classList.add("reading");
  try {
    const doc = await getJSON(`/api/documents/${encodeURIComponent(docId)}?${params}`);
    renderDocument(doc);
  } catch (err) {
    $("doc-title").textContent = "Document not available";
    $("doc-path").textContent = "";
    $("doc-body").textContent = err.message;
  }
}

function partLabel(part) {
  if (part.page !== null && part.page !== undefined) return `p. ${part.page}`;
  if (part.start_line === null || part.start_line === undefined) return "";
  return part.end_line && part.end_line !== part.start_line ? `${part.start_line}–${part.end_line}` : `${part.start_line}`;
}

function renderDocument(doc) {
  state.lastDoc = doc;
  $("doc-title").textContent = doc.title || doc.path;
  $("doc-path").textContent = `${doc.rel_path || doc.path} · ${doc.kind} · ${doc.parts.length} passages`;
  $("doc-path").title = doc.path;
  const body = $("doc-body");
  body.textContent = "";
  let lastHeading = null;
  let marked = null;
  for (const part of doc.parts) {
    if (part.heading && part.heading !== lastHeading) {
      body.append(el("div", "part-heading", part.heading));
      lastHeading = part.heading;
    }
    const section = el("section", part.marked ? "part marked" : "part");
    section.dataset.chunk = part.chunk_id;
    section.append(el("span", "gutter", partLabel(part)));
    section.append(el("div", "part-text", part.text));
    body.append(section);
    if (part.marked) marked = section;
  }
  if (marked) {
    marked.scrollIntoView({ block: "center" });
  } else {
    body.scrollTop = 0;
  }
}

function closeDocument() {
  $("viewer").hidden = true;
  document.body.classList.remove("reading");
  for (const node of document.querySelectorAll(".hit.active")) node.classList.remove("active");
}

// -- ask --------------------------------------------------------------------------------------------------
async function runAsk(question) {
  question = question.trim();
  if (!question) return;
  if (state.asking) state.asking.abort();
  const controller = new AbortController();
  state.asking = controller;
  const box = $("answer");
  const text = $("answer-text");
  box.hidden = false;
  box.classList.add("streaming");
  box.classList.remove("failed");
  text.textContent = "";
  $("citations").textContent = "";
  $("answer-status").textContent = "Reading passages…";
  $("ask-button").disabled = true;
  const started = performance.now();
  let firstToken = null;
  const body = { question };
  if (indexName()) body.name = indexName();
  try {
    const response = await fetch("/api/ask/stream", {
      method: "POST",
      headers: authorized({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        /* keep the status line */
      }
      throw new Error(detail);
    }
    let finished = false;
    for await (const [event, data] of readEvents(response)) {
      if (event === "token") {
        if (firstToken === null) {
          firstToken = performance.now() - started;
          $("answer-status").textContent = "Writing…";
        }
        text.append(data.text);
      } else if (event === "answer") {
        renderAnswer(data, firstToken);
        finished = true;
      } else if (event === "error") {
        throw new Error(data.detail);
      }
    }
    if (!finished) throw new Error("the answer stream ended early (is the server still running?)");
  } catch (err) {
    if (err.name !== "AbortError") {
      box.classList.add("failed");
      $("answer-status").textContent = `Failed: ${err.message}`;
    }
  } finally {
    box.classList.remove("streaming");
    $("ask-button").disabled = false;
    if (state.asking === controller) state.asking = null;
  }
}

// Server-sent events over fetch (EventSource cannot POST): yields [event, data] pairs.
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield [event, JSON.parse(data.join("\n"))];
    }
  }
}

function renderAnswer(answer, firstToken) {
  const text = $("answer-text");
  text.textContent = "";
  const byNumber = new Map(answer.citations.map((c) => [String(c.n), c]));
  // "[2]" or "[1, 3]" in the answer become links to the cited passages.
  const pattern = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let at = 0;
  for (const match of answer.answer.matchAll(pattern)) {
    text.append(answer.answer.slice(at, match.index));
    const numbers = match[1].split(",").map((s) => s.trim());
    text.append("[");
    numbers.forEach((n, i) => {
      if (i) text.append(", ");
      const cite = byNumber.get(n);
      if (cite) {
        const link = el("a", "cite", n);
        link.href = "#";
        link.title = hitLocation(cite);
        link.addEventListener("click", (e) => {
          e.preventDefault();
          openCitation(cite);
        });
        text.append(link);
      } else {
        text.append(n);
      }
    });
    text.append("]");
    at = match.index + match[0].length;
  }
  text.append(answer.answer.slice(at));

  const list = $("citations");
  list.textContent = "";
  for (const cite of answer.citations) {
    const item = el("li", "citation");
    const link = el("a", "cite-loc", `[${cite.n}] ${hitLocation(cite)}`);
    link.href = "#";
    link.addEventListener("click", (e) => {
      e.preventDefault();
      openCitation(cite);
    });
    item.append(link);
    if (cite.heading) item.append(el("span", "muted", ` ${cite.heading}`));
    list.append(item);
  }
  const parts = [];
  if (answer.refused) parts.push("Not found in the documents");
  if (!answer.refused && answer.extractive) parts.push("quoted from the passages");
  else if (answer.model) parts.push(answer.model);
  if (!answer.refused && answer.confidence !== undefined) parts.push(`evidence ${answer.confidence.toFixed(2)}`);
  if (firstToken !== null) parts.push(`first token ${(firstToken / 1000).toFixed(1)} s`);
  if (answer.seconds !== undefined) parts.push(`${answer.seconds.toFixed(1)} s`);
  $("answer-status").textContent = parts.join(" · ");
}

function openCitation(cite) {
  if (cite.doc_id !== undefined && cite.doc_id !== null) {
    const item = document.querySelector(`.hit[data-chunk="${Number(cite.chunk_id)}"]`);
    openDocument(cite.doc_id, cite.chunk_id, item);
  }
}

// -- wiring -----------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runSearch($("q").value);
  });
  $("ask-button").addEventListener("click", () => {
    runSearch($("q").value);
    runAsk($("q").value);
  });
  $("q").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $("ask-button").click();
    }
  });
  $("viewer-close").addEventListener("click", closeDocument);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("viewer").hidden) closeDocument();
  });
  $("index").addEventListener("change", () => {
    showIndexInfo();
    closeDocument();
    if (state.query) runSearch(state.query);
  });
  for (const id of ["mode", "k"]) {
    $(id).addEventListener("change", () => state.query && runSearch(state.query));
  }
  await loadIndexes();
  const params = new URLSearchParams(window.location.search);
  if (params.get("name")) {
    $("index").value = params.get("name");
    showIndexInfo();
  }
  if (params.get("q")) {
    $("q").value = params.get("q");
    runSearch(params.get("q"));
  }
});
