"""Faults around the command: a full disk, the output directory removed, /proc read errors, NVML failing.
In every case CMD runs to its end, its exit code is returned, and each problem is reported once on stderr
without a traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest
from integration.helpers import (
    DENET,
    PY,
    REPO,
    check_run_file,
    no_traceback,
    of_kind,
    read_records,
)

pytestmark = pytest.mark.integration

# Runs about 1.5 s, then exits 3: long enough for a few hundred records at a 10 ms interval.
CMD = ["sh", "-c", "sleep 1.5; echo done > /dev/null; exit 3"]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only); skipped, with the reason, where mounting is refused."""
    d = tmp_path / "small"
    d.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.decode().strip() or res.returncode}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _complete_lines_but_maybe_the_last(path):
    data = path.read_bytes()
    lines = data.split(b"\n")
    for line in lines[:-1]:
        json.loads(line)
    return lines


def test_disk_full_under_jsonl_stats_and_benchmark(small_disk, tmp_path):
    out = small_disk / "run.jsonl"
    stats = small_disk / "stats.json"
    bench = small_disk / "bench.tsv"
    res = subprocess.run(DENET + ["--out", str(out), "--stats", str(stats), "--benchmark", str(bench), "run", "-i",
                                  "10", "--", *CMD], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    err = res.stderr.decode()
    assert res.returncode == 3, err
    no_traceback(err)
    assert err.count(str(out)) == 1, err  # reported once, not once per record
    assert "No space left on device" in err
    assert err.count(str(stats)) <= 1 and err.count(str(bench)) <= 1, err
    lines = _complete_lines_but_maybe_the_last(out)
    assert json.loads(lines[0])["kind"] == "metadata"
    # the file is still readable: the cut last line is skipped with a message naming the file
    s = subprocess.run(DENET + ["stats", str(out)], capture_output=True, timeout=120)
    assert s.returncode == 0, s.stderr
    no_traceback(s.stderr)
    assert b"cut short" in s.stdout


def test_disk_full_under_parquet(small_disk, tmp_path):
    out = small_disk / "run.parquet"
    res = subprocess.run(DENET + ["--out", str(out), "run", "-i", "10", "--", *CMD], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=120)
    err = res.stderr.decode()
    assert res.returncode == 3, err
    no_traceback(err)
    assert 1 <= err.count("denet:") <= 2, err  # the write failing, and at most one line about closing
    if out.exists():  # never a corrupt Parquet file: either none, or one that reads
        import pyarrow.parquet as pq

        pq.ParquetFile(str(out)).read()


def test_disk_full_on_stdout_json(small_disk, tmp_path):
    """--json into a file on a full disk: the command goes on, its code comes back."""
    with open(small_disk / "records.jsonl", "wb") as fh:
        res = subprocess.run(DENET + ["--json", "run", "-i", "10", "--", *CMD], stdin=subprocess.DEVNULL,
                             stdout=fh, stderr=subprocess.PIPE, timeout=120)
    err = res.stderr.decode()
    assert res.returncode == 3, err
    no_traceback(err)
    assert err.count("No space left on device") == 1, err


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_output_directory_removed_mid_run(tmp_path, ext):
    d = tmp_path / "outdir"
    d.mkdir()
    out = d / f"run.{ext}"
    bench = d / "bench.tsv"
    ready = tmp_path / "ready"
    go = tmp_path / "go"
    script = f"touch {ready}; while [ ! -e {go} ]; do sleep 0.05; done; sleep 0.2; exit 3"
    p = subprocess.Popen(DENET + ["--out", str(out), "--benchmark", str(bench), "run", "--", "sh", "-c", script],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while not (ready.exists() and out.parent.exists() and any(d.iterdir())) and time.monotonic() < end:
            time.sleep(0.02)
        subprocess.run(["rm", "-rf", str(d)], check=True)
        go.touch()
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    text = err.decode()
    assert p.returncode == 3, text
    no_traceback(text)
    for line in text.splitlines():  # each output that could not be finished is named once
        assert text.count(line) == 1, text
    if ext == "parquet":
        assert str(out) in text
    assert not d.exists()  # denet does not re-create what was removed


def _pread_faults(monkeypatch, seed: int, io_error: float, garbage: float):
    """Make the /proc reader's pread fail: EIO/ESRCH (a process vanishing between listing and reading) or
    bytes that are not what /proc returns."""
    import denet.collectors.proc as proc

    rng = random.Random(seed)
    real = os.pread

    class FaultyOs:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def pread(fd, n, off):
            r = rng.random()
            if r < io_error:
                raise OSError(rng.choice([5, 3]), "injected /proc read error")
            if r < io_error + garbage:
                return rng.choice([b"", b"garbage 1 2", b"1 (x) R" + b" -1" * 60, os.urandom(64)])
            return real(fd, n, off)

    monkeypatch.setattr(proc, "os", FaultyOs())


@pytest.mark.parametrize("seed", range(4))
def test_proc_read_errors_in_process(monkeypatch, seed):
    """The Python API with a /proc reader that fails at random: the command's code and exact totals come
    back; a fault the reader cannot absorb stops the sampling with one warning."""
    from denet.api import monitor_command

    _pread_faults(monkeypatch, seed, io_error=0.2, garbage=0.1 if seed % 2 else 0.0)
    res = monitor_command([PY, "-c", "import os, time\nfor _ in range(3):\n    os.system('true')\n"
                           "time.sleep(0.4)\nraise SystemExit(3)"], interval_ms=10)
    assert res.exit_code == 3
    assert res.summary.exit_code == 3 and res.summary.cpu_time_secs is not None
    assert len(res.warnings) <= 1, res.warnings
    assert all("sampling stopped" in w for w in res.warnings)


def test_vanishing_processes_through_the_cli(tmp_path):
    """Thousands of processes that end while being listed and read, with the real /proc."""
    out = tmp_path / "run.jsonl"
    res = subprocess.run(DENET + ["--out", str(out), "run", "-i", "10", "--", "sh", "-c",
                                  "i=0; while [ $i -lt 400 ]; do /bin/true & i=$((i+1)); done; wait; exit 3"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert res.returncode == 3, res.stderr
    assert res.stderr == b""  # nothing to report: a vanished process is not an error
    assert check_run_file(read_records(out))["exit_code"] == 3


def test_a_sampler_crash_in_the_cli_keeps_the_command_and_its_code(tmp_path):
    """A reader bug (an exception from the sampler) in `denet run`: reported once, the command runs to its
    end, the summary (exact totals) is written and the code comes back (fixed: it used to crash denet with
    a traceback, leaving CMD behind)."""
    out = tmp_path / "run.jsonl"
    done = tmp_path / "done"
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import denet.sampler as s\n"
        "_orig = s.Sampler.sample\n"
        "_n = [0]\n"
        "def sample(self):\n"
        "    _n[0] += 1\n"
        "    if _n[0] == 3:\n"
        "        raise ValueError('injected reader fault')\n"
        "    return _orig(self)\n"
        "s.Sampler.sample = sample\n")
    env = {**os.environ, "PYTHONPATH": f"{shim}:{REPO}"}
    res = subprocess.run(DENET + ["--out", str(out), "run", "-i", "20", "--", "sh", "-c", f"sleep 1; touch {done}; exit 3"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120, env=env)
    err = res.stderr.decode()
    assert res.returncode == 3, err
    no_traceback(err)
    assert err.count("sampling stopped") == 1 and "injected reader fault" in err, err
    assert done.exists()
    summ = check_run_file(read_records(out))
    assert summ["exit_code"] == 3 and summ["wall_time_secs"] >= 1.0


def test_nvml_failing_mid_run_on_every_device(tmp_path):
    pytest.importorskip("pynvml")
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import fakenvml
    finally:
        sys.path.remove(str(REPO / "tests"))
    marker = "reliability-gpu-root"
    spec = fakenvml.two_devices({"match": marker}, {"match": marker}, os.getpid())
    spec["devices"][0]["lost_after"] = 2
    spec["devices"][1]["lost_after"] = 4
    env = fakenvml.shim_env(fakenvml.shim_dir(str(tmp_path / "shim"), spec))
    out = tmp_path / "run.parquet"
    res = subprocess.run(DENET + ["--out", str(out), "run", "-i", "30", "--", PY, "-c",
                                  "import time, os, signal; time.sleep(1); os.kill(os.getpid(), signal.SIGTERM)",
                                  marker], stdin=subprocess.DEVNULL, capture_output=True, timeout=120, env=env)
    err = res.stderr.decode()
    assert res.returncode == 143, err
    no_traceback(err)
    assert err.count("GPU collector stopped") == 1, err
    s = subprocess.run(DENET + ["stats", "--json", str(out)], capture_output=True, timeout=120)
    assert s.returncode == 0, s.stderr
    assert json.loads(s.stdout)["exit_code"] == 143


def test_nvml_failing_mid_run_jsonl_keeps_every_record(tmp_path):
    pytest.importorskip("pynvml")
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import fakenvml
    finally:
        sys.path.remove(str(REPO / "tests"))
    marker = "reliability-gpu-root2"
    spec = fakenvml.two_devices({"match": marker}, {"match": marker}, os.getpid())
    spec["devices"][0]["lost_after"] = 1
    env = fakenvml.shim_env(fakenvml.shim_dir(str(tmp_path / "shim"), spec))
    out = tmp_path / "run.jsonl"
    res = subprocess.run(DENET + ["--out", str(out), "run", "-i", "30", "--", PY, "-c",
                                  "import time; time.sleep(0.8); raise SystemExit(5)", marker],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120, env=env)
    assert res.returncode == 5, res.stderr
    records = read_records(out)
    summ = check_run_file(records)
    assert summ["exit_code"] == 5
    assert len(of_kind(records, "tree")) >= 3  # sampling went on without the GPU
