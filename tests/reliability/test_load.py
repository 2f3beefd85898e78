"""Load: a fork storm, a tree of 2 000 live processes sampled at 10 Hz, 100 denet instances at once.

Nothing here asserts time. Each test checks that denet neither crashes nor makes numbers up (no
negative value anywhere, no process counted twice, exact CPU equal to what GNU time measures for the
same tree) and prints denet's own CPU (`--debug` reports it) for the record.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from integration.helpers import (
    DENET,
    PY,
    check_run_file,
    no_traceback,
    of_kind,
    parse_lines,
    read_records,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# 1 000 children, each burning ~1 ms of CPU and exiting, forked as fast as the machine allows
# (well under 2 s here); the parent reaps each one.
STORM = r"""
import os, sys, time
n = int(sys.argv[1])
t = time.monotonic()
for i in range(n):
    pid = os.fork()
    if pid == 0:
        end = time.process_time() + 0.001
        while time.process_time() < end:
            pass
        os._exit(i % 7)
    os.waitpid(pid, 0)
sys.stderr.write("forked %d in %.2f s\n" % (n, time.monotonic() - t))
"""

# N children that stay alive (blocked on a pipe) until the parent has seen them all and waited HOLD s.
TREE = r"""
import os, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
r, w = os.pipe()
kids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # blocks until the parent closes the write end
        os._exit(0)
    kids.append(pid)
time.sleep(hold)
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
"""


def own_cpu(stderr: bytes) -> str:
    m = re.search(rb"own_cpu=([0-9.]+)s", stderr)
    return m.group(1).decode() if m else "?"


def numbers(obj, path=""):
    """Every number in a record, with where it is."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from numbers(v, f"{path}[{i}]")


def no_negative_numbers(records) -> None:
    for r in records:
        for where, v in numbers(r):
            assert v >= 0, f"{r.get('kind')}{where} = {v}"


def no_pid_twice(records) -> None:
    root = records[0]["pid"]
    for t in of_kind(records, "tree"):
        pids = [c["pid"] for c in t["children"]]
        assert len(pids) == len(set(pids)), "a process is listed twice in one sample"
        assert root not in pids
        if t["aggregated"] is not None:
            assert t["aggregated"]["process_count"] == len(pids) + (t["parent"] is not None)


def test_fork_storm_of_1000_children(tmp_path, gnu_time):
    """Exact CPU of the storm = what GNU time measures for the same process inside denet (nothing lost,
    nothing counted twice); the ledger lists each child once; no value is negative."""
    out = tmp_path / "run.jsonl"
    tfile = tmp_path / "time.txt"
    res = subprocess.run(DENET + ["--debug", "--out", str(out), "run", "-i", "10", "--", gnu_time, "-f", "%U %S",
                                  "-o", str(tfile), PY, "-c", STORM, "1000"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    no_traceback(res.stderr)
    records = read_records(out)
    summ = check_run_file(records)
    no_negative_numbers(records)
    no_pid_twice(records)
    user, system = map(float, tfile.read_text().split())
    # GNU time's rusage covers python and its 1 000 children; denet's adds only GNU time itself.
    assert summ["cpu_time_secs"] >= user + system - 0.02, (summ["cpu_time_secs"], user + system)
    assert summ["cpu_time_secs"] <= user + system + 0.1, (summ["cpu_time_secs"], user + system)
    assert summ["cpu_time_secs"] >= 1.0  # 1 000 x 1 ms at least
    meta = records[0]
    procs = of_kind(records, "process")
    if meta["capabilities"]["ledger"]["available"] and procs and procs[0].get("source") != "sampled":
        pids = [p["pid"] for p in procs]
        assert len(pids) == len(set(pids))
        assert len(procs) >= 1002  # time, python, 1 000 children
        codes = sorted(p["exit_code"] for p in procs if p.get("exit_code") is not None)
        assert codes.count(6) >= 1000 // 7
    print(f"\nfork storm: {res.stderr.decode().splitlines()[0]}; denet's own CPU {own_cpu(res.stderr)} s "
          f"for {summ['sample_count']} samples, {len(procs)} process records")


def test_tree_of_2000_live_processes_at_10_hz(tmp_path):
    out = tmp_path / "run.jsonl"
    res = subprocess.run(DENET + ["--debug", "--out", str(out), "run", "--interval", "100", "--max-interval", "100",
                                  "--", PY, "-c", TREE, "2000", "4"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    no_traceback(res.stderr)
    records = read_records(out)
    summ = check_run_file(records)
    no_negative_numbers(records)
    no_pid_twice(records)
    counts = [t["aggregated"]["process_count"] for t in of_kind(records, "tree") if t["aggregated"] is not None]
    assert max(counts) == 2001, max(counts)  # every process seen, none twice
    assert summ["max_processes"] == 2001
    assert summ["exit_code"] == 0
    print(f"\n2 000-process tree: {len(counts)} samples, denet's own CPU {own_cpu(res.stderr)} s "
          f"({summ['wall_time_secs']:.1f} s wall)")


def test_100_denet_instances_at_once(tmp_path):
    """100 denet processes, each wrapping a short command with its own exit code, all started together:
    every code comes back right and every file is complete and valid (a quarter of them Parquet)."""
    procs = []
    for i in range(100):
        ext = "parquet" if i % 4 == 0 else "jsonl"
        out = tmp_path / f"run{i}.{ext}"
        p = subprocess.Popen(DENET + ["--no-ledger", "--out", str(out), "run", "--", "sh", "-c",
                                      f"sleep 0.{i % 5}; exit {i % 11}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append((i, out, p))
    failures = []
    for i, _out, p in procs:
        try:
            _, err = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            failures.append(f"{i}: did not end")
            continue
        if p.returncode != i % 11 or b"Traceback" in err:
            failures.append(f"{i}: exit {p.returncode}, {err[-300:]!r}")
    assert not failures, failures
    for i, out, _ in procs:
        if out.suffix == ".jsonl":
            assert check_run_file(read_records(out))["exit_code"] == i % 11
    # the Parquet files, and everything together, through summarize
    res = subprocess.run(DENET + ["summarize", "--per-run", "--format", "json", str(tmp_path)],
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 100
    codes = sorted(r["exit_code"] for r in rows)
    assert codes == sorted(i % 11 for i in range(100))
    assert not list(tmp_path.glob(".*.journal"))


def test_many_short_children_with_json_output_stay_parseable(tmp_path):
    """A storm while records go to a pipe (--json): every line is a whole record."""
    res = subprocess.run(DENET + ["--json", "run", "-i", "10", "--", PY, "-c", STORM, "300"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    records = parse_lines(res.stdout)
    check_run_file(records)
    no_negative_numbers(records)
