"""Chart definitions (altair): one definition gives the HTML page's charts and the PNG/SVG image
of a run (rendered by vl-convert, with no browser and no server)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = ["CONFIG", "VL_VERSION", "distributions", "run_image", "series_chart", "timeline"]

VL_VERSION = "6.4"  # the Vega-Lite version altair 6 writes; vl-convert bundles it

FONT = "Liberation Sans, Arial, Helvetica, DejaVu Sans, sans-serif"
CONFIG: dict[str, Any] = {
    "font": FONT,
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal", "gridColor": "#e8e8e8",
             "domainColor": "#888", "tickColor": "#888", "labelColor": "#333", "titleColor": "#333"},
    "title": {"fontSize": 13, "fontWeight": "bold", "anchor": "start", "color": "#222", "subtitleColor": "#555",
              "subtitleFontSize": 11},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal"},
    "header": {"labelFontSize": 11},
}

# seconds since a start, as [d ]h:mm:ss, m:ss or m:ss.mmm (values are ms on a UTC time scale)
ELAPSED = ("(datum.value >= 86400000 ? floor(datum.value / 86400000) + 'd ' : '') + "
           "(datum.value >= 3600000 ? utcFormat(datum.value, '%-H:%M:%S') : utcFormat(datum.value, '%-M:%S')) + "
           "(datum.value % 1000 ? utcFormat(datum.value, '.%L') : '')")
BYTES = "format(datum.value, '.3~s') + 'B'"
RATE = "datum.value == 0 ? '0' : format(datum.value, '.3~s') + 'B/s'"
Y_EXTENT = 64  # px for every y axis of the run panels: stacked panels line up, images have a fixed size
STATUS_SHAPES = {"ok": "circle", "failed": "cross", "cut short": "triangle-up", "no exit code": "diamond"}


def _alt():
    import altair as alt

    return alt


def color_scale(groups: list[str]):
    alt = _alt()
    return alt.Scale(domain=groups, scheme="tableau10" if len(groups) <= 10 else "tableau20")


# ------------------------------------------------------------------------------- distributions


def distributions(box: pl.DataFrame, points: pl.DataFrame, metrics: list[dict], groups: list[str],
                  all_groups: list[str], *, width: int = 430) -> dict:
    """Per metric, one panel: a box (quartiles), whiskers (min to max) and a median tick per
    group, with the runs as dots (shape by status)."""
    alt = _alt()
    band = 22
    height = max(band * len(groups), 40)
    colors = color_scale(all_groups)
    y = alt.Y("group:N", sort=groups, scale=alt.Scale(domain=groups), title=None,
              axis=alt.Axis(labelLimit=170, ticks=False, domain=False))
    panels = []
    box_base = alt.Chart(alt.NamedData("dist_box"))
    pt_base = alt.Chart(alt.NamedData("dist_points"))
    for m in metrics:
        title = m["title"]
        unit = m["unit"]
        scale = alt.Scale(type="log") if m["log"] else alt.Scale(zero=True, nice=True)
        xt = f"{unit}" + (" (log scale)" if m["log"] else "")
        x = alt.X("min:Q", scale=scale, title=xt or None,
                  axis=alt.Axis(values=m["ticks"], format="~g", labelOverlap="greedy") if m["log"] else
                  alt.Axis(tickCount=6, labelOverlap="greedy"))
        flt = alt.datum.metric == title
        whisker = box_base.transform_filter(flt).mark_rule(color="#666").encode(y=y, x=x, x2="max:Q")
        quart = box_base.transform_filter(flt).mark_bar(size=14, opacity=0.35, stroke="#555", strokeWidth=0.6).encode(
            y=y, x=alt.X("q1:Q", scale=scale), x2="q3:Q", color=alt.Color("group:N", scale=colors, legend=None),
            tooltip=[alt.Tooltip("group:N", title="group"), alt.Tooltip("n:Q", title="runs"),
                     alt.Tooltip("min:Q", format=".3~f"), alt.Tooltip("q1:Q", format=".3~f"),
                     alt.Tooltip("median:Q", format=".3~f"), alt.Tooltip("q3:Q", format=".3~f"),
                     alt.Tooltip("max:Q", format=".3~f"), alt.Tooltip("unit:N")])
        median = box_base.transform_filter(flt).mark_tick(color="#111", size=16, thickness=2).encode(
            y=y, x=alt.X("median:Q", scale=scale))
        dots = pt_base.transform_filter(flt).mark_point(filled=True, size=22, opacity=0.75).encode(
            y=y, x=alt.X("value:Q", scale=scale),
            yOffset=alt.YOffset("jitter:Q", scale=alt.Scale(domain=[-1.2, 1.2])),
            color=alt.Color("group:N", scale=colors, legend=None),
            shape=alt.Shape("status:N", title="run", scale=alt.Scale(domain=list(STATUS_SHAPES),
                                                                     range=list(STATUS_SHAPES.values()))),
            tooltip=[alt.Tooltip("name:N", title="run"), alt.Tooltip("group:N", title="group"),
                     alt.Tooltip("value:Q", title=unit or "value", format=".4~f"), alt.Tooltip("status:N")])
        panels.append(alt.layer(whisker, quart, median, dots).properties(
            width=width, height=height, title=alt.Title(title)))
    chart = alt.concat(*panels, columns=2, spacing=28).resolve_scale(x="independent")
    chart = chart.configure(**CONFIG).configure_legend(orient="bottom", direction="horizontal")
    spec = chart.to_dict(validate=False)  # the tests validate these specs; here it would cost a second
    spec["datasets"] = {"dist_box": box.to_dicts(), "dist_points": points.to_dicts()}
    return spec


# ------------------------------------------------------------------------------- timeline


def timeline(bars: pl.DataFrame, all_groups: list[str], *, width: int = 900) -> dict:
    """A Gantt chart: one bar per run from its start for its wall time, in lanes, coloured by group."""
    alt = _alt()
    lanes = int(bars["lane"].max()) + 1 if bars.height else 1
    bar_h = max(2, min(16, 560 // lanes))
    height = max(60, lanes * (bar_h + 2))
    colors = color_scale(all_groups)
    x = alt.X("start:T", scale=alt.Scale(type="utc", domainMin=0), title="time since the first run started",
              axis=alt.Axis(labelExpr=ELAPSED, labelOverlap="greedy", labelFlush=True, tickCount=max(2, width // 120)))
    base = alt.Chart(alt.NamedData("timeline")).encode(
        x=x, x2="end_vis:T", y=alt.Y("lane:O", axis=None, title=None),
        tooltip=[alt.Tooltip("name:N", title="run"), alt.Tooltip("group:N", title="group"),
                 alt.Tooltip("status:N"), alt.Tooltip("exit_code:Q", title="exit code"),
                 alt.Tooltip("started:N", title="started"), alt.Tooltip("wall:N", title="wall time"),
                 alt.Tooltip("cpu_time_secs:Q", title="CPU s", format=".2f"),
                 alt.Tooltip("cores:Q", title="cores", format=".2f"),
                 alt.Tooltip("rss:N", title="peak RSS")],
    )
    chart = base.mark_bar(height=bar_h, cornerRadius=1).encode(
        color=alt.Color("group:N", scale=colors, title=None,
                        legend=alt.Legend(orient="bottom", columns=6, symbolType="square", labelLimit=160)),
        stroke=alt.condition(alt.datum.status == "failed", alt.value("#c00"), alt.value(None)),
        strokeWidth=alt.value(1.5),
        opacity=alt.condition(alt.datum.status == "cut short", alt.value(0.45), alt.value(0.9)),
    ).properties(width=width, height=height)
    spec = chart.configure(**CONFIG).to_dict(validate=False)
    spec["datasets"] = {"timeline": bars.to_dicts()}
    return spec


# ------------------------------------------------------------------------------- one run

MEM_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))
RATE_UNITS = (("GiB/s", 1 << 30), ("MiB/s", 1 << 20), ("KiB/s", 1 << 10), ("B/s", 1))


def pick_unit(peak: float, units) -> tuple[str, int]:
    """The largest unit in which ``peak`` is at least 2 (the smallest unit otherwise)."""
    for name, div in units:
        if peak >= 2 * div:
            return name, div
    return units[-1]


def limit_rows(limits: list[dict]) -> list[dict]:
    """The rows of the ``limits`` data: one per panel that can show a request (``on`` false and
    value 0 where none was made)."""
    out = []
    for panel in ("cpu", "mem"):
        lim = next((x for x in limits if x.get("panel") == panel), None)
        out.append({"panel": panel, "value": lim["value"], "label": lim["label"], "on": True} if lim else
                   {"panel": panel, "value": 0, "label": "", "on": False})
    return out


def unit_params(series: dict, limits: list[dict] | None = None) -> dict:
    """Values of the series chart's parameters (memory and I/O-rate units) for one run."""
    peak_mem = max([v * 1024 for v in series.get("rss", [])] +
                   [lim["value"] for lim in limits or [] if lim.get("panel") == "mem"] + [0])
    peak_rate = max([max(series.get(k, []) or [0]) for k in ("rd", "wr", "srd", "swr")] + [0])
    mu, md = pick_unit(peak_mem, MEM_UNITS)
    ru, rd = pick_unit(peak_rate, RATE_UNITS)
    out = {"memunit": mu, "memdiv": md, "iounit": ru, "iodiv": rd}
    if "gmem" in series:
        gu, gd = pick_unit(max([v for v in series["gmem"] if v is not None] + [0]), MEM_UNITS)
        out |= {"gmemunit": gu, "gmemdiv": gd}
    return out


