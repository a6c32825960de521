"""The web page of the upload-and-predict app: HTML, CSS and JavaScript.

Everything the page needs is served by the app itself (no CDN: the app must
work offline) from these strings, so the package needs no data files. The
script builds every result with ``textContent`` (never ``innerHTML``), so
class names and error messages cannot inject markup, and the page runs under
a Content-Security-Policy that allows scripts and styles from the app only.
"""

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skmedimg: predict</title>
<link rel="stylesheet" href="{{ url_for('app_css') }}">
<script src="{{ url_for('app_js') }}" defer></script>
</head>
<body data-max-bytes="{{ max_bytes }}" data-predict-url="{{ url_for('predict') }}">
<header>
  <h1>skmedimg</h1>
  <p class="subtitle">Upload images, choose a model, press Predict.
  Research use only, not a medical device.</p>
</header>
<main>
<form id="form" novalidate>
  <div class="row">
    <label for="model">Model</label>
    <select id="model" name="model">
    {% for entry in models %}
      <option value="{{ entry.name }}" data-classes='{{ entry.classes|tojson }}'>
        {{ entry.name }} ({% if entry.task %}{{ entry.task }}: {% endif %}
        {{- entry.classes|join(', ') }})</option>
    {% endfor %}
    </select>
  </div>
  <label id="drop" for="files" tabindex="0">
    <span class="drop-title">Drop images here or click to choose</span>
    <span class="drop-hint">JPEG, PNG, BMP, TIFF, GIF, WebP or DICOM;
    at most {{ max_mb }} MB each</span>
    <span id="chosen" class="drop-hint"></span>
  </label>
  <input id="files" name="file" type="file" multiple accept="image/*,.dcm,.dicom">
  <div class="row">
    <label class="check"><input id="explain" type="checkbox" checked>
    Grad-CAM overlay</label>
    <button id="predict" type="submit" disabled>Predict</button>
    <span id="status" role="status"></span>
  </div>
</form>
<section id="results" aria-live="polite"></section>
</main>
</body>
</html>
"""

APP_CSS = """
:root { --accent: #2563eb; --muted: #6b7280; --bg: #f8fafc; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: #111827; background: var(--bg); }
header { padding: 16px 24px 4px; }
h1 { margin: 0; font-size: 22px; }
.subtitle { margin: 4px 0 0; color: var(--muted); }
main { padding: 8px 24px 24px; max-width: 1100px; }
form { background: #fff; border: 1px solid var(--line); border-radius: 10px;
       padding: 14px 16px; }
.row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; margin: 6px 0; }
select { font: inherit; padding: 4px 6px; max-width: 100%; }
#files { display: none; }
#drop { display: flex; flex-direction: column; align-items: center; gap: 4px;
        margin: 10px 0; padding: 22px; border: 2px dashed #cbd5e1;
        border-radius: 10px; cursor: pointer; text-align: center; }
