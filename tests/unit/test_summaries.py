"""summarize: per-run and per-group tables over many files, checked against figures computed here
from the values the runs were written with."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

from denet import schema, summaries  # noqa: E402
from denet.compact import compact  # noqa: E402
from denet.errors import InputError, UsageError  # noqa: E402
from denet.records import Aggregated, Capability, Child, Metrics, RunHeader, RunSummary, TreeSample  # noqa: E402
from denet.sinks import JsonlSink  # noqa: E402
from denet.sinks.benchmark import BenchmarkSink, benchmark_header, hms  # noqa: E402
from denet.sinks.parquet import ParquetSink  # noqa: E402
from denet.summaries import (  # noqa: E402
    profile_yaml,
    render_table,
    run_table,
    snakemake_tsv,
    suggest,
    summarize,
    write_output,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPS = {k: Capability(False, "off") for k in ("gpu", "ebpf", "psi", "perf_hw")}


class Run:
    """A run written with denet's records and sinks, and what a summary of it must say."""

    def __init__(self, path: Path, *, rule: str | None, n: int, exit_code=0, wall=10.0, cpu=20.0, threads=None,
                 seed=0, finished=True, cmd=("tool",), sample=None):
        self.path, self.rule, self.exit_code, self.wall, self.cpu, self.finished = path, rule, exit_code, wall, cpu, \
            finished
        labels = {}
        if rule is not None:
            labels["rule"] = rule
        if threads is not None:
            labels["threads"] = str(threads)
        if sample is not None:
            labels["sample"] = sample
        self.threads = threads
        self.cmd = list(cmd)
        hdr = RunHeader(pid=1000 + seed, cmd=self.cmd, executable="/bin/tool", t0_ms=1_000_000 * (seed + 1),
                        capabilities=CAPS, schema_version=1, denet_version="t", labels=labels, interval_ms=100,
                        max_interval_ms=1000, include_children=True, since_process_start=False)
        self.cpus = [float((seed * 7 + 13 * i) % 190) for i in range(n)]
        self.rss = [1000 * (seed + 1) + (97 * i * (seed + 3)) % 5000 for i in range(n)]
        self.vms = [3 * r for r in self.rss]
        self.ts = [1_000_000 * (seed + 1) + 500 * i for i in range(n)]
        self.peak_proc = max(self.rss) // 2 + 7
        recs = [hdr]
        for i in range(n):
            m = Metrics(self.ts[i], self.cpus[i] / 2, self.rss[i] // 2, self.vms[i] // 2, 100 * i, 50 * i, 0, 0, 1, i,
                        0, 10 * i, 5 * i, i, 0)
            agg = Aggregated(self.ts[i], self.cpus[i], self.rss[i], self.vms[i], 200 * i, 100 * i, 0, 0, 3, 2, i,
                             20 * i, 10 * i, 2 * i, 0)
            recs.append(TreeSample(self.ts[i], m, [Child(2000 + seed, "kid", m)], agg))
        self.sampled = {"sample_count": n, "peak_mem_rss_kb": max(self.rss), "max_cpu_usage": max(self.cpus),
                        "avg_cpu_usage": sum(self.cpus) / n, "peak_mem_vms_kb": max(self.vms),
                        "total_disk_read_bytes": 200 * (n - 1), "total_disk_write_bytes": 100 * (n - 1),
                        "max_processes": 2, "max_threads": 3, "total_time_secs": (self.ts[-1] - self.ts[0]) / 1000}
        if finished:
            recs.append(RunSummary(
                total_time_secs=wall, sample_count=n, max_processes=2, max_threads=3,
                total_disk_read_bytes=200 * (n - 1), total_disk_write_bytes=100 * (n - 1),
                total_syscall_read_bytes=20 * (n - 1), total_syscall_write_bytes=10 * (n - 1),
                total_sys_net_rx_bytes=0, total_sys_net_tx_bytes=0, peak_mem_rss_kb=max(self.rss),
                avg_cpu_usage=round(sum(self.cpus) / n, 3), exit_code=exit_code, wall_time_secs=wall,
                cpu_user_secs=cpu * 0.75, cpu_system_secs=cpu * 0.25, cpu_time_secs=cpu,
                peak_process_rss_kb=self.peak_proc, exact=["exit_code"]))
        sink = ParquetSink(str(path)) if str(path).endswith(".parquet") else JsonlSink(str(path))
        for r in recs:
            sink.write(r)
        sink.close()

    @property
    def cores(self):
        return self.cpu / self.wall if self.finished else None


