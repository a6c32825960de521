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
<body data-max-bytes="{{ max_bytes }}" data-predict-url="{{ url_for('predict') }}"
      data-export-url="{{ url_for('export') }}" data-margin="{{ margin }}">
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
<section id="cards">
{% for entry in models if entry.card %}{% set card = entry.card %}
{% set m = card.metrics or {} %}
  <article class="model-card" data-model="{{ entry.name }}" hidden>
    <h2>Model card: {{ entry.name }}</h2>
    <dl>
      <dt>Training data</dt>
      <dd>{{ card.training_data or "not recorded" }}
      {%- if card.n_train %} ({{ card.n_train }} images){% endif %}</dd>
      <dt>Test data</dt>
      <dd>{{ card.test_data or "not recorded" }}
      {%- if card.n_test %} ({{ card.n_test }} images){% endif %}</dd>
      {% if m.accuracy is defined %}
      <dt>Test accuracy</dt>
      <dd class="card-accuracy">{{ "%.1f%%"|format(100 * m.accuracy) }}
      {%- if m.balanced_accuracy is defined %} (balanced
      {{ "%.1f%%"|format(100 * m.balanced_accuracy) }}){% endif %}
      {%- if m.roc_auc is defined %}; ROC-AUC {{ "%.3f"|format(m.roc_auc) }}
      {%- endif %}</dd>
      {% endif %}
      {% if m.sensitivity is defined %}
      <dt>Sensitivity / specificity</dt>
      <dd>{{ "%.1f%%"|format(100 * m.sensitivity) }} /
      {{ "%.1f%%"|format(100 * (m.specificity or 0)) }}
      (positive class: {{ m.positive_class }})</dd>
      {% endif %}
      {% if m.mean_dice is defined %}
      <dt>Mean Dice</dt><dd>{{ "%.3f"|format(m.mean_dice) }}</dd>
      {% endif %}
      <dt>Date</dt>
      <dd>{{ card.date }}{% if card.date_source == "file time" %}
      (time of the report file){% endif %}</dd>
      {% if card.recipe %}
      <dt>Recipe</dt>
      <dd>{{ card.recipe.name or "none" }}
      {%- if card.recipe.reason %}: {{ card.recipe.reason }}{% endif %}</dd>
      {% endif %}
      {% if card.model_name %}
      <dt>Network</dt>
      <dd>{{ card.model_name }}
      {%- if card.weights_source %} (weights: {{ card.weights_source }}){% endif %}
      {%- if card.n_epochs %}, {{ card.n_epochs }} epochs{% endif %}</dd>
      {% endif %}
      {% if card.cross_validation and card.cross_validation.accuracy_mean
            is defined %}
      <dt>Cross-validation</dt>
      <dd>accuracy {{ "%.1f%%"|format(100 * card.cross_validation.accuracy_mean) }}
      &plusmn; {{ "%.1f"|format(100 * (card.cross_validation.accuracy_std or 0)) }}
      over {{ card.cross_validation.folds }} folds</dd>
      {% endif %}
    </dl>
    {% if m.per_class %}
    <table class="per-class">
      <thead><tr><th>Class</th>
      {%- if m.mean_dice is defined %}<th>Dice</th>{% else %}
      <th>Sensitivity</th><th>Specificity</th><th>Test images</th>{% endif %}
      </tr></thead>
      <tbody>
      {% for name, row in m.per_class.items() %}
      <tr><td>{{ name }}</td>
      {%- if m.mean_dice is defined %}
      <td>{{ "%.3f"|format(row.dice) if row.dice is defined else "" }}</td>
      {%- else %}
      <td>{{ "%.1f%%"|format(100 * row.sensitivity)
             if row.sensitivity is defined else "" }}</td>
      <td>{{ "%.1f%%"|format(100 * row.specificity)
             if row.specificity is defined else "" }}</td>
      <td>{{ row.support if row.support is defined else "" }}</td>
      {%- endif %}</tr>
      {% endfor %}
      </tbody>
    </table>
    {% endif %}
    {% if card.report %}
    <p class="note">From {{ card.report }} beside the model file.</p>
    {% endif %}
  </article>
{% endfor %}
  <p id="no-card" class="note" hidden>No training report beside this model file:
  no model card.</p>
</section>
<section id="results" aria-live="polite"></section>
<div id="session" class="row">
  <span id="session-count" class="note">No results in this session yet.</span>
  <button id="export-csv" type="button" disabled>Export CSV</button>
  <button id="export-json" type="button" disabled>Export JSON</button>