def series_chart(data, *, width: int = 860, panel_height: int = 120, title: str | None = None,
                 subtitle: list[str] | None = None, limits=None, params: dict | None = None,
                 gpu: bool = False) -> dict:
    """Stacked panels of one run on a shared time axis: CPU %, memory (RSS), I/O rate, threads
    and processes, as a Vega-Lite spec. ``data``: the run's series (columns of
    :func:`denet.report.data.run_series`) as rows or a named data source; ``limits``: rows
    ``{panel, value, label}`` drawn as dashed rules (requested threads as CPU %, requested
    memory in bytes); ``params``: the units (:func:`unit_params`); ``gpu``: add the GPU panels
    (busiest GPU's utilisation and the tree's SM use; the tree's GPU memory)."""
    alt = _alt()
    view_w = width - Y_EXTENT - 20
    params = {"memunit": "MiB", "memdiv": 1 << 20, "iounit": "KiB/s", "iodiv": 1 << 10,
              **({"gmemunit": "MiB", "gmemdiv": 1 << 20} if gpu else {}), **(params or {})}

    def xenc(last: bool):
        axis = alt.Axis(labelExpr=ELAPSED, title="time since the run started", labelOverlap="greedy",
                        labelFlush=True, tickCount=max(2, view_w // 120)) if last else \
            alt.Axis(labels=False, ticks=False, title=None, domain=False, tickCount=max(2, view_w // 120))
        return alt.X("t:T", scale=alt.Scale(type="utc", domainMin=0), axis=axis)

    def yaxis(expr: str | None = None, fmt: str | None = None, **more):
        kw: dict = {"minExtent": Y_EXTENT, "maxExtent": Y_EXTENT, "title": None, "tickCount": 4, "labelFlush": True,
                    **more}
        if expr:
            kw["labelExpr"] = expr
        if fmt:
            kw["format"] = fmt
        return alt.Axis(**kw)

    base = alt.Chart(data)
    lim = alt.Chart(limits) if limits is not None else None
    t_tip = alt.Tooltip("t:T", title="time", format="%H:%M:%S.%L", formatType="utc")

    def rule(panel: str, expr: str):
        if lim is None:
            return None
        # every panel has a row (value 0, drawn transparent, when nothing was requested): an empty
        # layer would leave the shared scale with an infinite extent
        return lim.transform_filter(alt.datum.panel == panel).transform_calculate(v=expr).mark_rule(
            strokeDash=[5, 4], color="#b22", strokeWidth=1.2).encode(
            y="v:Q", opacity=alt.condition("datum.on", alt.value(1), alt.value(0)),
            tooltip={"condition": {"test": "datum.on", "field": "label", "type": "nominal", "title": "requested"},
                     "value": None})

    def panel(layers, name: str):
        layers = [x for x in layers if x is not None]
        c = alt.layer(*layers) if len(layers) > 1 else layers[0]
        return c.properties(width=view_w, height=panel_height, title=alt.Title(name))

    legend = alt.Legend(orient="top", direction="horizontal", title=None, offset=4, labelFontSize=11,
                        symbolStrokeWidth=2)
    cpu = base.mark_line(color="#1f77b4", strokeWidth=1.3, interpolate="step-before").encode(
        x=xenc(False), y=alt.Y("cpu:Q", axis=yaxis(fmt="~s"), scale=alt.Scale(zero=True)),
        tooltip=[t_tip, alt.Tooltip("cpu:Q", title="CPU %", format=".1f")])
    mem = base.transform_calculate(rss_u="datum.rss * 1024 / memdiv").mark_area(
        color="#2ca02c", opacity=0.3, line={"color": "#2ca02c", "strokeWidth": 1.3}).encode(
        x=xenc(False), y=alt.Y("rss_u:Q", axis=yaxis("format(datum.value, '~g') + ' ' + memunit"),
                               scale=alt.Scale(zero=True)),
        tooltip=[t_tip, alt.Tooltip("rss_u:Q", title="RSS", format=".4~f"), alt.Tooltip("u:N", title="unit")]
    ).transform_calculate(u="memunit")
    io_names = {"rd": "disk read", "wr": "disk write", "srd": "read() calls", "swr": "write() calls"}
    io = base.transform_fold(list(io_names), as_=["k", "v"]).transform_calculate(
        what="{'rd': 'disk read', 'wr': 'disk write', 'srd': 'read() calls', 'swr': 'write() calls'}[datum.k]",
        vu="datum.v / iodiv", u="iounit",
    ).mark_line(strokeWidth=1.2, interpolate="step-before").encode(
        x=xenc(False), y=alt.Y("vu:Q", axis=yaxis("format(datum.value, '~g') + ' ' + iounit"),
                               scale=alt.Scale(zero=True)),
        color=alt.Color("what:N", scale=alt.Scale(domain=list(io_names.values()),
                                                  range=["#1f77b4", "#d62728", "#8fb8dd", "#f0a0a0"]), legend=legend),
        strokeDash=alt.StrokeDash("what:N", scale=alt.Scale(domain=list(io_names.values()),
                                                            range=[[1, 0], [1, 0], [4, 3], [4, 3]]), legend=legend),
        tooltip=[t_tip, alt.Tooltip("what:N", title="I/O"), alt.Tooltip("vu:Q", title="rate", format=".4~f"),
                 alt.Tooltip("u:N", title="unit")])
    tp = base.transform_fold(["thr", "prc"], as_=["k", "v"]).transform_calculate(
        what="datum.k == 'thr' ? 'threads' : 'processes'").mark_line(interpolate="step-after").encode(
        x=xenc(not gpu), y=alt.Y("v:Q", axis=yaxis(fmt="d", tickMinStep=1), scale=alt.Scale(zero=True)),
        color=alt.Color("what:N", scale=alt.Scale(domain=["threads", "processes"], range=["#c5b0d5", "#ff7f0e"]),
                        legend=legend),
        strokeWidth=alt.condition("datum.k == 'thr'", alt.value(3.5), alt.value(1.3)),
        tooltip=[t_tip, alt.Tooltip("what:N", title=" "), alt.Tooltip("v:Q", title="count")])
    panels = [panel([cpu, rule("cpu", "datum.value")], "CPU (%; 100 = one core)"),
              panel([mem, rule("mem", "datum.value / memdiv")], "Memory (RSS of the whole tree)"),
              panel([io], "I/O rate"),
              panel([tp], "Threads and processes")]
    if gpu:
        gnames = {"gutil": "busiest GPU", "gsm": "tree's SMs"}
        gu = base.transform_fold(list(gnames), as_=["k", "v"]).transform_calculate(
            what="datum.k == 'gutil' ? 'busiest GPU' : \"tree's SMs\"").mark_line(
            strokeWidth=1.3, interpolate="step-before").encode(
            x=xenc(False), y=alt.Y("v:Q", axis=yaxis(fmt="~s"), scale=alt.Scale(zero=True)),
            color=alt.Color("what:N", scale=alt.Scale(domain=list(gnames.values()), range=["#17becf", "#bcbd22"]),
                            legend=legend),
            tooltip=[t_tip, alt.Tooltip("what:N", title=" "), alt.Tooltip("v:Q", title="%", format=".1f")])
        gm = base.transform_calculate(g_u="datum.gmem / gmemdiv", u="gmemunit").mark_area(
            color="#17becf", opacity=0.3, line={"color": "#17becf", "strokeWidth": 1.3}).encode(
            x=xenc(True), y=alt.Y("g_u:Q", axis=yaxis("format(datum.value, '~g') + ' ' + gmemunit"),
                                  scale=alt.Scale(zero=True)),
            tooltip=[t_tip, alt.Tooltip("g_u:Q", title="GPU memory", format=".4~f"), alt.Tooltip("u:N", title="unit")])
        panels += [panel([gu], "GPU utilisation (%; SMs: 100 = one GPU)"), panel([gm], "GPU memory of the tree")]
    chart = alt.vconcat(*panels, spacing=14).resolve_scale(x="shared", color="independent",
                                                          strokeDash="independent")
    if title:
        chart = chart.properties(title=alt.Title(title, subtitle=subtitle or [], anchor="start", offset=10))
    spec = chart.configure(**CONFIG).to_dict(validate=False)
    spec["params"] = [{"name": k, "value": v} for k, v in params.items()] + spec.get("params", [])
    return spec


def run_image(series: dict, *, title: str, subtitle: list[str], limits: list[dict], width: int, height: int,
              fmt: str) -> bytes:
    """A run's stacked panels as a PNG or SVG of exactly ``width`` x ``height`` pixels
    (vl-convert: no browser, no server). The panels take the height that the titles, legends and
    axes leave; the content keeps its natural origin, so nothing is cut at the top or left."""
    import vl_convert as vlc

    alt = _alt()
    cols = list(series)
    rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*series.values(), strict=True)]
    params = unit_params(series, limits)
    gpu = "gmem" in series
    n_panels = 6 if gpu else 4

    def vega(panel_height: int) -> dict:
        # named data, filled in after altair: altair would validate and copy every row
        spec = series_chart(alt.NamedData("series"), width=width, panel_height=panel_height, title=title,
                            subtitle=subtitle, limits=alt.NamedData("limits"), params=params, gpu=gpu)
        spec["datasets"] = {"series": rows, "limits": limit_rows(limits)}
        return vlc.vegalite_to_vega(spec, vl_version=VL_VERSION)

    probe = 100
    sg = vlc.vega_to_scenegraph(vega(probe))
    overhead = sg["height"] - n_panels * probe
    ph = max(30, (height - overhead - 6) // n_panels)
    vg = vega(ph)
    ox, oy = (int(round(v)) for v in sg["origin"])
    content_w = vg.get("width") if isinstance(vg.get("width"), int | float) else width - ox
    vg["autosize"] = {"type": "none", "contains": "content"}
    vg["padding"] = {"left": ox, "top": oy, "right": max(0, width - ox - int(content_w)), "bottom": 0}
    vg["width"] = min(int(content_w), width - ox)
    vg["height"] = height - oy
    if fmt == "svg":
        return vlc.vega_to_svg(vg).encode()
    return vlc.vega_to_png(vg, scale=1.0)
