"""Off-CPU estimate without eBPF: ``/proc/PID/task/TID/schedstat`` of the tree's threads.

``schedstat`` holds, per thread, the time spent on a CPU, the time spent waiting on a run queue
(runnable but not running: preempted, or woken and not yet picked) and the number of time slices.
A thread's off-CPU time since it started (or since monitoring began, for a thread that was already
running) is then its wall time minus its on-CPU time; of it, the run-queue wait is time preempted,
and the rest (wall − on-CPU − run-queue wait) is time blocked: sleeping or waiting on I/O, which
schedstat cannot tell apart. It is an estimate: threads are read at each sample, so a thread that
lives and dies between two samples is missed, and the last values of a thread that has ended are
those of the sample before its end; thread start times have clock-tick resolution (10 ms).

:meth:`SchedstatEstimate.read` returns the fields of ``ebpf_aggregated`` with ``source``
``schedstat`` and ``estimate`` true (no syscalls, no split of blocked time). It never raises.
"""

from __future__ import annotations

import os
import time

__all__ = ["SchedstatEstimate", "available"]

TOP = 10


def available() -> str | None:
    """None when schedstat can be read here, else why not."""
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/schedstat"):
        return "no /proc/PID/task/TID/schedstat (kernel without CONFIG_SCHED_INFO)"
    return None


def _boot_now_ns() -> int:
    return time.clock_gettime_ns(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


class _Thread:
    __slots__ = ("pid", "tid", "comm", "start_ns", "base", "last", "wall")

    def __init__(self, pid, tid, comm, start_ns, base) -> None:
        self.pid = pid
        self.tid = tid
        self.comm = comm
        self.start_ns = start_ns  # counted from here (thread start, or the first reading)
        self.base = base  # (on-CPU ns, run-queue ns, slices) at start_ns
        self.last = base
        self.wall = 0


class SchedstatEstimate:
    """The estimate for one session. ``reason``: why eBPF is not used (for the record)."""

    available = True

    def __init__(self, reason: str | None = None, t0_boot_ns: int | None = None) -> None:
        self.reason = reason
        self.degraded: str | None = None
        self.on_degrade = None
        self._t0 = t0_boot_ns if t0_boot_ns is not None else _boot_now_ns()
        self._threads: dict[tuple[int, int], _Thread] = {}
        self._clk = os.sysconf("SC_CLK_TCK")

    def _stat(self, pid: int, tid: int) -> tuple[str, int] | None:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        lp, rp = data.find(b"("), data.rfind(b")")
        fields = data[rp + 2 :].split()
        try:
            start_ticks = int(fields[19])
        except (IndexError, ValueError):
            return None
        return data[lp + 1 : rp].decode("utf-8", "replace"), start_ticks * 1_000_000_000 // self._clk

    def read(self, pids=(), final: bool = False) -> dict | None:
        """The tree's off-CPU estimate; ``pids``: the tree's live processes now. Never raises."""
        if self.degraded is not None:
            return None
        try:
            return self._read(pids)
        except Exception as exc:
            self.degraded = f"{type(exc).__name__}: {exc}"
            cb = self.on_degrade
            if cb is not None:
                try:
                    cb(f"off-CPU estimate stopped: {self.degraded}; the command goes on")
                except Exception:  # noqa: S110
                    pass
        return None

    def _read(self, pids) -> dict:
        now = _boot_now_ns()
        for pid in pids:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for t in tids:
                tid = int(t)
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as fh:
                        vals = tuple(int(x) for x in fh.read().split()[:3])
                except (OSError, ValueError):
                    continue
                if len(vals) < 3:
                    continue
                th = self._threads.get((pid, tid))
                if th is None:
                    st = self._stat(pid, tid)
                    if st is None:
                        continue
                    comm, start_ns = st
                    # started under monitoring (the start time is truncated to a clock tick): from its start
                    if start_ns + 1_000_000_000 // self._clk >= self._t0:
                        th = _Thread(pid, tid, comm, start_ns, (0, 0, 0))
                    else:  # already running: from now on
                        th = _Thread(pid, tid, comm, now, vals)
                    self._threads[(pid, tid)] = th
                th.last = vals
                th.wall = max(now - th.start_ns, 0)
        oncpu = runq = slices = 0
        rows = []
        for th in self._threads.values():
            on = th.last[0] - th.base[0]
            rq = th.last[1] - th.base[1]
            n = th.last[2] - th.base[2]
            blocked = max(th.wall - on - rq, 0)
            oncpu += on
            runq += rq
            slices += n
            rows.append((blocked + rq, blocked, rq, th))
        blocked_total = sum(r[1] for r in rows)
        off_total = blocked_total + runq
        rows.sort(key=lambda r: -r[0])
        top = []
        for off, _blocked, rq, th in rows[:TOP]:
            if not off:
                continue
            top.append({"pid": th.pid, "tid": th.tid, "comm": th.comm, "time_ms": off / 1e6,
                        "percentage": 100.0 * off / off_total if off_total else 0.0,
                        "sleeping_ms": None, "io_ms": None, "preempted_ms": rq / 1e6, "max_ms": None})
        from .ebpf import classify

        return {
            "source": "schedstat",
            "estimate": True,
            "offcpu": {
                "total_time_ns": off_total,
                "total_events": slices,
                "avg_time_ns": off_total // slices if slices else 0,
                "max_time_ns": None,
                "sleeping_ns": None,
                "io_ns": None,
                "blocked_ns": blocked_total,
                "preempted_ns": runq,
                "oncpu_ns": oncpu,
                "thread_count": len(self._threads),
                "top_blocking_threads": top,
            },
            "behavior": classify(oncpu, None, None, runq, blocked_ns=blocked_total),
            "reason": self.reason,
        }

    def close(self) -> None:
        pass
