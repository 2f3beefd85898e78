"""`denet summarize` / `compact` on real runs: several rules, a failed run, JSONL and Parquet files;
figures checked against values computed here from the files themselves."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from pathlib import Path

import pytest

from .helpers import BURN_FN, PY, denet, no_traceback

pytestmark = pytest.mark.integration

pq = pytest.importorskip("pyarrow.parquet")
pl = pytest.importorskip("polars")

NL = b"\n"
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"

# (file name, labels, command)
RUNS = [
    ("align_A.parquet", ["rule=align", "sample=A", "threads=2"], [PY, "-c", BURN_FN + "burn(0.25)"]),
    ("align_B.jsonl", ["rule=align", "sample=B", "threads=2"], [PY, "-c", BURN_FN + "burn(0.35)"]),
    ("sub/align_C.parquet", ["rule=align", "sample=C", "threads=2"], [PY, "-c", BURN_FN + "burn(0.15)"]),
    ("sort_A.jsonl", ["rule=sort", "sample=A"], ["sh", "-c", "seq 200000 | sort -n > /dev/null"]),
    ("sub/sort_B.parquet", ["rule=sort", "sample=B"], ["sh", "-c", "seq 100000 | sort -rn > /dev/null; sleep 0.2"]),
    ("fail_A.jsonl", ["rule=fail", "sample=A"], ["sh", "-c", "sleep 0.2; exit 3"]),
]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("wf")
    (d / "sub").mkdir()
    for name, labels, cmd in RUNS:
        args = ["--out", str(d / name), "--interval", "20", "run"]
        for lab in labels:
            args += ["--label", lab]
        r = denet(*args, "--", *cmd)
        assert r.returncode == (3 if name.startswith("fail") else 0), r.stderr
    return d


def read_file(path: Path) -> dict:
    """Summary, labels and tree rows of a run file, read without denet."""
    if path.suffix == ".parquet":
        kv = pq.read_schema(path).metadata
        meta, summ = json.loads(kv[b"denet.metadata"]), json.loads(kv[b"denet.summary"])
        t = pq.read_table(path).to_pylist()
        trees = [r for r in t if r["scope"] == "tree"]
    else:
        recs = [json.loads(x) for x in path.read_text().splitlines()]
        meta = next(r for r in recs if r["kind"] == "metadata")
        summ = next(r for r in recs if r["kind"] == "summary")
        trees = [r["aggregated"] for r in recs if r["kind"] == "tree" and r["aggregated"]]
    return {"labels": meta["labels"], "summary": summ, "trees": trees, "path": str(path)}


def p95(xs):
    return xs[0] if len(xs) == 1 else statistics.quantiles(xs, n=100, method="inclusive")[94]


def files(d: Path) -> list[dict]:
    return [read_file(d / name) for name, _, _ in RUNS]


def test_group_summary_matches_the_files(workflow):
    r = denet("summarize", str(workflow), "--format", "json")
    assert r.returncode == 0, r.stderr
    groups = {g["rule"]: g for g in json.loads(r.stdout)}
    assert sorted(groups) == ["align", "fail", "sort"]
    runs = files(workflow)
    for rule, g in groups.items():
        mine = [f for f in runs if f["labels"]["rule"] == rule]
        s = [f["summary"] for f in mine]
        assert g["runs"] == len(mine)
        assert g["failed"] == sum(x["exit_code"] != 0 for x in s)
        walls = [x["wall_time_secs"] for x in s]
        assert g["wall_time_secs_mean"] == pytest.approx(statistics.fmean(walls))
        assert g["wall_time_secs_p95"] == pytest.approx(p95(walls))
        assert g["wall_time_secs_max"] == pytest.approx(max(walls))
        cpus = [x["cpu_time_secs"] for x in s]
        assert g["cpu_time_secs_sum"] == pytest.approx(sum(cpus))
        assert g["cpu_time_secs_mean"] == pytest.approx(statistics.fmean(cpus))
        cores = [c / w for c, w in zip(cpus, walls, strict=True)]
        assert g["cores_mean"] == pytest.approx(statistics.fmean(cores))
        assert g["cores_max"] == pytest.approx(max(cores))
        rss = [x["peak_mem_rss_kb"] for x in s]
        assert g["peak_mem_rss_kb_max"] == max(rss)
        assert g["peak_mem_rss_kb_mean"] == pytest.approx(statistics.fmean(rss))
        assert g["peak_mem_rss_kb_p95"] == pytest.approx(p95(rss))
        assert g["peak_process_rss_kb_max"] == max(x["peak_process_rss_kb"] for x in s)
        assert g["disk_read_bytes_sum"] == sum(x["total_disk_read_bytes"] for x in s)
        assert g["disk_write_bytes_sum"] == sum(x["total_disk_write_bytes"] for x in s)
        assert g["max_cpu_usage_max"] == pytest.approx(max(t["cpu_usage"] for f in mine for t in f["trees"]))
    align = groups["align"]
    assert align["threads_max"] == 2
    assert align["cpu_efficiency_mean"] == pytest.approx(statistics.fmean(
        f["summary"]["cpu_time_secs"] / f["summary"]["wall_time_secs"] / 2
        for f in runs if f["labels"]["rule"] == "align"))
    assert groups["sort"]["cpu_efficiency_mean"] is None
    assert groups["align"]["cpu_time_secs_sum"] >= 0.7  # 0.25 + 0.35 + 0.15 s burnt, exactly counted


def test_per_run_csv_matches_each_file(workflow):
    r = denet("summarize", str(workflow), "--per-run", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = {row["path"]: row for row in csv.DictReader(io.StringIO(r.stdout.decode()))}
    assert len(rows) == len(RUNS)
    for f in files(workflow):
        row = rows[f["path"]]
        s = f["summary"]
        assert row["rule"] == f["labels"]["rule"] and row["sample"] == f["labels"]["sample"]
        assert float(row["cpu_time_secs"]) == pytest.approx(s["cpu_time_secs"])
        assert int(row["exit_code"]) == s["exit_code"] and row["failed"] == str(s["exit_code"] != 0).lower()
        assert int(row["sample_count"]) == s["sample_count"] == len(f["trees"])
        assert float(row["max_cpu_usage"]) == pytest.approx(max(t["cpu_usage"] for t in f["trees"]))
        assert int(row["peak_mem_vms_kb"]) == max(t["mem_vms_kb"] for t in f["trees"])
        assert row["complete"] == "true"


def test_table_fits_the_terminal(workflow):
    for cols in ("60", "100", "200"):
        r = denet("summarize", str(workflow), env={**os.environ, "COLUMNS": cols})
        assert r.returncode == 0, r.stderr
        lines = r.stdout.decode().splitlines()
        assert lines[0].split()[0] == "rule" and [x.split()[0] for x in lines[1:4]] == ["align", "fail", "sort"]
        assert all(len(x) <= int(cols) for x in lines[:-1]), lines
    r = denet("summarize", str(workflow), "--per-run", env={**os.environ, "COLUMNS": "100"})
    assert len(r.stdout.decode().splitlines()) == len(RUNS) + 2


def test_output_files_and_snakemake_tsv(workflow, tmp_path):
    out = tmp_path / "g.parquet"
    r = denet("summarize", str(workflow), "--format", "parquet", "-o", str(out))
    assert r.returncode == 0 and r.stdout == b""
    assert pl.read_parquet(out)["rule"].to_list() == ["align", "fail", "sort"]
    r = denet("summarize", str(workflow), "--format", "snakemake-tsv")
    lines = r.stdout.decode().splitlines()
    assert lines[0] == HEADER and len(lines) == len(RUNS) + 1
    assert all(len(x.split("\t")) == 10 for x in lines)
    r = denet("summarize", str(workflow), "--format", "parquet")
    assert r.returncode == 2 and b"needs -o FILE" in r.stderr


def test_suggest_prints_a_snakemake_profile(workflow, tmp_path):
    r = denet("summarize", str(workflow), "--suggest", "--mem-headroom", "1.5", "--runtime-headroom", "2")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    runs = files(workflow)
    align = [f["summary"] for f in runs if f["labels"]["rule"] == "align"]
    mem = math.ceil(max(max(s["peak_mem_rss_kb"], s["peak_process_rss_kb"]) for s in align) / 1024 * 1.5)
    cores = [s["cpu_time_secs"] / s["wall_time_secs"] for s in align]
    assert f"set-resources:\n  align:\n    mem_mb: {mem}\n    runtime: 1\n" in text
    assert f"set-threads:\n  align: {max(1, math.ceil(round(p95(cores), 2)))}\n" in text
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(text)
    assert set(doc["set-resources"]) == set(doc["set-threads"]) == {"align", "fail", "sort"}
    assert all(set(v) == {"mem_mb", "runtime"} for v in doc["set-resources"].values())
    out = tmp_path / "profile.yaml"
    assert denet("summarize", str(workflow), "--suggest", "--mem-headroom", "1.5", "--runtime-headroom", "2", "-o",
                 str(out)).returncode == 0
    assert out.read_text() == text


def test_compact_then_summarize_the_dataset(workflow, tmp_path):
    ds = tmp_path / "ds"
    r = denet("compact", str(workflow), "-o", str(ds), "--by", "rule")
    assert r.returncode == 0, r.stderr
    assert b"compacted 6 runs" in r.stderr
    a = json.loads(denet("summarize", str(ds), "--format", "json").stdout)
    b = json.loads(denet("summarize", str(workflow), "--format", "json").stdout)
    assert a == b
    r = denet("compact", str(workflow), "-o", str(ds))
    assert r.returncode == 2 and b"already exists" in r.stderr


def test_stats_reads_parquet(workflow):
    r = denet("stats", "--json", str(workflow / "align_A.parquet"))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    expected = {k: v for k, v in read_file(workflow / "align_A.parquet")["summary"].items() if k != "kind"}
    assert s == expected


def _bad(kind: str, d: Path, good: Path) -> tuple[Path, str]:
    if kind == "truncated":
        f = d / "t.jsonl"
        data = good.read_bytes()[:-30]
        f.write_bytes(data)
        return f, f"{f}:{data.count(NL) + 1}: truncated record"
    if kind == "garbage":
        f = d / "g.jsonl"
        f.write_bytes(os.urandom(2048) + b"\0")
        return f, f"{f}: not a denet record file (binary data)"
    if kind == "empty":
        f = d / "e.jsonl"
        f.write_bytes(b"")
        return f, f"{f}: empty file"
    if kind == "parquet-cut":
        f = d / "c.parquet"
        src = good.with_name("align_A.parquet")
        data = src.read_bytes()
        f.write_bytes(data[: len(data) // 2])
        return f, f"{f}: not a complete Parquet file"
    f = d / "v.jsonl"
    lines = good.read_text().splitlines()
    meta = json.loads(lines[0])
    meta["schema_version"] = 42
    f.write_text("\n".join([json.dumps(meta)] + lines[1:]) + "\n")
    return f, f"{f}:1: written with record schema version 42; this denet reads versions up to 1"


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "parquet-cut", "version"])
def test_bad_inputs_name_the_file_and_fail(workflow, tmp_path, kind):
    f, message = _bad(kind, tmp_path, workflow / "align_B.jsonl")
    r = denet("summarize", str(f))
    no_traceback(r.stderr)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert message.encode() in r.stderr, r.stderr
    # among good files: stops at the bad one, or skips it with --skip-bad
    r = denet("summarize", str(workflow), str(f), "--format", "json")
    assert r.returncode == 1 and message.encode() in r.stderr and r.stdout == b""
    r = denet("summarize", str(workflow), str(f), "--format", "json", "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert b"skipped " + message.encode() in r.stderr
    assert sum(g["runs"] for g in json.loads(r.stdout)) == len(RUNS)


def test_usage_errors(workflow, tmp_path):
    r = denet("summarize", str(tmp_path / "missing"))
    assert r.returncode == 1 and b"no such file or directory" in r.stderr
    r = denet("summarize", str(workflow), "--by", "nope")
    assert r.returncode == 2 and b"--by nope" in r.stderr
    r = denet("summarize", str(tmp_path / "*.none"))
    assert r.returncode == 1 and b"no file matches" in r.stderr
    (tmp_path / "only_bad.jsonl").write_bytes(b"")
    r = denet("summarize", str(tmp_path / "only_bad.jsonl"), "--skip-bad")
    assert r.returncode == 1 and b"no runs found" in r.stderr
    no_traceback(r.stderr)
