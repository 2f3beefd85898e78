"""denet ls: one line per run from headers and summaries; filters, sorts, formats; 500 runs."""

import csv
import io
import json
import os

import pytest

from denet.errors import UsageError
from denet.listing import compile_filter, sort_rows
from denet.records import Capability, RunHeader, RunSummary
from denet.schema import fields
from denet.sinks import JsonlSink
from denet.sinks.parquet import ParquetSink

from .helpers import denet

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000


def _summary(**given):
    kw = {}
    for f in fields("summary"):
        if f.name in given:
            kw[f.name] = given[f.name]
        elif f.optional or f.nullable:
            kw[f.name] = None
        else:
            kw[f.name] = {"int": 0, "float": 0.0}.get(f.type, [])
    return RunSummary(**kw)


def _write_run(path, i, *, sink=JsonlSink):
    s = sink(str(path))
    labels = {"rule": f"rule{i % 5}", "sample": f"s{i}"}
    s.write(RunHeader(pid=1000 + i, cmd=["work", str(i)], executable="/bin/work", t0_ms=T0 + i * 1000,
                      capabilities={"gpu": Capability(False, "none")}, schema_version=1, denet_version="0.1.0",
                      labels=labels, interval_ms=100, max_interval_ms=1000, include_children=True,
                      since_process_start=False, note=f"note {i}" if i % 50 == 0 else None, host=f"node{i % 3}"))
    code = 1 if i % 7 == 0 else 0
    s.write(_summary(total_time_secs=i / 10, sample_count=3, exit_code=code, wall_time_secs=i / 10,
                     cpu_user_secs=i / 20, cpu_system_secs=0.0, cpu_time_secs=i / 20, peak_process_rss_kb=1000 * i,
                     exact=["exit_code"]))
    s.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    for i in range(500):
        sub = d / f"batch{i // 100}"
        sub.mkdir(exist_ok=True)
        if i % 100 == 1:
            _write_run(sub / f"run{i:03d}.parquet", i, sink=ParquetSink)
        else:
            _write_run(sub / f"run{i:03d}.jsonl", i)
    (d / "batch0" / "run999.stdout").write_bytes(b"captured output is not a run\n")
    return d


def test_ls_500_runs_filter_and_sort(runs):
    r = denet("ls", str(runs), "--filter", "exit_code != 0", "--sort", "-peak_rss_kb", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    rows = json.loads(r.stdout)
    want = sorted((i for i in range(500) if i % 7 == 0), reverse=True)
    assert [row["labels"]["sample"] for row in rows] == [f"s{i}" for i in want]
    assert rows[0]["peak_rss_kb"] == 1000 * want[0] and rows[0]["exit_code"] == 1
    assert rows[0]["command"] == f"rule{want[0] % 5}" and rows[0]["host"] == f"node{want[0] % 3}"
    parquet = [row for row in rows if row["path"].endswith(".parquet")]
    assert parquet and all(row["exit_code"] == 1 for row in parquet)  # read from the key-value metadata


def test_ls_filters_combine_and_labels_are_fields(runs):
    r = denet("ls", str(runs), "--filter", "rule == rule2 and wall_time_secs >= 40", "--filter", "host != node0",
              "--sort", "sample", "--format", "csv")
    assert r.returncode == 0, r.stderr
    table = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    want = sorted(f"s{i}" for i in range(400, 500) if i % 5 == 2 and i % 3 != 0)
    assert [row["sample"] for row in table] == want
    assert all(row["rule"] == "rule2" for row in table)


def test_ls_table_shows_notes_and_default_order(runs):
    r = denet("ls", str(runs / "batch0"))
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and lines[0].split()[:2] == ["WHEN", "HOST"]
    assert len(lines) == 101
    assert "note 0" in lines[1] and "note 50" in lines[51]
    assert "rule0" in lines[1] and "rule1" in lines[2]


def test_ls_of_a_real_run_and_a_bad_file(tmp_path):
    assert denet("run", "--note", "real one", "-o", str(tmp_path / "r.jsonl"), "--", "sh", "-c", "exit 3"
                 ).returncode == 3
    (tmp_path / "broken.jsonl").write_text("not json\n")
    r = denet("ls", str(tmp_path), "--format", "json")
    assert r.returncode == 0
    assert b"broken.jsonl" in r.stderr
    (row,) = json.loads(r.stdout)
    assert row["exit_code"] == 3 and row["note"] == "real one" and row["command"] == "sh -c 'exit 3'"
    assert row["host"] == os.uname().nodename and row["cpu_time_secs"] is not None


@pytest.mark.parametrize("expr", ["exit_code", "exit_code = 0", "exit_code != 0 or x == 1", "== 1",
                                  "note == 'open", "a == 1 and"])
def test_bad_filters_are_usage_errors(expr):
    with pytest.raises(UsageError, match="--filter"):
        compile_filter(expr)
    r = denet("ls", "--filter", expr, ".")
    assert r.returncode == 2 and b"--filter" in r.stderr


def test_filter_semantics():
    rows = [{"exit_code": 0, "note": None, "labels": {"rule": "a"}, "wall_time_secs": 1.5},
            {"exit_code": None, "note": "x y", "labels": {}, "wall_time_secs": None},
            {"exit_code": 2, "note": "z", "labels": {"rule": "b"}, "wall_time_secs": 10.0}]

    def keep(expr):
        p = compile_filter(expr)
        return [i for i, r in enumerate(rows) if p(r)]

    assert keep("exit_code != 0") == [1, 2]
    assert keep("exit_code > 0") == [2]
    assert keep("exit_code == null") == [1]
    assert keep("note == 'x y'") == [1]
    assert keep("rule == b and wall_time_secs > 2") == [2]
    assert keep("wall_time_secs <= 1.5") == [0]
    assert [r["exit_code"] for r in sort_rows(rows, "-exit_code")] == [2, 0, None]