def p95(xs):
    xs = [x for x in xs if x is not None]
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[94]


@pytest.fixture
def runs(tmp_path):
    d = tmp_path / "runs"
    (d / "sub").mkdir(parents=True)
    out = [
        Run(d / "a1.parquet", rule="align", n=12, wall=10.0, cpu=35.0, threads=4, seed=1),
        Run(d / "a2.jsonl", rule="align", n=9, wall=12.5, cpu=41.0, threads=4, seed=2),
        Run(d / "sub" / "a3.parquet", rule="align", n=15, wall=8.0, cpu=30.0, threads=4, seed=3),
        Run(d / "s1.jsonl", rule="sort", n=6, wall=3.0, cpu=2.5, seed=4),
        Run(d / "sub" / "s2.parquet", rule="sort", n=7, wall=4.0, cpu=3.9, exit_code=1, seed=5),
        Run(d / "c1.jsonl", rule="call", n=5, seed=6, finished=False),
    ]
    return d, out


def test_per_run_table_matches_what_was_written(runs):
    d, rs = runs
    t = run_table([str(d)])
    # GPU columns are present only when some run has GPU values (tests/unit/test_gpu_summaries.py);
    # the eBPF columns only when some run has eBPF values (tests/unit/test_ebpf.py)
    gpu = {f.name for f in schema.fields("summary") if "gpu" in f.name} | set(summaries._EBPF)
    assert t.columns == [c for c in schema.table_names_of("run", labels=["rule", "threads"]) if c not in gpu]
    assert t.height == len(rs)
    by_path = {r["path"]: r for r in t.iter_rows(named=True)}
    for r in rs:
        row = by_path[str(r.path)]
        assert row["rule"] == r.rule and row["complete"] == r.finished
        assert row["command"] == "tool" and row["format"] == ("denet-parquet" if r.path.suffix == ".parquet"
                                                               else "denet-jsonl")
        for k in ("sample_count", "peak_mem_rss_kb", "max_cpu_usage", "peak_mem_vms_kb", "total_disk_read_bytes",
                  "max_processes", "max_threads"):
            assert row[k] == r.sampled[k], (r.path, k)
        assert row["avg_cpu_usage"] == pytest.approx(r.sampled["avg_cpu_usage"], abs=1e-3)
        if r.finished:
            assert row["wall_time_secs"] == r.wall and row["cpu_time_secs"] == r.cpu
            assert row["exit_code"] == r.exit_code and row["failed"] == (r.exit_code != 0)
            assert row["peak_process_rss_kb"] == r.peak_proc
            assert row["cores"] == pytest.approx(r.cpu / r.wall)
            assert row["total_time_secs"] == r.wall
        else:  # cut short: sampled figures from the rows, exact ones missing
            assert row["exit_code"] is None and row["wall_time_secs"] is None and row["cores"] is None
            assert row["failed"] is False
            assert row["total_time_secs"] == pytest.approx(r.sampled["total_time_secs"])
        if r.threads:
            assert row["cpu_efficiency"] == pytest.approx(r.cpu / r.wall / r.threads)
        else:
            assert row["cpu_efficiency"] is None


