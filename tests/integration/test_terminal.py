"""denet as the foreground job of a terminal: CMD shares its process group, Ctrl-C reaches CMD directly,
and the terminal shows the live line and the closing summary line."""

from __future__ import annotations

import os
import pty
import select
import signal
import time

import pytest

from .helpers import DENET, PY, check_run_file, read_records

pytestmark = pytest.mark.integration


def run_in_pty(args: list[str], *, ctrl_c_when=None, timeout: float = 30.0) -> tuple[int, bytes]:
    """Run denet on a new pseudo-terminal (its controlling terminal, denet in the foreground);
    type Ctrl-C once ``ctrl_c_when()`` is true. Returns (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        try:
            os.execv(DENET[0], DENET + args)
        finally:
            os._exit(127)
    buf = b""
    sent = False
    end = time.monotonic() + timeout
    status = None
    try:
        while status is None:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's other side is closed, denet has ended
                    data = b""
                buf += data
                if not data:
                    _, status = os.waitpid(pid, 0)
                    break
            if ctrl_c_when is not None and not sent and ctrl_c_when():
                time.sleep(0.2)
                os.write(fd, b"\x03")
                sent = True
            p, st = os.waitpid(pid, os.WNOHANG)
            if p:
                status = st
            if time.monotonic() > end:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"denet on a terminal did not end within {timeout} s; it showed {buf[-500:]!r}")
        # whatever is still buffered
        while True:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                break
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            buf += data
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), buf


def test_ctrl_c_on_a_terminal_reaches_cmd(tmp_path):
    out = tmp_path / "run.jsonl"
    ready = tmp_path / "ready"
    code = (f"import os, time; open({str(ready)!r}, 'w').write('%d %d' % (os.getpgrp(), os.tcgetpgrp(0)));"
            " time.sleep(30)")
    rc, shown = run_in_pty(["--out", str(out), "run", "--", PY, "-c", code], ctrl_c_when=ready.exists)
    assert rc == 130, shown[-800:]
    # CMD ran in the terminal's foreground process group (denet's own), so the terminal's Ctrl-C reached it
    pgrp, fg = map(int, ready.read_text().split())
    assert pgrp == fg
    summ = check_run_file(read_records(out))
    assert summ["exit_code"] == 130
    text = shown.decode(errors="replace")
    assert "exit 130" in text.rstrip().splitlines()[-1], text[-500:]  # the closing summary line


def test_terminal_shows_live_line_and_closing_summary(tmp_path):
    rc, shown = run_in_pty(["run", "--", "sh", "-c", "echo hello-from-cmd; sleep 0.6; exit 4"])
    assert rc == 4
    text = shown.decode(errors="replace")
    assert "hello-from-cmd" in text
    assert text.count("\r") >= 3, text  # the live line was redrawn
    assert "exit 4" in text.rstrip().splitlines()[-1], text[-500:]


def test_no_update_shows_only_the_closing_summary(tmp_path):
    rc, live = run_in_pty(["run", "--", "sleep", "0.6"])
    rc2, quiet = run_in_pty(["--no-update", "run", "--", "sleep", "0.6"])
    assert rc == rc2 == 0
    assert quiet.strip(), "no closing summary line on the terminal"
    # the live line redraws itself several times; with --no-update only the summary line is written
    assert quiet.count(b"\x1b[K") <= 1, quiet
    assert live.count(b"\x1b[K") > quiet.count(b"\x1b[K")
