"""Exit codes as GNU time reports them, and denet inside the usual wrappers: `timeout`, `nohup`, a
background job of a script, a pipeline, and a terminal as CMD's stdin.

tests/integration/test_exit_codes.py checks each code on its own; here every case is run under GNU
time and under denet side by side, so that a workflow sees the same code whichever wrapper it uses.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

import pytest
from integration.helpers import (
    DENET,
    PY,
    check_run_file,
    no_traceback,
    read_pid,
    read_records,
    wait_for_file,
)

pytestmark = pytest.mark.integration

# name -> CMD (argv). Each is a real program; the shells kill themselves with the named signal.
CASES = {
    "exit-0": ["true"],
    "exit-3": ["sh", "-c", "exit 3"],
    "sigterm": ["sh", "-c", "kill -TERM $$"],
    "sigkill": ["sh", "-c", "kill -KILL $$"],
    "sigsegv": ["sh", "-c", "kill -SEGV $$"],
    "not-found": ["denet-reliability-no-such-command"],
    "not-executable": ["{tmp}/data.txt"],  # mode 644
}
EXPECTED = {"exit-0": 0, "exit-3": 3, "sigterm": 143, "sigkill": 137, "sigsegv": 139, "not-found": 127,
            "not-executable": 126}


@pytest.mark.parametrize("case", list(CASES))
def test_exit_code_is_the_one_gnu_time_reports(tmp_path, gnu_time, case):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in CASES[case]]
    (tmp_path / "data.txt").write_text("echo this must not run\n")
    (tmp_path / "data.txt").chmod(0o644)
    ref = subprocess.run([gnu_time, "-f", "%x", "-o", str(tmp_path / "time.txt"), *argv], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=60)
    out = tmp_path / "run.jsonl"
    res = subprocess.run(DENET + ["--out", str(out), "run", "--", *argv], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=60)
    assert ref.returncode == EXPECTED[case], ref.stderr  # the reference itself
    assert res.returncode == ref.returncode, res.stderr
    no_traceback(res.stderr)
    if case in ("not-found", "not-executable"):
        assert argv[0].encode() in res.stderr
        assert not out.exists() or out.stat().st_size == 0  # CMD never ran: no half-written file
    else:
        assert check_run_file(read_records(out))["exit_code"] == ref.returncode


def test_usage_error_gives_2_like_gnu_time_refusing_an_option(tmp_path, gnu_time):
    ref = subprocess.run([gnu_time, "--no-such-option", "true"], capture_output=True, timeout=60)
    res = subprocess.run(DENET + ["run", "--no-such-option", "--", "true"], capture_output=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert ref.returncode != 0  # GNU time says 125 here; denet keeps 2, the usual usage-error code
    assert b"--no-such-option" in res.stderr
    no_traceback(res.stderr)


def test_under_timeout_cmd_is_stopped_and_the_file_finalised(tmp_path):
    """`timeout 2 denet run -- sleep 60`: timeout sends SIGTERM to denet, denet forwards it, CMD dies of it,
    denet writes the summary and exits 143, which timeout turns into its own 124."""
    out = tmp_path / "run.jsonl"
    stats = tmp_path / "stats.json"
    res = subprocess.run(["timeout", "2", *DENET, "--out", str(out), "--stats", str(stats), "run", "--",
                          "sleep", "60"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert res.returncode == 124, res.stderr
    no_traceback(res.stderr)
    assert check_run_file(read_records(out))["exit_code"] == 143
    assert stats.read_text().strip()


def test_under_timeout_preserve_status_gives_cmds_code(tmp_path):
    out = tmp_path / "run.jsonl"
    res = subprocess.run(["timeout", "--preserve-status", "2", *DENET, "--out", str(out), "run", "--",
                          "sleep", "60"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert res.returncode == 143, res.stderr
    assert check_run_file(read_records(out))["exit_code"] == 143


def _hup_or_int_survives(tmp_path, procs, launcher: list[str], sig: signal.Signals) -> None:
    d = tmp_path
    out = d / "run.jsonl"
    pidfile = d / "denet.pid"
    ready = d / "ready"
    done = d / "done"
    cmd = f"touch {ready}; sleep 1.5; touch {done}; exit 5"
    script = (f"{' '.join(launcher)} {' '.join(DENET)} --out {out} run -- sh -c '{cmd}' </dev/null >/dev/null 2>&1 & "
              f"echo $! > {pidfile}; wait $!")
    p = procs.add(subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True))
    pid = read_pid(pidfile, timeout=30)
    wait_for_file(ready, timeout=30)
    os.kill(pid, sig)
    rc = p.wait(timeout=60)
    assert rc == 5, f"denet or CMD died of {sig.name}, which its parent had asked to be ignored"
    assert done.exists()
    assert check_run_file(read_records(out))["exit_code"] == 5


def test_under_nohup_cmd_keeps_ignoring_sighup(tmp_path, procs):
    """`nohup denet run -- CMD`: a hangup must not end CMD (fixed: denet used to reset SIGHUP to its
    default in CMD and forward it, so CMD died of it)."""
    _hup_or_int_survives(tmp_path, procs, ["nohup"], signal.SIGHUP)


def test_background_job_of_a_script_keeps_ignoring_sigint(tmp_path, procs):
    """`denet run -- CMD &` in a non-interactive shell: the shell ignores SIGINT for the job; CMD must too."""
    _hup_or_int_survives(tmp_path, procs, [], signal.SIGINT)


def test_in_a_pipeline_bytes_and_exit_codes_pass_through(tmp_path):
    out = tmp_path / "run.jsonl"
    data = b"".join(b"%d\n" % i for i in range(50000))
    script = (f"{' '.join(DENET)} --out {out} run -- sh -c 'sort -n; exit 6' | "
              "tail -n 1; echo \"status ${PIPESTATUS[0]}\"")
    res = subprocess.run(["bash", "-c", script], input=data, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"49999\nstatus 6\n"
    assert check_run_file(read_records(out))["exit_code"] == 6


def test_json_records_into_a_pipeline(tmp_path):
    """`denet --json run -- CMD | consumer`: the consumer gets only records, CMD's output is on stderr."""
    res = subprocess.run(["bash", "-c", f"{' '.join(DENET)} --json run -- sh -c 'echo hi; exit 2' | "
                          f"{PY} -c 'import json,sys; r=[json.loads(x) for x in sys.stdin]; print(r[-1][\"exit_code\"])';"
                          " echo \"status ${PIPESTATUS[0]}\""], capture_output=True, timeout=60)
    assert res.stdout == b"2\nstatus 2\n", res.stderr
    assert b"hi" in res.stderr