#drop.over { border-color: var(--accent); background: #eff6ff; }
.drop-title { font-weight: 600; }
.drop-hint { color: var(--muted); font-size: 13px; }
button { font: inherit; padding: 6px 18px; border: 0; border-radius: 6px;
         background: var(--accent); color: #fff; cursor: pointer; }
button:disabled { background: #94a3b8; cursor: default; }
#status { color: var(--muted); }
#results { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr));
           gap: 14px; margin-top: 16px; }
.result { background: #fff; border: 1px solid var(--line); border-radius: 10px;
          padding: 12px 14px; }
.result h2 { margin: 0 0 6px; font-size: 14px; font-weight: 600;
             overflow-wrap: anywhere; }
.label { font-size: 18px; font-weight: 700; color: var(--accent); margin: 2px 0 8px; }
.images { display: flex; gap: 8px; margin-bottom: 8px; }
.images figure { margin: 0; flex: 1; min-width: 0; }
.images img { width: 100%; border-radius: 6px; image-rendering: auto;
              background: #000; display: block; }
.images figcaption { color: var(--muted); font-size: 12px; text-align: center; }
.bar-row { display: grid; grid-template-columns: 110px 1fr 54px; gap: 8px;
           align-items: center; font-size: 13px; margin: 3px 0; }
.bar-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar-track { height: 12px; background: #eef2f7; border-radius: 6px; overflow: hidden; }
.bar-fill { display: block; height: 100%; background: #94a3b8; border-radius: 6px; }
.bar-row.top .bar-fill { background: var(--accent); }
.bar-row.top { font-weight: 600; }
.bar-value { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #b91c1c; }
.note { color: var(--muted); font-size: 12px; }
"""

APP_JS = r"""
"use strict";
(function () {
  const form = document.getElementById("form");
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const chosen = document.getElementById("chosen");
  const button = document.getElementById("predict");
  const status = document.getElementById("status");
  const results = document.getElementById("results");
  const select = document.getElementById("model");
  const explain = document.getElementById("explain");
  const maxBytes = Number(document.body.dataset.maxBytes);
  const predictUrl = document.body.dataset.predictUrl;
  let files = [];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setFiles(list) {
    files = Array.from(list);
    chosen.textContent = files.length
      ? files.length + " file(s): " + files.map((f) => f.name).join(", ")
      : "";
    button.disabled = files.length === 0 || select.options.length === 0;
  }

  input.addEventListener("change", () => setFiles(input.files));
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  // A file dropped outside the zone must not make the browser navigate to it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    setFiles(event.dataTransfer.files);
  });

  function showError(card, message) {
    card.appendChild(el("p", "error", message));
  }

  function figure(src, caption, className) {
    const fig = el("figure");
    const img = el("img", className);
    img.src = src;
    img.alt = caption;
    fig.appendChild(img);
    fig.appendChild(el("figcaption", null, caption));
    return fig;
  }

  // One bar per class, in the model's class order: Object.entries would put
  // class names that look like integers ("2", "10") first, in numeric order.
  function showBars(card, model, values, top, colors) {
    const bars = el("div", "bars");
    const option = Array.from(select.options).find((o) => o.value === model);
    const order = option ? JSON.parse(option.dataset.classes) : [];
    const names = order.filter((name) => name in values);
    for (const name of names.length ? names : Object.keys(values)) {
      const p = values[name];
      const row = el("div", name === top ? "bar-row top" : "bar-row");
      row.title = name + ": " + (100 * p).toFixed(2) + "%";
      row.appendChild(el("span", "bar-name", name));
      const track = el("span", "bar-track");
      const fill = el("span", "bar-fill");
      fill.style.width = (100 * p).toFixed(1) + "%";
      if (colors && colors[name]) fill.style.backgroundColor = colors[name];
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "bar-value", (100 * p).toFixed(1) + "%"));
      bars.appendChild(row);
    }
    card.appendChild(bars);
  }

  function showSegmentation(card, data) {
    const seg = data.segmentation;
    card.appendChild(el("p", "label", "segmentation"));
    const images = el("div", "images");
    images.appendChild(figure(seg.image, "image", "input"));
    images.appendChild(figure(seg.overlay, "predicted mask", "overlay"));
    card.appendChild(images);
    card.appendChild(el("p", "note", "share of the image per class:"));
    showBars(card, data.model, data.fractions, null, seg.colors);
    card.appendChild(el("p", "note", "model: " + data.model));
  }

  function showResult(card, data) {
    if (data.task === "segmentation") {
      showSegmentation(card, data);
      return;
    }
    card.appendChild(el("p", "label", data.label));
    const expl = data.explanation;
    if (expl) {
      const images = el("div", "images");
      images.appendChild(figure(expl.image, "image", "input"));
      images.appendChild(
        figure(expl.overlay, "Grad-CAM: " + expl["class"], "overlay"));
      card.appendChild(images);
    } else if (data.explanation_error) {
      card.appendChild(el("p", "note", data.explanation_error));
    }
    showBars(card, data.model, data.probabilities, data.label, null);
    card.appendChild(el("p", "note", "model: " + data.model));
  }

  async function predictOne(file, card) {
    if (file.size > maxBytes) {
      const mb = (maxBytes / 1048576).toFixed(0);
      showError(card, "Not sent: the file is larger than the limit of " + mb + " MB.");
      return;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("model", select.value);
    if (explain.checked) body.append("explain", "1");
    let response;
    try {
      response = await fetch(predictUrl, { method: "POST", body: body });
    } catch (error) {
      showError(card, "The server did not answer (" + error.message + ").");
      return;
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok || data === null) {
      const reason = data && data.error ? data.error : "HTTP " + response.status;
      showError(card, reason);
      card.classList.add("failed");
      return;
    }
    card.classList.add("done");
    showResult(card, data);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!files.length) return;
    button.disabled = true;
    results.replaceChildren();
    const todo = files.slice();
    for (let i = 0; i < todo.length; i++) {
      status.textContent = "Predicting " + (i + 1) + " of " + todo.length + "...";
      const card = el("article", "result");
      card.appendChild(el("h2", null, todo[i].name));
      results.appendChild(card);
      await predictOne(todo[i], card);
    }
    status.textContent = "Done: " + todo.length + " image(s).";
    button.disabled = false;
  });
})();
"""
