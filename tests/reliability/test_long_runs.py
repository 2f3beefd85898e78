"""Long runs: 24 hours on a fast clock, a very long maximum interval, and denet's own memory staying
flat over tens of thousands of samples with ``store_in_memory=False``."""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import time
import tracemalloc

import pytest
from integration.helpers import DENET, check_run_file, of_kind, read_records

pytestmark = pytest.mark.integration

SPEED = 14400.0  # fast-clock seconds per real second: 6 real seconds are 24 hours


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.slow
def test_24_hours_on_a_fast_clock(tmp_path, monkeypatch):
    """`Monitor.run` with every monotonic reading sped up 14 400 times: a `sleep 6` lasts 24 h to denet.
    The adaptive schedule settles at the maximum interval (60 s here), the loop neither spins nor stalls,
    the file stays valid, and the summary's durations are a day long."""
    import denet.monitor
    from denet.monitor import Monitor
    from denet.sinks import JsonlSink

    real = time.monotonic
    t0 = real()
    monkeypatch.setattr(time, "monotonic", lambda: t0 + (real() - t0) * SPEED)

    class FastPoll:  # the loop's waits, computed on the fast clock, pass as fast on the real one
        def __init__(self) -> None:
            self.p = select.poll()

        def register(self, *a):
            self.p.register(*a)

        def unregister(self, *a):
            self.p.unregister(*a)

        def poll(self, ms=None):
            return self.p.poll(None if ms is None else ms / SPEED)

    monkeypatch.setattr(denet.monitor, "select", type("S", (), {"poll": FastPoll, "POLLIN": select.POLLIN}))
    out = tmp_path / "day.jsonl"
    mon = Monitor(interval_ms=1000, max_interval_ms=60_000, sinks=[JsonlSink(str(out))])
    res = mon.run(["sh", "-c", "sleep 6; exit 3"], reap_all=False, forward_signals=False, raise_nofile=False)
    monkeypatch.undo()
    assert res.exit_code == 3
    records = read_records(out)
    summ = check_run_file(records)
    trees = of_kind(records, "tree")
    day = 24 * 3600
    assert 0.8 * day < summ["wall_time_secs"] < 3 * day, summ["wall_time_secs"]
    # At most one sample per 60 fast-seconds after the 10 s ramp: never more than the schedule allows.
    assert 5 <= len(trees) <= summ["wall_time_secs"] / 60 + 12, len(trees)
    assert summ["sample_count"] == len(trees)
    ts = [t["ts_ms"] for t in trees]
    assert ts == sorted(ts)
    print(f"\n24 h on a fast clock: {len(trees)} samples, wall {summ['wall_time_secs']:.0f} s, "
          f"{os.path.getsize(out)} bytes")


def test_a_very_long_max_interval_still_ends_with_cmd(tmp_path):
    """--max-interval of a day: the end of CMD is noticed at once (pidfd), not at the next tick."""
    out = tmp_path / "run.jsonl"
    t = time.monotonic()
    res = subprocess.run(DENET + ["--out", str(out), "--interval", "86400000", "--max-interval", "86400000", "run",
                                  "--", "sh", "-c", "sleep 1; exit 3"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert res.returncode == 3, res.stderr
    assert time.monotonic() - t < 100  # not a timing assert: a day-long tick would never end in time
    summ = check_run_file(read_records(out))
    assert summ["exit_code"] == 3 and summ["sample_count"] >= 1


def test_a_long_duration_and_a_short_command(tmp_path):
    out = tmp_path / "run.jsonl"
    res = subprocess.run(DENET + ["--out", str(out), "--duration", "86400", "run", "--", "true"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    check_run_file(read_records(out))


def _kill_tree(pm) -> None:
    """Kill the monitored shell and its children (by pid), and let the monitor reap the shell."""
    root = pm.get_pid()
    try:
        with open(f"/proc/{root}/task/{root}/children") as fh:
            kids = [int(x) for x in fh.read().split()]
    except OSError:
        kids = []
    for pid in [root, *kids]:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 10
    while pm.is_running() and time.monotonic() < end:
        time.sleep(0.01)


def _growth(pm, warm: int, n: int) -> tuple[int, int, int]:
    """tracemalloc growth (bytes) and RSS growth (KiB) over ``n`` samples after ``warm``; and samples taken."""
    taken = 0
    for _ in range(warm):
        taken += pm.sample_once() is not None
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        rss0 = _rss_kb()
        for _ in range(n):
            taken += pm.sample_once() is not None
        gc.collect()
        now, _ = tracemalloc.get_traced_memory()
        rss1 = _rss_kb()
    finally:
        tracemalloc.stop()
    return now - base, rss1 - rss0, taken


@pytest.mark.slow
@pytest.mark.parametrize("output", [False, True])
def test_memory_stays_flat_with_store_in_memory_false(tmp_path, output):
    """4 000 samples of a tree (records to a file, or to nowhere): what denet holds does not grow."""
    from denet import ProcessMonitor

    out = str(tmp_path / "long.jsonl") if output else None
    pm = ProcessMonitor(["sh", "-c", "sleep 300 & sleep 300 & sleep 300 & wait"], 100, 1000,
                        store_in_memory=False, quiet=True, output_file=out)
    try:
        traced, rss, taken = _growth(pm, 600, 4000)
        assert taken == 4600
        assert pm.get_samples() == []
        print(f"\n4 000 samples (output={output}): traced growth {traced} B, RSS growth {rss} KiB")
        assert traced < 256 * 1024, traced
        assert rss < 4 * 1024, rss
        if out:
            with open(out) as fh:
                n = sum(1 for line in fh if json.loads(line))
            assert n >= 4600
    finally:
        _kill_tree(pm)


@pytest.mark.slow
def test_memory_stays_flat_while_processes_come_and_go(tmp_path):
    """A tree whose children are replaced all the time: the per-process state of ended processes is
    dropped, so denet's memory does not grow with the number of processes it has ever seen."""
    from denet import ProcessMonitor

    pm = ProcessMonitor(["sh", "-c", "while :; do sleep 0.005 & sleep 0.005 & wait; done"], 100, 1000,
                        store_in_memory=False, quiet=True)
    try:
        def churn(n):
            for _ in range(n):
                pm.sample_once()
                time.sleep(0.0005)

        churn(200)
        gc.collect()
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            churn(1200)
            gc.collect()
            now, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(f"\n1 200 samples with children coming and going: traced growth {now - base} B")
        assert now - base < 256 * 1024, now - base
    finally:
        _kill_tree(pm)