def test_group_table_statistics(runs):
    d, rs = runs
    g = summarize([str(d)])
    assert g.columns[0] == "rule" and g["rule"].to_list() == ["align", "call", "sort"]
    for col in ("runs", "failed", "wall_time_secs_mean", "wall_time_secs_p95", "wall_time_secs_max",
                "cpu_time_secs_sum", "cpu_time_secs_mean", "cores_mean", "cores_max", "peak_mem_rss_kb_mean",
                "peak_mem_rss_kb_p95", "peak_mem_rss_kb_max", "peak_process_rss_kb_max", "disk_read_bytes_sum",
                "disk_write_bytes_sum", "cpu_efficiency_mean"):
        assert col in g.columns
    rows = {r["rule"]: r for r in g.iter_rows(named=True)}
    for rule in ("align", "sort", "call"):
        mine = [r for r in rs if r.rule == rule]
        done = [r for r in mine if r.finished]
        row = rows[rule]
        assert row["runs"] == len(mine) and row["failed"] == sum(r.exit_code != 0 for r in done)
        assert row["incomplete"] == len(mine) - len(done)
        rss = [max(r.rss) for r in mine]
        assert row["peak_mem_rss_kb_max"] == max(rss)
        assert row["peak_mem_rss_kb_mean"] == pytest.approx(statistics.fmean(rss))
        assert row["peak_mem_rss_kb_p95"] == pytest.approx(p95(rss))
        assert row["disk_read_bytes_sum"] == sum(200 * (r.sampled["sample_count"] - 1) for r in mine)
        if done:
            walls = [r.wall for r in done]
            assert row["wall_time_secs_mean"] == pytest.approx(statistics.fmean(walls))
            assert row["wall_time_secs_p95"] == pytest.approx(p95(walls))
            assert row["wall_time_secs_max"] == max(walls)
            assert row["cpu_time_secs_sum"] == pytest.approx(sum(r.cpu for r in done))
            assert row["cores_mean"] == pytest.approx(statistics.fmean(r.cores for r in done))
            assert row["cores_max"] == pytest.approx(max(r.cores for r in done))
            assert row["peak_process_rss_kb_max"] == max(r.peak_proc for r in done)
        else:
            assert row["wall_time_secs_max"] is None and row["cpu_time_secs_sum"] is None
    assert rows["align"]["threads_max"] == 4
    assert rows["align"]["cpu_efficiency_mean"] == pytest.approx(
        statistics.fmean(r.cpu / r.wall / 4 for r in rs if r.rule == "align"))
    assert rows["sort"]["cpu_efficiency_mean"] is None


def test_group_by_other_keys_and_defaults(tmp_path):
    a = Run(tmp_path / "x.jsonl", rule=None, n=3, seed=1, cmd=("bwa", "mem"))
    Run(tmp_path / "y.jsonl", rule=None, n=3, seed=2, cmd=("bwa", "mem"))
    Run(tmp_path / "z.jsonl", rule=None, n=3, seed=3, cmd=("samtools", "sort", "a b"))
    g = summarize([str(tmp_path)])
    assert g.columns[0] == "command"
    assert dict(zip(g["command"], g["runs"], strict=True)) == {"bwa mem": 2, "samtools sort 'a b'": 1}
    assert a.path.exists()
    with pytest.raises(UsageError, match="--by nope: no run has a label or column of that name"):
        summarize([str(tmp_path)], by="nope")
    g2 = summarize([str(tmp_path)], by="exit_code")
    assert g2["exit_code"].to_list() == [0] and g2["runs"].to_list() == [3]


def test_several_keys(tmp_path):
    for i, (rule, sample) in enumerate([("a", "s1"), ("a", "s2"), ("a", "s1"), ("b", "s1")]):
        Run(tmp_path / f"r{i}.parquet", rule=rule, sample=sample, n=2, seed=i)
    g = summarize([str(tmp_path)], by="rule,sample")
    assert g.select("rule", "sample", "runs").rows() == [("a", "s1", 2), ("a", "s2", 1), ("b", "s1", 1)]


