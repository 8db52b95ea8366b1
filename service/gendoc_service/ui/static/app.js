// The playground page. Every name, variable, value and message from the service
// goes into the page as text (textContent / text nodes), never as HTML.

import { ApiError, apiKey, call, json, setApiKey, templatePath } from "./api.js";
import { asTreePath, checkData, kindOf, skeleton } from "./check.js";
import { explain } from "./explain.js";

const $ = (id) => document.getElementById(id);
const CHECK_DELAY_MS = 150;
const PREVIEW_DELAY_MS = 600;

// -- small DOM helpers --------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function fill(node, ...children) {
  node.replaceChildren(...children.map((c) => (c instanceof Node ? c : String(c))));
}

function size(bytes) {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function short(id) {
  return id ? id.slice(0, 12) : "";
}

function when(rfc3339) {
  return rfc3339 ? rfc3339.replace("T", " ").replace("Z", " UTC") : "";
}

function showProblem(box, error) {
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const said = error instanceof ApiError
    ? explain(error.problem, error.status)
    : { title: "The service cannot be reached", lines: [String(error.message || error)], context: [] };
  const parts = [el("p", { class: "problem-title" }, said.title)];
  for (const line of said.lines) parts.push(el("p", {}, line));
  if (said.context.length) {
    const lines = said.context.map((text, i) =>
      el("li", i === said.contextLine ? { class: "at", "aria-current": "true" } : {}, text || " "));
    const list = el("ol", { class: "context", start: String(said.contextStart || 1) }, ...lines);
    parts.push(el("p", { class: "muted" }, "Around that line (numbered by paragraph):"), list);
  }
  if (error.status === 401) $("api-key").focus();
  box.replaceChildren(...parts);
  box.hidden = false;
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function dropZone(zone, input, onFile) {
  input.addEventListener("change", () => {
    if (input.files.length) onFile(input.files[0]);
    input.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) onFile(e.dataTransfer.files[0]);
  });
}

async function upload(name, file) {
  return json("PUT", templatePath(name), {
    body: await file.arrayBuffer(),
    type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  });
}

// -- the API key ---------------------------------------------------------------
function keyState() {
  $("key-state").textContent = apiKey() ? "key set for this tab" : "";
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setApiKey($("api-key").value.trim());
  $("api-key").value = "";
  keyState();
  route();
});

// -- the templates list --------------------------------------------------------
async function showList() {
  $("template-view").hidden = true;
  $("list-view").hidden = false;
  document.title = "gendoc playground";
  showProblem($("list-problem"), null);
  try {
    const { templates } = await json("GET", "/v1/templates");
    fill($("templates").tBodies[0], ...templates.map((t) => el("tr", {},
      el("td", {}, el("a", { href: `#/t/${encodeURIComponent(t.name)}` }, t.name)),
      el("td", { class: "mono" }, short(t.latest)),
      el("td", {}, when(t.updated)),
      el("td", {}, size(t.size)),
      el("td", {}, t.versions))));
    $("templates-empty").hidden = templates.length > 0;
  } catch (error) {
    showProblem($("list-problem"), error);
  }
}

dropZone($("new-drop"), $("new-file"), async (file) => {
  const name = $("new-name").value.trim() || file.name.replace(/\.docx$/i, "");
  try {
    await upload(name, file);
    location.hash = `#/t/${encodeURIComponent(name)}`;
  } catch (error) {
    showProblem($("list-problem"), error);
    if (error instanceof ApiError && error.problem.type?.endsWith("/invalid-template-name")) {
      $("list-problem").append(el("p", {}, "The name given was: ", el("code", {}, name)));
    }
  }
});

// -- one template ------------------------------------------------------------------
// `edit` counts edits; the preview shown says which edit it shows (data-edit on both).
const state = { name: "", meta: null, timers: {}, preview: null, images: [], edit: 0 };

async function showTemplate(name) {
  $("list-view").hidden = true;
  $("template-view").hidden = false;
  state.name = name;
  document.title = `${name} - gendoc playground`;
  $("template-title").textContent = name;
  $("compare-result").hidden = true;
  showProblem($("problem"), null);
  // Read-only until the saved data is in, so that nothing typed meanwhile is replaced.
  $("data").readOnly = true;
  try {
    await loadMeta();
  } catch (error) {
    state.meta = null;
    showProblem($("problem"), error);
    return;
  }
  $("data").value = await initialData();
  $("data").readOnly = false;
  onEdit(true);
}

async function loadMeta() {
  state.meta = await json("GET", templatePath(state.name));
  renderVersions();
  renderIncludes();
}

async function initialData() {
  try {
    const saved = await json("GET", templatePath(state.name, "/sample"));
    return JSON.stringify(saved, null, 2);
  } catch {
    return "{}"; // nothing saved yet: the checker lists what to add ("Add missing paths")
  }
}

function skeletonOrEmpty() {
  return state.meta && state.meta.variables ? skeleton(state.meta.variables) : {};
}

