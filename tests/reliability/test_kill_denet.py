"""Signals to denet itself: every output is finalised on SIGTERM/SIGINT/SIGHUP (Parquet, --stats,
--benchmark, not only JSON lines); on SIGKILL nothing is ever corrupt: JSON lines are complete up to the
last line, a Parquet run leaves a journal that `denet recover` turns into a valid file, and CMD's
process group does not outlive denet.

tests/integration/test_signals.py covers forwarding to the whole process group with JSON lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from integration.helpers import (
    DENET,
    PY,
    check_run_file,
    no_traceback,
    proc_gone,
    read_pid,
    read_records,
    start_denet,
    wait_for,
    wait_for_file,
)

pytestmark = pytest.mark.integration

# CMD: a shell with a background grandchild in its process group; writes both pids, then waits.
TREE = "sleep 120 & echo $! > {gc}; echo $$ > {cmd}; wait"


def _start(tmp_path, procs, *args: str, **kw):
    """denet in the background with its stderr in a file (an orphan holding a pipe would block reading it)."""
    with open(tmp_path / "denet.stderr", "wb") as errf:
        return procs.add(start_denet(*args, stderr=errf, **kw))


def _stderr(tmp_path) -> bytes:
    return (tmp_path / "denet.stderr").read_bytes()


def _parquet_rows(path):
    import pyarrow.parquet as pq

    f = pq.ParquetFile(str(path))
    meta = {k.decode(): v.decode() for k, v in (f.schema_arrow.metadata or {}).items()}
    return f.read(), meta


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_finalises_parquet_stats_and_benchmark(tmp_path, procs, sig):
    out = tmp_path / "run.parquet"
    stats = tmp_path / "stats.json"
    bench = tmp_path / "bench.tsv"
    gc, cmd = tmp_path / "gc.pid", tmp_path / "cmd.pid"
    p = _start(tmp_path, procs, "--out", str(out), "--stats", str(stats), "--benchmark", str(bench), "run", "-i", "50",
               "--", "sh", "-c", TREE.format(gc=gc, cmd=cmd))
    gc_pid = procs.pid(read_pid(gc, timeout=30))
    procs.pid(read_pid(cmd, timeout=30), group=True)
    time.sleep(0.3)
    os.kill(p.pid, sig)
    rc = p.wait(timeout=60)
    err = _stderr(tmp_path)
    no_traceback(err)
    assert rc == 128 + sig, err  # sh dies of the forwarded signal: the code a shell or GNU time reports
    if sig != signal.SIGINT:  # sh's background jobs ignore SIGINT, with or without denet
        wait_for(lambda: proc_gone(gc_pid), timeout=15, what="the grandchild in CMD's group to get the signal too")
    table, meta = _parquet_rows(out)
    assert table.num_rows > 0
    summ = json.loads(meta["denet.summary"]) if "denet.summary" in meta else None
    assert summ is None or summ["exit_code"] == 128 + sig
    assert not (tmp_path / ".run.parquet.journal").exists()
    assert json.loads(stats.read_text())["exit_code"] == 128 + sig
    lines = bench.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("s\t")


def test_summary_is_in_the_parquet_metadata_after_sigterm(tmp_path, procs):
    out = tmp_path / "run.parquet"
    gc, cmd = tmp_path / "gc.pid", tmp_path / "cmd.pid"
    p = _start(tmp_path, procs, "--out", str(out), "run", "--", "sh", "-c", TREE.format(gc=gc, cmd=cmd))
    procs.pid(read_pid(cmd, timeout=30), group=True)
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=60) == 143
    res = subprocess.run(DENET + ["stats", "--json", str(out)], capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["exit_code"] == 143


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.9])
def test_sigkill_at_any_moment_leaves_nothing_corrupt(tmp_path, procs, delay):
    """SIGKILL at several moments (before the first sample, mid-run): the JSON lines file holds only
    complete records, and the Parquet journal is recovered by `denet recover` into a file that stats reads."""
    jl = tmp_path / "run.jsonl"
    pq_out = tmp_path / "run.parquet"
    cmd = [PY, "-c", "import time, sys\nfor i in range(200):\n    print(i, flush=True); time.sleep(0.01)\n"
           "time.sleep(30)"]
    a = _start(tmp_path, procs, "--out", str(jl), "run", "-i", "10", "--", *cmd)
    b = _start(tmp_path, procs, "--out", str(pq_out), "run", "-i", "10", "--", *cmd)
    time.sleep(delay)
    for p in (a, b):
        os.kill(p.pid, signal.SIGKILL)
    for p in (a, b):
        assert p.wait(timeout=30) == -signal.SIGKILL
    # JSON lines: every line that is there is complete and valid (possibly none before the first write)
    if jl.exists():
        data = jl.read_bytes()
        assert not data or data.endswith(b"\n"), data[-200:]
        for line in data.splitlines():
            json.loads(line)
    # Parquet: never a file before the conversion; the journal is there and recoverable
    assert not pq_out.exists() or pq_out.stat().st_size == 0 or _parquet_rows(pq_out)
    journal = tmp_path / ".run.parquet.journal"
    if journal.exists() and journal.stat().st_size:
        res = subprocess.run(DENET + ["recover", str(journal)], capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr
        no_traceback(res.stderr)
        table, _ = _parquet_rows(pq_out)
        s = subprocess.run(DENET + ["stats", "--json", str(pq_out)], capture_output=True, timeout=120)
        assert s.returncode == 0, s.stderr
        assert json.loads(s.stdout)["exit_code"] is None  # cut short: the exact figures are missing, not made up


def test_sigkill_to_denet_does_not_leave_cmds_process_group_running(tmp_path, procs):
    gc, cmd = tmp_path / "gc.pid", tmp_path / "cmd.pid"
    out = tmp_path / "run.jsonl"
    p = _start(tmp_path, procs, "--out", str(out), "run", "--", "sh", "-c", TREE.format(gc=gc, cmd=cmd))
    gc_pid = procs.pid(read_pid(gc, timeout=30))
    cmd_pid = procs.pid(read_pid(cmd, timeout=30), group=True)
    wait_for(lambda: out.exists() and out.stat().st_size > 0, timeout=30, what="the metadata record")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    wait_for(lambda: proc_gone(cmd_pid) and proc_gone(gc_pid), timeout=20,
             what="CMD and its child to end after denet was killed")
    check = read_records(out)  # complete lines only
    assert check[0]["kind"] == "metadata"


def test_sigterm_then_sigkill_keeps_what_was_written(tmp_path, procs):
    """A scheduler's usual escalation: TERM, and KILL soon after while CMD ignores TERM."""
    out = tmp_path / "run.jsonl"
    ready = tmp_path / "ready"
    code = (f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open({str(ready)!r}, 'w').close();"
            " time.sleep(60)")
    p = _start(tmp_path, procs, "--out", str(out), "run", "-i", "20", "--", PY, "-c", code)
    wait_for_file(ready, timeout=30)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGTERM)
    time.sleep(0.3)
    assert p.poll() is None  # CMD ignores TERM, so denet still waits for it
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    records = read_records(out)
    assert records[0]["kind"] == "metadata" and len(records) > 2
    assert records[-1]["kind"] != "summary"
    res = subprocess.run(DENET + ["stats", str(out)], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert b"cut short" in res.stdout


def test_kill_denet_with_a_full_tree_under_json(tmp_path, procs):
    """--json to a pipe: after denet's SIGTERM the reader still gets complete lines ending with the summary."""
    gc, cmd = tmp_path / "gc.pid", tmp_path / "cmd.pid"
    p = _start(tmp_path, procs, "--json", "run", "--", "sh", "-c", TREE.format(gc=gc, cmd=cmd), stdout=subprocess.PIPE)
    procs.pid(read_pid(cmd, timeout=30), group=True)
    os.kill(p.pid, signal.SIGTERM)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 143, _stderr(tmp_path)
    recs = [json.loads(x) for x in out.splitlines()]
    assert check_run_file(recs)["exit_code"] == 143
