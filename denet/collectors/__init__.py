"""Collectors: plain values for one process (or one device), nothing about records or sinks.

A process collector returns :class:`Reading` objects for the root and its live descendants.
The fast path reads ``/proc`` directly (:mod:`.proc`); :mod:`.fallback` uses psutil on other
platforms and is the reference the fast path is tested against.
"""

from __future__ import annotations

import sys

__all__ = ["Reading", "process_collector", "report_degrade"]


def report_degrade(collector, what: str, why: str) -> bool:
    """Switch an optional collector off for the rest of the run, once: sets ``collector.degraded`` and
    tells ``collector.on_degrade`` (set by the monitor) in one line. False when it was already off."""
    if collector.degraded is not None:
        return False
    collector.degraded = why
    cb = collector.on_degrade
    if cb is not None:
        try:
            cb(f"{what} collector stopped: {why}; no {what} values from here on, the command goes on")
        except Exception:  # noqa: S110 - reporting must not fail the run either
            pass
    return True


class Reading:
    """Raw values of one process at one instant, as a collector read them.

    Counters are lifetime values; the sampler turns them into deltas and rates.
    ``None`` means "not readable here" (for example ``io`` of another user's process).

    Process collectors also keep ``zombies``: ``{(pid, start): ppid}`` of the tree's processes that
    the last ``read()`` found ended but not yet reaped (they are not in its readings). The sampler
    keeps their counters until they are reaped, and then looks at who reaped them (see
    :mod:`denet.sampler`).
    """

    __slots__ = (
        "pid",
        "start",  # process start time in clock ticks since boot (with pid, the process's identity)
        "comm",
        "cpu_secs",  # utime + stime
        "user_secs",  # utime
        "children_cpu_secs",  # cutime + cstime: waited-for descendants
        "children_user_secs",  # cutime
        "rss_kb",
        "vms_kb",
        "read_bytes",
        "write_bytes",
        "rchar",
        "wchar",
        "minflt",
        "majflt",
        "threads",
        "cpu_core",
        "uptime_secs",
        "hwm_kb",  # VmHWM when read this time, else None
        "ppid",  # parent pid (None when not known): who reaps it, and so whose I/O counters absorb its I/O
    )

    def __init__(self, pid, start, comm, cpu_secs, user_secs, children_cpu_secs, children_user_secs, rss_kb, vms_kb, read_bytes, write_bytes,
                 rchar, wchar, minflt, majflt, threads, cpu_core, uptime_secs, hwm_kb, ppid=None) -> None:
        self.pid = pid
        self.start = start
        self.comm = comm
        self.cpu_secs = cpu_secs
        self.user_secs = user_secs
        self.children_cpu_secs = children_cpu_secs
        self.children_user_secs = children_user_secs
        self.rss_kb = rss_kb
        self.vms_kb = vms_kb
        self.read_bytes = read_bytes
        self.write_bytes = write_bytes
        self.rchar = rchar
        self.wchar = wchar
        self.minflt = minflt
        self.majflt = majflt
        self.threads = threads
        self.cpu_core = cpu_core
        self.uptime_secs = uptime_secs
        self.hwm_kb = hwm_kb
        self.ppid = ppid

    def __repr__(self) -> str:
        return "Reading(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def process_collector(root_pid: int, *, include_children: bool = True, adopt_orphans: bool = False,
                      fast: bool | None = None):
    """The best process collector for this platform (the /proc fast path on Linux)."""
    if fast is None:
        fast = sys.platform.startswith("linux")
    if fast:
        from .proc import ProcCollector

        return ProcCollector(root_pid, include_children=include_children, adopt_orphans=adopt_orphans)
    from .fallback import PsutilCollector

    return PsutilCollector(root_pid, include_children=include_children, adopt_orphans=adopt_orphans)
