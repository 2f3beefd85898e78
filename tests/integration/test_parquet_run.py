"""`denet run --out x.parquet` end to end: real runs, the file read without denet, pyarrow loaded
only after CMD, a kill -9 leaving a recoverable journal, and --benchmark's Snakemake TSV."""

from __future__ import annotations

import json
import os
import signal

import pytest

from .helpers import BURN_FN, PY, denet, kill_quietly, no_traceback, start_denet, wait_for

pytestmark = pytest.mark.integration

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pl = pytest.importorskip("polars")

BURN = BURN_FN + "burn(0.3)\n"
SNAKEMAKE_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def test_parquet_out_is_a_typed_tidy_file_with_the_records_in_its_metadata(tmp_path):
    out = tmp_path / "run.parquet"
    stdout_copy = tmp_path / "stdout.jsonl"
    r = denet("--out", str(out), "--json", "run", "--label", "rule=burn", "--", PY, "-c",
              BURN + "import subprocess; subprocess.run(['sleep', '0.3'])")
    assert r.returncode == 0, r.stderr
    no_traceback(r.stderr)
    assert out.exists() and not (tmp_path / ".run.parquet.journal").exists()
    assert out.read_bytes()[:4] == b"PAR1"
    pf = pq.ParquetFile(out)
    kv = pf.schema_arrow.metadata
    summary = json.loads(kv[b"denet.summary"])
    meta = json.loads(kv[b"denet.metadata"])
    assert meta["labels"] == {"rule": "burn"} and summary["exit_code"] == 0 and summary["cpu_time_secs"] >= 0.25
    t = pf.read()
    scopes = t.column("scope").to_pylist()
    assert scopes.count("tree") == summary["sample_count"] > 0
    assert "child" in scopes and "root" in scopes
    assert t.schema.field("cpu_usage").type == pa.float64() and t.schema.field("mem_rss_kb").type == pa.int64()
    # the same run as JSON lines on stdout: same rows, same run id
    stdout_copy.write_bytes(r.stdout)
    from denet.readers import entries_of, scan_rows

    assert entries_of(str(stdout_copy))[0].run_id == kv[b"denet.run_id"].decode()
    assert scan_rows(str(stdout_copy)).collect().equals(pl.read_parquet(out))


def test_duckdb_reads_a_real_run(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install duckdb)")
    out = tmp_path / "run.parquet"
    assert denet("--out", str(out), "run", "--", "sh", "-c", "sleep 0.3").returncode == 0
    con = duckdb.connect()
    n, peak = con.execute(f"select count(*), max(mem_rss_kb) from read_parquet('{out}') where scope='tree'").fetchone()
    summary = json.loads(pq.read_schema(out).metadata[b"denet.summary"])
    assert n == summary["sample_count"] and peak == summary["peak_mem_rss_kb"]


def test_format_option_overrides_the_extension(tmp_path):
    a, b = tmp_path / "a.dat", tmp_path / "b.parquet"
    assert denet("--out", str(a), "--format", "parquet", "run", "--", "true").returncode == 0
    assert a.read_bytes()[:4] == b"PAR1"
    assert denet("run", "--format", "jsonl", "--out", str(b), "--", "true").returncode == 0
    assert json.loads(b.read_text().splitlines()[0])["kind"] == "metadata"
    r = denet("run", "--format", "parquet", "--", "true")
    assert r.returncode == 2 and b"--format parquet applies to --out" in r.stderr
    r = denet("run", "--format", "xml", "--out", str(a), "--", "true")
    assert r.returncode == 2 and b"--format must be one of jsonl, parquet" in r.stderr
    no_traceback(r.stderr)


def _imports(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode(errors="replace").splitlines() if line.startswith("import time:")]


def test_pyarrow_is_imported_only_after_the_command_has_ended(tmp_path):
    out = tmp_path / "x.parquet"
    r = denet("--out", str(out), "run", "--", "sh", "-c", "echo CMD-RAN >&2", env={**os.environ,
                                                                                   "PYTHONPROFILEIMPORTTIME": "1"})
    assert r.returncode == 0 and out.exists()
    lines = r.stderr.decode(errors="replace").splitlines()
    ran = lines.index("CMD-RAN")
    first_arrow = next(i for i, line in enumerate(lines) if "pyarrow" in line)
    assert ran < first_arrow
    assert not any("polars" in line for line in lines)


