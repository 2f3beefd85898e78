"""Sampler logic: the adaptive clock, cpu_usage, deltas that never go negative, pid reuse."""

import pytest

from denet.collectors import Reading
from denet.sampler import Sampler, interval_ms_at


@pytest.mark.parametrize(
    "elapsed, expected",
    [(0.0, 100), (0.99, 100), (1.0, 100), (5.5, 550), (10.0, 1000), (3600, 1000)],
)
def test_adaptive_schedule(elapsed, expected):
    assert interval_ms_at(elapsed, 100, 1000) == pytest.approx(expected)


def test_schedule_with_base_above_max_is_accepted():
    assert interval_ms_at(20, 500, 200) == 200
    assert interval_ms_at(0.5, 500, 200) == 500


def _r(pid, start, cpu, rb=0, wb=0, rchar=0, rss=1000, threads=1):
    return Reading(pid, start, f"p{pid}", cpu, cpu, 0.0, 0.0, rss, 2000, rb, wb, rchar, 0, 0, 0, threads, 0, 1, None)


class Script:
    """A collector that replays readings (the sampler's logic, without timing noise)."""

    def __init__(self, steps):
        self.steps = list(steps)

    def read(self):
        return self.steps.pop(0)

    def net(self):
        return (0, 0)


def test_counters_are_deltas_never_negative_and_survive_pid_reuse(monkeypatch):
    clock = iter([0.0, 0.5, 1.0, 1.5, 2.0])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    steps = [
        (_r(1, 100, 0.0), [_r(2, 150, 1.0, rb=1000)]),
        (_r(1, 100, 0.5), [_r(2, 150, 1.25, rb=3000)]),
        # pid 2 ends; a new process reuses pid 2 (another start time) with smaller counters
        (_r(1, 100, 1.0), [_r(2, 180, 0.1, rb=10)]),
        (_r(1, 100, 1.5), [_r(2, 180, 0.2, rb=20)]),
    ]
    s = Sampler(Script(steps), t0_boot_ticks=120)  # pid 1 started before, both pid-2s after
    recs = [s.sample() for _ in range(4)]
    assert recs[0].parent.cpu_usage == 0.0  # first reading
    assert recs[1].parent.cpu_usage == pytest.approx(100.0)
    assert recs[1].children[0].metrics.cpu_usage == pytest.approx(50.0)
    # fresh process (started after monitoring began): counted from zero
    assert recs[0].children[0].metrics.disk_read_bytes == 1000
    assert recs[1].children[0].metrics.disk_read_bytes == 3000
    # the new process behind the recycled pid starts afresh
    assert recs[2].children[0].metrics.cpu_usage == 0.0
    assert recs[2].children[0].metrics.disk_read_bytes == 10
    # the tree's counters keep what the ended process did: never backwards
    agg = [r.aggregated.disk_read_bytes for r in recs]
    assert agg == sorted(agg) and agg[-1] == 3000 + 20


def test_counter_going_back_is_clamped(monkeypatch):
    clock = iter([0.0, 0.5, 1.0])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    steps = [(_r(1, 10, 1.0, rb=500), []), (_r(1, 10, 0.9, rb=400), []), (_r(1, 10, 1.0, rb=450), [])]
    s = Sampler(Script(steps), t0_boot_ticks=100)  # started before monitoring: baseline = first reading
    recs = [s.sample() for _ in range(3)]
    for r in recs:
        assert r.parent.disk_read_bytes >= 0 and r.parent.cpu_usage >= 0.0
        assert r.aggregated.cpu_usage >= 0.0


def test_readings_closer_than_10ms_give_zero_cpu(monkeypatch):
    clock = iter([0.0, 0.005])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    s = Sampler(Script([(_r(1, 10, 1.0), []), (_r(1, 10, 2.0), [])]), t0_boot_ticks=0)
    s.sample()
    assert s.sample().parent.cpu_usage == 0.0


def test_tree_cpu_counts_children_that_ended_between_samples(monkeypatch):
    """The root reaped a child that lived between two samples: its CPU shows in aggregated.cpu_usage."""
    clock = iter([0.0, 1.0])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    r0 = _r(1, 10, 0.0)
    r1 = _r(1, 10, 0.1)
    r1.children_cpu_secs = 0.8  # cutime + cstime grew by 0.8 s: a child ran and was reaped
    s = Sampler(Script([(r0, []), (r1, [])]), t0_boot_ticks=0)
    s.sample()
    rec = s.sample()
    assert rec.parent.cpu_usage == pytest.approx(10.0)
    assert rec.aggregated.cpu_usage == pytest.approx(90.0)


def test_plain_samples_without_children(monkeypatch):
    clock = iter([0.0, 1.0])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    s = Sampler(Script([(_r(1, 10, 0.0), []), (_r(1, 10, 0.5), [])]), include_children=False, t0_boot_ticks=0)
    s.sample()
    m = s.sample()
    assert type(m).__name__ == "Metrics" and m.cpu_usage == pytest.approx(50.0)
    assert s.summary.count == 2 and s.summary.max_processes == 1


def test_nothing_left_gives_none():
    s = Sampler(Script([(None, [])]))
    assert s.sample() is None


