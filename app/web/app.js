// wikirag web page: plain JS, no build step, no external resources.
"use strict";

const KEY_STORAGE = "wikirag.apiKey";
const $ = (id) => document.getElementById(id);

function apiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = apiKey();
  if (key) headers.Authorization = "Bearer " + key;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    let message = error.message || response.statusText || "request failed";
    if (response.status === 401) message += " — enter an API key above (API key).";
    throw new ApiError(response.status, error.code || "http-" + response.status, message);
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setStatus(id, message, isError = false) {
  const node = $(id);
  node.textContent = message;
  node.classList.toggle("error", isError);
}

// -- copying ---------------------------------------------------------------------------

function fallbackCopy(text) {
  const box = $("copy-fallback");
  const area = $("copy-fallback-text");
  area.value = text;
  box.hidden = false;
  area.focus();
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  return ok;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      $("copy-fallback").hidden = true;
      return "clipboard";
    } catch (e) { /* permission refused: fall back */ }
  }
  return fallbackCopy(text) ? "fallback" : "manual";
}

function copyButtons(attribution, label) {
  const row = el("div", { className: "copy-row" });
  const note = el("span", { className: "copied", "aria-live": "polite" });
  for (const [format, name] of [["text", "text"], ["markdown", "Markdown"], ["html", "HTML"]]) {
    const button = el("button", {
      type: "button", className: "secondary copy-" + format,
      title: "Copy the attribution as " + name,
    }, "Copy " + name);
    button.addEventListener("click", async () => {
      const how = await copyText(attribution[format]);
      note.textContent = how === "manual"
        ? "Select the text below and copy it"
        : "Copied " + name + " attribution" + (label ? " for " + label : "");
    });
    row.append(button);
  }
  row.append(note);
  return row;
}

function attributionBlock(attribution, label) {
  return el("div", {},
    el("div", { className: "attribution", text: attribution.text }),
    copyButtons(attribution, label));
}

// -- index info --------------------------------------------------------------------------

async function loadIndex() {
  try {
    const index = await api("/v1/index");
    const counts = index.counts || {};
    $("index-info").textContent = "Generation " + index.generation + " · " +
      (counts.passages || 0) + " passages · wikis: " + index.wikis.map((w) => w.wiki).join(", ");
    const select = $("language");
    while (select.options.length > 1) select.remove(1);
    for (const language of index.languages) select.append(el("option", { value: language }, language));
  } catch (error) {
    $("index-info").textContent = error.message;
    if (error.status === 401) $("key-box").open = true;
  }
}

// -- search ------------------------------------------------------------------------------

function sectionLabel(section) {
  return section && section.length ? section.join(" › ") : "(lead)";
}

function renderResult(result) {
  const scores = result.scores || {};
  return el("li", { className: "result", "data-passage-id": result.passage_id },
    el("h3", {}, el("a", { href: result.url, target: "_blank", rel: "noopener" }, result.title)),
    el("div", { className: "meta" },
      sectionLabel(result.section) + " · " + result.wiki + " · revision " + result.revision_id +
      " (" + result.revision_timestamp.slice(0, 10) + ") · " +
      result.attribution.license.short_name + " · score " + Number(scores.fused || 0).toFixed(3)),
    el("div", { className: "passage-text", text: result.text }),
    attributionBlock(result.attribution, result.title));
}

async function search(event) {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  const body = { query, k: Number($("k").value), mode: $("mode").value };
  if ($("language").value) body.languages = [$("language").value];
  $("search-button").disabled = true;
  setStatus("search-status", "Searching…");
  $("results").replaceChildren();
  try {
    const data = await api("/v1/search", { method: "POST", body });
    $("results").replaceChildren(...data.results.map(renderResult));
    setStatus("search-status", data.results.length + " passages (" + data.mode +
      (data.fusion ? ", " + data.fusion + " fusion" : "") + ") in " + data.took_ms + " ms");
  } catch (error) {
    setStatus("search-status", error.message, true);
  } finally {
    $("search-button").disabled = false;
  }
}

