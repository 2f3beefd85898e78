"""The /proc fast path agrees with psutil (the reference) on the same real processes."""

import os
import subprocess
import sys
import time

import psutil
import pytest

from denet.collectors.fallback import PsutilCollector
from denet.collectors.proc import ProcCollector, parse_net_dev, read_net_dev

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fast path reads Linux /proc")

TREE = r"""
import os, sys, time, threading
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        data = bytearray((i + 1) * 5 * 1024 * 1024)  # 5..20 MiB touched
        with open(os.devnull, "wb") as fh:
            fh.write(b"x" * 100000)
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
t.start()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.fixture()
def tree():
    p = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"
    time.sleep(0.3)
    yield p
    for c in psutil.Process(p.pid).children(recursive=True):
        c.kill()
    p.kill()
    p.wait()


def test_same_processes_and_values(tree):
    fast = ProcCollector(tree.pid)
    ref = PsutilCollector(tree.pid)
    froot, fkids = fast.read()
    rroot, rkids = ref.read()
    assert {r.pid for r in fkids} == {r.pid for r in rkids} and len(fkids) == 4
    by_pid = {r.pid: r for r in rkids}
    for f in [froot] + fkids:
        r = rroot if f.pid == froot.pid else by_pid[f.pid]
        assert f.comm == r.comm
        assert abs(f.rss_kb - r.rss_kb) <= max(256, 0.02 * r.rss_kb)
        assert abs(f.vms_kb - r.vms_kb) <= max(256, 0.02 * r.vms_kb)
        assert f.threads == r.threads
        assert abs(f.cpu_secs - r.cpu_secs) <= 0.05
        assert f.read_bytes == r.read_bytes and f.write_bytes == r.write_bytes
        assert f.wchar == r.wchar
        assert abs(f.uptime_secs - r.uptime_secs) <= 1
        assert abs(f.start - r.start) <= 2  # both in clock ticks since boot
        assert f.minflt == r.minflt or abs(f.minflt - r.minflt) < 50
        assert f.ppid == r.ppid == (os.getpid() if f.pid == tree.pid else tree.pid)
    assert froot.threads == 2
    # the children's memory is what they touched
    big = max(fkids, key=lambda r: r.rss_kb)
    assert big.rss_kb > 20 * 1024
    fast.close()


def test_vanished_processes_are_dropped_without_error(tree):
    fast = ProcCollector(tree.pid)
    _, kids = fast.read()
    victim = kids[0].pid
    os.kill(victim, 9)  # it stays a zombie (its parent sleeps): zombies are not listed
    deadline = time.time() + 5
    while time.time() < deadline:
        _, kids = fast.read()
        if victim not in {r.pid for r in kids}:
            break
        time.sleep(0.05)
    assert victim not in {r.pid for r in kids}
    assert len(kids) == 3  # the others are still there
    fast.close()


def test_zombies_are_reported_with_their_parent(tree):
    """Both collectors list the tree's ended, not yet reaped processes in ``zombies``, with their parent."""
    fast, ref = ProcCollector(tree.pid), PsutilCollector(tree.pid)
    _, kids = fast.read()
    ref.read()
    victim = kids[0]
    os.kill(victim.pid, 9)  # it stays a zombie: its parent sleeps
    deadline = time.time() + 5
    while time.time() < deadline:
        fast.read()
        if victim.pid in {k[0] for k in fast.zombies}:
            break
        time.sleep(0.05)
    ref.read()
    assert fast.zombies == {(victim.pid, victim.start): tree.pid}
    ((pid, start), ppid), = ref.zombies.items()
    assert pid == victim.pid and ppid == tree.pid and abs(start - victim.start) <= 2
    fast.read()  # still a zombie: reported again by the next read
    assert list(fast.zombies) == [(victim.pid, victim.start)]
    fast.close()


def test_root_gone_gives_none():
    p = subprocess.Popen(["sleep", "0.05"])
    c = ProcCollector(p.pid)
    assert c.read()[0] is not None
    p.wait()
    assert c.read() == (None, [])
    c.close()


def test_many_threads_children_are_found():
    """Children started from a non-main thread hang below that thread's children file."""
    code = ("import threading, subprocess, time\n"
            "def go():\n    subprocess.Popen(['sleep', '5'])\n"
            "ts=[threading.Thread(target=go) for _ in range(3)]\n[t.start() for t in ts]\n"
            "time.sleep(5)\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    try:
        c = ProcCollector(p.pid)
        deadline = time.time() + 5
        kids = []
        while time.time() < deadline:
            _, kids = c.read()
            if len(kids) == 3:
                break
            time.sleep(0.05)
        assert sorted(r.comm for r in kids) == ["sleep"] * 3
        c.close()
    finally:
        for k in psutil.Process(p.pid).children(recursive=True):
            k.kill()
        p.kill()
        p.wait()


def test_net_dev_parsing():
    data = (b"Inter-|   Receive                            |  Transmit\n"
            b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
            b"    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
            b"  eth0: 500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n"
            b"  eth1: 1 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n")
    assert parse_net_dev(data) == (501, 702)
    rx, tx = read_net_dev(os.getpid())
    assert rx >= 0 and tx >= 0


def test_children_file_longer_than_a_page():
    """/proc hands out one page per read: 900 children (about 5 KB of pids) must all be found."""
    code = ("import os, time\n"
            "for i in range(900):\n"
            "    if os.fork() == 0:\n        time.sleep(20)\n        os._exit(0)\n"
            "print('ready', flush=True)\ntime.sleep(20)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"ready"
        c = ProcCollector(p.pid)
        _, kids = c.read()
        assert len(kids) == 900 and len({r.pid for r in kids}) == 900
        c.close()
    finally:
        for k in psutil.Process(p.pid).children():
            k.kill()
        p.kill()
        p.wait()
