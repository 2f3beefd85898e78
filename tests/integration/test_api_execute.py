"""execute_with_monitoring: exit codes, output files, pipes, pause for attachment, timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from denet import ProcessMonitor, execute_with_monitoring

from .helpers import proc_gone, proc_state, wait_for

pytestmark = pytest.mark.integration


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _our_children() -> set[int]:
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as fh:
                out.update(int(x) for x in fh.read().split())
        except OSError:
            pass
    return out


def test_exit_code_and_samples():
    code, m = execute_with_monitoring(["sh", "-c", "sleep 0.3; exit 3"], base_interval_ms=50)
    assert code == 3
    assert isinstance(m, ProcessMonitor)
    samples = [json.loads(s) for s in m.get_samples()]
    assert len(samples) >= 2 and all(s["kind"] == "tree" for s in samples)
    assert not m.is_running()
    assert json.loads(m.get_summary())["sample_count"] == len(samples)


def test_signal_exit_code_is_negative():
    code, _ = execute_with_monitoring(["sh", "-c", "kill -TERM $$"])
    assert code == -signal.SIGTERM


def test_string_command_is_split_on_whitespace():
    code, m = execute_with_monitoring(" test 1  -eq\t2\n")
    assert code == 1
    assert json.loads(m.get_metadata())["cmd"] == ["test", "1", "-eq", "2"]


def test_stdout_and_stderr_files(tmp_path):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    code, _ = execute_with_monitoring(["sh", "-c", "echo to-out; echo to-err >&2"], stdout_file=str(out),
                                      stderr_file=str(err))
    assert code == 0
    assert out.read_text() == "to-out\n" and err.read_text() == "to-err\n"


def test_pipes_never_block_the_child():
    # 4 MiB on each stream: far more than a pipe holds; it only finishes if the pipes are read
    script = "import sys; sys.stdout.write('x' * 4194304); sys.stderr.write('y' * 4194304)"
    code, _ = execute_with_monitoring([sys.executable, "-c", script], timeout=60)
    assert code == 0


def test_pause_for_attachment_attaches_while_stopped(monkeypatch):
    seen = {}
    original = ProcessMonitor.from_pid

    def spy(pid, *args, **kwargs):
        seen["state"] = proc_state(pid)
        seen["kwargs"] = kwargs
        return original(pid, *args, **kwargs)

    monkeypatch.setattr(ProcessMonitor, "from_pid", staticmethod(spy))
    code, m = execute_with_monitoring(["sh", "-c", "sleep 0.2"], base_interval_ms=50, since_process_start=True,
                                      include_children=False, quiet=True)
    assert seen["state"] == "T"  # stopped when the monitor attached
    assert code == 0  # and continued afterwards
    assert seen["kwargs"]["since_process_start"] is True and seen["kwargs"]["include_children"] is False
    assert all(json.loads(s)["kind"] == "sample" for s in m.get_samples())


def test_without_pause_the_child_is_not_stopped(monkeypatch):
    seen = {}
    original = ProcessMonitor.from_pid

    def spy(pid, *args, **kwargs):
        seen["state"] = proc_state(pid)
        return original(pid, *args, **kwargs)

    monkeypatch.setattr(ProcessMonitor, "from_pid", staticmethod(spy))
    code, _ = execute_with_monitoring(["sleep", "0.2"], pause_for_attachment=False)
    assert code == 0 and seen["state"] != "T"


def test_a_failing_attachment_leaves_no_stopped_child(monkeypatch):
    pids = []

    def fail(pid, *args, **kwargs):
        pids.append(pid)
        raise ValueError("Invalid output format")

    monkeypatch.setattr(ProcessMonitor, "from_pid", staticmethod(fail))
    with pytest.raises(ValueError):
        execute_with_monitoring(["sleep", "30"])
    (pid,) = pids
    assert _reaped(pid) and proc_gone(pid)


def test_invalid_output_format_starts_nothing():
    before = _our_children()
    with pytest.raises(ValueError):
        execute_with_monitoring(["sleep", "30"], output_format="yaml")
    assert not (_our_children() - before)


def test_missing_program():
    with pytest.raises(FileNotFoundError):
        execute_with_monitoring(["denet-no-such-program-xyz"])


def test_timeout_kills_the_process_group(tmp_path):
    pidfile = tmp_path / "gc.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    with pytest.raises(subprocess.TimeoutExpired) as info:
        execute_with_monitoring(["sh", "-c", script], timeout=0.5)
    assert info.value.timeout == 0.5
    grandchild = int(wait_for(lambda: pidfile.read_text().strip() if pidfile.exists() else None))
    wait_for(lambda: proc_gone(grandchild), timeout=10, what="the grandchild to be killed")


def test_timeout_sigkills_what_ignores_sigterm(tmp_path):
    pidfile = tmp_path / "gc.pid"
    # the shell and its child ignore SIGTERM: only SIGKILL ends them
    script = f"trap '' TERM; sleep 60 & echo $! > {pidfile}; wait"
    children_before = _our_children()
    with pytest.raises(subprocess.TimeoutExpired):
        execute_with_monitoring(["sh", "-c", script], timeout=0.5)
    grandchild = int(pidfile.read_text())
    wait_for(lambda: proc_gone(grandchild), timeout=10, what="the grandchild to be killed")
    assert not (_our_children() - children_before)  # the leader was reaped


def test_output_file_and_metadata(tmp_path):
    out = tmp_path / "m.jsonl"
    code, m = execute_with_monitoring(["sleep", "0.3"], output_file=str(out), write_metadata=True,
                                      base_interval_ms=50)
    assert code == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert recs[0]["kind"] == "metadata" and recs[0]["cmd"] == ["sleep", "0.3"]
    assert [r["kind"] for r in recs[1:]] == ["tree"] * (len(recs) - 1) and len(recs) > 2
    assert [json.dumps(r, separators=(",", ":")) for r in recs[1:]] == m.get_samples()


def test_store_in_memory_false():
    code, m = execute_with_monitoring(["sleep", "0.2"], store_in_memory=False)
    assert code == 0 and m.get_samples() == []


def test_other_children_of_the_host_are_left_alone(procs):
    other = procs.add(subprocess.Popen(["sh", "-c", "exit 9"]))
    wait_for(lambda: proc_state(other.pid) == "Z", what="the other child to exit")
    code, _ = execute_with_monitoring(["sleep", "0.2"])
    assert code == 0
    assert other.wait(timeout=5) == 9  # its status was not taken by the API


def test_no_signal_handlers_installed():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)}
    execute_with_monitoring(["sleep", "0.1"])
    assert {s: signal.getsignal(s) for s in before} == before


def test_sampling_thread_uses_sample_once(monkeypatch):
    calls = []
    real = ProcessMonitor.sample_once

    def spy(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ProcessMonitor, "sample_once", spy)
    execute_with_monitoring(["sleep", "0.3"], base_interval_ms=50)
    assert len(calls) >= 3

