"""The tree's I/O totals against what the workload's own processes report from ``/proc/self/io``.

Linux adds the I/O of a reaped child to its parent's ``/proc/PID/io``: a child sampled alive and then
reaped by a parent that is still sampled must count once, not twice. A child reaped outside the tree
(by denet, the subreaper) is not in anyone's counters: its last reading must stay in the totals.
Page faults are not absorbed that way (a reaped child's go to the parent's ``cminflt``): they stay.

Every workload writes 1 MiB per writer with ``os.write`` to /dev/null (``wchar``), and each writer
then lives on for a while, so that denet samples it after its write. The truth is the root's own
``wchar`` just before it ends (it includes what it reaped) plus what the processes that denet reaped
reported of themselves.
"""

from __future__ import annotations

import json

import pytest

from .helpers import PY, check_run_file, denet, read_records

pytestmark = pytest.mark.integration

MIB = 1 << 20

COMMON = r"""
import json, os, sys, time
truth_path = sys.argv[1]
MIB = 1 << 20

def wchar():
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("wchar")).split()[1])

def faults():
    with open("/proc/self/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return int(f[7]) + int(f[8])  # minflt + cminflt (the reaped descendants')

def write_mib():
    fd = os.open(os.devnull, os.O_WRONLY)
    os.write(fd, b"x" * MIB)
    os.close(fd)

def report_self(suffix):  # a process that denet will reap tells its own wchar (taken before this write)
    value = wchar()
    with open(f"{truth_path}.{suffix}", "w") as fh:
        fh.write(str(value))

def wait_file(path, timeout=30.0):
    end = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.05)

def finish(extra=0):
    value = wchar() + extra
    f = faults()
    with open(truth_path, "w") as fh:
        fh.write(json.dumps({"wchar": value, "faults": f}))
    os._exit(0)
"""

# Four children write 1 MiB and touch 8 MiB each, live on for a while (sampled), end and are reaped
# by the root, which is then sampled for a while longer.
REAPED = COMMON + r"""
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        write_mib()
        b = bytearray(8 * MIB)
        for j in range(0, len(b), 4096):
            b[j] = 1
        time.sleep(0.6)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
time.sleep(0.8)
finish()
"""

# Two chains root -> P -> C: C writes, lives on, ends; P reaps it and ends at once (both vanish
# between two samples); the root reaps P and is sampled for a while longer.
CHAIN = COMMON + r"""
mids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        c = os.fork()
        if c == 0:
            write_mib()
            time.sleep(0.6)
            os._exit(0)
        os.waitpid(c, 0)
        os._exit(0)
    mids.append(pid)
for m in mids:
    os.waitpid(m, 0)
time.sleep(0.8)
finish()
"""

# root -> P -> G: P ends at once (the root reaps it), G is orphaned, adopted and later reaped by denet;
# then the root writes (so that a total held at its highest value cannot hide a lost G).
ORPHAN = COMMON + r"""
pid = os.fork()
if pid == 0:
    if os.fork() == 0:
        time.sleep(0.2)
        write_mib()
        time.sleep(1.0)
        report_self("g")
        os._exit(0)
    os._exit(0)
os.waitpid(pid, 0)
wait_file(truth_path + ".g")
time.sleep(0.3)
write_mib()
time.sleep(0.5)
with open(truth_path + ".g") as fh:
    g = int(fh.read())
finish(g)
"""

# root -> P -> C: C writes and ends; P never waits for it (C stays a zombie while P writes and is
# sampled) and ends; C, still a zombie, goes to denet, which reaps it: C's I/O is in no tree member's
# counters. Then the root writes.
ZOMBIE_ORPHAN = COMMON + r"""
pid = os.fork()
if pid == 0:
    if os.fork() == 0:
        write_mib()
        time.sleep(0.5)
        report_self("c")
        os._exit(0)
    time.sleep(1.0)
    write_mib()
    time.sleep(0.5)
    os._exit(0)
os.waitpid(pid, 0)
wait_file(truth_path + ".c")
time.sleep(0.3)
write_mib()
time.sleep(0.5)
with open(truth_path + ".c") as fh:
    c = int(fh.read())
finish(c)
"""