</div>
<p class="note">A result is marked <span class="low-mark">low confidence</span>
when its two most probable classes are less than {{ margin }} apart
(probability of the first minus that of the second). Click an image to
enlarge it.</p>
</main>
<dialog id="viewer">
  <figure>
    <img id="viewer-image" alt="">
    <figcaption id="viewer-caption"></figcaption>
  </figure>
  <div id="viewer-legend"></div>
  <button id="viewer-close" type="button">Close</button>
</dialog>
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
.bar-row { display: grid; grid-template-columns: minmax(80px, 45%) 1fr 54px;
           gap: 8px; align-items: center; font-size: 13px; margin: 3px 0; }
.bar-name { overflow-wrap: anywhere; }
.bar-track { height: 12px; background: #eef2f7; border-radius: 6px; overflow: hidden; }
.bar-fill { display: block; height: 100%; background: #94a3b8; border-radius: 6px; }
.bar-row.top .bar-fill { background: var(--accent); }
.bar-row.top { font-weight: 600; }
.bar-value { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #b91c1c; }
[hidden] { display: none !important; }
.images img { cursor: zoom-in; }
.result.low { border-color: #d97706; box-shadow: 0 0 0 2px #fcd34d; }
.low-mark { display: inline-block; padding: 1px 8px; border-radius: 10px;
            background: #fef3c7; color: #92400e; font-weight: 600; font-size: 12px;
            border: 1px solid #d97706; }
p.low-mark { margin: 0 0 8px; }
.legend { font-size: 12px; color: var(--muted); margin: 0 0 8px; }
.legend-scale { display: grid; grid-template-columns: auto 1fr auto; gap: 6px;
                align-items: center; }
/* matplotlib's "jet", the colour map of the overlay */
.legend-bar { height: 10px; border-radius: 5px;
              background: linear-gradient(to right, #000080, #0000ff 12.5%,
              #0080ff 25%, #16ffe1 37.5%, #7dff7a 50%, #e4ff13 62.5%, #ff9400 75%,
              #ff1e00 87.5%, #800000); }
#cards { margin-top: 14px; }
.model-card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
              padding: 12px 16px; }
.model-card h2 { margin: 0 0 8px; font-size: 15px; overflow-wrap: anywhere; }
.model-card dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px;
                 margin: 0 0 8px; font-size: 14px; }
.model-card dt { color: var(--muted); }
.model-card dd { margin: 0; overflow-wrap: anywhere; }
.per-class { border-collapse: collapse; font-size: 13px; margin-bottom: 6px; }
.per-class th, .per-class td { padding: 2px 10px 2px 0; text-align: left;
                               overflow-wrap: anywhere; }
#session { margin-top: 14px; }
#viewer { max-width: 96vw; max-height: 96vh; border: 0; border-radius: 10px;
          padding: 12px; }
#viewer::backdrop { background: rgba(0, 0, 0, 0.7); }
#viewer figure { margin: 0; }
#viewer img { display: block; width: min(86vw, 72vh); height: auto;
              background: #000; border-radius: 6px; }
#viewer figcaption { color: var(--muted); font-size: 13px; margin: 4px 0;
                     overflow-wrap: anywhere; max-width: min(86vw, 72vh); }
#viewer .legend { max-width: min(86vw, 72vh); }
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
  const exportUrl = document.body.dataset.exportUrl;
  const margin = Number(document.body.dataset.margin);
  const exportCsv = document.getElementById("export-csv");
  const exportJson = document.getElementById("export-json");
  const sessionCount = document.getElementById("session-count");
  const viewer = document.getElementById("viewer");
  const viewerImage = document.getElementById("viewer-image");
  const viewerCaption = document.getElementById("viewer-caption");
  const viewerLegend = document.getElementById("viewer-legend");
  let files = [];
  // Every result of this page's session, for the export (oldest first).
  const session = [];

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

  // A probability difference as text: 2 decimals, or 2 significant digits.
  function small(x) {
    return x >= 0.01 || x === 0 ? x.toFixed(2) : x.toPrecision(2);
  }

  // The colour scale of the Grad-CAM overlay, and what its ends mean.
  function heatLegend(label) {
    const legend = el("div", "legend");
    const scale = el("div", "legend-scale");
    scale.appendChild(el("span", null, "blue: low"));
    scale.appendChild(el("span", "legend-bar"));
    scale.appendChild(el("span", null, "red: high"));
    legend.appendChild(scale);
    legend.appendChild(el("span", null,
      "Red marks the regions that raised the score of \u201c" + label +
      "\u201d most, blue those that raised it little or not at all, " +
      "relative to this image (not a probability)."));
    return legend;
  }

  function openViewer(src, caption, legend) {
    viewerImage.src = src;
    viewerImage.alt = caption;
    viewerCaption.textContent = caption;
    viewerLegend.replaceChildren();
    if (legend) viewerLegend.appendChild(legend.cloneNode(true));
    if (typeof viewer.showModal === "function") viewer.showModal();
    else viewer.setAttribute("open", "");
  }

  function closeViewer() {
    if (typeof viewer.close === "function") viewer.close();
    else viewer.removeAttribute("open");
  }

  document.getElementById("viewer-close").addEventListener("click", closeViewer);
  viewer.addEventListener("click", (event) => {
    if (event.target === viewer) closeViewer();  // a click on the backdrop
  });

  function figure(src, caption, className, legend) {
    const fig = el("figure");
    const img = el("img", className);
    img.src = src;
    img.alt = caption;
    img.title = "Click to enlarge";
    img.tabIndex = 0;
    img.addEventListener("click", () => openViewer(src, caption, legend));
    img.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        openViewer(src, caption, legend);
      }
    });
    fig.appendChild(img);
    fig.appendChild(el("figcaption", null, caption));
    return fig;
  }

  // The model card of the chosen model, if its training report was found.
  function showCard() {
    let found = false;
    for (const card of document.querySelectorAll(".model-card")) {
      const match = card.dataset.model === select.value;
      card.hidden = !match;
      found = found || match;
    }
    document.getElementById("no-card").hidden = found || !select.value;
  }
  select.addEventListener("change", showCard);
  showCard();

  function updateSession() {
    const n = session.length;
    sessionCount.textContent = n
      ? n + " result(s) in this session."
      : "No results in this session yet.";
    exportCsv.disabled = exportJson.disabled = n === 0;
  }

  async function exportSession(format) {
    let response;
    try {
      response = await fetch(exportUrl + "?format=" + format, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ results: session }),
      });
    } catch (error) {
      status.textContent = "Export failed: the server did not answer.";
      return;
    }
    if (!response.ok) {
      let reason = "HTTP " + response.status;
      try {
        reason = (await response.json()).error || reason;
      } catch (error) { /* keep the status */ }
      status.textContent = "Export failed: " + reason;
      return;
    }
    const blob = await response.blob();
    const header = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(header);
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = match ? match[1] : "skmedimg-results." + format;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    status.textContent = "Exported " + session.length + " result(s) as " +
      format.toUpperCase() + ".";
  }
  exportCsv.addEventListener("click", () => exportSession("csv"));
  exportJson.addEventListener("click", () => exportSession("json"));

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
    if (data.low_confidence) {
      card.classList.add("low");
      const ranked = Object.entries(data.probabilities)
        .sort((a, b) => b[1] - a[1]).slice(0, 2);
      const mark = el("p", "low-mark",
        "\u26a0 Low confidence: " +
        ranked.map(([name, p]) => name + " " + (100 * p).toFixed(1) + "%")
          .join(" vs ") +
        " (margin " + small(data.margin) + ", under " +
        document.body.dataset.margin + ")");
      mark.setAttribute("role", "note");
      card.appendChild(mark);
    }
    const expl = data.explanation;
    if (expl) {
      const legend = heatLegend(expl["class"]);
      const images = el("div", "images");
      images.appendChild(figure(expl.image, "image", "input"));
      images.appendChild(
        figure(expl.overlay, "Grad-CAM: " + expl["class"], "overlay", legend));
      card.appendChild(images);
      card.appendChild(legend);
    } else if (data.explanation_error) {
      card.appendChild(el("p", "note", data.explanation_error));
    }
    showBars(card, data.model, data.probabilities, data.label, null);
    card.appendChild(el("p", "note", "model: " + data.model));
  }

  // One record of the session for the export: the answer without its images.
  function remember(file, model, data, error) {
    const record = { time: new Date().toISOString(), file: file.name, model: model };
    if (error) {
      record.error = error;
    } else {
      for (const key of ["model", "task", "label", "probabilities", "margin",
                         "low_confidence", "fractions"]) {
        if (data[key] !== undefined) record[key] = data[key];
      }
    }
    session.push(record);
    updateSession();
  }

  async function predictOne(file, card) {
    const model = select.value;
    const error = await predictAndShow(file, card, model);
    remember(file, model, card.result, error);
  }

  async function predictAndShow(file, card, model) {
    if (file.size > maxBytes) {
      const mb = (maxBytes / 1048576).toFixed(0);
      const message = "Not sent: the file is larger than the limit of " + mb + " MB.";
      showError(card, message);
      card.classList.add("failed");
      return message;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("model", model);
    if (explain.checked) body.append("explain", "1");
    let response;
    try {
      response = await fetch(predictUrl, { method: "POST", body: body });
    } catch (error) {
      const message = "The server did not answer (" + error.message + ").";
      showError(card, message);
      return message;
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
      return reason;
    }
    card.result = data;
    showResult(card, data);
    card.classList.add("done");
    return null;
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
