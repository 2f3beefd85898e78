"""Errors of ProcessMonitor and execute_with_monitoring that are raised before (or instead of) a process runs."""

from __future__ import annotations

import os

import pytest

import denet.api as api
from denet import ProcessMonitor, execute_with_monitoring, monitor_command


@pytest.fixture
def no_spawn(monkeypatch):
    """Fails the test if anything is started."""

    def boom(*a, **k):
        raise AssertionError("a process was started")

    monkeypatch.setattr(api, "spawn", boom)
    monkeypatch.setattr(api.subprocess, "Popen", boom)


def _missing_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as fh:
        return int(fh.read()) + 1


def test_str_cmd_is_a_type_error(no_spawn):
    with pytest.raises(TypeError):
        ProcessMonitor("sleep 1", 100, 1000)
    with pytest.raises(TypeError):
        ProcessMonitor(["sleep", 1], 100, 1000)
    with pytest.raises(TypeError):
        ProcessMonitor(None, 100, 1000)


@pytest.mark.parametrize("fmt", ["csv", "", "parquet", "json lines"])
def test_bad_output_format_is_a_value_error_before_anything_starts(no_spawn, fmt):
    with pytest.raises(ValueError):
        ProcessMonitor(["sleep", "1"], 100, 1000, output_format=fmt)
    with pytest.raises(ValueError):
        ProcessMonitor.from_pid(os.getpid(), 100, 1000, output_format=fmt)
    with pytest.raises(ValueError):
        execute_with_monitoring(["sleep", "1"], output_format=fmt)


def test_output_format_is_checked_before_the_empty_command(no_spawn):
    with pytest.raises(ValueError):
        ProcessMonitor([], 100, 1000, output_format="xml")


def test_empty_cmd_is_an_io_error(no_spawn):
    with pytest.raises(RuntimeError, match=r"^IO Error: "):
        ProcessMonitor([], 100, 1000)


def test_a_command_that_cannot_start_is_an_io_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"^IO Error: "):
        ProcessMonitor(["denet-no-such-program-xyz"], 100, 1000)
    not_exec = tmp_path / "script.sh"
    not_exec.write_text("#!/bin/sh\n")
    with pytest.raises(RuntimeError, match=r"^IO Error: "):
        ProcessMonitor([str(not_exec)], 100, 1000)


@pytest.mark.parametrize("pid", [0, -1, -12345, "missing"])
def test_from_pid_of_a_missing_process(pid):
    if pid == "missing":
        pid = _missing_pid()
    with pytest.raises(RuntimeError, match=rf"^IO Error: Process with PID {pid} not found$"):
        ProcessMonitor.from_pid(pid, 100, 1000)


def test_from_pid_type_error():
    with pytest.raises(TypeError):
        ProcessMonitor.from_pid("1", 100, 1000)


def test_execute_missing_program_is_file_not_found():
    with pytest.raises(FileNotFoundError):
        execute_with_monitoring(["denet-no-such-program-xyz", "arg"])
    with pytest.raises(FileNotFoundError):
        execute_with_monitoring("denet-no-such-program-xyz arg")


def test_monitor_command_errors(no_spawn):
    with pytest.raises(TypeError):
        monitor_command("sleep 1")
    with pytest.raises(ValueError):
        monitor_command([])


def test_monitor_command_missing_program():
    with pytest.raises(FileNotFoundError):
        monitor_command(["denet-no-such-program-xyz"])
