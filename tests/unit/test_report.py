"""denet.report: what is embedded and how it is capped, on record files written here with known
values (the end-to-end tests on real runs and a real browser are in tests/integration/test_report.py)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("altair")
pytest.importorskip("vl_convert")

from denet.errors import UsageError  # noqa: E402
from denet.report import Caps, drawn_limits, format_of, limits_of, report  # noqa: E402
from denet.report import data as rdata  # noqa: E402
from denet.report.page import _script_json  # noqa: E402

T0 = 1_700_000_000_000
CAPS = {"gpu": {"available": False, "reason": "no GPU"}, "ebpf": {"available": False, "reason": "off"}}


def write_run(path: Path, *, rule: str, n: int, step_ms: int = 100, cpu=None, rss=None, disk_read=None,
              finished: bool = True, exit_code: int = 0, t0: int = T0, gpu=None, labels=None) -> Path:
    """A denet JSONL file with ``n`` tree records whose values come from the given functions of i."""
    cpu = cpu or (lambda i: 50.0)
    rss = rss or (lambda i: 1000)
    disk_read = disk_read or (lambda i: 0)
    caps = dict(CAPS)
    if gpu is not None:
        caps["gpu"] = {"available": True}
    meta = {"kind": "metadata", "pid": 10, "cmd": ["tool", rule], "executable": "/bin/tool", "t0_ms": t0,
            "capabilities": caps, "schema_version": 1, "denet_version": "t",
            "labels": {"rule": rule, **(labels or {})}, "interval_ms": 100, "max_interval_ms": 1000,
            "include_children": True, "since_process_start": False}
    lines = [meta]
    for i in range(n):
        m = {"ts_ms": t0 + i * step_ms, "cpu_usage": float(cpu(i)), "mem_rss_kb": int(rss(i)), "mem_vms_kb": 5000,
             "disk_read_bytes": int(disk_read(i)), "disk_write_bytes": 0, "sys_net_rx_bytes": 0,
             "sys_net_tx_bytes": 0, "thread_count": 2, "uptime_secs": 0, "cpu_core": 0}
        agg = {k: v for k, v in m.items() if k != "cpu_core"} | {"process_count": 1}
        if gpu is not None:
            mem, util = gpu(i)
            agg["gpu"] = {"memory_bytes": mem, "process_count": 1, "sm_utilization_pct": util / 2, "processes": [],
                          "devices": [{"index": 0, "name": "G", "uuid": "GPU-0", "utilization_pct": util,
                                       "memory_utilization_pct": 1, "memory_total_bytes": 1 << 34,
                                       "memory_used_bytes": mem, "memory_free_bytes": 0, "temperature_c": 40,
                                       "power_w": 100.0}]}
        lines.append({"kind": "tree", "ts_ms": m["ts_ms"], "parent": m, "children": [], "aggregated": agg})
    if finished:
        wall = max(n - 1, 0) * step_ms / 1000.0
        lines.append({"kind": "summary", "total_time_secs": wall, "sample_count": n, "max_processes": 1,
                      "max_threads": 2, "total_disk_read_bytes": int(disk_read(n - 1)) if n else 0,
                      "total_disk_write_bytes": 0, "total_syscall_read_bytes": 0, "total_syscall_write_bytes": 0,
                      "total_sys_net_rx_bytes": 0, "total_sys_net_tx_bytes": 0,
                      "peak_mem_rss_kb": max((int(rss(i)) for i in range(n)), default=0), "avg_cpu_usage": 50.0,
                      "exit_code": exit_code, "wall_time_secs": wall, "cpu_user_secs": wall / 2,
                      "cpu_system_secs": 0.0, "cpu_time_secs": wall / 2, "peak_process_rss_kb": 900,
                      "exact": ["exit_code", "wall_time_secs", "cpu_user_secs", "cpu_system_secs", "cpu_time_secs",
                                "peak_process_rss_kb"]})
    path.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))
    return path


def entry_of(path: Path):
    wf = rdata.load([str(path)])
    return wf.entries[0]


# ------------------------------------------------------------------------------- formats and labels


def test_format_from_extension_or_option():
    assert format_of("r.html", None) == "html" and format_of("R.HTM", None) == "html"
    assert format_of("run.png", None) == "png" and format_of("run.svg", None) == "svg"
    assert format_of("run.out", "svg") == "svg" and format_of("run.png", "HTML") == "html"
    with pytest.raises(UsageError, match="cannot tell the format"):
        format_of("run.pdf", None)
    with pytest.raises(UsageError, match="--format must be one of"):
        format_of("run.png", "gif")


def test_requests_from_labels():
    lim = limits_of({"threads": "4", "mem_mb": "2000"})
    assert {x["panel"]: x["value"] for x in lim} == {"cpu": 400.0, "mem": 2000 * 1e6}  # Snakemake's MB: 10^6
    assert limits_of({"mem_mib": "1024"})[0]["value"] == 1024 * 2 ** 20
    assert limits_of({"threads": "many", "mem_mb": None}) == []
    # a request far above what the run used is named, not drawn (it would squash the curve)
    series = {"cpu": [90.0, 100.0], "rss": [1000, 2000]}
    drawn = drawn_limits(limits_of({"threads": "2", "mem_mb": "1000"}), series)
    assert [x["panel"] for x in drawn] == ["cpu"]


def test_json_in_a_script_element_cannot_close_it():
    text = _script_json({"cmd": "echo '</script><script>alert(1)</script>' <!--"})
    assert "</script" not in text and "<!--" not in text
    assert json.loads(text) == {"cmd": "echo '</script><script>alert(1)</script>' <!--"}


# ------------------------------------------------------------------------------- series


def test_long_series_is_downsampled_keeping_its_peaks(tmp_path):
    n = 20000
    spike_at, dip_at = 12345, 777
    f = write_run(tmp_path / "long.jsonl", rule="a", n=n,
                  cpu=lambda i: 999.0 if i == spike_at else (0.0 if i == dip_at else 100.0 + i % 7),
                  rss=lambda i: 5_000_000 if i == spike_at + 3 else 1000 + i % 13)
    s = rdata.run_series(entry_of(f), 1000)
    assert s["n"] == n and s["shown"] <= 1000 and len(s["t"]) == s["shown"]
    assert max(s["cpu"]) == 999.0 and min(s["cpu"]) == 0.0  # the peak and the dip survive
    assert max(s["rss"]) == 5_000_000
    assert s["t"] == sorted(s["t"]) and s["t"][0] == 0 and s["t"][-1] == (n - 1) * 100
    # a short series is kept as it is
    short = rdata.run_series(entry_of(write_run(tmp_path / "short.jsonl", rule="a", n=50)), 1000)
    assert short["n"] == short["shown"] == 50 and short["t"] == [i * 100 for i in range(50)]


def test_io_rates_from_counters(tmp_path):
    # 1 MiB per 100 ms for 10 samples, then the counter drops (a child ended and took its bytes along)
    f = write_run(tmp_path / "io.jsonl", rule="a", n=15, disk_read=lambda i: (i if i < 10 else 2) * (1 << 20))
    s = rdata.run_series(entry_of(f), 1000)
    assert s["rd"][0] == 0
    assert s["rd"][1:10] == [10 * (1 << 20)] * 9  # bytes/s
    assert s["rd"][10] == 0 and all(v == 0 for v in s["rd"][11:])  # never negative


def test_gpu_values_become_series_and_distributions(tmp_path):
    f = write_run(tmp_path / "gpu.jsonl", rule="train", n=3000,
                  gpu=lambda i: ((7 << 30) if i == 2100 else (1 << 30), 100 if i == 2100 else i % 60))
    s = rdata.run_series(entry_of(f), 500)
    assert s["gpu"] and max(s["gmem"]) == 7 << 30 and max(s["gutil"]) == 100 and len(s["gmem"]) <= 500
    plain = rdata.run_series(entry_of(write_run(tmp_path / "cpu.jsonl", rule="a", n=10)), 500)
    assert not plain["gpu"] and "gmem" not in plain


# ------------------------------------------------------------------------------- tables and caps


def synthetic(runs: list[dict]) -> rdata.Workflow:
    """A Workflow over a hand-made run table (the columns the report's aggregations read)."""
    cols = {"idx": pl.Int64, "group": pl.String, "name": pl.String, "status": pl.String, "format": pl.String,
            "t0_ms": pl.Int64, "dur_s": pl.Float64, "wall_time_secs": pl.Float64, "cpu_time_secs": pl.Float64,
            "cores": pl.Float64, "peak_mem_rss_kb": pl.Int64, "total_disk_read_bytes": pl.Int64,
            "total_disk_write_bytes": pl.Int64}
    df = pl.DataFrame([{**{k: None for k in cols}, **r, "idx": i} for i, r in enumerate(runs)], schema=cols)
    return rdata.Workflow(runs=df, groups=pl.DataFrame(), keys=["rule"], entries=[])


def test_timeline_lanes_never_overlap():
    runs = [{"group": "a", "t0_ms": T0 + s, "dur_s": d} for s, d in
            [(0, 10), (1000, 2), (2000, 5), (3500, 1), (12000, 1), (10000, 3)]]
    bars, cut, no_start = rdata.timeline_data(synthetic(runs + [{"group": "b", "dur_s": 1.0}]), Caps())
    assert cut == 0 and no_start == 1
    rows = bars.sort("start").iter_rows(named=True)
    by_lane: dict = {}
    for r in rows:
        for s, e in by_lane.get(r["lane"], []):
            assert r["start"] >= e or r["end"] <= s, (r, by_lane)
        by_lane.setdefault(r["lane"], []).append((r["start"], r["end"]))
    assert bars["lane"].max() == 2  # three runs at once at most (0-10 s, 2-7 s, 3.5-4.5 s)
    assert bars["start"].min() == 0 and bars.filter(pl.col("start") == 0)["end"][0] == 10000
    capped, cut, _ = rdata.timeline_data(synthetic(runs), Caps(timeline_runs=2))
    assert cut == 4 and sorted(capped["dur_s"].to_list()) == [5.0, 10.0]  # the longest are kept


def test_distribution_points_are_capped_and_keep_the_extremes():
    runs = [{"group": "big", "wall_time_secs": float(i + 1), "cores": 1.0, "cpu_time_secs": 1.0,
             "peak_mem_rss_kb": 1000 + i, "total_disk_read_bytes": 0, "total_disk_write_bytes": 0, "status": "ok"}
            for i in range(5000)]
    runs += [{"group": "small", "wall_time_secs": 2.0, "cores": 0.5, "cpu_time_secs": 1.0, "peak_mem_rss_kb": 10,
              "total_disk_read_bytes": 0, "total_disk_write_bytes": 0, "status": "failed"}]
    box, pts, metrics, shown = rdata.distribution_data(synthetic(runs), Caps(strip_points=100))
    wall = metrics[0]["title"]
    big = pts.filter((pl.col("group") == "big") & (pl.col("metric") == wall))
    assert 100 <= big.height <= 102 and big["value"].min() == 1.0 and big["value"].max() == 5000.0
    # evenly over the ranks: the points' median is near the whole median
    assert abs(big["value"].median() - 2500) < 100
    b = box.filter((pl.col("group") == "big") & (pl.col("metric") == wall)).row(0, named=True)
    assert b["n"] == 5000 and b["min"] == 1.0 and b["max"] == 5000.0 and b["median"] == 2500.5
    assert metrics[0]["log"] and metrics[0]["ticks"][0] <= 1.0 and metrics[0]["ticks"][-1] >= 5000
    assert shown == ["big", "small"]  # by CPU time
    _, _, _, shown = rdata.distribution_data(synthetic(runs), Caps(groups=1))
    assert shown == ["big"]


def test_series_runs_longest_per_group_first_then_failures():
    runs = [{"group": "a", "dur_s": 5.0, "status": "ok", "format": "denet-jsonl"},
            {"group": "a", "dur_s": 9.0, "status": "ok", "format": "denet-jsonl"},
            {"group": "b", "dur_s": 1.0, "status": "ok", "format": "denet-jsonl"},
            {"group": "b", "dur_s": 0.5, "status": "failed", "format": "denet-jsonl"},
            {"group": "c", "dur_s": 3.0, "status": "ok", "format": "snakemake-tsv"},
            {"group": "a", "dur_s": 7.0, "status": "ok", "format": "denet-jsonl"}]
    wf = synthetic(runs)
    assert rdata.series_runs(wf, 10) == [1, 2, 3, 5, 0]
    assert rdata.series_runs(wf, 3) == [1, 2, 3]
    assert rdata.series_runs(wf, 0) == []


# ------------------------------------------------------------------------------- the outputs


def test_html_embeds_capped_data(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    for k in range(6):
        write_run(d / f"r{k}.jsonl", rule=f"rule{k % 3}", n=3000 if k == 0 else 40, t0=T0 + 1000 * k,
                  exit_code=1 if k == 4 else 0, finished=k != 5)
    out = tmp_path / "r.html"
    res = report([str(d)], str(out), caps=Caps(series_runs=4, series_points=200, table_runs=3))
    assert res.runs == 6 and res.groups == 3 and res.charts == 3 and res.series_runs == 4
    text = out.read_text()
    data = json.loads(re.search(r'<script id="denet-data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert len(data["series"]) == 4 and all(len(s["cols"]["t"]) <= 200 for s in data["series"])
    assert any(s["cols"]["t"][-1] == 2999 * 100 for s in data["series"])  # the long run, downsampled
    rows = re.search(r"<table class='sortable' id='runs-table'>(.*?)</table>", text, re.S)[1]
    assert len(re.findall("<tr data-run=", rows)) == 3 and "The first 3 of 6 runs" in text
    assert "1 run cut short" in text and "1 run failed" in text


def test_image_of_a_gpu_run_has_gpu_panels_and_the_asked_size(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    f = write_run(tmp_path / "gpu.jsonl", rule="train", n=300, gpu=lambda i: (1 << 30, i % 100))
    png = tmp_path / "gpu.png"
    report([str(f)], str(png), width=900, height=1100)
    assert Image.open(io.BytesIO(png.read_bytes())).size == (900, 1100)
    svg = tmp_path / "gpu.svg"
    report([str(f)], str(svg))
    text = svg.read_text()
    assert 'width="1000" height="800"' in text[:300] and "GPU memory of the tree" in text
    cpu_only = tmp_path / "cpu.svg"
    report([str(write_run(tmp_path / "cpu.jsonl", rule="a", n=30))], str(cpu_only))
    assert "GPU" not in cpu_only.read_text()


def test_chart_specs_are_valid_vega_lite(tmp_path):
    """The charts are built without altair's validation (it costs seconds on large inputs): check here."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema import core

    from denet.report.charts import distributions, series_chart, timeline

    schema = core.load_schema()
    d = tmp_path / "runs"
    d.mkdir()
    for k in range(4):
        write_run(d / f"r{k}.jsonl", rule=f"rule{k % 2}", n=30, t0=T0 + 500 * k, labels={"threads": "2"})
    wf = rdata.load([str(d)])
    box, pts, metrics, shown = rdata.distribution_data(wf, Caps())
    bars, _, _ = rdata.timeline_data(wf, Caps())
    bars = bars.with_columns(pl.col("end").alias("end_vis"), pl.lit("x").alias("started"), pl.lit("1 s").alias("wall"),
                             pl.lit("1 MiB").alias("rss"))
    import altair as alt

    specs = [distributions(box, pts, metrics, shown, shown), timeline(bars, shown),
             series_chart(alt.NamedData("series"), limits=alt.NamedData("limits")),
             series_chart(alt.NamedData("series"), limits=alt.NamedData("limits"), gpu=True, title="t",
                          subtitle=["a"])]
    for spec in specs:
        validate_jsonschema(spec, schema)
    with pytest.raises(Exception, match="barx|not valid|is not one of"):
        validate_jsonschema({**specs[1], "mark": "barx"}, schema)
