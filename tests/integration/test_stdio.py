"""CMD's stdin, stdout and stderr pass through denet; --json keeps stdout for records; --quiet discards."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .helpers import PY, check_run_file, denet, kinds, no_traceback, parse_lines, read_records, start_denet

pytestmark = pytest.mark.integration

# Writes exact bytes (including bytes that are not UTF-8 and no final newline) to stdout and stderr.
WRITER = (
    "import os, sys\n"
    "os.write(1, b'out line 1\\nout \\xff\\xfe bytes\\nno newline at the end')\n"
    "os.write(2, b'err line 1\\nerr \\x00 nul\\n')\n"
)
OUT_BYTES = b"out line 1\nout \xff\xfe bytes\nno newline at the end"
ERR_BYTES = b"err line 1\nerr \x00 nul\n"


def test_stdout_and_stderr_pass_through_unchanged(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", PY, "-c", WRITER)
    assert res.returncode == 0
    assert res.stdout == OUT_BYTES
    assert res.stderr == ERR_BYTES  # denet adds nothing of its own when stderr is not a terminal
    check_run_file(read_records(out))


def test_no_records_on_stdout_without_json(tmp_path):
    res = denet("run", "--", PY, "-c", "print('only this')")
    assert res.returncode == 0
    assert res.stdout == b"only this\n"


def test_large_output_passes_through(tmp_path):
    n = 3_000_000
    res = denet("run", "--", PY, "-c", f"import sys; sys.stdout.buffer.write(b'x' * {n}); sys.stderr.write('e' * 100000)")
    assert res.returncode == 0
    assert res.stdout == b"x" * n
    assert res.stderr == b"e" * 100000


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_stdout_carries_only_records(tmp_path, where):
    args = ["--json", "run"] if where == "before" else ["run", "--json"]
    res = denet(*args, "--", PY, "-c", WRITER + "import time; time.sleep(0.4)")
    assert res.returncode == 0, res.stderr
    records = parse_lines(res.stdout)  # every line is a JSON object
    ks = kinds(records)
    assert ks[0] == "metadata" and ks[-1] == "summary"
    assert "tree" in ks
    check_run_file(records)
    # CMD's stdout went to stderr, after or around its own stderr, byte for byte.
    assert OUT_BYTES in res.stderr
    assert ERR_BYTES in res.stderr


def test_json_and_out_write_the_same_records(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("--json", "--out", str(out), "run", "--", PY, "-c", "import time; time.sleep(0.3)")
    assert res.returncode == 0
    from_stdout = parse_lines(res.stdout)
    from_file = read_records(out)
    assert from_stdout == from_file


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_discards_cmd_output(tmp_path, flag):
    out = tmp_path / "run.jsonl"
    res = denet(flag, "--out", str(out), "run", "--", PY, "-c", WRITER)
    assert res.returncode == 0
    assert res.stdout == b""
    assert b"out line" not in res.stderr and b"err line" not in res.stderr
    check_run_file(read_records(out))


def test_quiet_with_json_leaves_only_records(tmp_path):
    res = denet("-q", "--json", "run", "--", PY, "-c", WRITER)
    assert res.returncode == 0
    check_run_file(parse_lines(res.stdout))
    assert b"out line" not in res.stderr and b"err line" not in res.stderr


def test_stdin_is_passed_through(tmp_path):
    data = os.urandom(1 << 20) + b"\nlast line\n"
    res = denet("run", "--", "cat", input=data)
    assert res.returncode == 0
    assert res.stdout == data


def test_stdin_from_a_file_with_json(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"".join(b"line %d\n" % i for i in range(10000)))
    with open(src, "rb") as fh:
        res = denet("--json", "run", "--", "wc", "-l", stdin=fh)
    assert res.returncode == 0
    assert res.stderr.split() == [b"10000"]
    check_run_file(parse_lines(res.stdout))


def test_closed_stdout_pipe_gives_cmd_sigpipe(tmp_path):
    """CMD gets the default SIGPIPE disposition back (Python ignores it): `yes | head` must end."""
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", "sh", "-c", "yes | head -n 3", timeout=30)
    assert res.returncode == 0
    assert res.stdout == b"y\ny\ny\n"


def test_json_reader_going_away_does_not_stop_cmd(tmp_path, procs):
    """`denet --json run ... | head -1`: the records are lost, the command goes on and its code comes back."""
    done = tmp_path / "done"
    p = procs.add(start_denet("--json", "run", "--", "sh", "-c", f"sleep 0.8; touch {done}; exit 3",
                              stdout=subprocess.PIPE))
    first = p.stdout.readline()
    assert json.loads(first)["kind"] == "metadata"
    p.stdout.close()
    rc = p.wait(timeout=30)
    err = p.stderr.read().decode()
    assert rc == 3, err
    assert done.exists()
    assert "<stdout>" in err or "stdout" in err
    no_traceback(err)
