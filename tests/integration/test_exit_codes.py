"""denet returns CMD's exit code: its own, 128+N for a signal, 127/126 when it cannot start, 2 for usage errors."""

from __future__ import annotations

import json
import signal

import pytest

from .helpers import EXACT_RUN, PY, denet, no_traceback, read_records, summary_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_own_exit_code_is_returned_and_recorded(tmp_path, code):
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", PY, "-c", f"import sys; sys.exit({code})")
    assert res.returncode == code, res.stderr
    summ = summary_of(read_records(out))
    assert summ["exit_code"] == code
    assert summ["exact"] == EXACT_RUN


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
def test_cmd_killed_by_signal_gives_128_plus_n(tmp_path, sig):
    out = tmp_path / "run.jsonl"
    stats = tmp_path / "stats.json"
    res = denet("--out", str(out), "--stats", str(stats), "run", "--", PY, "-c",
                f"import os; os.kill(os.getpid(), {int(sig)})")
    assert res.returncode == 128 + sig, res.stderr
    assert summary_of(read_records(out))["exit_code"] == 128 + sig
    assert json.loads(stats.read_text())["exit_code"] == 128 + sig


def test_sigsegv_through_a_shell_gives_139(tmp_path):
    """A shell whose child segfaults exits 139 itself; denet passes that on (CMD's own code, not a signal)."""
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", "sh", "-c",
                f"'{PY}' -c 'import os,signal; os.kill(os.getpid(), signal.SIGSEGV)'; exit $?")
    assert res.returncode == 139, res.stderr
    assert summary_of(read_records(out))["exit_code"] == 139


def test_command_not_found_gives_127(tmp_path):
    name = "denet-test-no-such-command-xyz"
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", name, "arg")
    assert res.returncode == 127
    err = res.stderr.decode()
    assert name in err
    assert "not found" in err
    no_traceback(err)


def test_missing_path_gives_127(tmp_path):
    missing = tmp_path / "nothere" / "prog"
    res = denet("run", "--", str(missing))
    assert res.returncode == 127
    assert str(missing) in res.stderr.decode()
    no_traceback(res.stderr)


def test_not_executable_gives_126(tmp_path):
    script = tmp_path / "script.sh"
    marker = tmp_path / "ran"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o644)
    res = denet("run", "--", str(script))
    assert res.returncode == 126
    err = res.stderr.decode()
    assert str(script) in err
    no_traceback(err)
    assert not marker.exists()


def test_directory_as_command_gives_126(tmp_path):
    res = denet("run", "--", str(tmp_path))
    assert res.returncode == 126
    assert str(tmp_path) in res.stderr.decode()
    no_traceback(res.stderr)


@pytest.mark.parametrize(
    "args, named",
    [
        (["--interval", "abc", "run"], "--interval"),
        (["run", "--interval", "abc"], "--interval"),
        (["-i", "abc", "run"], "-i"),
        (["--interval", "0", "run"], "--interval"),
        (["--max-interval", "-5", "run"], "--max-interval"),
        (["--duration", "xyz", "run"], "--duration"),
        (["--duration", "-1", "run"], "--duration"),
        (["--bogus", "run"], "--bogus"),
        (["run", "--bogus"], "--bogus"),
        (["--label", "novalue", "run"], "--label"),
        (["run", "--label", "novalue"], "--label"),
        (["run", "--label", "=v"], "--label"),
    ],
)
def test_usage_errors_give_2_and_do_not_run_cmd(tmp_path, args, named):
    marker = tmp_path / "ran"
    res = denet(*args, "--", "touch", str(marker))
    assert res.returncode == 2, (res.returncode, res.stderr)
    err = res.stderr.decode()
    if named is not None:
        assert named in err, err
    no_traceback(err)
    assert not marker.exists(), "CMD ran despite the usage error"


def test_option_value_missing_at_the_end_gives_2():
    res = denet("run", "--interval")
    assert res.returncode == 2
    assert "--interval" in res.stderr.decode()
    no_traceback(res.stderr)


@pytest.mark.parametrize("args", [["run"], ["run", "--"], ["--out", "x.jsonl", "run"], ["run", "-q"]])
def test_run_without_command_gives_2(tmp_path, args):
    res = denet(*args, cwd=tmp_path)
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "command" in err.lower()
    no_traceback(err)
    assert not (tmp_path / "x.jsonl").exists() or (tmp_path / "x.jsonl").stat().st_size == 0


@pytest.mark.parametrize("option", ["--out", "--stats"])
def test_unwritable_output_is_an_error_and_cmd_does_not_run(tmp_path, option):
    marker = tmp_path / "ran"
    (tmp_path / "a-file").write_text("")  # --out creates missing directories, but not under a file
    bad = tmp_path / "a-file" / "run.jsonl"
    res = denet(option, str(bad), "run", "--", "touch", str(marker))
    assert res.returncode == 1, res.stderr  # README: 1 when denet itself failed before CMD ran
    assert str(bad) in res.stderr.decode()
    no_traceback(res.stderr)
    assert not marker.exists()


@pytest.mark.parametrize("args", [["frobnicate"], ["stats"], ["stats", "--bogus", "x.jsonl"],
                                  ["--json", "=1", "run", "--", "true"]])
def test_usage_errors_on_the_click_path_give_2(tmp_path, args):
    res = denet(*args, cwd=tmp_path)
    no_traceback(res.stderr)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.strip()