function renderVersions() {
  const { meta } = state;
  const rows = meta.versions.map((v) => {
    const current = v.id === meta.latest;
    const actions = el("td", { class: "actions" },
      el("button", { type: "button", onclick: () => downloadVersion(v.id) }, "Download"),
      current ? el("span", { class: "badge" }, "current")
        : el("button", { type: "button", onclick: () => makeCurrent(v.id) }, "Make current"),
      el("button", { type: "button", class: "danger", onclick: () => deleteVersion(v.id) }, "Delete"));
    return el("tr", current ? { class: "current" } : {},
      el("td", { class: "mono", title: v.id }, short(v.id)), el("td", {}, when(v.created)),
      el("td", {}, size(v.size)), actions);
  });
  fill($("versions").tBodies[0], ...rows);
  for (const [select, pick] of [[$("compare-from"), 1], [$("compare-to"), 0]]) {
    fill(select, ...meta.versions.map((v) => el("option", { value: v.id },
      `${short(v.id)} (${when(v.created)})${v.id === meta.latest ? ", current" : ""}`)));
    select.selectedIndex = Math.min(pick, meta.versions.length - 1);
  }
}

// include('NAME') or include('NAME@VERSION'): each links to the template it names.
function renderIncludes() {
  const includes = (state.meta && state.meta.includes) || [];
  const problem = state.meta && state.meta.include_error;
  $("includes-section").hidden = includes.length === 0 && !problem;
  fill($("includes"), ...includes.map((reference) => {
    const [name, version] = reference.split("@");
    return el("li", {}, el("a", { href: `#/t/${encodeURIComponent(name)}` }, name),
      version ? el("span", { class: "muted mono" }, ` version ${short(version)}`) : "");
  }));
  $("include-error").hidden = !problem;
  $("include-error").textContent = problem || "";
}

function renderTree(missing) {
  const marked = new Set(missing.map(asTreePath));
  // "missing": the data lacks this path; "incomplete": it has it, but lacks something below.
  const stateOf = (path) => marked.has(path) ? "missing"
    : [...marked].some((m) => m.startsWith(`${path}.`) || m.startsWith(`${path}[]`))
      ? "incomplete" : "present";
  const MARKS = { missing: " ✗ missing", incomplete: " … incomplete", present: " ✓" };
  function branch(node, prefix) {
    return Object.entries(node).map(([key, child]) => {
      const path = prefix ? `${prefix}.${key}` : key;
      const mark = stateOf(path);
      const item = el("li", { class: mark, "data-path": path }, el("span", { class: "var" }, key),
        el("span", { class: "kind" }, kindOf(child) === "list" ? " (list)" : ""),
        el("span", { class: "mark" }, MARKS[mark]));
      let inner = child;
      let innerPath = path;
      while (Array.isArray(inner)) {
        inner = inner[0];
        innerPath = `${innerPath}[]`;
      }
      if (inner && typeof inner === "object" && Object.keys(inner).length) {
        item.append(el("ul", {}, ...branch(inner, innerPath)));
      }
      return item;
    });
  }
  const tree = (state.meta && state.meta.variables) || {};
  fill($("variables"), ...branch(tree, ""));
  $("variables-none").hidden = Object.keys(tree).length > 0;
}

function parsedData() {
  try {
    const value = JSON.parse($("data").value || "{}");
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { error: "The data must be a JSON object: { ... }." };
    }
    return { value };
  } catch (error) {
    return { error: `Not valid JSON yet: ${error.message}` };
  }
}

function onEdit(immediately = false) {
  state.edit += 1;
  $("data").dataset.edit = String(state.edit);
  clearTimeout(state.timers.check);
  clearTimeout(state.timers.preview);
  state.timers.check = setTimeout(checkNow, immediately ? 0 : CHECK_DELAY_MS);
  state.timers.preview = setTimeout(previewNow, immediately ? 0 : PREVIEW_DELAY_MS);
}

function checkNow() {
  const parsed = parsedData();
  const box = $("data-state");
  if (parsed.error) {
    box.textContent = parsed.error;
    box.className = "bad";
    return;
  }
  const { missing, unknown } = checkData(state.meta ? state.meta.variables : {}, parsed.value);
  box.textContent = missing.length
    ? `${missing.length} path(s) missing`
    : "Every path the template reads is present.";
  box.className = missing.length ? "bad" : "good";
  fill($("missing"), ...missing.map((p) => el("li", { class: "missing" }, p)));
  fill($("unknown"), ...unknown.map((p) => el("li", { class: "unknown" }, p)));
  renderTree(missing);
}

async function previewNow() {
  const parsed = parsedData();
  if (parsed.error || !state.meta) return;
  if (state.preview) state.preview.abort();
  const controller = new AbortController();
  const edit = state.edit;
  state.preview = controller;
  $("preview-state").textContent = "(rendering…)";
  $("pages").classList.add("stale");
  try {
    const answer = await json("POST", "/v1/preview", {
      body: JSON.stringify({ template: state.name, version: state.meta.latest,
        data: parsed.value, strict: $("strict").checked }),
      type: "application/json",
      signal: controller.signal,
    });
    showPages(answer, edit);
    showProblem($("problem"), null);
  } catch (error) {
    if (error.name === "AbortError") return;
    $("preview-state").textContent = "(not updated)";
    showProblem($("problem"), error);
  } finally {
    if (state.preview === controller) state.preview = null;
  }
}