def test_plain_run_imports_neither_pyarrow_nor_polars(tmp_path):
    r = denet("--out", str(tmp_path / "x.jsonl"), "--benchmark", str(tmp_path / "b.tsv"), "run", "--", "true",
              env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert r.returncode == 0
    names = " ".join(_imports(r.stderr))
    assert "pyarrow" not in names and "polars" not in names and "click" not in names


def test_kill_9_leaves_a_journal_that_recover_and_summarize_read(tmp_path, procs):
    out = tmp_path / "k.parquet"
    journal = tmp_path / ".k.parquet.journal"
    p = procs.add(start_denet("--out", str(out), "--interval", "20", "--max-interval", "20", "run", "--label",
                              "rule=killed", "--", PY, "-c", "import time; time.sleep(60)"))

    def lines():
        return journal.read_bytes().count(b"\n") if journal.exists() else 0

    wait_for(lambda: lines() >= 6, what="six journal lines")
    meta = json.loads(journal.read_text().splitlines()[0])
    procs.pid(meta["pid"])  # CMD outlives denet; killed at teardown
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    kill_quietly(meta["pid"])
    assert not out.exists() and journal.exists()
    complete_trees = sum(1 for line in journal.read_bytes().split(b"\n")[:-1] if line.startswith(b'{"kind":"tree"'))

    r = denet("summarize", str(tmp_path), "--per-run", "--format", "json")
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)
    assert run["format"] == "denet-journal" and run["complete"] is False and run["rule"] == "killed"
    assert run["sample_count"] == complete_trees and run["exit_code"] is None

    r = denet("recover", str(out))
    assert r.returncode == 0, r.stderr
    assert b"run cut short" in r.stderr
    assert out.exists() and not journal.exists()
    t = pq.read_table(out)
    assert t.column("scope").to_pylist().count("tree") == complete_trees
    r = denet("summarize", str(out), "--per-run", "--format", "json")
    (again,) = json.loads(r.stdout)
    assert again["format"] == "denet-parquet" and again["sample_count"] == complete_trees
    assert again["run_id"] == run["run_id"]
    r = denet("stats", str(out))
    assert r.returncode == 0 and b"run was cut short" in r.stdout
    r = denet("recover", str(out))
    assert r.returncode == 1 and b"no journal" in r.stderr
    no_traceback(r.stderr)


def test_benchmark_tsv_is_snakemake_format(tmp_path):
    bench, stats = tmp_path / "b.tsv", tmp_path / "s.json"
    r = denet("run", "--benchmark", str(bench), "--stats", str(stats), "--", PY, "-c", BURN_FN + "burn(0.4)\n")
    assert r.returncode == 0, r.stderr
    s = json.loads(stats.read_text())
    header, row = bench.read_text().splitlines()
    assert header == SNAKEMAKE_HEADER
    cells = row.split("\t")
    assert len(cells) == 10
    # --stats rounds to 3 decimals; the TSV is written from the unrounded figures
    assert float(cells[0]) == pytest.approx(s["wall_time_secs"], abs=0.011)
    h, m, sec = cells[1].split(":")
    assert 0 <= float(cells[0]) - (int(h) * 3600 + int(m) * 60 + int(sec)) < 1.01
    assert cells[2] == f"{max(s['peak_mem_rss_kb'], s['peak_process_rss_kb']) / 1024:.2f}"
    assert cells[4] == cells[5] == "NA"
    assert float(cells[8]) == pytest.approx(s["cpu_time_secs"] / s["wall_time_secs"] * 100, abs=0.5)
    assert float(cells[9]) == pytest.approx(s["cpu_time_secs"], abs=0.011) and float(cells[9]) >= 0.35
    assert float(cells[3]) >= float(cells[2]) > 0  # virtual size is at least the resident size
    # and summarize reads it back as a Snakemake benchmark file
    r = denet("summarize", str(bench), "--per-run", "--format", "json")
    (run,) = json.loads(r.stdout)
    assert run["format"] == "snakemake-tsv" and run["cpu_time_secs"] == float(cells[9])


def test_benchmark_into_a_missing_directory_fails_before_the_command(tmp_path):
    marker = tmp_path / "ran"
    r = denet("run", "--benchmark", str(tmp_path / "no" / "b.tsv"), "--", "touch", str(marker))
    assert r.returncode == 1 and b"cannot write --benchmark" in r.stderr and not marker.exists()


def test_a_command_that_cannot_start_leaves_no_parquet_file_and_no_journal(tmp_path):
    out = tmp_path / "nf.parquet"
    r = denet("--out", str(out), "run", "--", str(tmp_path / "no-such-command"))
    assert r.returncode == 127
    no_traceback(r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
