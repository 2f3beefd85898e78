"""Signals sent to denet reach CMD's whole process group, and the outputs are finalised."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from .helpers import PY, check_run_file, parse_lines, read_records, start_denet, wait_for, wait_for_file

pytestmark = pytest.mark.integration

# CMD: starts a grandchild (same process group), waits until it is ready, then either traps the
# signal (writes a file, waits for the grandchild, exits 7) or dies of it (default disposition).
GRANDCHILD = r"""
import os, signal, sys, time
d, signame = sys.argv[1], sys.argv[2]
def h(n, f):
    open(os.path.join(d, "grandchild-got-" + signal.Signals(n).name), "w").close()
    os._exit(0)
signal.signal(getattr(signal, signame), h)
open(os.path.join(d, "grandchild-ready"), "w").close()
for _ in range(600):
    time.sleep(0.1)
os._exit(3)
"""

CMD = r"""
import os, signal, subprocess, sys, time
d, mode, signame = sys.argv[1], sys.argv[2], sys.argv[3]
signum = getattr(signal, signame)
gc = subprocess.Popen([sys.executable, "-c", sys.argv[4], d, signame])
while not os.path.exists(os.path.join(d, "grandchild-ready")):
    time.sleep(0.01)
open(os.path.join(d, "pgids"), "w").write(f"{os.getpgrp()} {os.getpgid(gc.pid)}")
if mode == "trap":
    def h(n, f):
        open(os.path.join(d, "cmd-got-" + signal.Signals(n).name), "w").close()
        try:
            gc.wait(timeout=20)
        finally:
            os._exit(7)
    signal.signal(signum, h)
else:
    signal.signal(signum, signal.SIG_DFL)
open(os.path.join(d, "cmd-ready"), "w").close()
for _ in range(600):
    time.sleep(0.1)
os._exit(3)
"""


def _run_and_signal(tmp_path, procs, mode: str, sig: signal.Signals, *extra: str):
    d = tmp_path / "signals"
    d.mkdir()
    out = tmp_path / "run.jsonl"
    p = procs.add(start_denet("--out", str(out), *extra, "run", "--", PY, "-c", CMD, str(d), mode, sig.name,
                              GRANDCHILD))
    wait_for_file(d / "cmd-ready", timeout=30)
    # CMD has its own process group (denet is not a terminal's foreground job), shared with the grandchild.
    cmd_pgid, gc_pgid = map(int, (d / "pgids").read_text().split())
    procs.pid(cmd_pgid, group=True)
    assert cmd_pgid == gc_pgid
    assert cmd_pgid != os.getpgrp()
    os.kill(p.pid, sig)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"denet did not end within 30 s of {sig.name}")
    return rc, d, read_records(out), p.stderr.read().decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_signal_is_forwarded_and_cmd_exit_code_returned(tmp_path, procs, sig):
    rc, d, records, err = _run_and_signal(tmp_path, procs, "trap", sig)
    assert rc == 7, err
    assert (d / f"cmd-got-{sig.name}").exists()
    assert (d / f"grandchild-got-{sig.name}").exists(), "the grandchild in CMD's process group did not get it"
    summ = check_run_file(records)
    assert summ["exit_code"] == 7
    assert summ["exact"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_cmd_dying_of_forwarded_signal_gives_128_plus_n(tmp_path, procs, sig):
    rc, d, records, err = _run_and_signal(tmp_path, procs, "die", sig)
    assert rc == 128 + sig, err
    wait_for(lambda: (d / f"grandchild-got-{sig.name}").exists(), timeout=10,
             what="the grandchild to record the signal")
    summ = check_run_file(records)
    assert summ["exit_code"] == 128 + sig
    assert summ["wall_time_secs"] > 0


def test_shell_trap_exit_code(tmp_path, procs):
    """The classic wrapper case: sh traps TERM and exits 7; its background child gets TERM too."""
    out = tmp_path / "run.jsonl"
    ready = tmp_path / "ready"
    gc_done = tmp_path / "gc-term"
    script = (f"trap 'wait; exit 7' TERM; "
              f"'{PY}' -c 'import signal,sys,time\n"
              f"signal.signal(signal.SIGTERM, lambda *a: (open(sys.argv[1],\"w\").close(), sys.exit(0)))\n"
              f"open(sys.argv[2],\"w\").close()\n"
              f"time.sleep(60)' {gc_done} {ready} & wait; exit 1")
    p = procs.add(start_denet("--out", str(out), "run", "--", "sh", "-c", script))
    wait_for_file(ready, timeout=30)
    os.kill(p.pid, signal.SIGTERM)
    rc = p.wait(timeout=30)
    assert rc == 7, p.stderr.read()
    assert gc_done.exists()
    assert check_run_file(read_records(out))["exit_code"] == 7


def test_sigterm_with_json_output_finalises_stdout(tmp_path, procs):
    """With --json the summary line still ends stdout after a forwarded SIGTERM."""
    ready = tmp_path / "ready"
    p = procs.add(start_denet("--json", "run", "--", PY, "-c",
                              f"import time; open({str(ready)!r}, 'w').close(); time.sleep(60)",
                              stdout=subprocess.PIPE))
    wait_for_file(ready, timeout=30)
    os.kill(p.pid, signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    summ = check_run_file(parse_lines(out))
    assert summ["exit_code"] == 143
