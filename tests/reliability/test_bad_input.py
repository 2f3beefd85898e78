"""Bad input to every reader: `denet stats`, `summarize`, `ls`, `report` and the Python API's readers,
fuzzed with hypothesis over truncated, binary, huge-line, wrong-type and wrong-version files.

Whatever the bytes, a reader either reads the file or stops with a clear message that names the file
(and the line, for a line it skips) and a non-zero exit code; never a traceback. The CLI is called
in-process (`denet.cli.main`, what the console script runs) for speed, with a few real subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integration.helpers import DENET, FIXTURES, no_traceback

pytestmark = pytest.mark.integration

# DENET_FUZZ_EXAMPLES=500 for a longer, random search; CI runs a fixed, short one.
_EXAMPLES = int(os.environ.get("DENET_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXAMPLES or 30, deadline=None, derandomize=not _EXAMPLES,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real run as JSON lines and as Parquet, and the other formats the readers accept."""
    d = tmp_path_factory.mktemp("good")
    cmd = ["sh", "-c", "sleep 0.3 & sleep 0.3; exit 2"]
    for name in ("run.jsonl", "run.parquet"):
        res = subprocess.run(DENET + ["--label", "rule=fuzz", "--out", str(d / name), "run", "-i", "50", "--", *cmd],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        assert res.returncode == 2, res.stderr
    return {
        "jsonl": (d / "run.jsonl").read_bytes(),
        "parquet": (d / "run.parquet").read_bytes(),
        "rust": (FIXTURES / "rust_tree_untagged.jsonl").read_bytes(),
        "tsv": (FIXTURES / "snakemake_bench_extended.tsv").read_bytes(),
    }


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _retype(base: bytes, data) -> bytes:
    """One field of one record set to a value of another type (or the version to something odd)."""
    lines = base.decode().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    try:
        obj = json.loads(lines[i])
    except ValueError:
        return base
    if not isinstance(obj, dict) or not obj:
        return base
    key = data.draw(st.sampled_from(sorted(obj) + ["schema_version", "kind"]))
    obj[key] = data.draw(JSON_VALUES)
    if isinstance(obj.get("aggregated"), dict) and data.draw(st.booleans()):
        sub = obj["aggregated"]
        sub[data.draw(st.sampled_from(sorted(sub) or ["cpu_usage"]))] = data.draw(JSON_VALUES)
    lines[i] = json.dumps(obj)  # NaN and Infinity become the bare tokens Python writes
    return ("\n".join(lines) + "\n").encode()


def _mutate(base: bytes, data) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "flip", "insert-binary", "huge-line", "retype", "binary",
                                     "version", "empty-lines"]))
    if how == "truncate":
        return base[: data.draw(st.integers(0, len(base)))]
    if how == "flip":
        b = bytearray(base)
        for _ in range(data.draw(st.integers(1, 8))):
            b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
        return bytes(b)
    if how == "insert-binary":
        at = data.draw(st.integers(0, len(base)))
        return base[:at] + data.draw(st.binary(min_size=1, max_size=64)) + base[at:]
    if how == "huge-line":
        at = base.find(b"\n", data.draw(st.integers(0, len(base)))) + 1
        filler = data.draw(st.sampled_from([b"x", b"[", b"{\"a\":", b"9"])) * data.draw(st.integers(1 << 16, 3 << 20))
        return base[:at] + filler + b"\n" + base[at:]
    if how == "retype":
        return _retype(base, data) if base[:1] == b"{" else base
    if how == "binary":
        return data.draw(st.binary(max_size=2048))
    if how == "version":
        v = data.draw(st.sampled_from([2, 999, -1, 0, "1", None, 1.5, [1], 10**30]))
        return re.sub(rb'"schema_version":\s*[^,}]+', f'"schema_version":{json.dumps(v)}'.encode(), base)
    return base.replace(b"\n", b"\n\n\r\n", 3)


def _call_cli(capfd, args: list[str]) -> tuple[int, str]:
    from denet.cli import main

    capfd.readouterr()
    rc = main(args)  # an exception escaping here is the bug this file looks for
    _, err = capfd.readouterr()
    return rc, err


def _check(rc: int, err: str, path: str) -> None:
    assert "Traceback" not in err, err
    if rc != 0:
        assert rc in (1, 2), (rc, err)
        assert path in err or os.path.basename(path) in err, f"the message does not name the file: {err!r}"
    for line in err.splitlines():
        if line.startswith("denet: skipped ") and "more unreadable" not in line:
            assert path in line, line  # a skipped file or line is named: FILE: why, or FILE:LINE: why


COMMANDS = {
    "stats": ["stats"],
    "stats-json": ["stats", "--json"],
    "summarize": ["summarize"],
    "summarize-per-run": ["summarize", "--per-run", "--format", "json"],
    "ls": ["ls", "--format", "json"],
}


