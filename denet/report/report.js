/* denet report: renders the charts embedded in this file (Vega, Vega-Lite and vega-embed are
   inlined above), makes the tables sortable and lets the reader choose the run whose time series
   is shown. Everything it needs is in this file: it makes no network request. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("denet-data").textContent);
  var state = (window.denetReport = { expected: D.charts.length, rendered: 0, errors: [], done: false });
  var seriesView = null;
  var seriesById = {};
  D.series.forEach(function (s) { seriesById[s.idx] = s; });

  function fail(where, err) {
    var msg = where + ": " + (err && err.message ? err.message : String(err));
    state.errors.push(msg);
    console.error("denet report: " + msg);
    var el = document.getElementById(where);
    if (el) { el.textContent = "This chart could not be drawn: " + msg; el.className += " chart-error"; }
  }

  function rowsOf(cols) {
    var names = Object.keys(cols), n = names.length ? cols[names[0]].length : 0, out = new Array(n);
    for (var i = 0; i < n; i++) {
      var r = {};
      for (var k = 0; k < names.length; k++) r[names[k]] = cols[names[k]][i];
      out[i] = r;
    }
    return out;
  }

  function specOf(c) {
    var spec = c.spec;
    spec.datasets = spec.datasets || {};
    c.data.forEach(function (name) { spec.datasets[name] = D.datasets[name]; });
    return spec;
  }

  function embedOptions(renderer) {
    return { renderer: renderer, actions: { export: true, source: false, compiled: false, editor: false } };
  }

  /* the series chart is embedded anew for each run: its spec (with or without GPU panels), its
     data and its units (top-level parameters) */
  var seriesJob = Promise.resolve();
  function seriesSpec(s) {
    var spec = JSON.parse(JSON.stringify(D.seriesSpecs[s.kind]));
    spec.datasets = { series: rowsOf(s.cols), limits: s.limits };
    (spec.params || []).forEach(function (p) { if (p.name in s.params) p.value = s.params[p.name]; });
    return spec;
  }
  function showRun(idx) {
    var s = seriesById[idx];
    if (!s) return Promise.resolve();
    var sel = document.getElementById("run-select");
    if (sel && String(sel.value) !== String(idx)) sel.value = String(idx);
    document.getElementById("series-title").textContent = s.title;
    var sub = document.getElementById("series-subtitle");
    sub.textContent = "";
    s.subtitle.forEach(function (line) { var d = document.createElement("div"); d.textContent = line; sub.appendChild(d); });
    seriesJob = seriesJob.then(function () {
      if (seriesView) { seriesView.finalize(); seriesView = null; }
      return vegaEmbed(document.getElementById("chart-series"), seriesSpec(s), embedOptions("svg"));
    }).then(function (res) { seriesView = res.view; return res; });
    return seriesJob;
  }
  window.denetShowRun = showRun;

  var jobs = D.charts.map(function (c) {
    var el = document.getElementById(c.id);
    var job = c.id === "chart-series" ? showRun(D.series[0].idx) : vegaEmbed(el, specOf(c), embedOptions(c.renderer));
    return job.then(function (res) {
      state.rendered++;
      if (c.id === "chart-timeline") {
        res.view.addEventListener("click", function (ev, item) {
          if (item && item.datum && item.datum.idx != null && seriesById[item.datum.idx]) {
            showRun(item.datum.idx).catch(function (e) { fail("chart-series", e); });
            document.getElementById("series").scrollIntoView({ behavior: "smooth" });
          }
        });
      }
      return res;
    }).catch(function (e) { fail(c.id, e); });
  });
  Promise.all(jobs).then(function () {
    state.done = true;
    document.documentElement.setAttribute("data-rendered", String(state.rendered));
  });

  var sel = document.getElementById("run-select");
  if (sel) sel.addEventListener("change", function () {
    showRun(Number(sel.value)).catch(function (e) { fail("chart-series", e); });
  });

  /* sortable tables: click a header; numbers sort by the value in data-v */
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var vx = x.getAttribute("data-v"), vy = y.getAttribute("data-v");
          var r;
          if (vx !== null || vy !== null) {
            var nx = vx === null || vx === "" ? NaN : Number(vx), ny = vy === null || vy === "" ? NaN : Number(vy);
            if (isNaN(nx) && isNaN(ny)) r = 0; else if (isNaN(nx)) return 1; else if (isNaN(ny)) return -1;
            else r = nx - ny;
          } else {
            r = x.textContent.localeCompare(y.textContent, undefined, { numeric: true });
          }
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  /* a click on a run in the runs table shows its time series */
  Array.prototype.forEach.call(document.querySelectorAll("tr[data-run]"), function (tr) {
    var idx = Number(tr.getAttribute("data-run"));
    if (!seriesById[idx]) return;
    tr.className += " has-series";
    tr.title = "Show this run's time series";
    tr.addEventListener("click", function () {
      showRun(idx).catch(function (e) { fail("chart-series", e); });
      document.getElementById("series").scrollIntoView({ behavior: "smooth" });
    });
  });
})();
