"""The process ledger's pieces: the collector's values against the schema, exit statuses, the
sampled view on real readings, the Parquet sibling table, the readers and the per-command table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from denet import schema
from denet.collectors.ledger import SampledLedger, _Entry, _exit_status
from denet.collectors.proc import ProcCollector
from denet.errors import InputError, UsageError
from denet.monitor import Monitor
from denet.records import Capability, ProcessRecord, RunHeader, RunSummary
from denet.sinks import JsonlSink

NAMES = set(schema.names("process"))


def proc(pid, name, ppid=1, cpu=(0.1, 0.05), rss=1000, code=0, sig=None, end=2_000, source="taskstats", **kw):
    d = {"pid": pid, "ppid": ppid, "name": name, "command": [name, "-x"], "start_ms": 1_000, "end_ms": end,
         "exit_code": code, "exit_signal": sig, "cpu_user_secs": cpu[0] if cpu else None,
         "cpu_system_secs": cpu[1] if cpu else None, "peak_rss_kb": rss, "disk_read_bytes": 0,
         "disk_write_bytes": 4096, "syscall_read_bytes": 10, "syscall_write_bytes": 20, "source": source}
    d.update(kw)
    return d


def test_exit_status_of_a_wait_status():
    assert _exit_status(0) == (0, None)
    assert _exit_status(3 << 8) == (3, None)
    assert _exit_status(255 << 8) == (255, None)
    assert _exit_status(9) == (None, 9)
    assert _exit_status(0x80 | 11) == (None, 11)  # killed by SIGSEGV, core dumped
    assert _exit_status(None) == (None, None)


@pytest.mark.parametrize("source", ["proc_connector", "sampled"])
def test_collector_values_are_exactly_the_declared_fields(source):
    e = _Entry(10, 1, "tool", ["tool", "a"], 1_000)
    e.status = 2 << 8
    v = e.values(source)
    assert set(v) == NAMES
    rec = ProcessRecord(**v)
    line = json.loads(rec.to_line())
    assert line["kind"] == "process" and line["exit_code"] == 2 and line["command"] == ["tool", "a"]
    assert line["source"] == source and line["cpu_user_secs"] is None


def test_process_record_keeps_microseconds_of_cpu():
    rec = ProcessRecord(**proc(1, "true", cpu=(2.0565e-05, 0.000123456)))
    line = json.loads(rec.to_line())
    assert line["cpu_user_secs"] == 2.1e-05 and line["cpu_system_secs"] == 0.000123
    assert schema.fields("process")[[f.name for f in schema.fields("process")].index("cpu_user_secs")].digits == 6


def test_a_process_without_argv_has_its_name_as_command():
    e = _Entry(10, 1, "true", None, 1_000)
    assert e.values("proc_connector")["command"] == ["true"]


def test_sampled_view_from_real_readings():
    """The sampled view on readings of real processes: a child that ends leaves a record with its
    last reading; the root keeps the exit status the runner gives."""
    child = subprocess.Popen(["sh", "-c", "sleep 0.3"])
    led = SampledLedger("no events here")
    col = ProcCollector(child.pid)
    try:
        led.track_root(child.pid, os.getpid(), time.monotonic(), ["sh", "-c", "sleep 0.3"])
        deadline = time.monotonic() + 10
        seen_sleep = False
        while time.monotonic() < deadline and child.poll() is None:
            root, kids = col.read()
            led.observe(([root] if root else []) + kids)
            seen_sleep = seen_sleep or any(k.comm == "sleep" for k in kids)
            time.sleep(0.02)
        child.wait()
        led.observe([])
        led.set_exit(child.pid, 0, time.monotonic())
        out = led.drain() + led.finish()
    finally:
        col.close()
    assert all(set(v) == NAMES for v in out)
    assert all(v["source"] == "sampled" for v in out)
    (root,) = [v for v in out if v["pid"] == child.pid]
    assert root["exit_code"] == 0 and root["command"] == ["sh", "-c", "sleep 0.3"] and root["ppid"] == os.getpid()
    if seen_sleep:
        (sleep,) = [v for v in out if v["name"] == "sleep"]
        assert sleep["ppid"] == child.pid and sleep["command"] == ["sleep", "0.3"]
        assert sleep["end_ms"] is not None and sleep["cpu_user_secs"] is not None


def test_capability_of_a_monitor_without_the_ledger():
    h = Monitor().header(os.getpid(), ["x"], 0)
    assert h.capabilities["ledger"] == Capability(False, "off (not requested)")
    m = Monitor(ledger=False)
    m._open_ledger()
    assert m.header(os.getpid(), ["x"], 0).capabilities["ledger"] == Capability(False, "off (--no-ledger)")


# ------------------------------------------------------------------------------------ files


def header():
    caps = {k: Capability(False, "off") for k in ("gpu", "ebpf", "psi", "perf_hw", "ledger")}
    return RunHeader(pid=100, cmd=["sh", "-c", "x"], executable="/bin/sh", t0_ms=1_000, capabilities=caps,
                     schema_version=1, denet_version="test", labels={"rule": "a"}, interval_ms=100,
                     max_interval_ms=1000, include_children=True, since_process_start=False)


def summary():
    return RunSummary(total_time_secs=1.0, sample_count=0, max_processes=1, max_threads=1, total_disk_read_bytes=0,
                      total_disk_write_bytes=0, total_syscall_read_bytes=0, total_syscall_write_bytes=0,
                      total_sys_net_rx_bytes=0, total_sys_net_tx_bytes=0, peak_mem_rss_kb=0, avg_cpu_usage=0.0,
                      exit_code=0, wall_time_secs=1.0, cpu_user_secs=0.3, cpu_system_secs=0.1, cpu_time_secs=0.4,
                      peak_process_rss_kb=5000, exact=["exit_code"])


LEDGER = [proc(101, "gzip", ppid=100, cpu=(0.2, 0.01), rss=2000), proc(102, "sort", ppid=100, rss=9000, sig=13,
                                                                     code=None),
          proc(103, "true", ppid=100, cpu=(0.0001, 0.0)), proc(100, "sh", ppid=99, end=None, code=None)]


def write_run(path, ledger=LEDGER):
    sink = JsonlSink(str(path))
    sink.write(header())
    for p in ledger:
        sink.write(ProcessRecord(**p))
    sink.write(summary())
    sink.close()


def test_jsonl_ledger_reads_back(tmp_path):
    from denet.readers import read_processes

    f = tmp_path / "r.jsonl"
    write_run(f)
    procs, why = read_processes(str(f))
    assert why is None and [p["name"] for p in procs] == ["gzip", "sort", "true", "sh"]
    assert procs[1]["exit_signal"] == 13 and procs[3]["end_ms"] is None
    write_run(tmp_path / "none.jsonl", ledger=[])
    procs, why = read_processes(str(tmp_path / "none.jsonl"))
    assert procs is None and "no process records" in why


def test_parquet_sibling_table(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from denet.readers import find_inputs, parquet_entry, read_processes
    from denet.sinks.parquet import journal_path, journal_to_parquet, processes_path

    dest = tmp_path / "run.parquet"
    write_run(journal_path(str(dest)))
    rec = journal_to_parquet(journal_path(str(dest)))
    assert rec.complete
    sib = tmp_path / "run.processes.parquet"
    assert processes_path(str(dest)) == str(sib) and sib.exists()
    assert processes_path("x/run.data") == "x/run.data.processes.parquet"
    t = pq.read_table(sib)
    assert t.schema.names == list(schema.table_names_of("processes"))
    assert t.num_rows == 4 and set(t.column("run_id").to_pylist()) == {rec.run_id}
    assert t.column("command").to_pylist()[0] == ["gzip", "-x"]
    procs, why = read_processes(str(dest))
    assert why is None
    assert procs == [{k: v for k, v in p.items()} for p in LEDGER]
    assert find_inputs([str(tmp_path)]) == [str(dest)]
    with pytest.raises(InputError, match="process ledger of a run.*run.parquet"):
        parquet_entry(str(sib))
    os.unlink(sib)
    procs, why = read_processes(str(dest))
    assert procs is None and "is missing" in why


def test_a_run_without_a_ledger_has_no_sibling(tmp_path):
    pytest.importorskip("pyarrow")
    from denet.sinks.parquet import journal_path, journal_to_parquet

    dest = tmp_path / "old.parquet"
    write_run(journal_path(str(dest)), ledger=[])
    journal_to_parquet(journal_path(str(dest)))
    assert os.listdir(tmp_path) == ["old.parquet"]


# ------------------------------------------------------------------------------------ by command


def test_command_table_groups_processes_by_name():
    pytest.importorskip("polars")
    from denet.process_summaries import command_table, frame_of

    procs = frame_of(LEDGER + [proc(104, "gzip", ppid=100, cpu=(0.4, 0.0), rss=3000, code=1)], run_id="r1")
    t = command_table(procs)
    assert t.columns == list(schema.table_names_of("command_group", key=["command"]))
    rows = {r["command"]: r for r in t.iter_rows(named=True)}
    assert t["command"].to_list()[0] == "gzip"  # most CPU first
    g = rows["gzip"]
    assert (g["processes"], g["runs"], g["failed"], g["running"]) == (2, 1, 1, 0)
    assert g["cpu_time_secs_sum"] == pytest.approx(0.61) and g["cpu_time_secs_max"] == pytest.approx(0.4)
    assert g["peak_rss_kb_max"] == 3000 and g["peak_rss_kb_mean"] == pytest.approx(2500)
    assert g["disk_write_bytes_sum"] == 8192 and g["sources"] == "taskstats"
    assert rows["sort"]["failed"] == 1  # SIGPIPE
    assert rows["sh"]["running"] == 1 and rows["sh"]["wall_time_secs_max"] is None
    assert rows["true"]["wall_time_secs_sum"] == pytest.approx(1.0)


def test_command_table_with_labels_and_missing_figures():
    pytest.importorskip("polars")
    import polars as pl

    from denet.process_summaries import command_table, frame_of

    a = frame_of([proc(1, "awk", cpu=None, rss=None, source="proc_connector")], run_id="a", labels={"rule": "x"},
                 label_columns={"rule": "rule"})
    b = frame_of([proc(2, "awk", source="sampled")], run_id="b", labels={"rule": "y"}, label_columns={"rule": "rule"})
    t = command_table(pl.concat([a, b]), "rule,command")
    assert t.columns[:2] == ["rule", "command"]
    rows = {(r["rule"], r["command"]): r for r in t.iter_rows(named=True)}
    assert rows[("x", "awk")]["cpu_time_secs_sum"] is None and rows[("x", "awk")]["sources"] == "proc_connector"
    assert rows[("y", "awk")]["cpu_time_secs_sum"] == pytest.approx(0.15)
    with pytest.raises(UsageError, match="--by sample"):
        command_table(pl.concat([a, b]), "sample,command")


def test_summarize_api_by_command(tmp_path):
    pytest.importorskip("polars")
    from denet.summaries import by_command, summarize

    assert by_command("rule,command") and by_command(["command"]) and not by_command("rule") and not by_command(None)
    write_run(tmp_path / "a.jsonl")
    t = summarize([str(tmp_path)], by="command")
    assert sorted(t["command"].to_list()) == ["gzip", "sh", "sort", "true"]
    notes = []
    write_run(tmp_path / "empty.jsonl", ledger=[])
    with pytest.raises(InputError, match="no process records"):
        summarize([str(tmp_path / "empty.jsonl")], by="command", on_note=notes.append)
    assert notes and "without a process ledger" in notes[0]


def test_ledger_module_imports_nothing_heavy():
    code = ("import sys, denet.collectors.ledger; "
            "print(sorted(m for m in ('socket', 'polars', 'pyarrow', 'click', 'psutil') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