@pytest.mark.parametrize("source", ["jsonl", "parquet", "rust", "tsv"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_fuzzed_files_through_the_cli(capfd, good, source, command):
    suffix = {"jsonl": ".jsonl", "parquet": ".parquet", "rust": ".jsonl", "tsv": ".tsv"}[source]

    @FUZZ
    @given(data=st.data())
    def run(data):
        content = _mutate(good[source], data)
        d = tempfile.mkdtemp(prefix="denet-fuzz-")
        try:
            path = os.path.join(d, "input" + suffix)
            with open(path, "wb") as fh:
                fh.write(content)
            rc, err = _call_cli(capfd, COMMANDS[command] + [path])
            _check(rc, err, path)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    run()


@pytest.mark.parametrize("source", ["jsonl", "parquet", "rust"])
def test_fuzzed_files_through_the_api_readers(good, source):
    """The Python API's readers raise an OSError or ValueError that names the file, or read it."""
    import denet
    from denet.errors import DenetError
    from denet.readers import effective_summary, read_run

    suffix = ".parquet" if source == "parquet" else ".jsonl"

    @FUZZ
    @given(data=st.data())
    def run(data):
        content = _mutate(good[source], data)
        d = tempfile.mkdtemp(prefix="denet-fuzz-")
        try:
            path = os.path.join(d, "input" + suffix)
            with open(path, "wb") as fh:
                fh.write(content)
            for fn in (denet.load_metrics, denet.generate_summary_from_file,
                       lambda p: effective_summary(read_run(p))):
                try:
                    fn(path)
                except (OSError, ValueError, DenetError) as exc:
                    assert path in str(exc) or path == getattr(exc, "filename", None), \
                        f"{getattr(fn, '__name__', 'read_run')}: {type(exc).__name__}: {exc}"
        finally:
            shutil.rmtree(d, ignore_errors=True)

    run()


# ------------------------------------------------------------------ a few real subprocesses


@pytest.mark.parametrize("command", [["stats"], ["summarize"], ["report", "-o", "{d}/r.html"]])
@pytest.mark.parametrize("content", [b"\x00\xff" * 5000, b'{"kind":"metadata","schema_version":7}\n',
                                     b'{"kind":"tree","aggregated":' + b"[" * 200_000 + b"\n"])
def test_bad_files_in_real_processes(tmp_path, command, content):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    args = [a.replace("{d}", str(tmp_path)) for a in command]
    res = subprocess.run(DENET + args + [str(path)], capture_output=True, timeout=120)
    no_traceback(res.stderr)
    assert res.returncode != 0
    assert str(path).encode() in res.stderr, res.stderr


def test_a_huge_line_is_skipped_with_its_line_number(tmp_path, good):
    path = tmp_path / "huge.jsonl"
    lines = good["jsonl"].splitlines(keepends=True)
    path.write_bytes(lines[0] + b'{"kind":"tree","x":"' + b"y" * (40 << 20) + b"\n" + b"".join(lines[1:]))
    res = subprocess.run(DENET + ["stats", "--json", str(path)], capture_output=True, timeout=300)
    no_traceback(res.stderr)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["exit_code"] == 2
    assert f"{path}:2".encode() in res.stderr, res.stderr  # the file and the line skipped
    assert len(res.stderr) < 2000  # the message quotes the line's start, not 40 MB of it


@pytest.mark.parametrize("command", ["recover", "compact", pytest.param("report-png", marks=pytest.mark.slow)])
def test_fuzzed_files_through_recover_compact_and_report(capfd, good, command):
    """The other readers: `recover` on a damaged journal, `compact` and `report` on damaged runs."""
    if command == "report-png":
        pytest.importorskip("vl_convert")

    @settings(FUZZ, max_examples=_EXAMPLES or (10 if command == "report-png" else 30))
    @given(data=st.data())
    def run(data):
        source = data.draw(st.sampled_from(["jsonl", "parquet"])) if command == "compact" else "jsonl"
        content = _mutate(good[source], data)
        d = tempfile.mkdtemp(prefix="denet-fuzz-")
        try:
            if command == "recover":
                path = os.path.join(d, ".run.parquet.journal")
                args = ["recover", path, "-o", os.path.join(d, "out.parquet")]
            elif command == "compact":
                path = os.path.join(d, "input." + source)
                args = ["compact", path, "-o", os.path.join(d, "dataset")]
            else:
                path = os.path.join(d, "input.jsonl")
                args = ["report", path, "-o", os.path.join(d, "run.png")]
            with open(path, "wb") as fh:
                fh.write(content)
            rc, err = _call_cli(capfd, args)
            _check(rc, err, path)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    run()
