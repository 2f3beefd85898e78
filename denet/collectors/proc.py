"""The Linux fast path: read ``/proc`` directly, keep files open, re-read them with ``os.pread``.

The tree comes from ``/proc/PID/task/TID/children``; values from ``stat`` (CPU, faults, threads,
last CPU), ``statm`` (memory: exact, where ``stat``'s rss is an approximate per-CPU counter read),
``io`` (bytes) and, every few readings, ``status`` (VmHWM). An open ``/proc``
file belongs to one process: once that process is gone, reading it fails, so a recycled pid is
never mistaken for the old process (readings also carry the start time, the other half of a
process's identity). A file whose bytes have not changed since the last reading is not parsed again.
"""

from __future__ import annotations

import os
import time

from . import Reading

__all__ = ["ProcCollector", "read_net_dev"]

_CLK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_O = os.O_RDONLY | os.O_CLOEXEC
_BOOT = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
_FULL_EVERY = 10


def _open(path: str) -> int | None:
    try:
        return os.open(path, _O)
    except OSError:
        return None


def _pread_all(fd: int, size: int = 4096) -> bytes:
    """Whole contents of a /proc file. Such files hand out at most one page per read, cut at a line
    or entry boundary, so a read that came back nearly a page long may have more behind it."""
    data = os.pread(fd, size, 0)
    if len(data) < size - 256:
        return data
    chunks = [data]
    off = len(data)
    while True:
        more = os.pread(fd, size, off)
        if not more:
            return b"".join(chunks)
        chunks.append(more)
        off += len(more)


def parse_net_dev(data: bytes) -> tuple[int, int]:
    """(rx, tx) bytes summed over the non-loopback interfaces of a ``net/dev`` file."""
    rx = tx = 0
    for line in data.split(b"\n")[2:]:
        name, sep, rest = line.partition(b":")
        if not sep or name.strip() == b"lo":
            continue
        vals = rest.split()
        if len(vals) >= 9:
            rx += int(vals[0])
            tx += int(vals[8])
    return rx, tx


def read_net_dev(pid: int | None = None) -> tuple[int, int]:
    """Namespace-wide (rx, tx) bytes of ``pid``'s network namespace (``/proc/net/dev`` if unreadable)."""
    for path in ((f"/proc/{pid}/net/dev",) if pid else ()) + ("/proc/net/dev",):
        try:
            with open(path, "rb") as fh:
                return parse_net_dev(fh.read())
        except OSError:
            continue
    return 0, 0


class _Proc:
    """Open files and parse cache of one process."""

    __slots__ = ("pid", "stat_fd", "statm_fd", "io_fd", "status_fd", "sched_fd", "child_fds", "tids_for", "start",
                 "comm", "ppid", "last_stat", "stat_vals", "last_statm", "statm_vals", "last_io", "io_vals", "last_sched",
                 "nreads", "hwm_kb", "reading")

    def __init__(self, pid: int, stat_fd: int) -> None:
        self.pid = pid
        self.stat_fd = stat_fd
        self.statm_fd = _open(f"/proc/{pid}/statm")
        self.sched_fd = _open(f"/proc/{pid}/schedstat")
        self.last_sched = b""
        self.reading: Reading | None = None  # the last one, handed out again while nothing moved
        self.io_fd = _open(f"/proc/{pid}/io")
        self.status_fd: int | None = None
        self.child_fds: dict[int, int] = {}
        self.tids_for = 0  # thread count the child_fds were listed for
        self.start = None
        self.comm = ""
        self.ppid: int | None = None
        self.last_stat = b""
        self.stat_vals = None
        self.last_io = b""
        self.io_vals = (0, 0, None, None)
        self.last_statm = b""
        self.statm_vals = (0, 0)
        self.nreads = 0
        self.hwm_kb = None

    def close(self) -> None:
        for fd in (self.stat_fd, self.statm_fd, self.io_fd, self.status_fd, self.sched_fd,
                   *self.child_fds.values()):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.child_fds = {}
        self.stat_fd = self.statm_fd = self.io_fd = self.status_fd = self.sched_fd = None


