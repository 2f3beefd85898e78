"""The adaptive clock, and collector readings turned into records. No I/O of its own.

Per process (keyed by pid and start time, so a recycled pid starts afresh) the sampler keeps
the CPU time and instant of the previous reading, for ``cpu_usage``, and the counters' baseline,
for deltas. A process that started after monitoring began has a baseline of zero, so none of its
I/O is lost between its start and its first reading; one that was already running is counted
from its first reading (``--since-process-start`` gives lifetime values instead).

The tree's aggregated counters keep what processes that have ended had done, so they never go back,
and count each process's I/O once. Linux adds the I/O accounting of a reaped child (its own and
everything it had reaped) to its parent's ``/proc/PID/io``; page faults it adds to the parent's
``cminflt``/``cmajflt``, which are not read. So when a process has gone, the sampler decides who
reaped it:

- still a zombie (the collector's ``zombies``): not reaped yet; its last counters stay counted;
- reaped by denet (the subreaper; ``reaped_pids``): in no tree member's counters; its last counters
  are kept (as for the root);
- else, its parent (its last reading's ``ppid``) is a live member of the tree: the parent's counters
  have absorbed its final I/O, which is not kept a second time (only what it had done before
  monitoring began, its baseline, is taken off: the parent's counters include that too); its page
  faults are kept;
- its parent has gone in the same interval: it shares the parent's fate (the parent had reaped it
  before it ended: the common case of a shell waiting for its command);
- otherwise (parent unknown or outside the tree: an orphan reaped by init or another subreaper):
  its last counters are kept.

Residual errors: the I/O a process did after its last reading, when no tree member absorbs it
(orphans, the root); and, without ``reaped_pids`` (attach, the Python API), a process whose parent
ended first and which ended itself in the same interval, reaped by a process outside the tree: its
last counters are dropped although no tree member absorbed them (an undercount, never a double
count). A parent read just before it reaps a child that has gone from the listing shows the
child's I/O one sample late; the aggregated counters are held at their highest value meanwhile.
"""

from __future__ import annotations

import time
from operator import add as _add
from operator import sub as _sub

from .records import (
    Aggregated,
    Child,
    GpuAggregated,
    GpuDevice,
    GpuMetrics,
    GpuProcess,
    Metrics,
    TreeSample,
    from_plain,
)
from .summary import SummaryAccumulator

__all__ = ["Sampler", "boot_ticks_now", "interval_ms_at"]

_MIN_DT = 0.010  # readings closer than this give cpu_usage 0.0


def interval_ms_at(elapsed_s: float, base_ms: float, max_ms: float) -> float:
    """The adaptive schedule: base for the first second, then linear to max at 10 s, then max."""
    if elapsed_s < 1.0:
        return base_ms
    if elapsed_s < 10.0:
        return base_ms + (max_ms - base_ms) * (elapsed_s - 1.0) / 9.0
    return max_ms


class _State:
    __slots__ = ("base", "last_cpu", "last_t", "last", "raw", "ppid")

    def __init__(self, base, cpu, t) -> None:
        self.base = base
        self.last_cpu = cpu
        self.last_t = t
        self.last = (0, 0, 0, 0, 0, 0)
        self.raw = None
        self.ppid = None


