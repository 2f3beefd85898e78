"""Fixtures of the integration tests (helpers live in helpers.py)."""

from __future__ import annotations

import signal
import subprocess

import pytest

from .helpers import kill_quietly


class _Procs:
    """Processes a test started or learned about; whatever is still alive is killed at teardown."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen] = []
        self.pids: list[tuple[int, bool]] = []

    def add(self, p: subprocess.Popen) -> subprocess.Popen:
        self.popens.append(p)
        return p

    def pid(self, pid: int, group: bool = False) -> int:
        self.pids.append((pid, group))
        return pid

    def cleanup(self) -> None:
        for pid, group in self.pids:
            kill_quietly(pid, signal.SIGKILL, group)
        for p in self.popens:
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError):
                pass


@pytest.fixture
def procs():
    reg = _Procs()
    try:
        yield reg
    finally:
        reg.cleanup()