class ProcCollector:
    """Reads the root and, unless ``include_children`` is False, every live descendant.

    ``adopt_orphans``: also follow denet's own children other than the root; as subreaper,
    denet inherits the tree's orphans, which then hang below denet instead of the root.
    """

    fast = True

    def __init__(self, root_pid: int, *, include_children: bool = True, adopt_orphans: bool = False,
                 hwm_every: int = 5) -> None:
        self.root_pid = root_pid
        self.include_children = include_children
        self.hidden: set[int] = set()  # pids never listed: denet's own helpers among its children
        self.hwm_every = hwm_every
        self._procs: dict[int, _Proc] = {}
        # The tree's processes the last read() found ended, not yet reaped: {(pid, start): ppid}.
        self.zombies: dict[tuple[int, int], int] = {}
        self._self_children_fd = _open(f"/proc/self/task/{os.getpid()}/children") if adopt_orphans else None
        self._net_fd = _open(f"/proc/{root_pid}/net/dev")
        if self._net_fd is None:
            self._net_fd = _open("/proc/net/dev")
        self._net_last = b""
        self._net_vals = (0, 0)

    # ------------------------------------------------------------ one process

    def _read(self, pid: int, now_boot: float, retry: bool = True) -> Reading | None:
        p = self._procs.get(pid)
        if p is None:
            fd = _open(f"/proc/{pid}/stat")
            if fd is None:
                return None
            p = self._procs[pid] = _Proc(pid, fd)
        elif p.sched_fd is not None and (p.nreads + pid) % _FULL_EVERY:
            # schedstat's run time moves whenever the process runs at all: when it has not, neither
            # have its CPU, memory, faults, threads or I/O, and the last values stand (a full read every
            # _FULL_EVERY readings still catches memory the kernel reclaimed meanwhile).
            try:
                ss = os.pread(p.sched_fd, 128, 0)
            except OSError:
                ss = b""
            if ss and ss == p.last_sched and p.reading is not None:
                p.nreads += 1
                rd = p.reading
                rd.uptime_secs = int(now_boot - p.start / _CLK)
                rd.hwm_kb = None
                return rd
            p.last_sched = ss
        try:
            data = os.pread(p.stat_fd, 2048, 0)
        except OSError:
            data = b""
        if not data:
            # The process this file belonged to is gone; the pid may already be someone else's.
            self._drop(pid)
            return self._read(pid, now_boot, False) if retry else None
        if data != p.last_stat:
            r = data.rfind(b")")
            f = data[r + 2 :].split()
            if f[0] in (b"Z", b"X"):  # zombie or dead: nothing left to measure
                self.zombies[(pid, int(f[19]))] = int(f[1])
                self._drop(pid)
                return None
            start = int(f[19])
            if p.start is None:
                p.start = start
            elif start != p.start:
                self._drop(pid)
                return self._read(pid, now_boot, False) if retry else None
            p.comm = data[data.find(b"(") + 1 : r].decode("utf-8", "replace")  # changes at exec
            p.ppid = int(f[1])  # changes when the process is orphaned
            ut, cut = int(f[11]), int(f[13])
            p.stat_vals = (
                (ut + int(f[12])) / _CLK,  # utime + stime
                ut / _CLK,
                (cut + int(f[14])) / _CLK,  # cutime + cstime
                cut / _CLK,
                int(f[7]),  # minflt
                int(f[9]),  # majflt
                int(f[17]),  # num_threads
                int(f[36]) if len(f) > 36 else None,  # processor
            )
            p.last_stat = data
        cpu, ucpu, ccpu, cucpu, minflt, majflt, threads, core = p.stat_vals
        if p.statm_fd is not None:
            try:
                sm = os.pread(p.statm_fd, 256, 0)
            except OSError:
                sm = p.last_statm
            if sm != p.last_statm:
                t = sm.split()
                p.statm_vals = (int(t[1]) * _PAGE_KB, int(t[0]) * _PAGE_KB)  # resident, size
                p.last_statm = sm
        rss, vms = p.statm_vals
        if p.io_fd is not None:
            try:
                io = os.pread(p.io_fd, 512, 0)
            except OSError:
                io = p.last_io
            if io != p.last_io:
                t = io.split()
                # rchar wchar syscr syscw read_bytes write_bytes cancelled_write_bytes
                p.io_vals = (int(t[9]), int(t[11]), int(t[1]), int(t[3]))
                p.last_io = io
        rb, wb, rchar, wchar = p.io_vals
        hwm = None
        if (p.nreads + pid) % self.hwm_every == 0:  # staggered: not every process on the same sample
            hwm = self._hwm(p)
        p.nreads += 1
        rd = p.reading = Reading(pid, p.start, p.comm, cpu, ucpu, ccpu, cucpu, rss, vms, rb, wb, rchar, wchar, minflt,
                                 majflt, threads, core, int(now_boot - p.start / _CLK), hwm, p.ppid)
        return rd

    def _hwm(self, p: _Proc) -> int | None:
        if p.status_fd is None:
            p.status_fd = _open(f"/proc/{p.pid}/status")
            if p.status_fd is None:
                return None
        try:
            data = os.pread(p.status_fd, 4096, 0)
            i = data.find(b"VmHWM:")
            if i < 0:
                return None
            p.hwm_kb = int(data[i + 6 : data.index(b"kB", i)])
            return p.hwm_kb
        except (OSError, ValueError):
            return None

    def _children(self, pid: int) -> list[int]:
        p = self._procs.get(pid)
        if p is None:
            return []
        threads = p.stat_vals[6] if p.stat_vals else 1
        if threads != p.tids_for or not p.child_fds:
            self._list_tasks(p, threads)
        out: list[int] = []
        for fd in p.child_fds.values():
            try:
                data = _pread_all(fd, 4096)
            except OSError:
                continue
            if data:
                out.extend(map(int, data.split()))
        return out

    def _list_tasks(self, p: _Proc, threads: int) -> None:
        if threads <= 1:
            tids = [p.pid]
        else:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{p.pid}/task")]
            except OSError:
                tids = [p.pid]
        for tid in list(p.child_fds):
            if tid not in tids:
                os.close(p.child_fds.pop(tid))
        for tid in tids:
            if tid not in p.child_fds:
                fd = _open(f"/proc/{p.pid}/task/{tid}/children")
                if fd is not None:
                    p.child_fds[tid] = fd
        p.tids_for = threads

    def _drop(self, pid: int) -> None:
        p = self._procs.pop(pid, None)
        if p is not None:
            p.close()

    # ------------------------------------------------------------ the tree

    def read(self) -> tuple[Reading | None, list[Reading]]:
        """Readings of the root (None once it is gone) and of every live descendant."""
        now_boot = time.clock_gettime(_BOOT)
        root_pid = self.root_pid
        if self.zombies:
            self.zombies = {}
        root = self._read(root_pid, now_boot)
        if not self.include_children:
            return root, []
        seen = {root_pid, *self.hidden}  # hidden: denet's own helpers (its watchdog)
        stack = self._children(root_pid) if root is not None else []
        if self._self_children_fd is not None:
            try:
                stack.extend(int(x) for x in _pread_all(self._self_children_fd, 4096).split())
            except OSError:
                pass
        out: list[Reading] = []
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            r = self._read(pid, now_boot)
            if r is None:
                continue
            out.append(r)
            stack.extend(self._children(pid))
        if len(self._procs) > len(seen):
            for pid in [q for q in self._procs if q not in seen]:
                self._drop(pid)
        return root, out

    def net(self) -> tuple[int, int]:
        """Namespace-wide (rx, tx) bytes of the root's network namespace."""
        if self._net_fd is None:
            return 0, 0
        try:
            data = _pread_all(self._net_fd, 8192)
        except OSError:
            return self._net_vals
        if data != self._net_last:
            self._net_vals = parse_net_dev(data)
            self._net_last = data
        return self._net_vals

    def close(self) -> None:
        for pid in list(self._procs):
            self._drop(pid)
        for fd in (self._self_children_fd, self._net_fd):
            if fd is not None:
                os.close(fd)
        self._self_children_fd = self._net_fd = None
