"""The Parquet sink: journal while running, tidy rows in a zstd Parquet file at close, never corrupt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from denet import schema  # noqa: E402
from denet.errors import SchemaVersionError  # noqa: E402
from denet.records import Aggregated, Capability, Child, Metrics, RunHeader, RunSummary, TreeSample  # noqa: E402
from denet.sinks import JsonlSink  # noqa: E402
from denet.sinks.parquet import (  # noqa: E402
    KV,
    ParquetSink,
    destination_of,
    journal_path,
    journal_to_parquet,
    jsonl_tables,
    read_journal,
)


def header(pid=100, labels=None, version=1):
    caps = {k: Capability(False, "off") for k in ("gpu", "ebpf", "psi", "perf_hw")}
    return RunHeader(pid=pid, cmd=["/usr/bin/tool", "x"], executable="/usr/bin/tool", t0_ms=1_000, capabilities=caps,
                     schema_version=version, denet_version="test", labels=labels or {"rule": "a"}, interval_ms=100,
                     max_interval_ms=1000, include_children=True, since_process_start=False)


def metrics(ts, cpu, rss, gpu=None):
    return Metrics(ts, cpu, rss, rss * 2, 10 * ts, 5 * ts, 0, 0, 1, ts // 1000, 0, 7, 8, 9, 0, gpu)


def tree(ts, kids=((201, "b"), (200, "a")), gpu=None):
    root = metrics(ts, 10.0, 1000)
    children = [Child(pid, name, metrics(ts, 5.0 + pid % 10, 500 + pid)) for pid, name in kids]
    agg = Aggregated(ts, 10.0 + sum(c.metrics.cpu_usage for c in children),
                     1000 + sum(c.metrics.mem_rss_kb for c in children), 0, 0, 0, 0, 0, 1 + len(children),
                     1 + len(children), 0, None, None, None, None, gpu)
    return TreeSample(ts, root, children, agg)


def summary(n):
    return RunSummary(total_time_secs=1.0, sample_count=n, max_processes=3, max_threads=3, total_disk_read_bytes=0,
                      total_disk_write_bytes=0, total_syscall_read_bytes=0, total_syscall_write_bytes=0,
                      total_sys_net_rx_bytes=0, total_sys_net_tx_bytes=0, peak_mem_rss_kb=2000, avg_cpu_usage=25.0,
                      exit_code=0, wall_time_secs=1.5, cpu_user_secs=0.5, cpu_system_secs=0.1, cpu_time_secs=0.6,
                      peak_process_rss_kb=1500, exact=["exit_code"])


def write(sink, recs):
    for r in recs:
        sink.write(r)
    sink.close()


def records(n=5, **kw):
    return [header(), *[tree(1000 * (i + 1), **kw) for i in range(n)], summary(n)]


def test_journal_names():
    assert journal_path("/d/run.parquet") == "/d/.run.parquet.journal"
    assert destination_of("/d/.run.parquet.journal") == "/d/run.parquet"
    assert destination_of("/d/run.parquet") is None
    assert destination_of("/d/.journal") is None


def test_sink_writes_tidy_zstd_parquet_and_removes_the_journal(tmp_path):
    dest = tmp_path / "run.parquet"
    sink = ParquetSink(str(dest))
    assert os.path.exists(journal_path(str(dest))) and not dest.exists()
    write(sink, records(5))
    assert dest.exists() and not os.path.exists(journal_path(str(dest)))
    assert sink.failed is None
    pf = pq.ParquetFile(dest)
    assert pf.schema_arrow.names == list(schema.table_names_of("rows"))
    for f in schema.table_fields("rows"):
        assert pf.schema_arrow.field(f.name).type == schema.arrow_type(f.type)
    md = pf.metadata
    assert all(md.row_group(0).column(i).compression == "ZSTD" for i in range(md.num_columns))
    kv = pf.schema_arrow.metadata
    assert json.loads(kv[KV["metadata"].encode()])["labels"] == {"rule": "a"}
    assert json.loads(kv[KV["summary"].encode()])["cpu_time_secs"] == 0.6
    assert kv[KV["schema_version"].encode()] == b"1"
    rows = pf.read().to_pylist()
    scopes = [r["scope"] for r in rows]
    assert scopes == ["tree"] * 5 + ["root"] * 5 + ["child"] * 10
    assert {r["run_id"] for r in rows} == {kv[KV["run_id"].encode()].decode()}
    # children in pid order, each in time order
    kids = [(r["pid"], r["ts_ms"]) for r in rows if r["scope"] == "child"]
    assert kids == sorted(kids)
    assert [r["command"] for r in rows if r["scope"] == "child"][:5] == ["a"] * 5
    root = [r for r in rows if r["scope"] == "root"]
    assert {r["pid"] for r in root} == {100} and {r["command"] for r in root} == {"tool"}
    tr = [r for r in rows if r["scope"] == "tree"]
    assert [r["process_count"] for r in tr] == [3] * 5 and tr[0]["mem_rss_kb"] == 1000 + 700 + 701
    assert tr[0]["pid"] is None and tr[0]["command"] is None
    # tree rows sit in row groups of their own, so readers of the tree skip the process rows
    first = md.row_group(0).column(pf.schema_arrow.names.index("scope")).statistics
    assert first.min == first.max == "tree"


def test_sample_records_become_sample_rows(tmp_path):
    dest = tmp_path / "s.parquet"
    recs = [header(), *[metrics(1000 * i, 50.0, 100 * i) for i in range(1, 4)]]
    write(ParquetSink(str(dest)), recs)
    rows = pq.read_table(dest).to_pylist()
    assert [r["scope"] for r in rows] == ["sample"] * 3
    assert [r["mem_rss_kb"] for r in rows] == [100, 200, 300] and rows[0]["pid"] == 100


def test_fast_path_equals_the_record_by_record_path(tmp_path):
    j = tmp_path / "r.jsonl"
    write(JsonlSink(str(j)), records(7))
    b, rid, t, p, bad = jsonl_tables(str(j), lenient_last_line=False)
    assert b.fast_rows == t.num_rows + p.num_rows == 7 * 4
    slow, _ = read_journal(str(j))
    t2, p2 = slow.tables(rid)
    assert t.equals(t2) and p.equals(p2)


def test_json_valued_fields_go_through_the_slow_path(tmp_path):
    from denet.records import GpuAggregated, GpuDevice

    def gpu(util):
        return GpuAggregated(0, 0, None, [], [GpuDevice(0, "GPU", "GPU-0", util, 1, 10, 5, 5, 40, 50.0)])

    j = tmp_path / "g.jsonl"
    write(JsonlSink(str(j)), [header(), tree(1000, gpu=gpu(50)), tree(2000, gpu=gpu(70))])
    b, rid, t, p, bad = jsonl_tables(str(j), lenient_last_line=False)
    assert b.fast_rows == 0  # the fast path refused the JSON objects
    assert [json.loads(g)["devices"][0]["utilization_pct"] for g in t.column("gpu").to_pylist()] == [50, 70]


def test_a_journal_cut_mid_line_is_recovered_up_to_the_last_complete_record(tmp_path):
    dest = tmp_path / "k.parquet"
    j = journal_path(str(dest))
    write(JsonlSink(j), records(4)[:-1])  # no summary: the run was killed
    with open(j, "ab") as fh:
        fh.write(b'{"kind":"tree","ts_ms":9000,"parent":{"ts_ms":9')
    r = journal_to_parquet(j)
    assert r.dest == str(dest) and not r.complete and r.bad_lines == [] and r.records == 4
    assert not os.path.exists(j)
    kv = pq.read_schema(dest).metadata
    assert KV["summary"].encode() not in kv
    assert pq.read_table(dest).num_rows == 16


def test_an_unknown_schema_version_in_a_journal_is_refused(tmp_path):
    j = tmp_path / ".v.parquet.journal"
    write(JsonlSink(str(j)), [header(version=99), tree(1000)])
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        journal_to_parquet(str(j))
    assert j.exists() and not (tmp_path / "v.parquet").exists()


def test_a_failed_conversion_keeps_the_journal_and_says_how_to_recover(tmp_path, monkeypatch):
    import denet.sinks.parquet as mod

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mod, "write_rows_parquet", boom)
    dest = tmp_path / "f.parquet"
    sink = ParquetSink(str(dest))
    for r in records(2):
        sink.write(r)
    with pytest.raises(OSError, match="denet recover"):
        sink.close()
    assert os.path.exists(journal_path(str(dest))) and not dest.exists()
    assert sink.failed is not None


def test_sink_refuses_a_directory_and_a_missing_directory(tmp_path):
    with pytest.raises(OSError):
        ParquetSink(str(tmp_path))
    with pytest.raises(OSError):
        ParquetSink(str(tmp_path / "nope" / "x.parquet"))


def test_conversion_does_not_import_pandas(tmp_path):
    """pyarrow imports pandas (most of a second) when Python lists become arrays and numpy is
    installed; the conversion at close must not pay that."""
    cases = {"p": records(3), "none": [header(), summary(0)],
             "samples": [header(), metrics(1000, 1.0, 10), metrics(2000, 2.0, 20)]}
    for name, recs in cases.items():
        j = tmp_path / f".{name}.parquet.journal"
        write(JsonlSink(str(j)), recs)
        code = ("import sys; from denet.sinks.parquet import journal_to_parquet; "
                f"journal_to_parquet({str(j)!r}); print('pandas' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "False", name
        assert (tmp_path / f"{name}.parquet").exists()


def test_polars_reads_the_file_without_denet(tmp_path):
    pl = pytest.importorskip("polars")
    dest = tmp_path / "run.parquet"
    write(ParquetSink(str(dest)), records(3))
    df = pl.read_parquet(dest)
    assert df.filter(pl.col("scope") == "tree").height == 3
    assert "denet.summary" in pl.read_parquet_metadata(dest)


def test_duckdb_reads_the_file_without_denet(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install duckdb)")
    dest = tmp_path / "run.parquet"
    write(ParquetSink(str(dest)), records(3))
    con = duckdb.connect()
    n = con.execute(f"select count(*) from read_parquet('{dest}') where scope = 'child'").fetchone()[0]
    assert n == 6
    keys = {r[0] for r in con.execute(f"select decode(key) from parquet_kv_metadata('{dest}')").fetchall()}
    assert {"denet.metadata", "denet.summary", "denet.schema_version"} <= keys