def test_mixed_inputs_with_snakemake_files(runs):
    d, rs = runs
    g = summarize([str(d), str(FIXTURES / "snakemake_bench_extended.tsv"), str(FIXTURES / "snakemake_bench.jsonl")])
    rows = {r["rule"]: r for r in g.iter_rows(named=True)}
    assert rows["align"]["runs"] == 4  # three denet runs and one Snakemake row
    assert rows["align"]["wall_time_secs_max"] == 12.5
    assert rows["sort"]["runs"] == 4 and rows["index"]["runs"] == 1
    assert rows["sort"]["wall_time_secs_max"] == 62.0003
    per = summarize([str(FIXTURES / "snakemake_bench.jsonl")], per_run=True)
    assert per["format"].to_list() == ["snakemake-jsonl"] * 2
    assert per["peak_mem_vms_kb"].to_list() == [1024 * 1024, None]


def test_bad_files_stop_or_are_skipped(runs):
    d, rs = runs
    bad = d / "zz_bad.parquet"
    bad.write_bytes(rs[0].path.read_bytes()[:200])
    with pytest.raises(InputError, match=rf"{bad}: not a complete Parquet file"):
        summarize([str(d)])
    seen = []
    g = summarize([str(d)], skip_bad=True, on_bad=seen.append)
    assert len(seen) == 1 and str(bad) in seen[0] and int(g["runs"].sum()) == len(rs)


def test_damaged_rows_in_a_batch_are_found(runs):
    """A JSONL file whose middle line is broken fails polars' batch read; the file is then read
    alone, line by line, and named with its line number."""
    d, rs = runs
    f = rs[1].path
    lines = f.read_text().splitlines(keepends=True)
    lines[3] = '{"kind":"tree","ts_ms":oops}\n'
    f.write_text("".join(lines))
    with pytest.raises(InputError, match=rf"{f}:4: not a JSON record"):
        summarize([str(d)])
    seen = []
    g = summarize([str(d)], skip_bad=True, on_bad=seen.append)
    assert any(f"{f}:4" in s for s in seen) and int(g["runs"].sum()) == len(rs) - 1


