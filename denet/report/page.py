"""The HTML report: one self-contained file (the Vega libraries, the charts' data, the styles and
the page's script are inlined; it opens from disk with no network)."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._version import __version__
from . import data
from .charts import VL_VERSION, distributions, limit_rows, series_chart, timeline, unit_params
from .text import clip, fmt_bytes, fmt_kib, fmt_num, fmt_secs, fmt_time

if TYPE_CHECKING:
    from .data import Caps, Workflow

__all__ = ["html_report"]

_HERE = Path(__file__).parent
_SVG_MAX_ROWS = 2000  # charts with more data rows than this draw on a canvas
_NAMES_SHOWN = 12  # runs named per data-quality flag


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _script_json(obj) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")  # "<" only occurs inside JSON strings


def _bundle() -> str:
    import vl_convert as vlc

    js = vlc.javascript_bundle(vl_version=VL_VERSION)
    return js.replace("</script", "<\\/script")


def _finite(v):
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    return v


def _clean(rows: list[dict]) -> list[dict]:
    return [{k: _finite(v) for k, v in r.items()} for r in rows]


def _take_datasets(spec: dict, store: dict) -> list[str]:
    """Move the spec's inline datasets into the page's shared store (altair names them by a hash
    of their content, so equal data is embedded once)."""
    ds = spec.pop("datasets", {}) or {}
    for k, v in ds.items():
        store.setdefault(k, _clean(v))
    return list(ds)


# ------------------------------------------------------------------------------- the page


def html_report(wf: Workflow, caps: Caps, *, title: str | None = None) -> tuple[str, dict]:
    """The page's HTML text, and facts about it (charts, series runs)."""
    import altair as alt
    import polars as pl

    title = title or "denet report"
    all_groups = data.group_order(wf)
    colors = _palette(len(all_groups))
    color_of = {g: colors[i % len(colors)] for i, g in enumerate(all_groups)}
    store: dict = {}
    charts: list[dict] = []
    sections: list[str] = []
    flags = _flags(wf, caps)

    # distributions
    box, pts, metrics, shown = data.distribution_data(wf, caps)
    if box.height:
        spec = distributions(box, pts, metrics, shown, all_groups)
        charts.append({"id": "chart-dist", "spec": spec, "data": _take_datasets(spec, store),
                       "renderer": "svg" if pts.height <= _SVG_MAX_ROWS else "canvas"})
    # timeline
    bars, tl_cut, no_start = data.timeline_data(wf, caps)
    if bars.height:
        span = max(1, int(bars["end"].max() - bars["start"].min()))
        bars = bars.with_columns(
            pl.max_horizontal(pl.col("end"), pl.col("start") + max(1, span // 400)).alias("end_vis"))
        bars = bars.with_columns(
            pl.Series("started", [fmt_time(v) for v in bars["t0_ms"].to_list()], dtype=pl.String),
            pl.Series("wall", [fmt_secs(v) for v in bars["dur_s"].to_list()], dtype=pl.String),
            pl.Series("rss", [fmt_kib(v) for v in bars["peak_mem_rss_kb"].to_list()], dtype=pl.String),
        ).select("idx", "name", "group", "status", "exit_code", "lane", "start", "end_vis", "started", "wall",
                 "cpu_time_secs", "cores", "rss")
        spec = timeline(bars, all_groups, width=1080)
        charts.append({"id": "chart-timeline", "spec": spec, "data": _take_datasets(spec, store),
                       "renderer": "svg" if bars.height <= _SVG_MAX_ROWS else "canvas"})
    # one run's series
    series = _series_payloads(wf, caps)
    series_specs = {}
    for kind in sorted({s["kind"] for s in series}):
        series_specs[kind] = series_chart(alt.NamedData("series"), width=1080, panel_height=130,
                                          limits=alt.NamedData("limits"), gpu=kind == "gpu")
    if series:  # drawn by the page's script, with the chosen run's data
        charts.append({"id": "chart-series", "spec": None, "data": [], "renderer": "svg"})

    ids = {c["id"] for c in charts}
    sections.append(_rules_section(wf, color_of))
    sections.append(_dist_section(wf, caps, metrics, shown, all_groups, "chart-dist" in ids))
    sections.append(_timeline_section(wf, tl_cut, no_start, "chart-timeline" in ids))
    sections.append(_series_section(wf, caps, series))
    sections.append(_runs_section(wf, caps, color_of, {s["idx"] for s in series}))
    payload = {"charts": charts, "datasets": store, "series": series, "seriesSpecs": series_specs}
    page = _TEMPLATE.format(
        title=_e(title), css=(_HERE / "report.css").read_text(), header=_header(wf, title), flags=flags,
        sections="\n".join(sections), footer=_footer(caps), data=_script_json(payload), bundle=_bundle(),
        script=(_HERE / "report.js").read_text().replace("</script", "<\\/script"),
    )
    return page, {"charts": len(charts), "series_runs": len(series)}


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="denet report">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<nav><a href="#top">Summary</a><a href="#quality">Data quality</a><a href="#rules">Rules</a><a href="#distributions">Distributions</a><a href="#timeline">Timeline</a><a href="#series">One run</a><a href="#runs">Runs</a></nav>
<main id="top">
{header}
<h2 id="quality">Data quality</h2>
{flags}
{sections}
{footer}
</main>
<script id="denet-data" type="application/json">{data}</script>
<script>
{bundle}
</script>
<script>
{script}
</script>
</body>
</html>
"""


def _palette(n: int) -> list[str]:
    tableau10 = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
                 "#9d755d", "#bab0ac"]
    tableau20 = ["#4c78a8", "#9ecae9", "#f58518", "#ffbf79", "#54a24b", "#88d27a", "#b79a20", "#f2cf5b",
                 "#439894", "#83bcb6", "#e45756", "#ff9d98", "#79706e", "#bab0ac", "#d67195", "#fcbfd2",
                 "#b279a2", "#d6a5c9", "#9e765f", "#d8b5a5"]
    return tableau10 if n <= 10 else tableau20


# ------------------------------------------------------------------------------- header


def _header(wf: Workflow, title: str) -> str:
    import polars as pl

    r = wf.runs
    n = r.height
    by = ", ".join(wf.keys)
    n_groups = wf.groups.height
    failed = int(r["failed"].sum())
    cut = int((~r["complete"]).sum())
    bits = [f"{n} run{'s' if n != 1 else ''}", f"{n_groups} group{'s' if n_groups != 1 else ''} by {_e(by)}"]
    bits.append(f"<span class='pill{' bad' if failed else ' off'}'>{failed} failed</span>")
    bits.append(f"<span class='pill{' bad' if cut else ' off'}'>{cut} cut short</span>")
    bits.append(f"from {wf.files} file{'s' if wf.files != 1 else ''}")
    facts: list[tuple[str, str]] = []
    starts = r.filter(pl.col("t0_ms").is_not_null())
    if starts.height:
        first = starts["t0_ms"].min()
        last = starts.select((pl.col("t0_ms") + (pl.col("dur_s").fill_null(0) * 1000).cast(pl.Int64)).max()).item()
        facts.append(("When", f"{_e(fmt_time(first))} to {_e(fmt_time(last))} "
                              f"<span class='muted'>({_e(fmt_secs((last - first) / 1000.0))} from the first start "
                              "to the last end)</span>"))
    else:
        facts.append(("When", "<span class='muted'>unknown (no run carries a start time)</span>"))
    facts.append(("Where", _where(wf)))
    ivs = data.intervals(wf.entries)
    if ivs:
        txt = "; ".join(f"every {a} ms for the first second, slowing to {b} ms after ten seconds" if b != a
                        else f"every {a} ms" for a, b in ivs)
        facts.append(("Sampling", _e(txt) + " <span class='muted'>(the adaptive clock)</span>"))
    facts.append(("Collectors", _collectors(wf)))
    facts.append(("Exact", "exit code, wall time (monotonic clock), CPU seconds of the whole tree and the largest "
                           "process's peak RSS (wait4/rusage, VmHWM) "
                           "<span class='muted'>— columns marked <sup>e</sup></span>"))
    facts.append(("Sampled", "CPU %, the tree's RSS, I/O, threads and processes, and every time series, read "
                             "from /proc on the sampling clock; a process that lives between two samples is not "
                             "seen <span class='muted'>— columns marked <sup>s</sup></span>"))
    vs = data.versions(wf.entries)
    facts.append(("Made", f"{_e(fmt_time(int(time.time() * 1000)))} by denet {_e(__version__)}"
                          + (f"; runs recorded by denet {_e(', '.join(vs))}" if vs else "")))
    dl = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return f"<h1>{_e(title)}</h1>\n<p class='lead'>{' · '.join(bits)}</p>\n<dl class='facts'>\n{dl}\n</dl>"


def _where(wf: Workflow) -> str:
    ms = data.machines(wf.entries)
    n = wf.runs.height
    if not ms:
        return "<span class='muted'>unknown: no run has an env record (record one with <code>denet run " \
               "--write-env</code>)</span>"
    parts = []
    for m in ms[:5]:
        cpu = ""
        if m["cpus"]:
            s, c, t = m["topology"]
            cpu = f"{m['cpus']} CPUs ({s} socket{'s' if s != 1 else ''} × {c} cores × {t} threads)"
        bits = [f"<b>{_e(m['host'] or '?')}</b>", f"kernel {_e(m['kernel'] or '?')}"]
        if m["model"]:
            bits.append(_e(m["model"]))
        if cpu:
            bits.append(cpu)
        if m["numa_nodes"]:
            bits.append(f"{m['numa_nodes']} NUMA node{'s' if m['numa_nodes'] != 1 else ''}")
        if m["affinity"]:
            bits.append(f"CPUs allowed {_e(m['affinity'])}")
        bits.append(f"<span class='muted'>{m['runs']} run{'s' if m['runs'] != 1 else ''}</span>")
        parts.append(" · ".join(bits))
    if len(ms) > 5:
        parts.append(f"<span class='muted'>and {len(ms) - 5} more machines</span>")
    without = n - sum(m["runs"] for m in ms)
    if without > 0:
        parts.append(f"<span class='muted'>{without} run{'s' if without != 1 else ''} without an env record</span>")
    return "<br>".join(parts)


def _collectors(wf: Workflow) -> str:
    caps = data.capabilities(wf.entries)
    if not caps:
        return "<span class='muted'>not recorded</span>"
    out = ["<span class='pill'>process tree (/proc)</span>"]
    for c in caps:
        if c["on"] and not c["off"]:
            out.append(f"<span class='pill'>{_e(c['name'])}</span>")
        elif c["on"]:
            out.append(f"<span class='pill'>{_e(c['name'])}: on in {c['on']} of {c['on'] + c['off']} runs</span>")
        else:
            reason = f": {c['reason']}" if c["reason"] else ""
            out.append(f"<span class='pill off' title='{_e(c['reason'] or '')}'>{_e(c['name'])} off</span>"
                       if len(reason) > 60 else f"<span class='pill off'>{_e(c['name'])} off{_e(reason)}</span>")
    return " ".join(out)


# ------------------------------------------------------------------------------- data quality


def _names(df, limit: int = _NAMES_SHOWN, extra=None) -> str:
    rows = df.head(limit).iter_rows(named=True)
    items = []
    for r in rows:
        t = _e(r["name"])
        if extra:
            t += f" <span class='muted'>({_e(extra(r))})</span>"
        items.append(t)
    more = df.height - limit
    return ", ".join(items) + (f", and {more} more" if more > 0 else "")


def _flags(wf: Workflow, caps: Caps) -> str:
    import polars as pl

    r = wf.runs
    items: list[str] = []
    cut = r.filter(~pl.col("complete"))
    if cut.height:
        items.append(f"<b>{cut.height} run{'s' if cut.height != 1 else ''} cut short</b> (no summary record: killed, "
                     "or copied while running): exit code, wall time, CPU seconds and the largest process's RSS are "
                     "missing; the sampled figures were recomputed from the records. " + _names(cut))
    short = r.filter(pl.col("short"))
    if short.height:
        items.append(f"<b>{short.height} run{'s' if short.height != 1 else ''} shorter than the sampling "
                     "interval</b>: the sampled figures (CPU %, tree RSS, I/O) saw at most a sample or two; the "
                     "exact ones stand. " + _names(short, extra=lambda x: f"{fmt_secs(x['dur_s'])} < "
                                                                       f"{x['interval_ms']} ms"))
    failed = r.filter(pl.col("failed"))
    if failed.height:
        items.append(f"<b>{failed.height} run{'s' if failed.height != 1 else ''} failed</b> (exit code not 0; "
                     "128+N: killed by signal N): " + _names(failed, extra=lambda x: f"exit {x['exit_code']}"))
    nosample = r.filter(pl.col("complete") & (pl.col("sample_count").fill_null(0) == 0)
                        & ~pl.col("format").is_in(["snakemake-tsv", "snakemake-jsonl"]) & ~pl.col("short"))
    if nosample.height:
        items.append(f"<b>{nosample.height} run{'s' if nosample.height != 1 else ''} without samples</b>: only the "
                     "exact figures are known. " + _names(nosample))
    hosts = r["host"].drop_nulls().unique()
    if hosts.len() > 1:
        items.append(f"<b>Runs on {hosts.len()} machines</b>: compare their times with care (see Where above).")
    sm = r.filter(pl.col("format").is_in(["snakemake-tsv", "snakemake-jsonl"]))
    if sm.height:
        items.append(f"<b>{sm.height} run{'s' if sm.height != 1 else ''} from Snakemake benchmark files</b>: "
                     "Snakemake's own figures, with no start time (not on the timeline) and no time series.")
    for msg in wf.skipped[:20]:
        items.append(f"<b>Skipped</b> {_e(msg)}")
    if len(wf.skipped) > 20:
        items.append(f"<b>Skipped</b> {len(wf.skipped) - 20} more files")
    for msg in wf.notes[:20]:
        items.append(f"<b>Note</b>: {_e(msg)}")
    if not items:
        return "<ul class='flags'><li class='ok'>Nothing to flag: every run finished under denet, lasted longer " \
               "than its sampling interval and exited 0.</li></ul>"
    return "<ul class='flags'>\n" + "\n".join(f"<li>{x}</li>" for x in items) + "\n</ul>"


# ------------------------------------------------------------------------------- tables


_IO_TIP = "exact for denet run (to the byte, from each ended process's final counters); sampled for attach"


def _th(label: str, kind: str = "", tip: str = "", txt: bool = False) -> str:
    sup = "<sup>e</sup>" if kind == "e" else "<sup>s</sup>" if kind == "s" else ""
    cls = " class='txt'" if txt else ""
    t = f" title='{_e(tip)}'" if tip else ""
    return f"<th{cls}{t}>{_e(label)}{sup}</th>"


def _td(text: str, v=None, cls: str = "", title: str = "") -> str:
    attrs = ""
    if v is not None or cls in ("num",):
        attrs += f" data-v='{'' if v is None else _e(v)}'"
    if cls and cls != "num":
        attrs += f" class='{cls}'"
    if title:
        attrs += f" title='{_e(title)}'"
    return f"<td{attrs}>{text}</td>"


def _num(v) -> float | None:
    v = _finite(v)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _rules_section(wf: Workflow, color_of: dict) -> str:
    g = wf.groups
    by = ", ".join(wf.keys)
    cols = g.columns
    has = {c: c in cols for c in ("threads_max", "req_mem_mb", "req_runtime_min", "cpu_efficiency_mean")}
    head = [_th("", txt=True), _th(by, txt=True), _th("runs"), _th("failed", "e"), _th("cut short"),
            _th("wall mean", "e"), _th("wall max", "e"), _th("CPU time", "e", "CPU seconds of all runs"),
            _th("cores mean", "e", "effective cores: CPU seconds / wall seconds"), _th("cores max", "e"),
            _th("peak RSS", "s", "largest sampled RSS of a run's whole tree"),
            _th("largest proc.", "e", "largest single-process peak RSS (VmHWM, ru_maxrss)"),
            _th("read", "s", "disk (block layer) bytes read by all runs"),
            _th("written", "s", "disk (block layer) bytes written by all runs")]
    if has["threads_max"]:
        head += [_th("threads", tip="requested: the runs' threads label"),
                 _th("used", "e", "mean over the runs of effective cores / requested threads")]
    if has["req_mem_mb"]:
        head += [_th("mem_mb", tip="requested: the runs' mem_mb label (10^6 bytes)"),
                 _th("used", "s", "largest tree RSS / requested memory")]
    if has["req_runtime_min"]:
        head += [_th("runtime", tip="requested: the runs' runtime label (minutes)"),
                 _th("used", "e", "longest wall time / requested runtime")]
    order = {k: i for i, k in enumerate(data.group_order(wf))}
    rows = []
    for r in sorted(g.iter_rows(named=True), key=lambda x: order.get(x["group"], 0)):
        cells = [f"<td class='swatch'><span style='background:{color_of.get(r['group'], '#999')}'></span></td>",
                 f"<td class='txt name' title='{_e(r['group'])}'>{_e(clip(r['group'], 60))}</td>",
                 _td(str(r["runs"]), r["runs"]),
                 _td(str(r["failed"]), r["failed"], "bad" if r["failed"] else "num"),
                 _td(str(r["incomplete"]), r["incomplete"], "bad" if r["incomplete"] else "num"),
                 _td(fmt_secs(r["wall_time_secs_mean"]), _num(r["wall_time_secs_mean"]), "num"),
                 _td(fmt_secs(r["wall_time_secs_max"]), _num(r["wall_time_secs_max"]), "num"),
                 _td(fmt_secs(r["cpu_time_secs_sum"]), _num(r["cpu_time_secs_sum"]), "num"),
                 _td(fmt_num(_num(r["cores_mean"])), _num(r["cores_mean"]), "num"),
                 _td(fmt_num(_num(r["cores_max"])), _num(r["cores_max"]), "num"),
                 _td(fmt_kib(r["peak_mem_rss_kb_max"]), _num(r["peak_mem_rss_kb_max"]), "num"),
                 _td(fmt_kib(r["peak_process_rss_kb_max"]), _num(r["peak_process_rss_kb_max"]), "num"),
                 _td(fmt_bytes(r["disk_read_bytes_sum"]), _num(r["disk_read_bytes_sum"]), "num"),
                 _td(fmt_bytes(r["disk_write_bytes_sum"]), _num(r["disk_write_bytes_sum"]), "num")]
        if has["threads_max"]:
            eff = _num(r.get("cpu_efficiency_mean"))
            cls = "over" if eff is not None and eff > 1.05 else "under" if eff is not None and eff < 0.5 else "num"
            cells += [_td(fmt_num(r.get("threads_max")), _num(r.get("threads_max")), "num"),
                      _td("–" if eff is None else f"{eff * 100:.0f}%", eff, cls,
                          "over 100%: more cores used than threads asked; under 50%: threads left idle")]
        if has["req_mem_mb"]:
            req = _num(r.get("req_mem_mb"))
            peak = _num(r.get("peak_mem_rss_kb_max"))
            ratio = peak * 1024.0 / (req * 1e6) if req and peak is not None else None
            cls = "over" if ratio is not None and ratio > 1 else "under" if ratio is not None and ratio < 0.25 \
                else "num"
            cells += [_td(fmt_num(req, 0), req, "num"),
                      _td("–" if ratio is None else f"{ratio * 100:.0f}%", ratio, cls,
                          "over 100%: the runs used more than they asked; under 25%: much asked and not used")]
        if has["req_runtime_min"]:
            req = _num(r.get("req_runtime_min"))
            wall = _num(r.get("wall_time_secs_max"))
            ratio = wall / (req * 60.0) if req and wall is not None else None
            cls = "over" if ratio is not None and ratio > 1 else "num"
            cells += [_td("–" if req is None else f"{req:g} min", req, "num"),
                      _td("–" if ratio is None else f"{ratio * 100:.0f}%", ratio, cls)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    asked = ""
    if any(has[k] for k in ("threads_max", "req_mem_mb", "req_runtime_min")):
        asked = " Requested resources come from the runs' labels (<code>threads</code>, <code>mem_mb</code>, " \
                "<code>runtime</code> in minutes)."
    return (f"<h2 id='rules'>Rules</h2>\n<p class='note'>One row per {_e(by)}; click a column to sort.{asked} "
            "<sup>e</sup> exact, <sup>s</sup> sampled.</p>\n"
            "<div class='tablewrap'><table class='sortable' id='rules-table'><thead><tr>" + "".join(head)
            + "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _runs_section(wf: Workflow, caps: Caps, color_of: dict, with_series: set[int]) -> str:
    r = wf.runs.sort(["t0_ms", "idx"], nulls_last=True)
    total = r.height
    r = r.head(caps.table_runs)
    first = wf.runs["t0_ms"].min()
    by = ", ".join(wf.keys)
    head = [_th("", txt=True), _th(by, txt=True), _th("run", txt=True, tip="file name"),
            _th("status", txt=True), _th("exit", "e"), _th("start", tip="time since the first run started"),
            _th("wall", "e"), _th("CPU", "e"), _th("cores", "e"), _th("peak RSS", "s"), _th("largest process", "e"),
            _th("disk read", tip=_IO_TIP), _th("disk write", tip=_IO_TIP), _th("procs", "s"), _th("threads", "s"),
            _th("samples")]
    rows = []
    for x in r.iter_rows(named=True):
        start = None if x["t0_ms"] is None or first is None else (x["t0_ms"] - first) / 1000.0
        st = x["status"]
        cells = [f"<td class='swatch'><span style='background:{color_of.get(x['group'], '#999')}'></span></td>",
                 f"<td class='txt name' title='{_e(x['group'])}'>{_e(clip(x['group'], 40))}</td>",
                 f"<td class='txt name' title='{_e(x['path'])}\n{_e(x['command'] or '')}'>{_e(x['name'])}</td>",
                 f"<td class='txt{' bad' if st in ('failed', 'cut short') else ''}'>{_e(st)}"
                 + (" <span class='pill off'>short</span>" if x["short"] else "") + "</td>",
                 _td("–" if x["exit_code"] is None else str(x["exit_code"]), x["exit_code"],
                     "bad" if x["failed"] else "num"),
                 _td("–" if start is None else "+" + fmt_secs(start), start, "num"),
                 _td(fmt_secs(x["dur_s"]), _num(x["dur_s"]), "num",
                     "" if x["wall_time_secs"] is not None or x["dur_s"] is None else "sampled: the run was cut short"),
                 _td(fmt_secs(x["cpu_time_secs"]), _num(x["cpu_time_secs"]), "num"),
                 _td(fmt_num(_num(x["cores"])), _num(x["cores"]), "num"),
                 _td(fmt_kib(x["peak_mem_rss_kb"]) if x["sample_count"] or x["format"].startswith("snakemake")
                     else "–", _num(x["peak_mem_rss_kb"]), "num"),
                 _td(fmt_kib(x["peak_process_rss_kb"]), _num(x["peak_process_rss_kb"]), "num"),
                 _td(fmt_bytes(x["total_disk_read_bytes"]), _num(x["total_disk_read_bytes"]), "num"),
                 _td(fmt_bytes(x["total_disk_write_bytes"]), _num(x["total_disk_write_bytes"]), "num"),
                 _td(fmt_num(x["max_processes"]), _num(x["max_processes"]), "num"),
                 _td(fmt_num(x["max_threads"]), _num(x["max_threads"]), "num"),
                 _td(fmt_num(x["sample_count"]), _num(x["sample_count"]), "num")]
        rows.append(f"<tr data-run='{x['idx']}'>" + "".join(cells) + "</tr>")
    note = f"All {total} runs, by start time." if total <= caps.table_runs else \
        f"The first {caps.table_runs} of {total} runs by start time (the cap of this table)."
    if with_series:
        note += " Click a run that has a time series to show it above."
    return (f"<h2 id='runs'>Runs</h2>\n<p class='note'>{note} Click a column to sort.</p>\n"
            "<div class='tablewrap'><table class='sortable' id='runs-table'><thead><tr>" + "".join(head)
            + "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


# ------------------------------------------------------------------------------- chart sections


def _dist_section(wf: Workflow, caps: Caps, metrics: list[dict], shown: list[str], all_groups: list[str],
                  drawn: bool) -> str:
    if not drawn:
        return "<h2 id='distributions'>Distributions</h2>\n<p class='note'>No per-run figures to draw.</p>"
    more = ""
    if len(all_groups) > len(shown):
        more = f" The {len(shown)} groups with the most CPU time are drawn (of {len(all_groups)}); the table " \
               "above lists all."
    logs = [m["title"] for m in metrics if m["log"]]
    logn = f" On a log scale (the values span more than two decades; zeros left out): {', '.join(logs)}." \
        if logs else ""
    return ("<h2 id='distributions'>Distributions</h2>\n<p class='note'>Per group: the box spans the middle half of "
            "the runs, the black tick is the median, the whiskers reach the smallest and largest run; each dot is a "
            f"run (at most {caps.strip_points} per group and panel, spread over the ranks; crosses failed, triangles "
            f"cut short).{_e(more)}{_e(logn)}</p>\n<div class='chart' id='chart-dist'></div>")


def _timeline_section(wf: Workflow, cut: int, no_start: int, drawn: bool) -> str:
    notes = []
    if cut:
        notes.append(f"{cut} shorter runs left out (the timeline draws at most the longest "
                     f"{wf.runs.height - cut - no_start} runs).")
    if no_start:
        notes.append(f"{no_start} run{'s' if no_start != 1 else ''} without a start time not drawn.")
    if not drawn:
        return "<h2 id='timeline'>Timeline</h2>\n<p class='note'>No run carries a start time. " + _e(" ".join(notes)) \
            + "</p>"
    return ("<h2 id='timeline'>Timeline</h2>\n<p class='note'>Each bar is a run, from its start for its wall time, "
            "in the first free lane; colour by group, red outline: failed, faded: cut short. Click a bar to show "
            f"its time series. {_e(' '.join(notes))}</p>\n<div class='chart' id='chart-timeline'></div>")


def _series_payloads(wf: Workflow, caps: Caps) -> list[dict]:
    from . import drawn_limits, limits_of
    from .text import run_subtitle, run_title

    out = []
    for i in data.series_runs(wf, caps.series_runs * 2):
        if len(out) >= caps.series_runs:
            break
        s = data.run_series(wf.entries[i], caps.series_points)
        if s is None or s["n"] == 0:
            continue
        row = wf.runs.row(i, named=True)
        cols = data.series_columns(s)
        lim = limits_of(row)
        out.append({"idx": i, "kind": "gpu" if s["gpu"] else "plain", "title": run_title(row),
                    "subtitle": run_subtitle(row, s, lim),
                    "label": _option_label(row), "params": unit_params(cols, drawn_limits(lim, cols)),
                    "limits": limit_rows(drawn_limits(lim, cols)), "cols": cols})
    return out


def _option_label(row: dict) -> str:
    st = row["status"]
    what = f"exit {row['exit_code']}" if st in ("ok", "failed") else st
    return f"{clip(row['group'], 40)} · {clip(row['name'], 50)} · {fmt_secs(row['dur_s'])} · {what}"


def _series_section(wf: Workflow, caps: Caps, series: list[dict]) -> str:
    if not series:
        return "<h2 id='series'>One run</h2>\n<p class='note'>No run has samples to draw.</p>"
    opts = "\n".join(f"<option value='{s['idx']}'>{_e(s['label'])}</option>" for s in series)
    eligible = wf.runs.filter(~wf.runs["format"].is_in(["snakemake-tsv", "snakemake-jsonl"])).height
    note = (f"Time series of {len(series)} of {eligible} runs are embedded: the longest run of each group, then "
            f"failed and cut-short runs, then the longest (at most {caps.series_runs}; each at most "
            f"{caps.series_points} points, min and max per time bucket beyond that)."
            if len(series) < eligible else "Every run's time series is embedded.")
    return (f"<h2 id='series'>One run</h2>\n<p class='note'>{_e(note)} CPU % and I/O rates are averages over the "
            "interval before each sample; dashed red lines: the resources the run asked for (labels "
            "<code>threads</code>, <code>mem_mb</code>).</p>\n<div class='series-head'><label for='run-select'>Run"
            f"</label><select id='run-select'>{opts}</select></div>\n<div id='series-title'></div>"
            "<div id='series-subtitle'></div>\n<div class='chart' id='chart-series'></div>")


def _footer(caps: Caps) -> str:
    return ("<footer>Made by <code>denet report</code>. This file is self-contained: the Vega, Vega-Lite and "
            "vega-embed libraries and all data are inlined, and it opens from disk with no network. Caps: time "
            f"series of at most {caps.series_runs} runs at {caps.series_points} points each; "
            f"{caps.table_runs} rows in the runs table; {caps.timeline_runs} bars in the timeline; "
            f"{caps.strip_points} dots per group and panel; {caps.groups} groups in the distributions.</footer>")
