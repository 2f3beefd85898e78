"""--enable-ebpf end to end, with real eBPF programs (root, bcc from python3-bpfcc, tracefs).

Tests that need eBPF are skipped only with the probe's own reason (CI runs as root and installs
python3-bpfcc through .ci/run, so there they run). The unprivileged path needs root too (to drop to
an unprivileged user with setpriv / capsh).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .helpers import (
    DENET,
    PY,
    REPO,
    check_run_file,
    denet,
    ebpf_unavailable,
    no_traceback,
    of_kind,
    parse_lines,
)

pytestmark = pytest.mark.integration

_REASON = ebpf_unavailable()
needs_ebpf = pytest.mark.skipif(_REASON is not None, reason=f"eBPF cannot run here: {_REASON}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def _run(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, list[dict], dict]:
    p = denet("--enable-ebpf", "--json", *args, timeout=timeout)
    no_traceback(p.stderr)
    recs = parse_lines(p.stdout)
    return p, recs, check_run_file(recs)


def _top(summary: dict) -> dict[str, int]:
    return {s["name"]: s["count"] for s in summary["ebpf"]["syscalls"]["top_syscalls"]}


@needs_ebpf
def test_dd_reads_and_writes_match_the_blocks():
    n = 20000
    p, recs, s = _run("run", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}")
    assert p.returncode == 0
    meta = recs[0]
    assert meta["capabilities"]["ebpf"] == {"available": True}
    e = s["ebpf"]
    assert e["source"] == "ebpf" and e["estimate"] is False and e["lost_events"] == 0
    top = _top(s)
    assert abs(top["read"] - n) <= n * 0.01, top
    assert abs(top["write"] - n) <= n * 0.01, top
    sc = e["syscalls"]
    assert s["syscalls_total"] == sc["total"] == sum(sc["by_category"].values())
    assert sc["by_category"]["file_io"] >= 2 * n
    assert sc["top_processes"][0]["comm"] == "dd" and sc["top_processes"][0]["pid"] == meta["pid"]
    assert sc["top_processes"][0]["by_category"]["file_io"] >= 2 * n
    assert e["behavior"]["classification"] == "cpu-bound", e["behavior"]  # dd to /dev/null never waits
    assert s["offcpu_source"] == "ebpf" and s["behavior"] == "cpu-bound"


@needs_ebpf
def test_tree_records_carry_the_values_as_they_grow():
    p, recs, s = _run("run", "--", "sh", "-c", "dd if=/dev/zero of=/dev/null bs=1 count=5000 status=none; sleep 0.6")
    assert p.returncode == 0
    trees = [r["aggregated"]["ebpf"] for r in of_kind(recs, "tree") if r["aggregated"] is not None]
    assert len(trees) >= 2 and all(t["source"] == "ebpf" for t in trees)
    totals = [t["syscalls"]["total"] for t in trees]
    assert totals == sorted(totals) and totals[-1] <= s["ebpf"]["syscalls"]["total"]
    off = [t["offcpu"]["total_time_ns"] for t in trees]
    assert off == sorted(off) and off[-1] <= s["ebpf"]["offcpu"]["total_time_ns"]
    assert all("stacks" not in t for t in trees)


@needs_ebpf
def test_a_thread_sleeping_one_second_shows_one_second_off_cpu():
    code = ("import threading, time\n"
            "t = threading.Thread(target=time.sleep, args=(1.0,))\n"
            "t.start(); print(t.native_id, flush=True); t.join()\n")
    p, recs, s = _run("run", "--", PY, "-c", code)
    assert p.returncode == 0
    out = [line for line in p.stderr.decode().splitlines() if line.strip().isdigit()]
    tid = int(out[0])  # --json: CMD's stdout goes to stderr
    threads = {t["tid"]: t for t in s["ebpf"]["offcpu"]["top_blocking_threads"]}
    assert tid in threads, threads
    t = threads[tid]
    assert t["pid"] == recs[0]["pid"] and t["pid"] != tid
    assert 950.0 <= t["time_ms"] <= 1050.0, t
    assert t["sleeping_ms"] >= 950.0 and 950.0 <= t["max_ms"] <= 1050.0
    off = s["ebpf"]["offcpu"]
    assert off["total_time_ns"] == off["sleeping_ns"] + off["io_ns"] + off["preempted_ns"]
    assert s["ebpf"]["behavior"]["classification"] == "sleeping"


@needs_ebpf
def test_short_lived_children_and_grandchildren_are_counted():
    # A child and a grandchild that live for a few milliseconds, most likely between two samples
    # (interval 2 s): the kernel programs follow their forks whether the sampler sees them or not.
    code = ("import os\n"
            "def work():\n"
            "    for _ in range(3000): os.getppid()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    g = os.fork()\n"
            "    if g == 0:\n"
            "        work(); os._exit(0)\n"
            "    os.waitpid(g, 0); work(); os._exit(0)\n"
            "os.waitpid(pid, 0)\n")
    p, recs, s = _run("--interval", "2000", "--max-interval", "2000", "run", "--", PY, "-c", code)
    assert p.returncode == 0
    top = _top(s)
    assert 6000 <= top.get("getppid", 0) <= 6000 + 50, top  # the root itself calls getppid rarely, if at all
    procs = s["ebpf"]["syscalls"]["top_processes"]
    assert s["ebpf"]["syscalls"]["process_count"] >= 3
    assert len({x["pid"] for x in procs if x["count"] >= 3000}) >= 2


@needs_ebpf
def test_stacks_of_the_longest_wait_are_named():
    code = "import threading, time\nt = threading.Thread(target=time.sleep, args=(0.5,)); t.start(); t.join()\n"
    p, recs, s = _run("--ebpf-stacks", "run", "--", PY, "-c", code)
    assert p.returncode == 0
    stacks = s["ebpf"]["stacks"]
    assert stacks and stacks == sorted(stacks, key=lambda x: -x["time_ms"])
    frames = [f for st in stacks for f in st["frames"]]
    assert any("nanosleep" in f or "select" in f for f in frames), stacks
    assert all("stacks" not in r["aggregated"]["ebpf"] for r in of_kind(recs, "tree") if r["aggregated"])


@needs_ebpf
def test_stats_prints_the_ebpf_values(tmp_path):
    out = tmp_path / "run.jsonl"
    p = denet("--enable-ebpf", "--out", str(out), "run", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=1",
              "count=2000")
    assert p.returncode == 0, p.stderr
    st = denet("stats", str(out))
    text = st.stdout.decode()
    assert "ebpf: source ebpf" in text and "read 20" in text and "behaviour: " in text
    pq = tmp_path / "run.parquet"
    p = denet("--enable-ebpf", "--out", str(pq), "run", "--", "true")
    assert p.returncode == 0, p.stderr
    assert "ebpf: source ebpf" in denet("stats", str(pq)).stdout.decode()


@needs_ebpf
def test_a_fault_mid_run_degrades_only_the_collector(monkeypatch):
    from denet.api import monitor_command
    from denet.collectors.ebpf import EbpfCollector

    calls = {"n": 0}
    real = EbpfCollector._read_maps

    def flaky(self):
        calls["n"] += 1
        if calls["n"] >= 3:
            raise OSError("bpf map lookup failed (injected)")
        return real(self)

    monkeypatch.setattr(EbpfCollector, "_read_maps", flaky)
    res = monitor_command([PY, "-c", "import time, sys; time.sleep(0.8); sys.exit(5)"], interval_ms=50,
                          max_interval_ms=50, enable_ebpf=True)
    assert res.exit_code == 5
    stopped = [w for w in res.warnings if "eBPF collector stopped" in w]
    assert len(stopped) == 1 and "injected" in stopped[0] and "the command goes on" in stopped[0]
    with_ebpf = [r.aggregated.ebpf is not None for r in res.samples if r.aggregated is not None]
    assert with_ebpf[:2] == [True, True] and not any(with_ebpf[2:]) and len(with_ebpf) > 3
    assert res.summary.ebpf is None and res.summary.exit_code == 5
    assert res.metadata.capabilities["ebpf"].available is True


@needs_ebpf
def test_python_api_enable_ebpf():
    from denet.api import monitor_command

    res = monitor_command(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=3000"], enable_ebpf=True)
    assert res.exit_code == 0 and not res.warnings
    top = {x.name: x.count for x in res.summary.ebpf.syscalls.top_syscalls}
    assert abs(top["read"] - 3000) <= 30
    assert res.summary.syscalls_total == res.summary.ebpf.syscalls.total


@needs_ebpf
def test_attach_follows_the_new_children_of_a_running_process(tmp_path):
    go = tmp_path / "go"
    script = f"while [ ! -e {go} ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=1 count=5000 status=none"
    target = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL)
    try:
        mon = subprocess.Popen(DENET + ["--enable-ebpf", "--json", "attach", str(target.pid)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = json.loads(mon.stdout.readline())  # the metadata: written once the programs are loaded
        assert first["kind"] == "metadata" and first["capabilities"]["ebpf"] == {"available": True}
        go.touch()
        rest, err = mon.communicate(timeout=120)
    finally:
        target.wait(timeout=60)
    no_traceback(err)
    s = check_run_file([first] + parse_lines(rest))
    top = _top(s)
    assert abs(top["read"] - 5000) <= 50 and abs(top["write"] - 5000) <= 50, top


@needs_root
@pytest.mark.parametrize("drop", ["setpriv", "capsh"])
def test_without_privileges_the_reason_is_clear_and_the_exit_code_kept(drop):
    if shutil.which(drop) is None:
        pytest.skip(f"{drop} is not installed")
    with tempfile.TemporaryDirectory(prefix="denet-ebpf-") as d:  # pytest's tmp_path is root's only
        os.chmod(d, 0o777)
        _unprivileged_run(drop, Path(d) / "run.jsonl")


def _unprivileged_run(drop: str, out: Path) -> None:
    if drop == "setpriv":
        check = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-c",
                                "import denet"], capture_output=True, cwd=REPO, stdin=subprocess.DEVNULL)
        if check.returncode != 0:
            pytest.skip(f"user 65534 cannot run this environment's Python: {check.stderr.decode()[-200:]}")
    cmd = DENET + ["--enable-ebpf", "--out", str(out), "run", "--", "sh", "-c", "sleep 0.3; exit 7"]
    if drop == "setpriv":
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        want = "not root and without CAP_BPF and CAP_PERFMON"
    else:
        argv = ["capsh", "--drop=cap_bpf,cap_perfmon,cap_sys_admin", "--", "-c", subprocess.list2cmdline(cmd)]
        want = "without CAP_BPF and CAP_PERFMON (capabilities dropped)"
    p = subprocess.run(argv, capture_output=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL)
    assert p.returncode == 7, p.stderr
    err = p.stderr.decode()
    no_traceback(err)
    lines = [line for line in err.splitlines() if "eBPF" in line]
    assert len(lines) == 1 and want in lines[0] and "schedstat off-CPU estimate" in lines[0], err
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    cap = recs[0]["capabilities"]["ebpf"]
    assert cap["available"] is False and want in cap["reason"]
    s = check_run_file(recs)
    assert s["exit_code"] == 7 and s["offcpu_source"] == "schedstat" and "syscalls_total" not in s
    e = s["ebpf"]
    assert e["estimate"] is True and want in e["reason"] and e["offcpu"]["blocked_ns"] > 0
    trees = [r["aggregated"]["ebpf"] for r in of_kind(recs, "tree") if r["aggregated"] is not None]
    assert trees and all(t["source"] == "schedstat" for t in trees)


def test_run_without_the_flag_does_not_load_the_collector():
    p = subprocess.run([PY, "-X", "importtime", "-m", "denet", "run", "--", "true"], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0
    err = p.stderr.decode()
    assert "denet.collectors.ebpf" not in err and "denet.collectors.offcpu" not in err
    assert " bcc" not in err
    meta_cap = parse_lines(denet("--json", "run", "--", "true").stdout)[0]["capabilities"]["ebpf"]
    assert meta_cap == {"available": False, "reason": "off (not requested: --enable-ebpf)"}