def _run(tmp_path, script: str, writers: int):
    prog = tmp_path / "work.py"
    prog.write_text(script)
    out, stats, truth_path = tmp_path / "run.jsonl", tmp_path / "stats.json", tmp_path / "truth.json"
    r = denet("-q", "-o", str(out), "-i", "50", "-m", "50", "run", "--stats", str(stats), "--",
              PY, str(prog), str(truth_path), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    recs = read_records(out)
    check_run_file(recs)
    truth = json.loads(truth_path.read_text())
    assert truth["wchar"] >= writers * MIB
    aggs = [rec["aggregated"] for rec in recs if rec.get("kind") == "tree" and rec.get("aggregated")]
    assert len(aggs) >= 10
    return truth, aggs, json.loads(stats.read_text())


IO_EXACT = ["total_disk_read_bytes", "total_disk_write_bytes", "total_syscall_read_bytes",
            "total_syscall_write_bytes"]


def _check_wchar(truth, aggs, summary):
    seq = [a["syscall_write_bytes"] for a in aggs]
    assert seq == sorted(seq), "the tree's counters went back"
    # the last sample is taken before the root's final moments: a few hundred bytes at most differ
    assert seq[-1] / truth["wchar"] == pytest.approx(1.0, abs=0.03), (seq[-1], truth)
    # the summary's totals are the kernel's: the truth plus the truth files' own few bytes
    assert set(IO_EXACT) <= set(summary["exact"])
    assert 0 <= summary["total_syscall_write_bytes"] - truth["wchar"] < 1024, (summary, truth)
    assert summary["total_syscall_write_bytes"] >= seq[-1]


def test_children_reaped_by_a_sampled_parent_count_once(tmp_path):
    truth, aggs, summary = _run(tmp_path, REAPED, 4)
    _check_wchar(truth, aggs, summary)
    # page faults are not in the parent's own counters after the reaping: the children's stay counted
    # (8 MiB touched each: 2048 faults; the truth is the root's minflt + cminflt)
    got = aggs[-1]["page_faults_cached"]
    assert got >= 4 * 2048
    assert got / truth["faults"] == pytest.approx(1.0, abs=0.15), (got, truth)


def test_a_chain_that_ends_between_two_samples_counts_once(tmp_path):
    truth, aggs, summary = _run(tmp_path, CHAIN, 2)
    _check_wchar(truth, aggs, summary)


def test_an_orphan_reaped_by_denet_counts_once(tmp_path):
    truth, aggs, summary = _run(tmp_path, ORPHAN, 2)
    _check_wchar(truth, aggs, summary)


def test_a_zombie_left_to_denet_counts_once(tmp_path):
    truth, aggs, summary = _run(tmp_path, ZOMBIE_ORPHAN, 3)
    _check_wchar(truth, aggs, summary)


def test_the_summary_counts_what_was_written_after_the_last_sample(tmp_path):
    """A short command writes 3 MiB and ends before a second sample (1-s interval): the summary's
    totals are exact all the same (the root's I/O read by denet before it reaped it)."""
    out, stats = tmp_path / "run.jsonl", tmp_path / "stats.json"
    code = "import os\nfd = os.open(os.devnull, os.O_WRONLY)\nfor _ in range(3): os.write(fd, b'x' * (1 << 20))"
    r = denet("-q", "-o", str(out), "-i", "1000", "-m", "1000", "run", "--stats", str(stats), "--", PY, "-c", code)
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(stats.read_text())
    assert set(IO_EXACT) <= set(summary["exact"])
    assert 3 * MIB <= summary["total_syscall_write_bytes"] < 3 * MIB + 64 * 1024
    assert summary["total_syscall_read_bytes"] > 0  # the interpreter read its modules


def test_io_totals_are_not_claimed_exact_without_children(tmp_path):
    """--exclude-children: the totals are the root's sampled counters, not claimed exact."""
    out, stats = tmp_path / "run.jsonl", tmp_path / "stats.json"
    r = denet("-q", "-o", str(out), "run", "--exclude-children", "--stats", str(stats), "--", PY, "-c", "pass")
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(stats.read_text())
    assert not set(IO_EXACT) & set(summary["exact"])


def test_an_orphan_still_running_at_the_end_counts_with_its_counters(tmp_path):
    """The root ends while its orphan still runs: the exact totals take the orphan's /proc counters."""
    out, stats = tmp_path / "run.jsonl", tmp_path / "stats.json"
    code = ("import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n    fd = os.open(os.devnull, os.O_WRONLY)\n"
            "    os.write(fd, b'x' * (1 << 20))\n    os.write(w, b'!')\n    time.sleep(2)\n    os._exit(0)\n"
            "os.read(r, 1)\n")
    r = denet("-q", "-o", str(out), "run", "--stats", str(stats), "--", PY, "-c", code)
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(stats.read_text())
    assert set(IO_EXACT) <= set(summary["exact"])
    assert MIB <= summary["total_syscall_write_bytes"] < MIB + 64 * 1024