class Sampler:
    """Turns ``collector.read()`` into :class:`TreeSample` (or :class:`Metrics` without children)."""

    def __init__(self, collector, *, include_children: bool = True, since_process_start: bool = False,
                 t0_boot_ticks: int | None = None, reaped_cpu_secs=None, gpu=None, ebpf=None,
                 reaped_pids: list[int] | None = None) -> None:
        self.collector = collector
        # The GPU collector (collectors.gpu.GpuCollector) when it is available, else None.
        self.gpu = gpu
        # With --enable-ebpf: the eBPF collector (collectors.ebpf) or the schedstat estimate
        # (collectors.offcpu); its read(pids) gives the tree's `ebpf` values.
        self.ebpf = ebpf
        self.include_children = include_children
        self.since_process_start = since_process_start
        # Processes that started at or after this instant (clock ticks since boot) count from zero.
        self.t0_boot_ticks = t0_boot_ticks if t0_boot_ticks is not None else boot_ticks_now()
        self._state: dict[tuple[int, int], _State] = {}
        self._net_base: tuple[int, int] | None = None
        # Counter totals of processes that have ended (for monotone tree counters).
        self._gone = [0, 0, 0, 0, 0, 0]
        self._gone_any_syscall = False
        # Processes missing from the last sample only, with what their leaving added to _gone: if one
        # comes back (a read that failed once), it continues where it was instead of being counted twice.
        self._departed: dict[tuple[int, int], tuple[_State, tuple]] = {}
        # The pids denet has reaped (the runner's list, appended to): not absorbed by a tree member.
        self.reaped_pids = reaped_pids
        self._reaped_from = 0  # reaped_pids[_reaped_from:]: reaped since the previous sample
        self._agg_hi = [0, 0, 0, 0, 0, 0]  # highest aggregated counters so far (they never go back)
        self.summary = SummaryAccumulator()
        self.peak_hwm_kb = 0  # largest VmHWM / RSS seen for a single process
        self.last_readings: list = []  # root first when alive
        # CPU seconds of processes reaped outside the tree (by denet itself, as subreaper): a callable.
        self.reaped_cpu_secs = reaped_cpu_secs
        self._tree_cpu: float | None = None
        self._tree_t = 0.0

    def _metrics(self, r, ts_ms: int, t: float, net: tuple[int, int], gpu=None) -> tuple[Metrics, _State]:
        key = (r.pid, r.start)
        st = self._state.get(key)
        if st is None and key in self._departed:
            st, added = self._departed.pop(key)
            self._state[key] = st
            for i, v in enumerate(added):
                self._gone[i] -= v
        counters = (r.read_bytes, r.write_bytes, r.rchar or 0, r.wchar or 0, r.minflt or 0, r.majflt or 0)
        if st is None:
            fresh = self.since_process_start or (r.start is not None and r.start >= self.t0_boot_ticks)
            st = self._state[key] = _State((0, 0, 0, 0, 0, 0) if fresh else counters, r.cpu_secs, t)
            cpu = 0.0
        else:
            dt = t - st.last_t
            if dt >= _MIN_DT:
                cpu = (r.cpu_secs - st.last_cpu) / dt * 100.0
                if cpu < 0.0:
                    cpu = 0.0
                st.last_cpu = r.cpu_secs
                st.last_t = t
            else:
                cpu = 0.0
        if counters == st.raw:  # nothing moved since the last reading (an idle process)
            vals = st.last
        else:
            # deltas against the baseline, never below what was reported before
            vals = st.last = tuple(map(max, map(_sub, counters, st.base), st.last))
            st.raw = counters
        st.ppid = r.ppid
        hwm = r.hwm_kb if r.hwm_kb is not None else r.rss_kb
        if hwm > self.peak_hwm_kb:
            self.peak_hwm_kb = hwm
        m = Metrics(ts_ms, cpu, r.rss_kb, r.vms_kb, vals[0], vals[1], net[0], net[1], r.threads, r.uptime_secs,
                    r.cpu_core,
                    vals[2] if r.rchar is not None else None, vals[3] if r.wchar is not None else None,
                    vals[4] if r.minflt is not None else None, vals[5] if r.majflt is not None else None, gpu)
        return m, st

    def _net(self, root_alive: bool) -> tuple[int, int]:
        if not root_alive:
            return 0, 0
        rx, tx = self.collector.net()
        if self._net_base is None:
            self._net_base = (0, 0) if self.since_process_start else (rx, tx)
        b = self._net_base
        return max(rx - b[0], 0), max(tx - b[1], 0)

    def sample(self):
        """One record: a :class:`TreeSample`, or :class:`Metrics` when children are excluded.

        Returns None when there is nothing left to sample (the root is gone and, for plain samples,
        nothing else is followed).
        """
        t = time.monotonic()
        ts_ms = int(time.time() * 1000)
        root, kids = self.collector.read()
        if root is None and not kids:
            self.last_readings = []
            self._forget_gone(set())
            return None
        net = self._net(root is not None)
        self.last_readings = ([root] if root is not None else []) + kids
        gpu_root = gpu_tree = None
        if self.gpu is not None and root is not None:
            gpu_root, gpu_tree = self._gpu_values(root.pid, kids if self.include_children else ())
        if not self.include_children:
            if root is None:
                return None
            m, _ = self._metrics(root, ts_ms, t, net, gpu_root)
            self.summary.add_record(m)
            return m
        parent = None
        live = set()
        tot = [0, 0, 0, 0, 0, 0]
        cpu = 0.0
        rss = vms = threads = 0
        any_syscall = self._gone_any_syscall
        if root is not None:
            parent, _ = self._metrics(root, ts_ms, t, net, gpu_root)
            live.add((root.pid, root.start))
        children = []
        zero = (0, 0)
        # The tree's CPU time so far: every live process's own time plus what it has reaped (cutime),
        # plus what denet reaped. Its growth is the aggregated cpu_usage, so children that started
        # and ended between two samples count too.
        tree_cpu = sum(r.cpu_secs + (r.children_cpu_secs or 0.0) for r in self.last_readings)
        if self.reaped_cpu_secs is not None:
            tree_cpu += self.reaped_cpu_secs()
        for r in kids:
            m, _ = self._metrics(r, ts_ms, t, zero)
            live.add((r.pid, r.start))
            children.append(Child(r.pid, r.comm, m))
        for m in ([parent] if parent is not None else []) + [c.metrics for c in children]:
            rss += m.mem_rss_kb
            vms += m.mem_vms_kb
            threads += m.thread_count
            tot[0] += m.disk_read_bytes
            tot[1] += m.disk_write_bytes
            if m.syscall_read_bytes is not None:
                any_syscall = True
                tot[2] += m.syscall_read_bytes
                tot[3] += m.syscall_write_bytes or 0
            tot[4] += m.page_faults_cached or 0
            tot[5] += m.page_faults_disk or 0
        zombies = getattr(self.collector, "zombies", None)
        if zombies:
            # ended, not reaped yet: no process's counters hold their I/O but their own
            for key, ppid in zombies.items():
                st = self._state.get(key)
                if st is not None:
                    st.ppid = ppid
                    live.add(key)
                    last = st.last
                    for i in range(6):
                        tot[i] += last[i]
                    if last[2] or last[3]:
                        any_syscall = True
        self._forget_gone(live)
        g = self._gone
        agg = None
        if self._tree_cpu is None:
            self._tree_cpu, self._tree_t = tree_cpu, t
        elif t - self._tree_t >= _MIN_DT:
            # a zombie not yet reaped is briefly counted nowhere: never let the total go back
            tree_cpu = max(tree_cpu, self._tree_cpu)
            cpu = (tree_cpu - self._tree_cpu) / (t - self._tree_t) * 100.0
            self._tree_cpu, self._tree_t = tree_cpu, t
        if parent is not None:
            # never back: a parent read just before it reaped a child shows the child's I/O one sample late
            hi = self._agg_hi = list(map(max, map(_add, tot, g), self._agg_hi))
            agg = Aggregated(
                ts_ms, cpu, rss, vms, hi[0], hi[1], net[0], net[1], threads, 1 + len(children),
                parent.uptime_secs,
                hi[2] if any_syscall else None, hi[3] if any_syscall else None,
                hi[4], hi[5], gpu=gpu_tree, ebpf=self._ebpf_value(),
            )
            self.summary.add_record(agg)
        return TreeSample(ts_ms, parent, children, agg)

    def _gpu_values(self, root_pid: int, kids) -> tuple[GpuMetrics | None, GpuAggregated | None]:
        """The root's and the tree's GPU objects from one reading of the GPU collector (None, None
        when it gives nothing, for example once it has degraded). The collector reports every
        process on every GPU; the tree's are picked here by pid."""
        got = self.gpu.read()
        if got is None:
            return None, None
        devs, per_pid = got
        devices = [GpuDevice(**d) for d in devs]
        mine = per_pid.get(root_pid, ())
        root_procs = [GpuProcess(**e) for e in mine]
        root = GpuMetrics(sum(p.memory_bytes or 0 for p in root_procs), _sm_sum(root_procs), root_procs, devices)
        if not self.include_children:
            return root, None
        tree = list(root_procs)
        if per_pid:
            kid_pids = {r.pid for r in kids}
            for pid in sorted(per_pid):
                if pid != root_pid and pid in kid_pids:
                    tree += [GpuProcess(**e) for e in per_pid[pid]]
        tree.sort(key=lambda p: (p.pid, p.device))
        agg = GpuAggregated(sum(p.memory_bytes or 0 for p in tree), len({p.pid for p in tree}), _sm_sum(tree),
                            tree, devices)
        return root, agg

    def _ebpf_value(self):
        """The tree's `ebpf` record now, or None (eBPF off, or its collector has degraded)."""
        if self.ebpf is None:
            return None
        d = self.ebpf.read([r.pid for r in self.last_readings])
        return from_plain("ebpf_aggregated", d) if d is not None else None

    def _forget_gone(self, live: set) -> None:
        """Move the processes not in ``live`` (keys of this sample's readings and zombies) to the totals
        of ended processes, once each (see the module's docstring). A zombie counts as a live parent:
        what it reaped before it ended is in its counters, which go to whoever reaps it."""
        self._departed = {}
        rp = self.reaped_pids
        reaped_from = self._reaped_from
        if rp is not None:
            self._reaped_from = len(rp)
        if len(self._state) == len(live):
            return
        gone = {k: self._state.pop(k) for k in [k for k in self._state if k not in live]}
        by_pid = {k[0]: k for k in gone}
        parents = {k[0] for k in live}
        by_denet = set(rp[reaped_from:]) if rp else ()
        fate: dict[tuple[int, int], bool] = {}  # True: absorbed by a live member of the tree
        for key in gone:
            chain = []
            k: tuple[int, int] | None = key
            absorbed = False
            while k is not None:
                if k in fate:
                    absorbed = fate[k]
                    break
                chain.append(k)
                pp = gone[k].ppid
                if k[0] in by_denet or pp is None:
                    break
                if pp in parents:
                    absorbed = True
                    break
                k = by_pid.get(pp)  # its parent has gone too: the same fate
                if k in chain:
                    break
            for c in chain:
                fate[c] = absorbed
        g = self._gone
        for key, st in gone.items():
            last = st.last
            if fate[key]:
                b = st.base
                added = (-b[0], -b[1], -b[2], -b[3], last[4], last[5])
            else:
                added = last
            self._departed[key] = (st, added)
            for i in range(6):
                g[i] += added[i]
            if last[2] or last[3]:
                self._gone_any_syscall = True

    def live_cpu_secs(self) -> tuple[float, float]:
        """(user, system) seconds of the processes in the last reading, their waited-for children included."""
        user = system = 0.0
        for r in self.last_readings:
            u = (r.user_secs or 0.0) + (r.children_user_secs or 0.0)
            total = (r.cpu_secs or 0.0) + (r.children_cpu_secs or 0.0)
            user += u
            system += max(total - u, 0.0)
        return user, system


def _sm_sum(procs) -> float | None:
    vals = [p.sm_utilization_pct for p in procs if p.sm_utilization_pct is not None]
    return sum(vals) if vals else None


def boot_ticks_now() -> int:
    """Now, in clock ticks since boot (the unit of a process's start time in /proc)."""
    import os

    clk = os.sysconf("SC_CLK_TCK")
    return int(time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)) * clk)
