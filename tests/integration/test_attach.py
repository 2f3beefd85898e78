"""`denet attach PID`: follow a process denet did not start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from .helpers import (
    BURN_FN,
    PY,
    check_run_file,
    denet,
    no_traceback,
    of_kind,
    read_pid,
    read_records,
    start_denet,
    wait_for,
    wait_for_file,
)

pytestmark = pytest.mark.integration


def _detached(procs, tmp_path, code: str, *args: str) -> int:
    """Start a python process that is not our child (double fork through sh); its pid."""
    pidfile = tmp_path / "target.pid"
    subprocess.run(["sh", "-c", f"'{PY}' -c \"$0\" \"$@\" </dev/null >/dev/null 2>&1 & echo $! > {pidfile}",
                    code, *args], check=True, timeout=30)
    return procs.pid(read_pid(pidfile))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_attach_until_the_process_ends(tmp_path, procs):
    ready = tmp_path / "ready"
    code = BURN_FN + (
        "import subprocess, sys, time\n"
        "open(sys.argv[1], 'w').close()\n"
        "time.sleep(0.3)\n"
        "kid = subprocess.Popen(['sleep', '0.6'])\n"
        "open(sys.argv[2], 'w').write(str(kid.pid))\n"
        "burn(0.8)\n"
        "kid.wait()\n"
    )
    kidfile = tmp_path / "kid"
    pid = _detached(procs, tmp_path, code, str(ready), str(kidfile))
    wait_for_file(ready)
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "attach", str(pid), timeout=60)
    assert res.returncode == 0, res.stderr
    assert not _alive(pid)
    records = read_records(out)
    summ = check_run_file(records)
    meta = records[0]
    assert meta["pid"] == pid
    assert meta["cmd"][:2] == [PY, "-c"]
    trees = of_kind(records, "tree")
    assert len(trees) >= 3
    kid = int(kidfile.read_text())
    assert any(c["pid"] == kid for t in trees for c in t["children"])
    assert summ["exit_code"] is None
    assert summ["wall_time_secs"] is None
    # denet is not the parent: nothing is exact; CPU is the kernel's own accounting as of the last
    # reading, most of its 0.8 s of burning
    assert summ["exact"] == []
    assert 0.3 <= summ["cpu_time_secs"] <= 2.0, summ
    assert summ["max_processes"] == 2


def test_attach_with_duration_leaves_the_process_running(tmp_path, procs):
    pid = _detached(procs, tmp_path, "import time; time.sleep(60)")
    out = tmp_path / "run.jsonl"
    stats = tmp_path / "stats.json"
    t = time.monotonic()
    res = denet("--out", str(out), "--duration", "1", "attach", "--stats", str(stats), str(pid), timeout=60)
    elapsed = time.monotonic() - t
    assert res.returncode == 0, res.stderr
    assert 1.0 <= elapsed < 30
    assert _alive(pid)
    records = read_records(out)
    summ = check_run_file(records)
    trees = of_kind(records, "tree")
    assert len(trees) >= 3
    assert (trees[-1]["ts_ms"] - trees[0]["ts_ms"]) / 1000.0 <= 1.5
    assert summ["exit_code"] is None
    assert all(t["aggregated"]["process_count"] == 1 for t in trees)
    assert json.loads(stats.read_text())["exit_code"] is None


def test_sigterm_ends_attach_and_finalises(tmp_path, procs):
    pid = _detached(procs, tmp_path, "import time; time.sleep(60)")
    out = tmp_path / "run.jsonl"
    p = procs.add(start_denet("--out", str(out), "attach", str(pid)))
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 3, timeout=30, what="records")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    assert _alive(pid), "attach must not pass the signal on to the process it watches"
    summ = check_run_file(read_records(out))
    assert summ["exit_code"] is None


@pytest.mark.parametrize("flag, expect_zero", [([], True), (["--since-process-start"], False)])
def test_attach_counters_deltas_or_lifetime(tmp_path, procs, flag, expect_zero):
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(4 << 20))
    ready = tmp_path / "ready"
    code = ("import sys, time\n"
            "open(sys.argv[1], 'rb').read()\n"
            "open(sys.argv[2], 'w').close()\n"
            "time.sleep(60)\n")
    pid = _detached(procs, tmp_path, code, str(data), str(ready))
    wait_for_file(ready)
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "-d", "0.5", *flag, "attach", str(pid), timeout=60)
    assert res.returncode == 0, res.stderr
    records = read_records(out)
    assert records[0]["since_process_start"] is (not expect_zero)
    first = of_kind(records, "tree")[0]["parent"]
    if expect_zero:
        assert first["syscall_read_bytes"] == 0
        assert first["page_faults_cached"] == 0
    else:
        assert first["syscall_read_bytes"] >= 4 << 20
        assert first["page_faults_cached"] > 0


def test_attach_to_a_missing_pid(tmp_path):
    # a pid that is free: start and reap a process, then use its pid
    p = subprocess.Popen(["true"])
    p.wait()
    res = denet("attach", str(p.pid))
    assert res.returncode == 1
    err = res.stderr.decode()
    assert str(p.pid) in err
    no_traceback(err)


@pytest.mark.parametrize("args", [["attach"], ["attach", "abc"], ["attach", "1", "2"]])
def test_attach_usage_errors(args):
    res = denet(*args)
    assert res.returncode == 2
    assert "attach" in res.stderr.decode() or "PID" in res.stderr.decode()
    no_traceback(res.stderr)