def test_compacted_dataset_summarises_like_the_files(runs, tmp_path):
    d, rs = runs
    out = tmp_path / "ds"
    res = compact([str(d)], str(out), by="rule")
    assert res.runs == len(rs) and res.partitions == 3
    assert (out / "_denet_dataset.json").exists() and (out / "runs.parquet").exists()
    assert sorted(p.parent.name for p in (out / "rows").glob("*/part-0.parquet")) == \
        ["rule=align", "rule=call", "rule=sort"]
    assert summarize([str(out)]).equals(summarize([str(d)]))
    a = run_table([str(out)]).sort("run_id").drop("format")
    b = run_table([str(d)]).sort("run_id").drop("format")
    assert a.equals(b)
    # hive partitions are readable without denet
    rows = pl.scan_parquet(str(out / "rows" / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert rows.filter(pl.col("scope") == "tree").group_by("rule").len().sort("rule")["len"].to_list() == [
        sum(r.sampled["sample_count"] for r in rs if r.rule == k) for k in ("align", "call", "sort")]
    with pytest.raises(UsageError, match="already exists"):
        compact([str(d)], str(out))


def test_suggestions_and_the_profile(runs):
    d, rs = runs
    g = summarize([str(d)])
    sug = {s["key"]: s for s in suggest(g, by=["rule"], mem_headroom=1.5, runtime_headroom=2.0)}
    align = [r for r in rs if r.rule == "align"]
    peak = max(max(max(r.rss) for r in align), max(r.peak_proc for r in align))
    assert sug["align"]["mem_mb"] == math.ceil(peak / 1024 * 1.5)
    assert sug["align"]["runtime"] == max(1, math.ceil(max(r.wall for r in align) * 2.0 / 60))
    assert sug["align"]["threads"] == math.ceil(p95([r.cpu / r.wall for r in align]))
    assert "runtime" not in sug["call"] and "threads" not in sug["call"] and "mem_mb" in sug["call"]
    text = profile_yaml(list(sug.values()), by=["rule"])
    lines = text.splitlines()
    assert "set-resources:" in lines and "set-threads:" in lines
    assert f"    mem_mb: {sug['align']['mem_mb']}" in lines and f"  align: {sug['align']['threads']}" in lines
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(text)
    assert doc["set-resources"]["align"] == {"mem_mb": sug["align"]["mem_mb"], "runtime": sug["align"]["runtime"]}
    assert doc["set-threads"] == {k: v["threads"] for k, v in sug.items() if "threads" in v}


def test_profile_quotes_odd_keys():
    yaml = pytest.importorskip("yaml")
    text = profile_yaml([{"key": "yes", "mem_mb": 5, "runtime": 1, "threads": 2},
                         {"key": "a b:c", "mem_mb": 6, "runtime": 1, "threads": 1}], by=["command"])
    doc = yaml.safe_load(text)
    assert set(doc["set-resources"]) == {"yes", "a b:c"} and doc["set-threads"]["yes"] == 2


def test_output_formats(runs, tmp_path):
    d, rs = runs
    g = summarize([str(d)])
    data = json.loads(write_output(g, "json", None))
    assert isinstance(data, list) and data[0]["rule"] == "align" and set(data[0]) == set(g.columns)
    rows = list(csv.DictReader(io.StringIO(write_output(g, "csv", None).decode())))
    assert [r["rule"] for r in rows] == ["align", "call", "sort"] and float(rows[0]["wall_time_secs_max"]) == 12.5
    out = tmp_path / "g.parquet"
    assert write_output(g, "parquet", str(out)) is None
    assert pl.read_parquet(out).equals(g)
    with pytest.raises(UsageError):
        write_output(g, "parquet", None)
    for width in (60, 100, 200):
        text = render_table(g, width=width)
        assert max(len(line) for line in text.splitlines()[:-1]) <= max(width, 40)
        assert text.splitlines()[1].startswith("align")


def test_snakemake_tsv_of_runs(runs):
    d, rs = runs
    per = run_table([str(d)])
    text = snakemake_tsv(per)
    lines = text.splitlines()
    assert lines[0] == "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
    assert len(lines) == len(rs) + 1
    by_path = dict(zip(per["path"], lines[1:], strict=True))
    r = rs[1]  # a2.jsonl: wall 12.5, cpu 41
    cells = by_path[str(r.path)].split("\t")
    assert cells[0] == "12.50" and cells[1] == "0:00:12"
    assert cells[2] == f"{max(max(r.rss), r.peak_proc) / 1024:.2f}" and cells[3] == f"{max(r.vms) / 1024:.2f}"
    assert cells[4:6] == ["NA", "NA"] and cells[8] == f"{41.0 / 12.5 * 100:.2f}" and cells[9] == "41.00"
    cut = dict(zip(per["path"], lines[1:], strict=True))[str(rs[5].path)].split("\t")
    assert cut[0] == f"{rs[5].sampled['total_time_secs']:.2f}" and cut[9] == "NA"


def test_hms_like_snakemake():
    assert hms(0) == "0:00:00" and hms(59.99) == "0:00:59" and hms(3725.9) == "1:02:05"
    assert hms(86400 + 3661) == "1 day, 1:01:01" and hms(2 * 86400) == "2 days, 0:00:00"


def test_benchmark_sink(tmp_path):
    f = tmp_path / "bench.tsv"
    sink = BenchmarkSink(str(f))
    r = Run(tmp_path / "r.jsonl", rule="a", n=4, wall=75.5, cpu=151.0, seed=2)
    for line in r.path.read_text().splitlines():
        obj = json.loads(line)
        kind = obj.pop("kind")
        if kind == "tree":
            agg = Aggregated(**obj["aggregated"])
            sink.write(TreeSample(obj["ts_ms"], None, [], agg))
        elif kind == "summary":
            sink.write(RunSummary(**obj))
    assert not f.exists()  # written at close, in one piece
    sink.close()
    header, row = f.read_text().splitlines()
    assert header == benchmark_header()
    cells = row.split("\t")
    assert cells[:2] == ["75.50", "0:01:15"]
    assert cells[2] == f"{max(max(r.rss), r.peak_proc) / 1024:.2f}" and cells[3] == f"{max(r.vms) / 1024:.2f}"
    assert cells[6] == f"{200 * 3 / 1024 / 1024:.2f}" and cells[8] == "200.00" and cells[9] == "151.00"
    with pytest.raises(OSError):
        BenchmarkSink(str(tmp_path / "missing" / "b.tsv"))


def test_column_contract_is_declared():
    names = schema.table_names_of("group", key=("rule",))
    for want in ("rule", "runs", "failed", "wall_time_secs_mean", "wall_time_secs_p95", "wall_time_secs_max",
                 "cpu_time_secs_sum", "cpu_time_secs_mean", "cores_mean", "cores_max", "peak_mem_rss_kb_mean",
                 "peak_mem_rss_kb_p95", "peak_mem_rss_kb_max", "peak_process_rss_kb_max", "disk_read_bytes_sum",
                 "disk_write_bytes_sum"):
        assert want in names
    run_names = schema.table_names_of("run")
    assert set(schema.names("summary")) - {"exact"} <= set(run_names)


def test_sampled_figures_follow_the_live_accumulator():
    """The per-run figures recomputed from rows cover exactly the sampled fields of the summary."""
    from denet.summaries import _ROW_ONLY, _SAMPLED, _row_stats_exprs

    assert set(_row_stats_exprs()) == set(_SAMPLED) | set(_ROW_ONLY)


def test_the_same_run_in_two_files_counts_once(tmp_path):
    r = Run(tmp_path / "a.parquet", rule="x", n=3, seed=1)
    Run(tmp_path / "a.jsonl", rule="x", n=3, seed=1)  # the same records: the same run id
    notes = []
    t = run_table([str(tmp_path)], on_note=notes.append)
    assert t.height == 1 and len(notes) == 1 and "counted once" in notes[0]
    assert t["sample_count"].to_list() == [r.sampled["sample_count"]]


def test_progress_bar_only_on_a_terminal_and_for_many_files(monkeypatch, capfd):
    import sys

    from denet.cli import _ProgressBar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    bar = _ProgressBar("reading")
    for i in range(101):
        bar(i, 100)
    assert capfd.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = _ProgressBar("reading")
    bar(0, 10)
    bar(10, 10)
    assert capfd.readouterr().err == ""  # few files: no bar
    bar = _ProgressBar("reading")
    bar(0, 100)
    bar(100, 100)
    err = capfd.readouterr().err
    assert "reading [" in err and "100/100" in err and err.endswith("\r\x1b[K")


def test_file_names_with_glob_characters(tmp_path):
    d = tmp_path / "w[1]"
    d.mkdir()
    a = Run(d / "r[1].jsonl", rule="a", n=4, seed=1)
    b = Run(d / "r*2.parquet", rule="a", n=5, seed=2)
    c = Run(d / "r?3.jsonl", rule="a", n=3, seed=3, finished=False)
    t = {r["path"]: r for r in run_table([str(d)]).iter_rows(named=True)}
    for r in (a, b, c):
        assert t[str(r.path)]["max_cpu_usage"] == r.sampled["max_cpu_usage"]
        assert t[str(r.path)]["sample_count"] == r.sampled["sample_count"]
    ds = tmp_path / "d[s]"
    compact([str(d)], str(ds))
    assert summarize([str(ds)]).equals(summarize([str(d)]))
