"""The summary's exact part against the kernel's own figures for the same workload run without denet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import BURN_FN, EXACT_RUN, PY, check_run_file, denet, read_records

pytestmark = pytest.mark.integration

# N sequential children, each burning MS milliseconds of CPU (fixed in CPU time, so the workload's CPU
# total does not depend on how busy the machine is) and reaped by their parent: a sampler sees few or
# none of them, the exact total must count them all.
SHORT_CHILDREN = BURN_FN + r"""
import os, sys
n, ms = int(sys.argv[1]), float(sys.argv[2])
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        burn(ms / 1000.0)
        os._exit(0)
    os.waitpid(pid, 0)
"""

# The root starts a child that touches MB megabytes for a moment (between two samples) and ends.
MEMORY_SPIKE = r"""
import subprocess, sys
code = "import time; b = b'x' * (%d << 20); time.sleep(0.03); del b" % int(sys.argv[1])
sys.exit(subprocess.run([sys.executable, "-c", code]).returncode)
"""


_HARNESS = """
import json, os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, ru = os.wait4(pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime, ru.ru_maxrss]))
"""


def direct(argv: list[str]):
    """Run argv without denet; (exit status, user+system CPU seconds, ru_maxrss KiB) from wait4.

    Spawned from a small harness process, not from pytest: a child's ru_maxrss starts at the memory
    of the process that forked it, and pytest holds whatever the collected test modules imported."""
    out = subprocess.run([sys.executable, "-c", _HARNESS, *argv], capture_output=True, text=True, check=True,
                         timeout=300)
    code, cpu, maxrss = json.loads(out.stdout)
    return code, cpu, maxrss


def under_denet(tmp_path, argv: list[str], records: list | None = None) -> dict:
    out = tmp_path / "run.jsonl"
    res = denet("-q", "--out", str(out), "run", "--", *argv, timeout=120)
    assert res.returncode == 0, res.stderr
    recs = read_records(out)
    if records is not None:
        records.extend(recs)
    summ = check_run_file(recs)
    assert summ["exact"] == EXACT_RUN
    return summ


@pytest.mark.slow
def test_cpu_of_300_short_children_matches_wait4(tmp_path):
    n, ms = 300, 20
    argv = [PY, "-c", SHORT_CHILDREN, str(n), str(ms)]
    code, before, _ = direct(argv)
    assert code == 0
    records: list[dict] = []
    summ = under_denet(tmp_path, argv, records)
    code, after, _ = direct(argv)
    assert code == 0
    got = summ["cpu_time_secs"]
    ref = (before + after) / 2
    detail = f"denet {got:.3f} s, direct {before:.3f} s before and {after:.3f} s after"
    # The workload burns n x ms of CPU by construction: nothing may be missing.
    assert got >= n * ms / 1000.0, detail
    # Within 2 % of the direct measurement (or between the two direct runs when the machine drifted).
    assert abs(got - ref) <= 0.02 * ref or min(before, after) <= got <= max(before, after), detail
    assert abs(summ["cpu_user_secs"] + summ["cpu_system_secs"] - got) < 0.002
    # Most children were never sampled, yet the time series counts them (the tree's CPU growth, reaped
    # children included): cpu_usage integrated over time gives the CPU used between the first and the
    # last sample, i.e. the total less at most one core's worth after the last sample.
    trees = [r for r in records if r["kind"] == "tree"]
    integral = sum(b["aggregated"]["cpu_usage"] / 100.0 * (b["ts_ms"] - a["ts_ms"]) / 1000.0
                   for a, b in zip(trees, trees[1:], strict=False) if b["aggregated"])
    tail = max(0.0, records[0]["t0_ms"] + summ["wall_time_secs"] * 1000.0 - trees[-1]["ts_ms"]) / 1000.0
    assert got - tail - 0.3 <= integral <= got * 1.05, (integral, tail, got)


def test_peak_rss_of_a_short_memory_spike_matches_ru_maxrss(tmp_path):
    mb = 200
    argv = [PY, "-c", MEMORY_SPIKE, str(mb)]
    code, _, before = direct(argv)
    assert code == 0
    summ = under_denet(tmp_path, argv)
    peak = summ["peak_process_rss_kb"]
    assert peak >= mb * 1024, summ
    assert abs(peak - before) <= 0.02 * before, f"denet {peak} KiB, direct ru_maxrss {before} KiB"


def test_peak_rss_of_the_root_itself(tmp_path):
    """A root process that holds 120 MB for a while: VmHWM while alive, ru_maxrss at reap."""
    argv = [PY, "-c", "import time; b = b'y' * (120 << 20); time.sleep(0.3)"]
    code, _, before = direct(argv)
    assert code == 0
    summ = under_denet(tmp_path, argv)
    peak = summ["peak_process_rss_kb"]
    assert abs(peak - before) <= 0.02 * before, f"denet {peak} KiB, direct ru_maxrss {before} KiB"
    assert summ["peak_mem_rss_kb"] >= 0.9 * 120 * 1024  # sampled: the root held it for 0.3 s


def test_wall_time_is_the_commands(tmp_path):
    summ = under_denet(tmp_path, ["sleep", "0.7"])
    assert 0.69 <= summ["wall_time_secs"] < 5
    assert summ["cpu_time_secs"] < 0.2
    assert summ["exit_code"] == 0


def test_tiny_command_has_exact_totals(tmp_path):
    """A command that ends before the first sample still gets a complete summary."""
    summ = under_denet(tmp_path, ["true"])
    assert summ["exit_code"] == 0
    assert summ["wall_time_secs"] is not None and summ["wall_time_secs"] < 5
    assert summ["cpu_time_secs"] is not None and summ["cpu_time_secs"] < 0.2
    assert summ["peak_process_rss_kb"] is not None and summ["peak_process_rss_kb"] > 0
