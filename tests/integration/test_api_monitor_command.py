"""monitor_command: typed records and exact totals from the same runner as `denet run`."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

import pytest

from denet import monitor_command
from denet.api import CommandResult
from denet.records import Metrics, RunHeader, RunSummary, TreeSample
from denet.runner import _foreground_tty

from .helpers import BURN_FN, EXACT, proc_gone, wait_for

pytestmark = pytest.mark.integration

PR_GET_CHILD_SUBREAPER = 37


def _is_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    assert libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
    return bool(flag.value)


def test_result_fields_and_exact_summary():
    script = BURN_FN + "burn(0.3)\nraise SystemExit(4)\n"
    r = monitor_command([sys.executable, "-c", script], interval_ms=50)
    assert isinstance(r, CommandResult)
    assert r.exit_code == 4 and r.out is None and r.pid > 0
    assert isinstance(r.summary, RunSummary) and r.summary.exit_code == 4
    assert r.summary.exact == EXACT
    assert r.summary.cpu_time_secs >= 0.25  # exact: at least the burned CPU time
    assert r.summary.wall_time_secs > 0 and r.summary.peak_process_rss_kb > 0
    assert r.samples and all(isinstance(s, TreeSample) for s in r.samples)
    assert r.summary.sample_count == len([s for s in r.samples if s.aggregated is not None])
    assert isinstance(r.metadata, RunHeader) and r.metadata.pid == r.pid
    assert r.warnings == []
    with pytest.raises(AttributeError):
        r.exit_code = 0  # frozen


def test_out_file_is_a_denet_run_file(tmp_path):
    out = tmp_path / "run.jsonl"
    r = monitor_command(["sh", "-c", "sleep 0.3 & sleep 0.3; wait"], interval_ms=50, out=out,
                        labels={"rule": "align", "sample": "A"})
    assert r.out == str(out)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [x["kind"] for x in recs]
    assert kinds[0] == "metadata" and kinds[-1] == "summary" and set(kinds[1:-1]) == {"tree"}
    assert recs[0]["labels"] == {"rule": "align", "sample": "A"}
    assert recs[0]["cmd"] == ["sh", "-c", "sleep 0.3 & sleep 0.3; wait"]
    assert recs[-1] == json.loads(r.summary.to_line())
    assert [x for x in recs if x["kind"] == "tree"] == [json.loads(s.to_line()) for s in r.samples]
    assert r.summary.max_processes == 3


def test_exclude_children_gives_metrics():
    r = monitor_command(["sleep", "0.2"], include_children=False, interval_ms=50)
    assert r.samples and all(isinstance(s, Metrics) for s in r.samples)
    assert r.summary.max_processes == 1


def test_signal_exit_is_shell_style():
    r = monitor_command(["sh", "-c", "kill -KILL $$"])
    assert r.exit_code == 128 + signal.SIGKILL == r.summary.exit_code


def test_quiet_false_passes_output_through(capfd):
    monitor_command(["sh", "-c", "echo out-line; echo err-line >&2"], quiet=False)
    cap = capfd.readouterr()
    assert "out-line" in cap.out and "err-line" in cap.err
    monitor_command(["sh", "-c", "echo hidden"])
    assert "hidden" not in capfd.readouterr().out


def test_timeout_ends_the_command_and_raises_with_the_result(tmp_path):
    pidfile = tmp_path / "gc.pid"
    with pytest.raises(subprocess.TimeoutExpired) as info:
        monitor_command(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=0.5, interval_ms=50)
    result = info.value.result
    assert isinstance(result, CommandResult) and result.samples
    assert result.exit_code == 128 + signal.SIGTERM
    grandchild = int(pidfile.read_text())
    if _foreground_tty():  # the command shared our process group: only it was signalled
        os.kill(grandchild, signal.SIGKILL)
        pytest.skip("run from a terminal's foreground job: the command has no process group of its own")
    # in its own process group, the whole group got the signal
    wait_for(lambda: proc_gone(grandchild), timeout=10, what="the grandchild to end")


def test_timeout_escalates_to_sigkill():
    with pytest.raises(subprocess.TimeoutExpired) as info:
        monitor_command(["sh", "-c", "trap '' TERM; exec sleep 60"], timeout=0.3)
    assert info.value.result.exit_code == 128 + signal.SIGKILL


def test_host_is_left_as_it_was(procs):
    other = procs.add(subprocess.Popen(["sh", "-c", "exit 9"]))
    wait_for(lambda: proc_gone(other.pid), what="the other child to exit")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    subreaper = _is_subreaper()
    r = monitor_command(["sleep", "0.1"])
    assert r.exit_code == 0
    assert other.wait(timeout=5) == 9  # its exit status was not taken
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert _is_subreaper() == subreaper
