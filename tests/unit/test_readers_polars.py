"""Readers: every input format into run entries and polars frames with canonical columns; bad
inputs refused with a message naming the file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

from test_parquet_sink import header, records, summary, tree  # noqa: E402

from denet import schema  # noqa: E402
from denet.errors import InputError, SchemaVersionError  # noqa: E402
from denet.readers import (  # noqa: E402
    detect_format,
    effective_summary,
    entries_of,
    find_inputs,
    read_run,
    scan_rows,
)
from denet.sinks import JsonlSink  # noqa: E402
from denet.sinks.parquet import ParquetSink, journal_path  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def both(tmp_path, recs, name="run"):
    j, p = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.parquet"
    for sink in (JsonlSink(str(j)), ParquetSink(str(p))):
        for r in recs:
            sink.write(r)
        sink.close()
    return j, p


def test_formats_are_detected(tmp_path):
    j, p = both(tmp_path, records(2))
    assert detect_format(str(j)) == "denet-jsonl"
    assert detect_format(str(p)) == "denet-parquet"
    assert detect_format(str(FIXTURES / "rust_tree_untagged.jsonl")) == "rust-jsonl"
    assert detect_format(str(FIXTURES / "snakemake_bench_basic.tsv")) == "snakemake-tsv"
    assert detect_format(str(FIXTURES / "snakemake_bench.jsonl")) == "snakemake-jsonl"
    jr = tmp_path / ".x.parquet.journal"
    shutil.copy(j, jr)
    assert detect_format(str(jr)) == "denet-journal"
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([{"ts_ms": 1, "cpu_usage": 1.0, "mem_rss_kb": 2}]))
    assert detect_format(str(arr)) == "denet-json"


def test_the_same_run_reads_the_same_from_jsonl_and_parquet(tmp_path):
    j, p = both(tmp_path, records(4))
    ej, ep = entries_of(str(j))[0], entries_of(str(p))[0]
    assert ej.run_id == ep.run_id
    assert ej.metadata == {k: v for k, v in ep.metadata.items()}
    assert ej.summary == ep.summary and ej.summary["cpu_time_secs"] == 0.6
    rj = scan_rows(str(j)).collect()
    rp = scan_rows(str(p)).collect()
    assert rj.columns == list(schema.table_names_of("rows"))
    assert rj.equals(rp)
    assert effective_summary(read_run(str(j))) == effective_summary(read_run(str(p)))


def test_rust_untagged_files_with_old_names(tmp_path):
    f = FIXTURES / "rust_tree_untagged.jsonl"
    e = entries_of(str(f))[0]
    assert e.format == "rust-jsonl" and e.metadata["pid"] == 4242 and e.summary is None
    rows = scan_rows(str(f)).collect()
    tree_rows = rows.filter(pl.col("scope") == "tree")
    raw = [json.loads(x) for x in f.read_text().splitlines()[1:]]
    assert tree_rows["sys_net_rx_bytes"].to_list() == [r["aggregated"]["net_rx_bytes"] for r in raw if r["aggregated"]]
    assert rows.filter(pl.col("scope") == "child")["command"].unique().to_list() == ["worker"]
    s = FIXTURES / "rust_samples_untagged.jsonl"
    srows = scan_rows(str(s)).collect()
    assert set(srows["scope"]) == {"sample"} and srows.height == len(s.read_text().splitlines()) - 1


def test_snakemake_tsv_basic_and_extended():
    basic = entries_of(str(FIXTURES / "snakemake_bench_basic.tsv"))
    assert len(basic) == 2  # repeat() writes one row per repetition
    s = basic[0].summary
    assert s["wall_time_secs"] == 31.34 and s["cpu_time_secs"] == 30.54 and s["avg_cpu_usage"] == 97.41
    assert s["peak_mem_rss_kb"] == round(1125.46 * 1024) and s["total_disk_read_bytes"] == round(0.38 * 1024 * 1024)
    assert basic[0].sampled["peak_mem_vms_kb"] == round(2078.84 * 1024)
    assert basic[0].labels == {} and basic[0].run_id != basic[1].run_id
    ext = entries_of(str(FIXTURES / "snakemake_bench_extended.tsv"))
    assert ext[0].labels == {"rule": "align", "threads": "2", "jobid": "3", "wildcards": "sample=A"}
    assert ext[1].labels["rule"] == "index" and ext[1].summary["peak_mem_rss_kb"] is None
    assert ext[1].summary["wall_time_secs"] == 0.01


def test_snakemake_jsonl():
    es = entries_of(str(FIXTURES / "snakemake_bench.jsonl"))
    assert [e.labels["rule"] for e in es] == ["sort", "sort"]
    assert es[0].labels["wildcards"] == "sample=B" and es[0].labels["threads"] == "1"
    assert es[0].summary["wall_time_secs"] == 62.0003 and es[0].summary["cpu_time_secs"] == 61.2
    assert es[1].summary["cpu_time_secs"] is None


# ------------------------------------------------------------------------------- bad inputs


def test_truncated_jsonl_names_file_and_line(tmp_path):
    j, _ = both(tmp_path, records(3))
    data = j.read_bytes()
    j.write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError, match=rf"{j}:5: truncated record"):
        entries_of(str(j))


def test_binary_garbage_and_empty_files(tmp_path):
    g = tmp_path / "g.jsonl"
    g.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match=rf"{g}: not a denet record file \(binary data\)"):
        detect_format(str(g))
    e = tmp_path / "e.jsonl"
    e.write_bytes(b"")
    with pytest.raises(InputError, match=rf"{e}: empty file"):
        detect_format(str(e))
    t = tmp_path / "t.txt"
    t.write_text("hello world\n")
    with pytest.raises(InputError, match="neither JSON lines, Parquet"):
        detect_format(str(t))


def test_parquet_cut_in_half(tmp_path):
    _, p = both(tmp_path, records(20))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"{p}: not a complete Parquet file"):
        entries_of(str(p))
    with pytest.raises(InputError, match=rf"{p}: not a complete Parquet file"):
        read_run(str(p))


def test_unknown_schema_versions_are_refused_in_plain_words(tmp_path):
    import pyarrow.parquet as pq

    j = tmp_path / "v7.jsonl"
    sink = JsonlSink(str(j))
    for r in [header(version=7), tree(1000), summary(1)]:
        sink.write(r)
    sink.close()
    with pytest.raises(SchemaVersionError, match=r"schema version 7; this denet reads versions up to 1"):
        entries_of(str(j))
    _, p = both(tmp_path, records(1))
    t = pq.read_table(p)
    kv = dict(t.schema.metadata)
    kv[b"denet.schema_version"] = b"7"
    pq.write_table(t.replace_schema_metadata(kv), p)
    with pytest.raises(SchemaVersionError, match=rf"{p}: written with record schema version 7"):
        entries_of(str(p))


def test_parquet_not_written_by_denet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": pa.nulls(2, pa.int64())}), f)
    with pytest.raises(InputError, match="not one written by denet"):
        entries_of(str(f))


def test_bad_snakemake_rows(tmp_path):
    f = tmp_path / "b.tsv"
    header_line = (FIXTURES / "snakemake_bench_basic.tsv").read_text().splitlines()[0]
    f.write_text(header_line + "\n1.0\t0:00:01\tabc\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n")
    with pytest.raises(InputError, match=rf"{f}:2: column max_rss: not a number"):
        entries_of(str(f))
    f.write_text(header_line + "\n1.0\t0:00:01\n")
    with pytest.raises(InputError, match=rf"{f}:2: 2 tab-separated columns"):
        entries_of(str(f))


# ------------------------------------------------------------------------------- finding inputs


def test_find_inputs_dirs_globs_and_journals(tmp_path):
    d = tmp_path / "runs"
    (d / "a" / "b").mkdir(parents=True)
    both(d / "a", records(1), name="r1")
    both(d / "a" / "b", records(1), name="r2")
    shutil.copy(FIXTURES / "snakemake_bench_basic.tsv", d / "bench.tsv")
    (d / "notes.tsv").write_text("x\ty\n")
    (d / "readme.txt").write_text("hi")
    # a journal whose Parquet file exists (killed between rename and unlink) is not read twice
    shutil.copy(d / "a" / "r1.jsonl", journal_path(str(d / "a" / "r1.parquet")))
    # a journal of a run cut short is read; an empty one (killed before the first line) is not
    shutil.copy(d / "a" / "r1.jsonl", journal_path(str(d / "a" / "cut.parquet")))
    Path(journal_path(str(d / "a" / "empty.parquet"))).write_bytes(b"")
    skipped = []
    found = find_inputs([str(d)], on_skip=skipped.append)
    names = sorted(os.path.relpath(f, d) for f in found)
    assert names == ["a/.cut.parquet.journal", "a/b/r2.jsonl", "a/b/r2.parquet", "a/r1.jsonl", "a/r1.parquet",
                     "bench.tsv"]
    assert skipped and "notes.tsv" in skipped[0]
    assert sorted(find_inputs([str(d / "**" / "*.parquet")])) == sorted(
        [str(d / "a" / "r1.parquet"), str(d / "a" / "b" / "r2.parquet")])
    with pytest.raises(InputError, match="no file matches"):
        find_inputs([str(d / "*.nothing")])
    with pytest.raises(InputError, match="no such file or directory"):
        find_inputs([str(d / "missing.jsonl")])


def test_journal_entries_tolerate_a_cut_last_line(tmp_path):
    j = tmp_path / ".k.parquet.journal"
    sink = JsonlSink(str(j))
    for r in records(3)[:-1]:
        sink.write(r)
    sink.close()
    with open(j, "ab") as fh:
        fh.write(b'{"kind":"tree","ts_')
    e = entries_of(str(j))[0]
    assert e.format == "denet-journal" and e.summary is None
    rows = scan_rows(str(j)).collect()
    assert rows.filter(pl.col("scope") == "tree").height == 3


def test_rust_files_summarise_through_the_batch_reader():
    from denet.summaries import run_table

    tree_f, samples_f = FIXTURES / "rust_tree_untagged.jsonl", FIXTURES / "rust_samples_untagged.jsonl"
    t = run_table([str(tree_f), str(samples_f)])
    assert t["format"].to_list() == ["rust-jsonl", "rust-jsonl"] and t["complete"].to_list() == [False, False]
    for f, row in zip((tree_f, samples_f), t.iter_rows(named=True), strict=True):
        recs = [json.loads(x) for x in f.read_text().splitlines()[1:]]
        vals = [r["aggregated"] for r in recs if r.get("aggregated")] if "parent" in recs[0] else recs
        assert row["sample_count"] == len(vals)
        assert row["max_cpu_usage"] == max(v["cpu_usage"] for v in vals)
        assert row["peak_mem_rss_kb"] == max(v["mem_rss_kb"] for v in vals)
        assert row["total_sys_net_rx_bytes"] == vals[-1]["net_rx_bytes"]
        assert row["total_time_secs"] == pytest.approx((vals[-1]["ts_ms"] - vals[0]["ts_ms"]) / 1000)
        assert row["command"] == " ".join(json.loads(f.read_text().splitlines()[0])["cmd"])