def test_a_process_missing_from_one_sample_is_not_counted_twice(monkeypatch):
    clock = iter([0.0, 0.5, 1.0, 1.5])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    steps = [
        (_r(1, 10, 0.0), [_r(2, 20, 0.0, rb=100)]),
        (_r(1, 10, 0.1), []),  # pid 2's read failed once
        (_r(1, 10, 0.2), [_r(2, 20, 0.1, rb=300)]),
        (_r(1, 10, 0.3), [_r(2, 20, 0.2, rb=400)]),
    ]
    s = Sampler(Script(steps), t0_boot_ticks=0)
    recs = [s.sample() for _ in range(4)]
    assert [r.aggregated.disk_read_bytes for r in recs] == [100, 100, 300, 400]


def _io(pid, start, cpu, wchar, ppid, minflt=0):
    r = _r(pid, start, cpu)
    r.wchar, r.ppid, r.minflt = wchar, ppid, minflt
    return r


class Zombies(Script):
    """Script with the collector's ``zombies`` of each step: steps are (root, kids, zombies)."""

    zombies: dict = {}

    def read(self):
        root, kids, self.zombies = self.steps.pop(0)
        return root, kids


def _wchar_run(monkeypatch, steps, **kw):
    clock = iter([i * 0.5 for i in range(len(steps))])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    s = Sampler(Zombies(steps), t0_boot_ticks=0, **kw)
    return s, [s.sample().aggregated for _ in range(len(steps))]


def test_a_child_reaped_by_its_sampled_parent_counts_once(monkeypatch):
    """The parent's /proc/PID/io absorbs what it reaped: the child's last counters are not kept too."""
    steps = [
        (_io(1, 10, 0.0, 0, 99), [_io(2, 20, 0.0, 1000, 1, minflt=50)], {}),
        (_io(1, 10, 0.1, 0, 99), [], {(2, 20): 1}),  # ended, not reaped yet: still counted
        (_io(1, 10, 0.2, 1000, 99), [], {}),  # reaped: the parent's counters hold its 1000
        (_io(1, 10, 0.3, 1500, 99), [], {}),
    ]
    _, aggs = _wchar_run(monkeypatch, steps)
    assert [a.syscall_write_bytes for a in aggs] == [1000, 1000, 1000, 1500]
    # page faults are not absorbed (the kernel adds them to the parent's cminflt): the child's stay
    assert [a.page_faults_cached for a in aggs] == [50, 50, 50, 50]


def test_a_parent_read_before_it_reaped_holds_the_total(monkeypatch):
    """The child has gone from the listing but the parent was read just before it reaped it."""
    steps = [
        (_io(1, 10, 0.0, 10, 99), [_io(2, 20, 0.0, 1000, 1)], {}),
        (_io(1, 10, 0.1, 20, 99), [], {}),  # the parent's reading lacks the child's 1000 yet
        (_io(1, 10, 0.2, 1030, 99), [], {}),
    ]
    _, aggs = _wchar_run(monkeypatch, steps)
    assert [a.syscall_write_bytes for a in aggs] == [1010, 1010, 1030]


def test_a_chain_that_ends_together_counts_once(monkeypatch):
    """1 -> 2 -> 3: 3 ends, 2 reaps it and ends, 1 reaps 2, all between two samples."""
    steps = [
        (_io(1, 10, 0.0, 0, 99), [_io(2, 20, 0.0, 100, 1), _io(3, 30, 0.0, 1000, 2)], {}),
        (_io(1, 10, 0.1, 1100, 99), [], {}),
        (_io(1, 10, 0.2, 1100, 99), [], {}),
    ]
    _, aggs = _wchar_run(monkeypatch, steps)
    assert [a.syscall_write_bytes for a in aggs] == [1100, 1100, 1100]


def test_a_process_reaped_by_denet_keeps_its_counters(monkeypatch):
    """An orphan (parent 99: denet) and a child whose parent ended first, both reaped by denet."""
    reaped: list[int] = []
    steps = [
        (_io(1, 10, 0.0, 0, 99), [_io(2, 20, 0.0, 100, 1), _io(3, 30, 0.0, 1000, 2), _io(4, 40, 0.0, 7, 99)], {}),
        # 2 ended first (reaped by 1, its own 100 now in 1's counters); 3 was orphaned, ended and was
        # reaped by denet in the same interval; 4 (already an orphan) also ended
        (_io(1, 10, 0.1, 100, 99), [], {}),
        (_io(1, 10, 0.2, 150, 99), [], {}),
    ]
    clock = iter([0.0, 0.5, 1.0])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    s = Sampler(Zombies(steps), t0_boot_ticks=0, reaped_pids=reaped)
    aggs = [s.sample().aggregated]
    reaped += [3, 4]
    aggs += [s.sample().aggregated, s.sample().aggregated]
    assert [a.syscall_write_bytes for a in aggs] == [1107, 1107, 1157]


def test_an_absorbed_child_that_ran_before_monitoring_counts_from_its_baseline(monkeypatch):
    """Attach: the child had written 500 before the first reading; its parent absorbs all 800."""
    steps = [
        (_io(1, 10, 0.0, 2000, 99), [_io(2, 20, 0.0, 500, 1)], {}),
        (_io(1, 10, 0.1, 2000, 99), [_io(2, 20, 0.0, 800, 1)], {}),
        (_io(1, 10, 0.2, 2800, 99), [], {}),
    ]
    clock = iter([0.0, 0.5, 1.0])
    monkeypatch.setattr("denet.sampler.time.monotonic", lambda: next(clock))
    s = Sampler(Zombies(steps), t0_boot_ticks=100)  # both started before monitoring
    aggs = [s.sample().aggregated for _ in range(3)]
    assert [a.syscall_write_bytes for a in aggs] == [0, 300, 300]
