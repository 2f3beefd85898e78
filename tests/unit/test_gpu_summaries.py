"""`denet summarize` with GPU runs: per-run GPU figures and per-group peaks, present only when some run
has GPU values. The runs are written with denet's records and sinks (JSON lines and Parquet), their
summaries by the same accumulator the live monitor uses."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("polars")
pytest.importorskip("pyarrow")

from denet.records import (  # noqa: E402
    Aggregated,
    Capability,
    Child,
    GpuAggregated,
    GpuDevice,
    GpuMetrics,
    GpuProcess,
    Metrics,
    RunHeader,
    TreeSample,
)
from denet.sinks import JsonlSink  # noqa: E402
from denet.sinks.parquet import ParquetSink  # noqa: E402
from denet.summaries import group_table, render_table, run_table, summarize, write_output  # noqa: E402
from denet.summary import SummaryAccumulator  # noqa: E402

GIB = 1 << 30
GPU_RUN_COLUMNS = {"gpu_device_count", "peak_gpu_memory_used_bytes", "peak_gpu_tree_memory_bytes",
                   "max_gpu_utilization_pct", "avg_gpu_utilization_pct"}
GPU_GROUP_COLUMNS = {"gpu_device_count_max", "peak_gpu_memory_used_bytes_max", "peak_gpu_tree_memory_bytes_mean",
                     "peak_gpu_tree_memory_bytes_max", "max_gpu_utilization_pct_max", "avg_gpu_utilization_pct_mean"}


def write_run(path, rule: str, seed: int, gpu: bool, n: int = 6) -> dict:
    """Write a run; returns its summary as a dict."""
    caps = {"gpu": Capability(True) if gpu else Capability(False, "NVML Shared Library Not Found")}
    recs = [RunHeader(pid=100 + seed, cmd=["train.py"], executable="/usr/bin/python3", t0_ms=1_000 * seed,
                      capabilities=caps, schema_version=1, denet_version="t", labels={"rule": rule}, interval_ms=100,
                      max_interval_ms=1000, include_children=True, since_process_start=False)]
    acc = SummaryAccumulator()
    for i in range(n):
        ts = 1_000 * seed + 100 * i
        g_root = g_tree = None
        if gpu:
            devs = [GpuDevice(0, "G", "GPU-0", (seed * 13 + 17 * i) % 101, 5, 40 * GIB, (seed + i) * GIB,
                              (40 - seed - i) * GIB, 50, 200.0),
                    GpuDevice(1, "G", "GPU-1", None, None, 40 * GIB, GIB, 39 * GIB, None, None)]
            procs = [GpuProcess(100 + seed, 0, "compute", (i + 1) * seed * 1000, 10.0, 1.0)]
            g_root = GpuMetrics(procs[0].memory_bytes, 10.0, procs, devs)
            g_tree = GpuAggregated(procs[0].memory_bytes, 1, 10.0, procs, devs)
        m = Metrics(ts, 10.0, 1000, 2000, 0, 0, 0, 0, 1, i, 0, 0, 0, 0, 0, g_root)
        agg = Aggregated(ts, 20.0, 2000, 4000, 0, 0, 0, 0, 2, 2, i, 0, 0, 0, 0, gpu=g_tree)
        acc.add_record(agg)
        recs.append(TreeSample(ts, m, [Child(200 + seed, "kid", m._replace(gpu=None))], agg))
    summ = acc.build(1.0, exit_code=0, wall_time_secs=1.0, cpu_user_secs=0.5, cpu_system_secs=0.1,
                     peak_process_rss_kb=1000, exact=["exit_code"])
    recs.append(summ)
    sink = ParquetSink(str(path)) if str(path).endswith(".parquet") else JsonlSink(str(path))
    for r in recs:
        sink.write(r)
    sink.close()
    return json.loads(summ.to_json())


@pytest.fixture
def runs(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    return d, {
        "t1": write_run(d / "t1.jsonl", "train", 1, True),
        "t2": write_run(d / "t2.parquet", "train", 3, True),
        "p1": write_run(d / "p1.jsonl", "prep", 2, False),
    }


def test_per_run_gpu_columns(runs):
    d, s = runs
    t = run_table([str(d)])
    assert GPU_RUN_COLUMNS <= set(t.columns)
    rows = {r["path"].rsplit("/", 1)[1].split(".")[0]: r for r in t.iter_rows(named=True)}
    for name in ("t1", "t2"):
        for c in GPU_RUN_COLUMNS:
            assert rows[name][c] == pytest.approx(s[name][c]), (name, c)
    assert s["t2"]["peak_gpu_memory_used_bytes"] == (3 + 5) * GIB and s["t2"]["gpu_device_count"] == 2
    assert all(rows["p1"][c] is None for c in GPU_RUN_COLUMNS)


def test_per_rule_gpu_peaks(runs):
    d, s = runs
    g = {r["rule"]: r for r in summarize([str(d)]).iter_rows(named=True)}
    assert GPU_GROUP_COLUMNS <= set(g["train"])
    tr = g["train"]
    assert tr["peak_gpu_tree_memory_bytes_max"] == max(s["t1"]["peak_gpu_tree_memory_bytes"],
                                                       s["t2"]["peak_gpu_tree_memory_bytes"])
    assert tr["peak_gpu_tree_memory_bytes_mean"] == pytest.approx(
        (s["t1"]["peak_gpu_tree_memory_bytes"] + s["t2"]["peak_gpu_tree_memory_bytes"]) / 2)
    assert tr["peak_gpu_memory_used_bytes_max"] == (3 + 5) * GIB
    assert tr["max_gpu_utilization_pct_max"] == max(s["t1"]["max_gpu_utilization_pct"],
                                                    s["t2"]["max_gpu_utilization_pct"])
    assert tr["avg_gpu_utilization_pct_mean"] == pytest.approx(
        (s["t1"]["avg_gpu_utilization_pct"] + s["t2"]["avg_gpu_utilization_pct"]) / 2)
    assert tr["gpu_device_count_max"] == 2
    assert all(g["prep"][c] is None for c in GPU_GROUP_COLUMNS)


def test_the_terminal_table_reports_gpu_peaks(runs):
    d, _ = runs
    text = render_table(summarize([str(d)]), kind="group", width=140)
    head = text.splitlines()[0]
    assert "gpu mem max" in head and "gpu% max max" in head
    per_run = render_table(run_table([str(d)]), kind="run", width=160).splitlines()[0]
    assert "gpu mem" in per_run and "gpu% max" in per_run


def test_csv_and_json_carry_the_gpu_columns(runs, tmp_path):
    d, _ = runs
    g = summarize([str(d)])
    data = json.loads(write_output(g, "json", None))
    assert GPU_GROUP_COLUMNS <= set(data[0])
    head = write_output(g, "csv", None).decode().splitlines()[0].split(",")
    assert GPU_GROUP_COLUMNS <= set(head)


def test_without_gpu_values_there_are_no_gpu_columns(tmp_path):
    write_run(tmp_path / "a.jsonl", "prep", 1, False)
    write_run(tmp_path / "b.parquet", "prep", 2, False)
    t = run_table([str(tmp_path)])
    assert not GPU_RUN_COLUMNS & set(t.columns)
    g = group_table(t)
    assert not {c for c in g.columns if "gpu" in c}
    assert "gpu" not in render_table(g)
