"""Helpers shared by the integration tests: run denet as a real subprocess and read its records."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable  # the venv's python: denet is installed in it, workloads run with it too
DENET = [PY, "-m", "denet"]
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SCHEMA = json.loads((REPO / "schemas" / "records.json").read_text())

EXACT = ["exit_code", "wall_time_secs", "cpu_user_secs", "cpu_system_secs", "cpu_time_secs", "peak_process_rss_kb"]
# `run` with children followed (the default) also has exact I/O totals (what denet read of each process it reaped)
EXACT_RUN = EXACT + ["total_disk_read_bytes", "total_disk_write_bytes", "total_syscall_read_bytes",
                     "total_syscall_write_bytes"]

# Burns CPU until the process has used `secs` seconds of CPU time: the work is fixed in CPU time,
# not in wall time, so a noisy machine stretches the wall time but not the CPU total.
BURN_FN = """
import time
def burn(secs):
    end = time.process_time() + secs
    while time.process_time() < end:
        for _ in range(2000):
            pass
"""


def denet(*args: str, input: bytes | None = None, timeout: float = 60, stdin=None, cwd=None,
          env=None) -> subprocess.CompletedProcess:
    """Run ``denet ARGS`` to its end; stdout/stderr captured as bytes."""
    if stdin is None and input is None:
        stdin = subprocess.DEVNULL
    return subprocess.run(DENET + list(args), input=input, stdin=stdin, capture_output=True, timeout=timeout,
                          cwd=cwd, env=env)


def start_denet(*args: str, **kw) -> subprocess.Popen:
    """Start ``denet ARGS`` in the background (stdin from /dev/null, not a terminal)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(DENET + list(args), **kw)


def read_lines(path: Path) -> list[str]:
    data = Path(path).read_bytes()
    assert data.endswith(b"\n") or not data, f"{path}: last line is not complete: {data[-200:]!r}"
    return data.decode().splitlines()


def parse_lines(text: str | bytes) -> list[dict]:
    if isinstance(text, bytes):
        text = text.decode()
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        assert line.strip(), f"empty line {n}"
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {n} is not an object: {line[:200]}"
        out.append(obj)
    return out


def read_records(path: Path) -> list[dict]:
    """Every line of a JSONL file, parsed; fails on an incomplete or invalid line."""
    return parse_lines("\n".join(read_lines(path)))


def kinds(records: list[dict]) -> list[str]:
    return [r.get("kind") for r in records]


def of_kind(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r.get("kind") == kind]


def summary_of(records: list[dict]) -> dict:
    assert records and records[-1].get("kind") == "summary", f"last record is not a summary: {kinds(records)[-5:]}"
    return records[-1]


def check_run_file(records: list[dict], body_kind: str = "tree") -> dict:
    """metadata first, then only `body_kind` records (and the ledger's `process` records), then one
    summary; returns the summary."""
    ks = kinds(records)
    assert ks[0] == "metadata", ks[:3]
    assert ks[-1] == "summary", ks[-3:]
    assert set(ks[1:-1]) <= {body_kind, "process"}, set(ks)
    return records[-1]


def wait_for(pred, timeout: float = 15.0, step: float = 0.02, what: str = "condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def wait_for_file(path: Path, timeout: float = 15.0) -> Path:
    wait_for(lambda: Path(path).exists(), timeout, what=str(path))
    return Path(path)


def metrics_fields(required_only: bool = True) -> list[dict]:
    fields = SCHEMA["records"]["metrics"]["fields"]
    return [f for f in fields if not (required_only and f.get("optional"))]


def kill_quietly(pid: int, sig: int = signal.SIGKILL, group: bool = False) -> None:
    if pid <= 1 or pid == os.getpid() or (group and pid == os.getpgrp()):
        return  # never the test run itself
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def no_traceback(stderr: bytes | str) -> None:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text


def read_pid(path: Path, timeout: float = 15.0) -> int:
    """A pid written to ``path`` as one line (waits until the line is complete); never returns 0 or less."""
    def get():
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") and text.strip().isdigit() else None

    pid = wait_for(get, timeout, what=f"a pid in {path}")
    assert pid > 1
    return pid


def proc_state(pid: int) -> str | None:
    """The process's state letter from /proc (e.g. "S", "Z"), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()[0].decode()


def proc_gone(pid: int) -> bool:
    """The process has ended (gone, or a zombie waiting to be reaped)."""
    return proc_state(pid) in (None, "Z", "X")


@functools.cache
def ebpf_unavailable() -> str | None:
    """Why eBPF cannot run here (the probe's own reason), or None when it can; probed once."""
    from denet.collectors import ebpf

    r = ebpf.probe()
    if r.collector is not None:
        r.collector.close()
    return None if r.available else r.reason
