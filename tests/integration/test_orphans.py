"""Orphans: denet is the subreaper of the tree, so descendants that outlive their parent end under it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from .helpers import BURN_FN, DENET, PY, check_run_file, of_kind, read_pid, read_records, wait_for_file

pytestmark = pytest.mark.integration

# Burns SECS of CPU, then writes its parent pid (denet's, once orphaned) and its own pid to DONE.
ORPHAN = BURN_FN + r"""
import os, sys, time
burn(float(sys.argv[1]))
with open(sys.argv[2] + ".tmp", "w") as fh:
    fh.write("%d %d" % (os.getppid(), os.getpid()))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
"""


def _start(tmp_path, procs, script: str) -> tuple[subprocess.Popen, object]:
    out = tmp_path / "run.jsonl"
    errf = open(tmp_path / "stderr.txt", "wb")
    # stdout/stderr are not pipes: an orphan that outlives denet would keep a pipe open
    p = procs.add(subprocess.Popen(DENET + ["--out", str(out), "run", "--", "sh", "-c", script],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf))
    errf.close()
    return p, out


def test_orphan_ending_before_cmd_is_reaped_and_counted(tmp_path, procs):
    done = tmp_path / "done"
    # The subshell backgrounds the burner and exits: the burner is orphaned while CMD waits for it.
    script = (f"( '{PY}' -c '{ORPHAN}' 0.5 {done} & ); "
              f"while [ ! -e {done} ]; do sleep 0.05; done; exit 5")
    p, out = _start(tmp_path, procs, script)
    rc = p.wait(timeout=60)
    assert rc == 5, (tmp_path / "stderr.txt").read_text()
    ppid, orphan = map(int, done.read_text().split())
    assert ppid == p.pid, "the orphan was not reparented to denet (subreaper)"
    records = read_records(out)
    summ = check_run_file(records)
    assert summ["exit_code"] == 5
    assert summ["cpu_time_secs"] >= 0.5, summ
    # sampled: the orphan hangs below denet, not below CMD, yet belongs to the tree
    trees = of_kind(records, "tree")
    assert any(c["pid"] == orphan for t in trees for c in t["children"]), \
        [[(c["pid"], c["command"]) for c in t["children"]] for t in trees]


def test_cmd_exiting_at_once_with_a_busy_orphan(tmp_path, procs):
    """CMD backgrounds a 0.5 s CPU burner and exits without waiting: denet returns CMD's code; if the
    burner had finished by then, its CPU is in the exact total."""
    done = tmp_path / "done"
    p, out = _start(tmp_path, procs, f"'{PY}' -c '{ORPHAN}' 0.5 {done} & exit 3")
    rc = p.wait(timeout=60)
    finished = done.exists()
    assert rc == 3
    summ = check_run_file(read_records(out))
    assert summ["exit_code"] == 3
    assert summ["wall_time_secs"] < 0.5  # CMD itself (sh) ends at once
    if finished:
        assert summ["cpu_time_secs"] >= 0.5, summ
    wait_for_file(done, timeout=30)  # the orphan is not killed by denet


def test_cmd_exiting_at_once_with_a_long_lived_orphan_does_not_hang(tmp_path, procs):
    pidfile = tmp_path / "orphan.pid"
    p, out = _start(tmp_path, procs, f"sleep 30 & echo $! > {pidfile}; exit 4")
    orphan = procs.pid(read_pid(pidfile, timeout=30))
    t = time.monotonic()
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(orphan, signal.SIGKILL)
        p.wait(timeout=30)
        pytest.fail("denet was still waiting for the orphan 5 s after CMD had ended")
    assert rc == 4
    assert time.monotonic() - t < 5
    assert check_run_file(read_records(out))["exit_code"] == 4


def test_cmd_ending_later_with_a_long_lived_orphan_does_not_hang(tmp_path, procs):
    """The same, but CMD lives long enough to be sampled first."""
    pidfile = tmp_path / "orphan.pid"
    p, out = _start(tmp_path, procs, f"sleep 30 & echo $! > {pidfile}; sleep 0.5; exit 4")
    orphan = procs.pid(read_pid(pidfile, timeout=30))
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(orphan, signal.SIGKILL)
        p.wait(timeout=30)
        pytest.fail("denet was still waiting for the orphan 5 s after CMD had ended")
    assert rc == 4
    assert check_run_file(read_records(out))["exit_code"] == 4
