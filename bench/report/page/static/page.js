// bench report page: the glue between the page's data (JSON in #bench-data), DataTables and plotly.js.
// Nothing here computes a number: every value shown is text or a number from the report's sections;
// this script only chooses what to show (filters, selections) and sorts by the numbers it was given.
(function () {
  "use strict";
  performance.mark("bench-script");
  document.body.classList.remove("nojs");
  const DATA = JSON.parse(document.getElementById("bench-data").textContent);
  const CHOICES = JSON.parse(document.getElementById("bench-filters").textContent);
  const filters = { method: "", backbone: "", protocol: "" };
  const page = (window.benchPage = { ready: false, data: DATA, tables: [] });

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function select(label, values, texts, onchange, id) {
    const box = el("select", { id, onchange: (e) => onchange(e.target.value) },
      values.map((v, i) => el("option", { value: v }, texts ? texts[i] : v)));
    return el("label", {}, label + " ", box);
  }

  // ----- figures: drawn by plotly.js when they come into view (or when asked) -----
  function figureFor(spec) {
    const [dataset, kind, key] = spec.split("|");
    return DATA.figures[dataset][kind][key];
  }
  // plotly.js (4.8 MB) is embedded as text and run only when the first figure is drawn, so that opening the
  // page does not wait for it
  function plotly() {
    if (!window.Plotly) {
      const code = document.getElementById("plotly-js");
      const run = document.createElement("script");
      run.textContent = code.textContent;
      document.head.append(run);
      performance.mark("bench-plotly-loaded");
    }
    return window.Plotly;
  }
  function drawPlot(div) {
    const fig = figureFor(div.dataset.figure);
    plotly().react(div, fig.data, fig.layout, { responsive: true, displaylogo: false });
    div.dataset.drawn = div.dataset.figure;
  }
  const plots = Array.from(document.querySelectorAll(".plot"));
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver((entries) => entries.forEach((entry) => {
      if (entry.isIntersecting) { observer.unobserve(entry.target); drawPlot(entry.target); }
    }), { rootMargin: "300px" });
    plots.forEach((div) => observer.observe(div));
  } else {
    plots.forEach(drawPlot);
  }
  document.querySelectorAll(".figure-choice").forEach((choice) => choice.addEventListener("change", () => {
    const div = choice.closest(".chooser").nextElementSibling;
    div.dataset.figure = choice.dataset.target + "|" + choice.value;
    drawPlot(div);
  }));
  page.drawAllPlots = () => plots.forEach(drawPlot);
  page.drawPlot = drawPlot;

  // ----- the record panel: every record of a row, its key fields first, then the whole record -----
  const panel = document.getElementById("record-panel");
  function field(name, value) {
    return el("tr", {}, el("th", {}, name), el("td", {}, value === null || value === undefined ? "-" : value));
  }
  function recordView(position) {
    const rec = DATA.records[position];
    const row = DATA.rows[position];
    const env = DATA.environments[rec.environment] || {};
    const seconds = Object.entries(rec.seconds || {}).map(([k, v]) => `${k} ${v === null ? "-" : Number(v).toFixed(2)} s`);
    const summary = el("table", { class: "fields" },
      field("status", rec.status), rec.error ? field("error", rec.error) : null,
      field("mAP (%)", row[5].d), field("config hash", rec.config_hash), field("data key", rec.data_key),
      field("commit", env.git_commit), field("bench", env.bench), field("seconds", seconds.join(", ")),
      field("trainable params", row[8].d), field("backbone", row[6]), field("protocol", row[7]),
      field("file", DATA.paths[position]));
    const whole = { ...rec, environment: env };
    return el("div", { class: "record", "data-position": position },
      el("h3", {}, `${row[1]} · ${row[0]} · ${row[2]} · seed ${row[3]}`), summary,
      el("details", {}, el("summary", {}, "the whole record (config, environment, timings; per-class AP: see Per-class AP)"),
        el("pre", {}, JSON.stringify(whole, null, 2))));
  }
  function openRecords(positions) {
    panel.replaceChildren(el("button", { class: "close", onclick: () => { panel.hidden = true; } }, "close ×"),
      ...(positions.length ? positions.map((p) => recordView(p)) : [el("p", {}, "No finished record behind this row.")]));
    panel.hidden = false;
    panel.scrollTop = 0;
  }
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") panel.hidden = true; });
  page.openRecords = openRecords;

  // ----- two-method comparison, from the significance section's rows -----
  function compareView() {
    const cmp = DATA.compare;
    const view = document.getElementById("compare-view");
    if (!cmp.keys.length) { view.append(el("p", {}, "No finished cells.")); return; }
    const ids = cmp.keys.map((k) => k.join("|"));
    const result = el("div", { id: "compare-result" });
    // start with a pair the significance section tested: its first row and that row's reference
    const first = cmp.tests.find((t) => t.reference_key !== null && !t.note);
    const chosen = first ? [first.reference_key.join("|"), first.key.join("|")] : [ids[0], ids[Math.min(1, ids.length - 1)]];
    function same(a, b) { return a !== null && b !== null && a.join("|") === b.join("|"); }
    function draw() {
      const [a, b] = chosen.map((id) => cmp.keys[ids.indexOf(id)]);
      const [la, lb] = chosen.map((id) => cmp.labels[ids.indexOf(id)]);
      const cellsOf = (key) => cmp.cells.filter((c) => same(c.key, key));
      const seen = new Set();
      const rows = [];
      for (const c of cmp.cells) {
        const where = c.dataset + "|" + c.cell;
        if (seen.has(where) || !(same(c.key, a) || same(c.key, b))) continue;
        seen.add(where);
        const textOf = (key) => (cellsOf(key).find((x) => x.dataset === c.dataset && x.cell === c.cell) || {}).text || "-";
        const here = cmp.tests.filter((t) => t.dataset === c.dataset && t.cell === c.cell);
        const test = here.find((t) => (same(t.key, a) && same(t.reference_key, b)) || (same(t.key, b) && same(t.reference_key, a)));
        let tested, diff = "-", ci = "-", p = "-", verdict;
        if (test) {
          tested = `${test.key[0]} − ${test.reference}`;
          diff = test.diff; ci = test.ci; p = test.p;
          verdict = test.note || (test.significant ? "yes" : "no");
        } else if (textOf(a) === "-" || textOf(b) === "-") {
          tested = "-"; verdict = "only one of the two in this cell";
        } else if (!cmp.n_boot) {
          tested = "-"; verdict = "significance skipped (--n-boot 0)";
        } else {
          tested = "-";
          verdict = here.length ? `not tested: this cell's tests are against ${here[0].reference}` : "not tested (one method in the cell, or no saved scores)";
        }
        rows.push(el("tr", {}, el("td", { class: "label" }, c.dataset), el("td", { class: "label" }, c.cell), el("td", {}, textOf(a)), el("td", {}, textOf(b)),
          el("td", {}, tested), el("td", { class: "num" }, diff), el("td", {}, ci), el("td", {}, p), el("td", {}, verdict)));
      }
      result.replaceChildren(el("table", { class: "plain", id: "compare-table" },
        el("thead", {}, el("tr", {}, ["dataset", "cell", la, lb, "difference as tested", "Δ mAP", "95% CI", "p", "significant"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)));
    }
    view.append(el("p", {}, "Per cell, both methods' mAP (mean ± std over seeds) and, where the significance section tested one against the other, the difference with its bootstrap interval (",
      String(cmp.n_boot), " resamples). The section tests every method against the cell's reference; pass ",
      el("code", {}, "bench report --reference METHOD"), " to test every method against METHOD."),
    el("div", { class: "chooser" },
      select("method A", ids, cmp.labels, (v) => { chosen[0] = v; draw(); }, "compare-a"),
      select("method B", ids, cmp.labels, (v) => { chosen[1] = v; draw(); }, "compare-b")), result);
    document.getElementById("compare-a").value = chosen[0];
    document.getElementById("compare-b").value = chosen[1];
    draw();
  }

  // ----- DataTables: leaderboards, per-class AP, records -----
  async function loadDataTables() {
    const bytes = Uint8Array.from(atob(window.BENCH_DATATABLES), (c) => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: "text/javascript" }));
    try { return (await import(url)).default; } finally { URL.revokeObjectURL(url); }
  }
  const num = (text) => { const v = parseFloat(text); return Number.isNaN(v) ? -Infinity : v; };

  function leaderboards(DataTable) {
    DataTable.ext.search.push((settings, _data, index) => {
      if (!settings.nTable.classList.contains("lb")) return true;
      const row = settings.aoData[index].nTr;
      return Object.keys(filters).every((k) => !filters[k] || row.dataset[k] === filters[k]);
    });
    const boards = Array.from(document.querySelectorAll("table.dt")).map((table) => {
      const api = new DataTable(table, { paging: false, autoWidth: false, order: JSON.parse(table.dataset.initialOrder || "[]") });
      table.querySelector("tbody").addEventListener("click", (e) => {
        const tr = e.target.closest("tr");
        if (tr && tr.dataset.records !== undefined) openRecords(tr.dataset.records.split(" ").filter(Boolean).map(Number));
      });
      return api;
    });
    const bar = document.getElementById("filters");
    for (const key of Object.keys(filters)) {
      bar.append(select(key, ["", ...CHOICES[key]], ["all", ...CHOICES[key]], (v) => {
        filters[key] = v; boards.forEach((api) => api.draw());
      }, "filter-" + key));
    }
    page.tables.push(...boards);
  }

  function perClass(DataTable) {
    const view = document.getElementById("per-class-view");
    if (!DATA.per_class.length) { view.append(el("p", {}, "No per-class AP in these records.")); return; }
    const holder = el("div", { class: "table-wrap" });
    let api = null;
    function draw(i) {
      const t = DATA.per_class[i];
      if (api) { api.destroy(); }
      const table = el("table", { id: "per-class-table", class: "display" });
      holder.replaceChildren(table);
      api = new DataTable(table, {
        data: t.rows, paging: false, autoWidth: false, order: [],
        columns: t.columns.map((title, j) => ({
          title, render: (d, type) => (j > 0 && (type === "sort" || type === "type") ? num(d) : d) })),
        createdRow: (tr, _row, index) => {
          if (!t.best) return;
          t.best[index].forEach((best, j) => { if (best) tr.children[j].classList.add("best"); });
        },
      });
      page.perClass = api;
    }
    view.append(el("p", {}, "AP (%) per class, mean over seeds; the best method of each class in bold. Sort by a method's column to see the classes it wins or loses."),
      el("div", { class: "chooser" }, select("dataset and cell", DATA.per_class.map((_, i) => String(i)),
        DATA.per_class.map((t) => `${t.dataset}, ${t.cell}`), (v) => draw(Number(v)), "per-class-choice")), holder);
    draw(0);
  }

  function recordsTable(DataTable) {
    const table = el("table", { id: "records-table", class: "display" });
    document.getElementById("records-view").append(el("div", { class: "table-wrap" }, table));
    const objects = DATA.record_columns.map((_, i) => DATA.rows.some((r) => r[i] !== null && typeof r[i] === "object"));
    const api = new DataTable(table, {
      data: DATA.rows, deferRender: true, pageLength: 25, autoWidth: false, order: [],
      columns: DATA.record_columns.map((title, i) => ({
        title, render: objects[i] ? (d, type) => (type === "sort" || type === "type" ? (d.o === null ? -Infinity : d.o) : d.d) : null })),
      createdRow: (tr, row) => { if (row[4] !== "ok") tr.classList.add("failed"); },
    });
    table.querySelector("tbody").addEventListener("click", (e) => {
      const tr = e.target.closest("tr");
      if (tr && api.row(tr).index() !== undefined) openRecords([api.row(tr).index()]);
    });
    page.records = api;
  }

  compareView();
  loadDataTables().then((DataTable) => {
    performance.mark("bench-datatables-loaded");
    leaderboards(DataTable);
    perClass(DataTable);
    recordsTable(DataTable);
    page.ready = true;
    page.readyMs = performance.now();
    document.dispatchEvent(new Event("bench-page-ready"));
  });
})();
