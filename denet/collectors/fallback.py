"""The portable process collector, on psutil: used where ``/proc`` is not available, and the
reference the Linux fast path is tested against."""

from __future__ import annotations

import os
import time

import psutil

from . import Reading

__all__ = ["PsutilCollector"]

try:
    _CLK = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
    _CLK = 100


class PsutilCollector:
    fast = False

    def __init__(self, root_pid: int, *, include_children: bool = True, adopt_orphans: bool = False,
                 hwm_every: int = 5) -> None:
        self.root_pid = root_pid
        self.include_children = include_children
        self.hidden: set[int] = set()  # pids never listed: denet's own helpers among its children
        self.adopt_orphans = adopt_orphans
        self.hwm_every = hwm_every
        self._procs: dict[int, psutil.Process] = {}
        self._nreads: dict[int, int] = {}
        # The tree's processes the last read() found ended, not yet reaped: {(pid, start): ppid}.
        self.zombies: dict[tuple[int, int], int] = {}

    def _proc(self, pid: int) -> psutil.Process | None:
        p = self._procs.get(pid)
        if p is not None and p.is_running():
            return p
        try:
            p = self._procs[pid] = psutil.Process(pid)
        except psutil.Error:
            self._procs.pop(pid, None)
            return None
        return p

    def _read(self, p: psutil.Process) -> Reading | None:
        try:
            with p.oneshot():
                if p.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    self.zombies[(p.pid, int((p.create_time() - psutil.boot_time()) * _CLK))] = p.ppid()
                    return None
                t = p.cpu_times()
                mem = p.memory_info()
                create = p.create_time()
                threads = p.num_threads()
                ppid = p.ppid()
                name = p.name()
                try:
                    core = p.cpu_num()
                except (AttributeError, psutil.Error):
                    core = None
                try:
                    io = p.io_counters()
                    rb, wb = io.read_bytes, io.write_bytes
                    rchar, wchar = getattr(io, "read_chars", None), getattr(io, "write_chars", None)
                except (AttributeError, psutil.AccessDenied):
                    rb = wb = 0
                    rchar = wchar = None
                n = self._nreads.get(p.pid, 0)
                hwm = _vmhwm(p.pid) if n % self.hwm_every == 0 else None
                self._nreads[p.pid] = n + 1
                # psutil has no portable page-fault counters; read them where /proc has them.
                minflt, majflt = _faults(p.pid)
        except psutil.Error:
            return None
        start = int((create - psutil.boot_time()) * _CLK)  # clock ticks since boot, as /proc gives it
        return Reading(p.pid, start, name, t.user + t.system, t.user, t.children_user + t.children_system,
                       t.children_user,
                       mem.rss // 1024, mem.vms // 1024, rb, wb, rchar, wchar, minflt, majflt, threads, core,
                       int(time.time() - create), hwm, ppid)

    def read(self) -> tuple[Reading | None, list[Reading]]:
        if self.zombies:
            self.zombies = {}
        root_p = self._proc(self.root_pid)
        root = self._read(root_p) if root_p is not None else None
        if not self.include_children:
            return root, []
        kids: list[psutil.Process] = []
        try:
            if root_p is not None:
                kids.extend(root_p.children(recursive=True))
            if self.adopt_orphans:
                for c in psutil.Process().children(recursive=False):
                    if c.pid != self.root_pid and c.pid not in self.hidden:
                        kids.append(c)
                        kids.extend(c.children(recursive=True))
        except psutil.Error:
            pass
        out = []
        seen = {self.root_pid}
        for c in kids:
            if c.pid in seen:
                continue
            seen.add(c.pid)
            p = self._proc(c.pid)
            r = self._read(p) if p is not None else None
            if r is not None:
                out.append(r)
        for pid in [q for q in self._procs if q not in seen]:
            del self._procs[pid]
            self._nreads.pop(pid, None)
        return root, out

    def net(self) -> tuple[int, int]:
        rx = tx = 0
        try:
            for name, c in psutil.net_io_counters(pernic=True).items():
                if name != "lo" and not name.startswith("lo"):
                    rx += c.bytes_recv
                    tx += c.bytes_sent
        except (OSError, RuntimeError):
            pass
        return rx, tx

    def close(self) -> None:
        self._procs.clear()


def _vmhwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _faults(pid: int) -> tuple[int | None, int | None]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        f = data[data.rfind(b")") + 2 :].split()
        return int(f[7]), int(f[9])
    except (OSError, ValueError, IndexError):
        return None, None