def test_stdin_from_a_file_without_json(tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(300_000))
    with open(src, "rb") as fh:
        res = subprocess.run(DENET + ["run", "--", "sha256sum"], stdin=fh, capture_output=True, timeout=60)
    ref = subprocess.run(["sha256sum"], input=src.read_bytes(), capture_output=True, timeout=60)
    assert res.returncode == 0
    assert res.stdout == ref.stdout


def test_stdin_from_a_terminal_reaches_cmd(tmp_path):
    """CMD's stdin is the terminal denet was started on: it sees a TTY and reads what is typed."""
    out = tmp_path / "run.jsonl"
    seen = tmp_path / "seen"
    code = (f"import os, sys; line = sys.stdin.readline(); "
            f"open({str(seen)!r}, 'w').write(f'{{os.isatty(0)}} {{line.strip()}}'); sys.exit(4)")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        try:
            os.execv(DENET[0], DENET + ["--no-update", "--out", str(out), "run", "--", PY, "-c", code])
        finally:
            os._exit(127)
    try:
        time.sleep(0.5)
        os.write(fd, b"typed on the terminal\n")
        end = time.monotonic() + 60
        status = None
        while status is None and time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
            p, st = os.waitpid(pid, os.WNOHANG)
            if p:
                status = st
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("denet on a terminal did not end")
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 4
    assert seen.read_text() == "True typed on the terminal"
    assert check_run_file(read_records(out))["exit_code"] == 4