// -- citations ---------------------------------------------------------------------------

function renderCitation(record) {
  const passages = el("ol", { className: "cited-passages" });
  for (const passage of record.passages.slice(0, 5)) {
    passages.append(el("li", {},
      el("a", { href: passage.url, target: "_blank", rel: "noopener" }, passage.section || "(lead)"),
      ": " + passage.text.slice(0, 240) + (passage.text.length > 240 ? "…" : "")));
  }
  const status = record.is_current
    ? "current revision"
    : "older revision; current is " + record.current_revision_id;
  return el("div", { className: "card", id: "citation-card" },
    el("h3", {}, el("a", { href: record.permalink, target: "_blank", rel: "noopener" }, record.title)),
    el("div", { className: "meta" },
      record.wiki + " · revision " + record.revision_id + " of " +
      record.revision_timestamp.slice(0, 10) + " (" + status + ") · " + record.license.short_name +
      (record.redirected_from ? " · redirected from " + record.redirected_from : "")),
    attributionBlock(record.attribution, record.title),
    el("p", { className: "meta" }, record.passages.length + " passages stored"),
    passages);
}

async function cite(event) {
  event.preventDefault();
  const url = $("cite-url").value.trim();
  if (!url) return;
  $("cite-button").disabled = true;
  setStatus("cite-status", "Looking up…");
  $("citation").replaceChildren();
  try {
    const record = await api("/v1/citations?url=" + encodeURIComponent(url));
    $("citation").replaceChildren(renderCitation(record));
    setStatus("cite-status", "");
  } catch (error) {
    setStatus("cite-status", error.message, true);
  } finally {
    $("cite-button").disabled = false;
  }
}

// -- answer attribution ------------------------------------------------------------------

function renderAttribution(data) {
  const sentences = el("ol", { className: "sentences" });
  for (const sentence of data.sentences) {
    sentences.append(el("li", {}, sentence.text,
      el("span", { className: "badge " + sentence.label }, sentence.label)));
  }
  const references = el("ol", { className: "references" });
  for (const reference of data.references) {
    references.append(el("li", { value: reference.number },
      attributionBlock(reference.attribution, reference.title)));
  }
  return el("div", { className: "card" },
    el("p", { className: "meta" }, "The answer with footnotes and references:"),
    copyButtons(data.footnoted, "the footnoted answer"),
    sentences, el("h3", {}, "References"), references);
}

async function attribute(event) {
  event.preventDefault();
  const answer = $("answer").value;
  if (!answer.trim()) return;
  $("attribute-button").disabled = true;
  setStatus("attribute-status", "Attributing…");
  $("attribution-result").replaceChildren();
  try {
    const data = await api("/v1/attribute", { method: "POST", body: { answer } });
    $("attribution-result").replaceChildren(renderAttribution(data));
    const n = data.references.length;
    setStatus("attribute-status", n + (n === 1 ? " reference" : " references"));
  } catch (error) {
    setStatus("attribute-status", error.message, true);
  } finally {
    $("attribute-button").disabled = false;
  }
}

// -- start -------------------------------------------------------------------------------

function saveKey(event) {
  event.preventDefault();
  try { localStorage.setItem(KEY_STORAGE, $("api-key").value.trim()); } catch (e) { /* private mode */ }
  loadIndex();
}

function clearKey() {
  try { localStorage.removeItem(KEY_STORAGE); } catch (e) { /* private mode */ }
  $("api-key").value = "";
  loadIndex();
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", saveKey);
  $("key-clear").addEventListener("click", clearKey);
  $("search-form").addEventListener("submit", search);
  $("cite-form").addEventListener("submit", cite);
  $("attribute-form").addEventListener("submit", attribute);
  loadIndex();
});