function showPages(answer, edit) {
  for (const url of state.images) URL.revokeObjectURL(url);
  state.images = answer.images.map((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  });
  const pages = $("pages");
  fill(pages, ...state.images.map((url, i) =>
    el("img", { src: url, alt: `Page ${i + 1} of ${answer.pages}`, class: "page" })));
  if (answer.pages > answer.images.length) {
    pages.append(el("p", { class: "muted" }, `${answer.pages - answer.images.length} more page(s) not shown.`));
  }
  pages.classList.remove("stale");
  pages.dataset.edit = String(edit);
  pages.dataset.digest = digest(answer.images.join(""));
  $("preview-state").textContent = `(${answer.pages} page${answer.pages === 1 ? "" : "s"})`;
}

// FNV-1a of the page images: tells one preview from another (tests read it).
function digest(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return `${text.length}:${hash.toString(16)}`;
}

async function downloadVersion(id) {
  try {
    const response = await call("GET", templatePath(state.name, `/content?version=${id}`));
    download(await response.blob(), `${state.name}-${short(id)}.docx`);
  } catch (error) {
    showProblem($("problem"), error);
  }
}

async function makeCurrent(id) {
  try {
    const response = await call("GET", templatePath(state.name, `/content?version=${id}`));
    await upload(state.name, await response.blob());
    await loadMeta();
    onEdit(true);
  } catch (error) {
    showProblem($("problem"), error);
  }
}

async function deleteVersion(id) {
  const last = state.meta.versions.length === 1;
  const question = last
    ? `Delete ${state.name} entirely (its only version)?`
    : `Delete version ${short(id)} of ${state.name}?`;
  if (!window.confirm(question)) return;
  try {
    await call("DELETE", templatePath(state.name, last ? "" : `?version=${id}`));
    if (last) {
      location.hash = "#/";
      return;
    }
    await loadMeta();
    onEdit(true);
  } catch (error) {
    showProblem($("problem"), error);
  }
}

dropZone($("version-drop"), $("version-file"), async (file) => {
  try {
    await upload(state.name, file);
    showProblem($("problem"), null);
    await loadMeta();
    onEdit(true);
  } catch (error) {
    showProblem($("problem"), error);
  }
});

$("data").addEventListener("input", () => onEdit());
$("strict").addEventListener("change", () => onEdit(true));

$("fill").addEventListener("click", () => {
  const parsed = parsedData();
  if (parsed.error) return;
  $("data").value = JSON.stringify(merge(skeletonOrEmpty(), parsed.value), null, 2);
  onEdit(true);
});

function merge(base, over) {
  if (!base || typeof base !== "object" || Array.isArray(base)) return over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = k in base && v && typeof v === "object" && !Array.isArray(v) ? merge(base[k], v) : v;
  }
  return out;
}

$("save-sample").addEventListener("click", async () => {
  const parsed = parsedData();
  if (parsed.error) return;
  try {
    await call("PUT", templatePath(state.name, "/sample"), {
      body: JSON.stringify(parsed.value), type: "application/json" });
    $("data-state").textContent = "Saved with the template.";
  } catch (error) {
    showProblem($("problem"), error);
  }
});

for (const format of ["pdf", "docx"]) {
  $(`download-${format}`).addEventListener("click", async () => {
    const parsed = parsedData();
    if (parsed.error) return;
    try {
      const response = await call("POST", "/v1/render", {
        body: JSON.stringify({ template: state.name, version: state.meta.latest,
          data: parsed.value, format, strict: $("strict").checked }),
        type: "application/json",
      });
      download(await response.blob(), `${state.name}.${format}`);
    } catch (error) {
      showProblem($("problem"), error);
    }
  });
}

$("compare-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const from = $("compare-from").value;
  const to = $("compare-to").value;
  try {
    const answer = await json("GET", templatePath(state.name,
      `/compare?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`));
    const list = (paths) => paths.length ? paths.map((p) => el("li", {}, p))
      : [el("li", { class: "muted" }, "none")];
    fill($("vars-added"), ...list(answer.variables.added));
    fill($("vars-removed"), ...list(answer.variables.removed));
    const lines = answer.diff.length ? answer.diff : ["The text is the same."];
    fill($("text-diff"), ...lines.map((line) => el("span", {
      class: line.startsWith("+") && !line.startsWith("+++") ? "add"
        : line.startsWith("-") && !line.startsWith("---") ? "del" : "same",
    }, `${line}\n`)));
    $("compare-result").hidden = false;
  } catch (error) {
    showProblem($("problem"), error);
  }
});

// -- routing ------------------------------------------------------------------------
function route() {
  const match = location.hash.match(/^#\/t\/(.+)$/);
  if (match) {
    let name;
    try {
      name = decodeURIComponent(match[1]);
    } catch {
      name = match[1];
    }
    showTemplate(name);
  } else {
    showList();
  }
}

window.addEventListener("hashchange", route);
keyState();
route();
