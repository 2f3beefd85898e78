"""The process ledger: every process that ran in the monitored tree, however short, with its cost.

Sampling sees the processes that are alive when a sample is taken; a pipeline or a script that
starts thousands of tiny tools leaves most of them unseen. The ledger receives process events
from the kernel instead of polling for them. Three sources, best first:

``proc_connector``
    The Linux proc connector (netlink ``NETLINK_CONNECTOR``, multicast group ``CN_IDX_PROC``):
    fork, exec, comm and exit events of every process on the machine. The monitored tree is
    followed by fork parentage: a set of the tree's thread-group ids is seeded with the root
    (for ``run``, denet itself is the root's parent and is *not* in the set), a fork whose parent
    is in the set adds the child, an exit removes it. Every event is dropped after one
    ``struct.unpack_from`` and one set lookup unless its process (for a fork: its parent) is in
    the tree. On Linux >= 6.6 the kernel also filters by event type for us, and any user may
    listen; older kernels want ``CAP_NET_ADMIN``. The connector exists only in the host's network
    namespace, and its pids are the host's, so it is off in other network or PID namespaces.
    At an exec event ``/proc/PID/cmdline`` and ``/proc/PID/comm`` are read (a process that has
    already exited by then has its comm from taskstats as command). On Linux >= 6.6 exec events
    come on a socket of their own (:meth:`EventLedger.wake_fds`): the monitor wakes up at once for
    them, to read the command line while the process lives, and reads the other events (fork,
    exit, comm, taskstats) in batches.
``taskstats``
    The generic netlink family ``TASKSTATS`` (root only): a listener registered for a CPU mask
    receives one ``struct taskstats`` per exiting task of the machine: CPU user/system time, peak
    RSS (``hiwater_rss``, the post-exec high-water mark), block and syscall I/O bytes, the exit
    status and ``comm``. Threads are summed into their process (``ac_tgid``, version >= 12).
    The struct is read at fixed offsets (the kernel only appends fields; ``version`` is checked
    before a field that a version added is used).
sampled
    Neither is available: the processes the sampler saw, with what its readings say.

Everything here is plain values: :meth:`drain` and :meth:`finish` return one dict per process,
keyed by the fields of the ``process`` record of ``schemas/records.json``; the monitor turns them
into records. Nothing here raises into the run: a failure of the sockets after the start degrades
the ledger (``degraded`` holds the reason) and the monitor goes on without it.
"""

from __future__ import annotations

import errno
import os
import struct
import time

__all__ = ["EventLedger", "SampledLedger", "Unavailable", "open_ledger", "probe"]

AF_NETLINK = 16
SOCK_DGRAM = 2
SOCK_RAW = 3
SOL_SOCKET = 1
SO_RCVBUF = 8
SO_RCVBUFFORCE = 33
NETLINK_CONNECTOR = 11
NETLINK_GENERIC = 16
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 1
NLM_F_ACK = 4

CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
EV_NONE = 0
EV_FORK = 0x1
EV_EXEC = 0x2
EV_COMM = 0x200
EV_EXIT = 0x80000000
EV_WANTED = EV_FORK | EV_EXEC | EV_COMM | EV_EXIT

GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
TASKSTATS_CMD_GET = 1
TASKSTATS_CMD_ATTR_PID = 1
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK = 3
TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK = 4
TASKSTATS_TYPE_PID = 1
TASKSTATS_TYPE_STATS = 3
TASKSTATS_TYPE_AGGR_PID = 4
AGROUP = 0x20

RCVBUF = 8 << 20
# Tasks that ran less than this (µs, two ticks at HZ=100) get the larger of sum_exec_runtime and the tick
# count as their CPU time (see _Entry.add_taskstats).
SHORT_TASK_US = 20_000
# A process whose exit event came but whose last taskstats message (the one flagged AGROUP) did not
# is closed after this long anyway (a message lost to a full receive buffer).
TASKSTATS_GRACE_S = 1.0

_NLH = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_CN = struct.Struct("=IIIIHH")  # cn_msg: idx, val, seq, ack, len, flags
# proc_event after nlmsghdr + cn_msg (offset 36): what, cpu, timestamp_ns, then the event's first two
# u32: fork: parent pid, parent tgid; exec, comm, exit: pid, tgid.
_EV_OFF = 36
_EV = struct.Struct("=I4xQII")
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_II = struct.Struct("=II")
_HH = struct.Struct("=HH")

# struct taskstats: offsets within the struct (include/uapi/linux/taskstats.h); version that added it.
_TS_VERSION = 0
_TS_EXITCODE = 4
_TS_FLAG = 8
_TS_RUN_VIRTUAL = 72  # cpu_run_virtual_total, ns: the scheduler's sum_exec_runtime (v1)
_TS_COMM = 80  # char[32] (v1)
_TS_PPID = 132
_TS_UTIME = 152  # usec (then stime)
_TS_HIWATER_RSS = 200  # KiB
_TS_READ_CHAR = 216  # then write_char
_TS_READ_BYTES = 248  # then write_bytes (v3 io accounting)
_TS_TGID = 368  # v12
_TS_TGID_VERSION = 12
_TS_MIN_SIZE = 264  # up to write_bytes
# The fixed layout of an exit message: nlmsghdr, genlmsghdr, AGGR_PID {PID, STATS}.
_MSG_PID = 28
_MSG_STATS = 36
_Q = struct.Struct("=Q")
_QQ = struct.Struct("=QQ")

_O = os.O_RDONLY | os.O_CLOEXEC
_CLK = os.sysconf("SC_CLK_TCK")
_BOOT = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


# ---------------------------------------------------------------------------- small readers


def _read(path: str, size: int = 65536) -> bytes | None:
    try:
        fd = os.open(path, _O)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _argv(pid: int) -> list[str] | None:
    try:
        fd = os.open(f"/proc/{pid}/cmdline", _O)
    except OSError:
        return None
    try:
        # A small first read: a 128 KiB one costs an mmap of its buffer each time.
        data = os.read(fd, 4096)
        if len(data) == 4096:
            data += os.read(fd, 1 << 17)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not data:
        return None
    return [a.decode("utf-8", "replace") for a in data.split(b"\0") if a] or None


def _comm(pid: int) -> str | None:
    data = _read(f"/proc/{pid}/comm", 64)
    return data.rstrip(b"\n").decode("utf-8", "replace") if data else None


def _stat(pid: int) -> tuple[str, str, int, int, float, float] | None:
    """(comm, state, ppid, starttime ticks, utime s, stime s) of /proc/PID/stat, None if gone."""
    data = _read(f"/proc/{pid}/stat", 4096)
    if not data:
        return None
    r = data.rfind(b")")
    f = data[r + 2 :].split()
    try:
        return (data[data.find(b"(") + 1 : r].decode("utf-8", "replace"), f[0].decode(), int(f[1]), int(f[19]),
                int(f[11]) / _CLK, int(f[12]) / _CLK)
    except (IndexError, ValueError):
        return None


def _status_hwm(pid: int) -> int | None:
    data = _read(f"/proc/{pid}/status", 8192)
    if not data:
        return None
    i = data.find(b"VmHWM:")
    if i < 0:
        return None
    try:
        return int(data[i + 6 : data.index(b"kB", i)])
    except ValueError:
        return None


def _io(pid: int) -> tuple[int, int, int, int] | None:
    """(read_bytes, write_bytes, rchar, wchar) of /proc/PID/io."""
    data = _read(f"/proc/{pid}/io", 1024)
    if not data:
        return None
    t = data.split()
    try:
        return int(t[9]), int(t[11]), int(t[1]), int(t[3])
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        data = _read(f"/proc/{pid}/task/{tid}/children")
        if data:
            out.extend(int(x) for x in data.split())
    return out


def _exit_status(status: int | None) -> tuple[int | None, int | None]:
    """(exit code, signal) of a wait status; (None, None) when unknown."""
    if status is None:
        return None, None
    sig = status & 0x7F
    if sig and sig != 0x7F:
        return None, sig
    return (status >> 8) & 0xFF, None


def _nla(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return _HH.pack(n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def _attrs(buf, start: int, end: int):
    """(type, payload start, payload end) of the netlink attributes in ``buf[start:end]``."""
    off = start
    while off + 4 <= end:
        n, kind = _HH.unpack_from(buf, off)
        if n < 4:
            return
        yield kind & 0x3FFF, off + 4, min(off + n, end)
        off += (n + 3) & ~3


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (major, minor)
    except (ValueError, IndexError):
        return False


def _in_host_pid_namespace() -> bool:
    """Whether denet sees the host's pids (the kernel's events carry those)."""
    data = _read("/proc/self/status", 8192) or b""
    i = data.find(b"NSpid:")
    if i < 0:
        return True  # kernel without NSpid: no namespaces to worry about
    return len(data[i + 6 : data.find(b"\n", i)].split()) == 1


# ---------------------------------------------------------------------------- sockets


def _errtext(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc}" + (f" ({name})" if name else "")


class Unavailable(Exception):
    """A source cannot be used here; the message is the one-line reason for ``capabilities``."""


def _open_connector(events: int = EV_WANTED):
    """The proc connector socket, listening (on Linux >= 6.6 to ``events`` only); raises
    :class:`Unavailable` with a one-line reason."""
    import _socket

    try:
        s = _socket.socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR)
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
            raise Unavailable("the proc connector is not available here (a kernel without CONFIG_PROC_EVENTS, "
                              "or denet is not in the host's network namespace)") from None
        raise Unavailable(f"cannot open the proc connector: {_errtext(exc)}") from None
    try:
        s.bind((0, CN_IDX_PROC))
        _rcvbuf(s)
        token = os.getpid() & 0xFFFFFFF
        s.send(_cn_op(PROC_CN_MCAST_LISTEN, token))
        err = _connector_ack(s, token)
        if err == errno.EPERM:
            raise Unavailable("listening to process events needs CAP_NET_ADMIN on this kernel (root; Linux >= 6.6 "
                              "lets any user listen)")
        if err:
            raise Unavailable(f"the proc connector refused to listen: {os.strerror(err)}")
        if _kernel_at_least(6, 6):
            # Linux >= 6.6 filters by event type in the kernel: only fork, exec, comm and exit reach us.
            s.send(_cn_op(PROC_CN_MCAST_LISTEN, token, events))
        s.setblocking(False)
    except OSError as exc:
        s.close()
        if exc.errno == errno.ECONNREFUSED:  # no connector in this network namespace
            raise Unavailable("the proc connector exists only in the host's network namespace, and denet runs in "
                              "another one") from None
        raise Unavailable(f"cannot listen to the proc connector: {_errtext(exc)}") from None
    except Unavailable:
        s.close()
        raise
    return s


def _cn_op(op: int, token: int, events: int | None = None) -> bytes:
    payload = _U32.pack(op) if events is None else _II.pack(op, events)
    cn = _CN.pack(CN_IDX_PROC, CN_VAL_PROC, 0, token, len(payload), 0) + payload
    return _NLH.pack(_NLH.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn


def _connector_ack(s, token: int) -> int:
    """The error the kernel acknowledged our LISTEN with (0: fine). The acknowledgement is queued
    while ``send`` runs; other listeners' acknowledgements and events may come before it."""
    s.settimeout(0.2)
    buf = bytearray(4096)
    deadline = time.monotonic() + 0.2
    try:
        while time.monotonic() < deadline:
            try:
                n = s.recv_into(buf)
            except (TimeoutError, BlockingIOError):
                return 0
            if n < 56:
                continue
            what = _U32.unpack_from(buf, _EV_OFF)[0]
            ack = _CN.unpack_from(buf, 16)[3]
            if what == EV_NONE and ack == token + 1:
                return _U32.unpack_from(buf, 52)[0]
    finally:
        s.settimeout(None)
    return 0


def _rcvbuf(s) -> None:
    try:
        s.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        try:
            s.setsockopt(SOL_SOCKET, SO_RCVBUF, RCVBUF)
        except OSError:
            pass


def _genl(family: int, cmd: int, attrs: bytes, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", cmd, 1, 0) + attrs
    return _NLH.pack(_NLH.size + len(body), family, flags, seq, 0) + body


def _genl_reply(s, seq: int) -> bytes:
    """The reply to request ``seq`` (raises OSError for a netlink error)."""
    while True:
        data = s.recv(65536)
        off = 0
        while off + 16 <= len(data):
            n, kind, _flags, rseq, _pid = _NLH.unpack_from(data, off)
            if n < 16:
                break
            if rseq == seq:
                if kind == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", data, off + 16)[0]
                    if err:
                        raise OSError(err, os.strerror(err))
                return data[off : off + n]
            off += (n + 3) & ~3


class _Taskstats:
    """The taskstats listener socket and what the kernel told about its struct."""

    def __init__(self) -> None:
        import _socket

        if not _in_host_pid_namespace():
            raise Unavailable("denet runs in a PID namespace other than the host's")
        try:
            s = _socket.socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)
        except OSError as exc:
            raise Unavailable(f"cannot open a generic netlink socket: {_errtext(exc)}") from None
        try:
            self._setup(s)
        except TimeoutError:
            s.close()
            raise Unavailable("taskstats did not answer") from None
        except OSError as exc:
            s.close()
            raise Unavailable(f"taskstats: {_errtext(exc)}") from None
        except Unavailable:
            s.close()
            raise
        self.sock = s
        self.has_tgid = self.version >= _TS_TGID_VERSION and self.size >= _TS_TGID + 4

    def _setup(self, s) -> None:
        s.settimeout(1.0)
        s.bind((0, 0))
        s.send(_genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, _nla(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0"), 1))
        try:
            reply = _genl_reply(s, 1)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise Unavailable("the kernel has no taskstats (CONFIG_TASKSTATS is off)") from None
            raise
        family = None
        for kind, a, _b in _attrs(reply, 20, len(reply)):
            if kind == CTRL_ATTR_FAMILY_ID:
                family = _U16.unpack_from(reply, a)[0]
        if family is None:
            raise Unavailable("the kernel did not name the taskstats family")
        self.family = family
        # Our own stats: the struct's version and size (and whether we may ask at all).
        s.send(_genl(family, TASKSTATS_CMD_GET, _nla(TASKSTATS_CMD_ATTR_PID, _U32.pack(os.getpid())), 2))
        try:
            reply = _genl_reply(s, 2)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                raise Unavailable("taskstats needs CAP_NET_ADMIN (root)") from None
            raise
        self.version, self.size = self._version_of(reply)
        if self.size < _TS_MIN_SIZE:
            raise Unavailable(f"taskstats version {self.version} is too old (no I/O accounting)")
        self.mask = _possible_cpus()
        s.send(_genl(family, TASKSTATS_CMD_GET, _nla(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, self.mask + b"\0"), 3,
                     NLM_F_REQUEST | NLM_F_ACK))
        try:
            _genl_reply(s, 3)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                raise Unavailable("taskstats needs CAP_NET_ADMIN (root)") from None
            if exc.errno == errno.EINVAL:
                raise Unavailable("taskstats refused the listener (denet is not in the host's user and PID "
                                  "namespaces)") from None
            raise
        _rcvbuf(s)
        s.setblocking(False)

    @staticmethod
    def _version_of(reply: bytes) -> tuple[int, int]:
        for kind, a, b in _attrs(reply, 20, len(reply)):
            if kind == TASKSTATS_TYPE_AGGR_PID:
                for k2, a2, b2 in _attrs(reply, a, b):
                    if k2 == TASKSTATS_TYPE_STATS:
                        return _U16.unpack_from(reply, a2)[0], b2 - a2
        raise Unavailable("taskstats answered without a stats structure")

    def close(self) -> None:
        s = self.sock
        try:
            s.setblocking(True)
            s.settimeout(0.2)
            s.send(_genl(self.family, TASKSTATS_CMD_GET,
                         _nla(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, self.mask + b"\0"), 4))
        except OSError:
            pass
        s.close()


def _possible_cpus() -> bytes:
    data = _read("/sys/devices/system/cpu/possible", 256)
    if data and data.strip():
        return data.strip()
    n = os.cpu_count() or 1
    return f"0-{n - 1}".encode()


# ---------------------------------------------------------------------------- probe


def probe() -> tuple[bool, str | None, str | None]:
    """Which source the ledger would use here: (events available, reason when not, taskstats reason).

    Opens and closes the sockets (a few syscalls); used by ``--debug`` and the tests."""
    try:
        led = EventLedger()
    except Unavailable as exc:
        return False, str(exc), None
    ts = led.taskstats_reason
    led.close()
    return True, None, ts


def open_ledger(enabled: bool = True):
    """The best ledger available, and the capability to record: ``(ledger, available, reason)``.

    ``available`` is True when kernel events are used; the reason says why taskstats (or the
    events) are off. With ``enabled`` False: ``(None, False, reason)``."""
    if not enabled:
        return None, False, "off (--no-ledger)"
    if not os.uname().sysname == "Linux":
        return SampledLedger(), False, "no kernel process events on this platform: the sampled view"
    try:
        led = EventLedger()
    except Unavailable as exc:
        return SampledLedger(str(exc)), False, f"{exc}; the sampled view (processes seen by the sampler)"
    return led, True, led.capability_reason()


# ---------------------------------------------------------------------------- one process


class _Entry:
    __slots__ = ("pid", "ppid", "name", "argv", "start_ms", "end_ms", "status", "exited", "exit_mono", "agroup",
                 "ts_seen", "user_us", "sys_us", "hwm_kb", "io", "last", "peak_kb", "ts_name")

    def __init__(self, pid: int, ppid: int | None, name: str | None, argv: list[str] | None,
                 start_ms: int | None) -> None:
        self.pid = pid
        self.ppid = ppid
        self.name = name
        self.argv = argv
        self.start_ms = start_ms
        self.end_ms: int | None = None
        self.status: int | None = None
        self.exited = False
        self.exit_mono = 0.0
        self.agroup = False
        self.ts_seen = False
        self.user_us = 0.0
        self.sys_us = 0.0
        self.hwm_kb = 0
        self.io = [0, 0, 0, 0]  # read_bytes, write_bytes, rchar, wchar
        self.last = None  # the sampler's last Reading
        self.peak_kb = 0  # largest VmHWM / RSS the sampler saw
        self.ts_name: str | None = None  # comm of the leader's taskstats

    def values(self, source: str) -> dict:
        code, sig = _exit_status(self.status)
        name = self.ts_name or self.name or (os.path.basename(self.argv[0])[:15] if self.argv else None) or "?"
        v = {
            "pid": self.pid, "ppid": self.ppid, "name": name, "command": list(self.argv) if self.argv else [name],
            "start_ms": self.start_ms, "end_ms": self.end_ms, "exit_code": code, "exit_signal": sig,
            "cpu_user_secs": None, "cpu_system_secs": None, "peak_rss_kb": None,
            "disk_read_bytes": None, "disk_write_bytes": None, "syscall_read_bytes": None,
            "syscall_write_bytes": None, "source": source,
        }
        if self.ts_seen:
            v["source"] = "taskstats"
            v["cpu_user_secs"] = self.user_us / 1e6
            v["cpu_system_secs"] = self.sys_us / 1e6
            v["peak_rss_kb"] = self.hwm_kb
            v["disk_read_bytes"], v["disk_write_bytes"], v["syscall_read_bytes"], v["syscall_write_bytes"] = self.io
        elif self.last is not None:
            r = self.last
            v["cpu_user_secs"] = r.user_secs
            v["cpu_system_secs"] = max(r.cpu_secs - r.user_secs, 0.0)
            v["peak_rss_kb"] = self.peak_kb or None
            v["disk_read_bytes"], v["disk_write_bytes"] = r.read_bytes, r.write_bytes
            v["syscall_read_bytes"], v["syscall_write_bytes"] = r.rchar, r.wchar
        return v

    def add_taskstats(self, buf, base: int, size: int) -> None:
        """Add one task's (one thread's) exit stats: ``buf[base : base + size]`` is a struct taskstats."""
        self.ts_seen = True
        ut, st = _QQ.unpack_from(buf, base + _TS_UTIME)
        run_ns = _Q.unpack_from(buf, base + _TS_RUN_VIRTUAL)[0]
        # The kernel's own rule (cputime_adjust, as for wait4): the scheduler's runtime, split between
        # user and system in the ratio of the sampled ticks. The runtime is sum_exec_runtime, exact but
        # for the slice since the scheduler last updated it (less than one tick); a task that ran less
        # than SHORT_TASK_US may never have been updated at all, so for it the larger of that and the
        # tick count (whole ticks, right on average over many tasks) is taken.
        run_us = run_ns / 1000.0
        total = run_us if run_us >= SHORT_TASK_US else max(run_us, float(ut + st))
        if ut + st == 0 or st == 0:
            self.user_us += total
        elif ut == 0:
            self.sys_us += total
        else:
            u = total * ut / (ut + st)
            self.user_us += u
            self.sys_us += total - u
        hwm = _Q.unpack_from(buf, base + _TS_HIWATER_RSS)[0]
        if hwm > self.hwm_kb:
            self.hwm_kb = hwm
        rc, wc = _QQ.unpack_from(buf, base + _TS_READ_CHAR)
        rb, wb = _QQ.unpack_from(buf, base + _TS_READ_BYTES)
        io = self.io
        io[0] += rb
        io[1] += wb
        io[2] += rc
        io[3] += wc
        if buf[base + _TS_FLAG] & AGROUP:
            self.agroup = True


# ---------------------------------------------------------------------------- the event ledger


class EventLedger:
    """The ledger from kernel events (proc connector, plus taskstats where allowed).

    Open it *before* the command starts (its fork and exec must not be missed), then
    :meth:`track_root` (``run``) or :meth:`seed` (``attach``). Register :meth:`fds` in the
    monitor's poll; call :meth:`drain` when one is readable, :meth:`observe` with the sampler's
    readings, and :meth:`finish` once monitoring ends.
    """

    available = True

    def __init__(self) -> None:
        # Linux >= 6.6 filters events per socket: exec events, which the monitor must read at once (the
        # command line is read from /proc while the process lives), get a socket of their own (_cx);
        # the rest (_cn) can wait to be read in batches. Older kernels: one socket for all.
        self._cx = None
        if _kernel_at_least(6, 6):
            try:
                self._cx = _open_connector(EV_EXEC)
            except Unavailable:
                self._cx = None
        try:
            self._cn = _open_connector(EV_WANTED & ~EV_EXEC if self._cx is not None else EV_WANTED)
        except Unavailable:
            if self._cx is not None:
                self._cx.close()
            raise
        self.taskstats_reason: str | None = None
        self._ts: _Taskstats | None = None
        try:
            self._ts = _Taskstats()
        except Unavailable as exc:
            self.taskstats_reason = str(exc)
        except Exception as exc:  # an answer we did not expect: the events alone
            self.taskstats_reason = f"taskstats answered unexpectedly ({type(exc).__name__}: {exc})"
        self.source = "taskstats" if self._ts is not None else "proc_connector"
        self._buf = bytearray(65536)
        self._tree: set[int] = set()  # live thread-group ids of the tree (the early filter)
        self._procs: dict[int, _Entry] = {}  # tgid -> entry, until its record is handed out
        self._threads: dict[int, int] = {}  # tid -> tgid of the tree's other threads (taskstats < v12)
        self._exited: set[int] = set()  # exited, record not handed out yet
        self._done: list[dict] = []
        self._off_ns = time.time_ns() - time.monotonic_ns()
        self.degraded: str | None = None
        self.lost = 0  # receive-buffer overflows (ENOBUFS): events were dropped by the kernel
        self.events = 0  # events read
        self.kept = 0  # events of the tree
        self.tree_events_last_drain = 0

    # -------------------------------------------------------------- setup

    def capability_reason(self) -> str | None:
        if self._ts is not None:
            return None
        return f"proc connector only: {self.taskstats_reason} (no exact per-process CPU, memory and I/O)"

    def fds(self) -> tuple[int, ...]:
        if self.degraded is not None or self._cn is None:  # degraded, or closed
            return ()
        out = [self._cn.fileno()]
        if self._cx is not None:
            out.append(self._cx.fileno())
        if self._ts is not None:
            out.append(self._ts.sock.fileno())
        return tuple(out)

    def wake_fds(self) -> tuple[int, ...]:
        """Those of :meth:`fds` whose events must be read at once (exec events: the command line is
        read then); the others' may wait for a batch (fork, exit, comm, taskstats). All of them on
        kernels that cannot send exec events apart (< 6.6)."""
        if self.degraded is not None or self._cn is None:
            return ()
        return (self._cx.fileno(),) if self._cx is not None else self.fds()

    def _ms(self, mono_ns: int) -> int:
        return (mono_ns + self._off_ns) // 1_000_000

    def track_root(self, pid: int, ppid: int, start_mono: float, argv: list[str]) -> None:
        """The root of a ``run``: started by us (its fork event names denet as parent, which is not
        in the tree), so its entry is made here."""
        name = os.path.basename(argv[0])[:15] if argv else None
        self._add(_Entry(pid, ppid, name, list(argv), self._ms(int(start_mono * 1e9))))

    def seed(self, root: int) -> None:
        """``attach``: the root and its descendants as they are now."""
        boot_ms = time.time() * 1000.0 - time.clock_gettime(_BOOT) * 1000.0
        stack = [root]
        seen = set()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            st = _stat(pid)
            if st is None:
                continue
            comm, _state, ppid, start, _u, _s = st
            self._add(_Entry(pid, ppid, comm, _argv(pid), int(boot_ms + start * 1000.0 / _CLK)))
            stack.extend(_children(pid))

    def _add(self, e: _Entry) -> None:
        old = self._procs.get(e.pid)
        if old is not None:
            if not old.exited:  # found by seed() already (attach): the event only tells its start
                if old.start_ms is None:
                    old.start_ms = e.start_ms
                return
            self._finalize(old)  # the pid came back while its old record waited for taskstats
        self._procs[e.pid] = e
        self._tree.add(e.pid)

    # -------------------------------------------------------------- reading events

    def drain(self, full: bool = True) -> list[dict]:
        """Read every pending event; the records of the processes that have ended. ``full`` False: the
        process events only (what an exec event needs at once); taskstats messages, and so the
        records of the processes that ended, wait for the next full drain."""
        if self.degraded is not None:
            return self._take_done()
        try:
            self.tree_events_last_drain = self._drain_events()
            if not full:
                return self._take_done()
            if self._ts is not None:
                late = self._drain_taskstats()
                if late:
                    # Messages of processes whose fork we had not read yet: read it, then take them.
                    self.tree_events_last_drain += self._drain_events()
                    for tgid, data in late:
                        e = self._procs.get(tgid)
                        if e is not None:
                            self._apply_taskstats(e, data, 0)
            self._settle(time.monotonic())
        except OSError as exc:
            self._degrade(f"the process events socket failed: {_errtext(exc)}")
        return self._take_done()

    def _take_done(self) -> list[dict]:
        out, self._done = self._done, []
        return out

    def _degrade(self, reason: str) -> None:
        self.degraded = reason
        for e in list(self._procs.values()):
            self._finalize(e)
        self._close_sockets()

    def _messages(self, sock):
        """The length of each message waiting on ``sock``, the message in ``self._buf`` until the next
        one is read. Counts them in ``events``, receive-buffer overflows in ``lost``."""
        recv_into = sock.recv_into
        buf = self._buf
        n_ev = 0
        try:
            while True:
                try:
                    n = recv_into(buf)
                except BlockingIOError:
                    return
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:
                        self.lost += 1
                        continue
                    raise
                n_ev += 1
                yield n
        finally:
            self.events += n_ev

    def _events(self, sock):
        """The connector events waiting on ``sock``: (what, timestamp, pid, tgid) each."""
        buf = self._buf
        unpack = _EV.unpack_from
        for n in self._messages(sock):
            if n >= 68:
                yield unpack(buf, _EV_OFF)

    def _drain_connector(self) -> int:
        buf = self._buf
        tree = self._tree
        kept = 0
        for what, ts, a, b in self._events(self._cn):
            if b not in tree:  # another process's event (for a fork: the parent's tgid)
                continue
            kept += 1
            if what == EV_FORK:
                cpid, ctgid = _II.unpack_from(buf, 60)
                if cpid != ctgid:  # a new thread of a tree process
                    self._threads[cpid] = ctgid
                    continue
                parent = self._procs.get(b)
                self._add(_Entry(ctgid, b, parent.name if parent else None, parent.argv if parent else None,
                                 self._ms(ts)))
            elif what == EV_EXEC:
                if a == b:
                    e = self._procs.get(b)
                    if e is not None:
                        self._exec(e)
            elif what == EV_EXIT:
                if a == b:
                    e = self._procs.get(b)
                    tree.discard(b)
                    if e is not None:
                        e.status = _U32.unpack_from(buf, 60)[0]
                        e.end_ms = self._ms(ts)
                        e.exited = True
                        e.exit_mono = time.monotonic()
                        self._exited.add(b)
                else:
                    self._threads.pop(a, None)
            elif what == EV_COMM:
                if a == b:
                    e = self._procs.get(b)
                    if e is not None:
                        e.name = bytes(buf[60:76]).split(b"\0", 1)[0].decode("utf-8", "replace")
        self.kept += kept
        return kept

    def _exec(self, e: _Entry) -> None:
        """A new program: the argv it had from its parent is not its own any more. One that has already
        exited by now keeps its comm (from taskstats) as command."""
        argv = e.argv = None if e.exited else _argv(e.pid)
        # With taskstats the name comes from its exit message; else from /proc now.
        e.name = (None if self._ts is not None or e.exited else _comm(e.pid)) or (
            os.path.basename(argv[0])[:15] if argv else e.name)

    def _drain_events(self) -> int:
        """The process events: the connector socket, then the exec socket (Linux >= 6.6). An exec
        read there came after its fork on the other socket; one whose fork that read missed (it came
        meanwhile) is looked up again after a second read of the other socket, and every read of
        that one is followed by one of the exec socket (an exit read before its exec would hand out
        the record with the parent's argv)."""
        kept = self._drain_connector()
        if self._cx is None:
            return kept
        for _ in range(8):
            k, unknown = self._drain_exec()
            kept += k
            if not unknown:
                break
            more = self._drain_connector()
            if not more:
                break
            kept += more
            procs = self._procs
            for b in unknown:
                e = procs.get(b)
                if e is not None:
                    self.kept += 1
                    kept += 1
                    self._exec(e)
        return kept

    def _drain_exec(self) -> tuple[int, list[int]]:
        """(events of the tree, pids of the execs not of the tree) read from the exec socket."""
        procs = self._procs
        unknown: list[int] = []
        kept = 0
        for what, _ts, a, b in self._events(self._cx):
            if what != EV_EXEC or a != b:
                continue
            e = procs.get(b)  # also one that has exited, its record not handed out yet
            if e is None:
                unknown.append(b)
                continue
            kept += 1
            self._exec(e)
        self.kept += kept
        return kept, unknown

    def _drain_taskstats(self) -> list[tuple[int, bytes]]:
        ts = self._ts
        buf = self._buf
        procs = self._procs
        tree = self._tree
        threads = self._threads
        has_tgid = ts.has_tgid
        tgid_at = _MSG_STATS + _TS_TGID
        ppid_at = _MSG_STATS + _TS_PPID
        need = (tgid_at + 4) if has_tgid else (_MSG_STATS + _TS_MIN_SIZE)
        unpack = _U32.unpack_from
        late: list[tuple[int, bytes]] = []
        for n in self._messages(ts.sock):
            if n < need:
                continue
            if has_tgid:
                tgid = unpack(buf, tgid_at)[0]
            else:
                tid = unpack(buf, _MSG_PID)[0]
                tgid = tid if tid in procs else threads.get(tid, -1)
            e = procs.get(tgid)
            if e is None:
                # Not ours, or a process whose fork event came after our last read of the connector:
                # its parent is then in the tree. Keep those for a second look.
                if unpack(buf, ppid_at)[0] in tree:
                    late.append((tgid, bytes(buf[:n])))
                continue
            self._apply_taskstats(e, buf, n)
        return late

    def _apply_taskstats(self, e: _Entry, buf, n: int) -> None:
        n = n or len(buf)
        ts = self._ts
        # The layout every exit message has: AGGR_PID { PID, STATS }.
        if _HH.unpack_from(buf, 20)[1] != TASKSTATS_TYPE_AGGR_PID or _HH.unpack_from(buf, 32)[1] != TASKSTATS_TYPE_STATS:
            return
        size = min(_HH.unpack_from(buf, 32)[0] - 4, n - _MSG_STATS)
        if size < _TS_MIN_SIZE or _U16.unpack_from(buf, _MSG_STATS)[0] != ts.version:
            return
        e.add_taskstats(buf, _MSG_STATS, size)
        if _U32.unpack_from(buf, _MSG_PID)[0] == e.pid:  # the leader's: its comm is the process's
            e.ts_name = bytes(buf[_MSG_STATS + _TS_COMM : _MSG_STATS + _TS_COMM + 32]).split(b"\0", 1)[0].decode(
                "utf-8", "replace") or None
        self.kept += 1

    def _settle(self, now: float) -> None:
        """Hand out the processes that have ended and whose cost is in (or will not come)."""
        if not self._exited:
            return
        need_agroup = self._ts is not None and self._ts.has_tgid
        for pid in list(self._exited):
            e = self._procs.get(pid)
            if e is None:
                self._exited.discard(pid)
                continue
            if not need_agroup or e.agroup or now - e.exit_mono > TASKSTATS_GRACE_S:
                self._finalize(e)

    def _finalize(self, e: _Entry) -> None:
        if self._procs.get(e.pid) is e:
            del self._procs[e.pid]
        self._exited.discard(e.pid)
        self._tree.discard(e.pid)
        self._done.append(e.values("proc_connector"))

    # -------------------------------------------------------------- samples

    def observe(self, readings) -> None:
        """The sampler's readings: the cost of processes for which taskstats gives none."""
        procs = self._procs
        for r in readings:
            e = procs.get(r.pid)
            if e is not None and not e.exited:
                e.last = r
                hw = r.hwm_kb if r.hwm_kb is not None else r.rss_kb
                if hw and hw > e.peak_kb:
                    e.peak_kb = hw

    def set_exit(self, pid: int, status: int, end_mono: float | None = None) -> None:
        """What denet learnt by reaping (the events tell it too): used only if they did not."""

    # -------------------------------------------------------------- the end

    def finish(self, timeout: float = 0.5) -> list[dict]:
        """The records of every process not handed out yet: those that ended (waiting up to
        ``timeout`` for the exit events of processes that are already gone), then those still
        running (no end, no exit status; cost as /proc tells now). Closes the sockets."""
        out: list[dict] = []
        if self.degraded is None:
            deadline = time.monotonic() + timeout
            import select

            poller = select.poll()
            for fd in self.fds():
                poller.register(fd, select.POLLIN)
            while True:
                out += self.drain()
                if self.degraded is not None:
                    break
                waiting = [e for e in self._procs.values() if not e.exited and not _running(e.pid, e.start_ms)]
                pending = self._ts is not None and self._ts.has_tgid and any(
                    not self._procs[p].agroup for p in self._exited if p in self._procs)
                now = time.monotonic()
                if (not waiting and not pending) or now >= deadline:
                    break
                poller.poll(max(0.0, min(deadline - now, 0.05)) * 1000.0)
        for e in list(self._procs.values()):
            if e.exited:
                self._finalize(e)
        out += self._take_done()
        for e in list(self._procs.values()):
            if _running(e.pid, e.start_ms):
                out.append(_still_running(e))
            else:  # gone, and its exit event never came (lost to a full buffer)
                out.append(e.values("proc_connector"))
        self._procs.clear()
        self._tree.clear()
        self.close()
        return out

    def close(self) -> None:
        self._close_sockets()

    def _close_sockets(self) -> None:
        if self._cx is not None:
            try:
                self._cx.setblocking(True)
                self._cx.settimeout(0.2)
                self._cx.send(_cn_op(PROC_CN_MCAST_IGNORE, 0))
            except OSError:
                pass
            self._cx.close()
            self._cx = None
        if self._cn is not None:
            try:
                self._cn.setblocking(True)
                self._cn.settimeout(0.2)
                self._cn.send(_cn_op(PROC_CN_MCAST_IGNORE, 0))
            except OSError:
                pass
            self._cn.close()
            self._cn = None
        if self._ts is not None:
            self._ts.close()
            self._ts = None
            self.source = "proc_connector"


def _running(pid: int, start_ms: int | None = None) -> bool:
    """Alive and not a zombie (a zombie's exit event is queued or about to be); with ``start_ms``,
    also started then (else the pid is another process's by now)."""
    st = _stat(pid)
    if st is None or st[1] in ("Z", "X"):
        return False
    if start_ms is not None:
        boot_ms = time.time() * 1000.0 - time.clock_gettime(_BOOT) * 1000.0
        if abs(boot_ms + st[3] * 1000.0 / _CLK - start_ms) > 2000:
            return False
    return True


def _still_running(e: _Entry) -> dict:
    """The record of a process alive at the end: its command and cost as /proc tells now."""
    st = _stat(e.pid)
    if st is not None and st[0] != e.name:  # an exec not seen yet
        e.name = st[0]
        e.argv = _argv(e.pid)
    v = e.values("proc_connector")
    if st is not None:
        v["cpu_user_secs"], v["cpu_system_secs"] = st[4], st[5]
        hwm = _status_hwm(e.pid)
        if hwm is not None:
            v["peak_rss_kb"] = max(hwm, e.peak_kb)
        io = _io(e.pid)
        if io is not None:
            v["disk_read_bytes"], v["disk_write_bytes"], v["syscall_read_bytes"], v["syscall_write_bytes"] = io
    return v


# ---------------------------------------------------------------------------- the sampled view


class SampledLedger:
    """No kernel events: the processes the sampler saw (a process that lived between two samples is
    not in it), each with what its last reading said; ``end_ms`` is the last sample that saw it
    (the root's, and its exit status, come from the runner)."""

    available = False
    source = "sampled"
    degraded = None
    lost = 0
    events = 0
    kept = 0
    tree_events_last_drain = 0

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self._live: dict[int, list] = {}  # pid -> [start ticks or None, entry]
        self._done: list[_Entry] = []
        self._boot_ms = time.time() * 1000.0 - time.clock_gettime(_BOOT) * 1000.0
        self._off_ms = time.time() * 1000.0 - time.monotonic() * 1000.0
        self._root: int | None = None

    def fds(self) -> tuple[int, ...]:
        return ()

    def wake_fds(self) -> tuple[int, ...]:
        return ()

    def track_root(self, pid: int, ppid: int, start_mono: float, argv: list[str]) -> None:
        name = os.path.basename(argv[0])[:15] if argv else None
        self._root = pid  # kept to the end: its exit status comes from the runner
        self._live[pid] = [None, _Entry(pid, ppid, name, list(argv), int(self._off_ms + start_mono * 1000.0))]

    def seed(self, root: int) -> None:
        pass

    def drain(self, full: bool = True) -> list[dict]:
        out = [e.values("sampled") for e in self._done]
        self._done = []
        return out

    def set_exit(self, pid: int, status: int, end_mono: float | None = None) -> None:
        """What denet learnt by reaping a process it sampled (the root of a ``run``)."""
        cur = self._live.get(pid)
        if cur is not None:
            cur[1].status = status
            if end_mono is not None:
                cur[1].end_ms = int(self._off_ms + end_mono * 1000.0)
            cur[1].exited = True

    def observe(self, readings) -> None:
        now_ms = int(time.time() * 1000)
        seen = set()
        live = self._live
        for r in readings:
            seen.add(r.pid)
            cur = live.get(r.pid)
            if cur is not None and cur[0] is not None and cur[0] != r.start:  # the pid was recycled
                self._done.append(live.pop(r.pid)[1])
                cur = None
            if cur is None:
                st = _stat(r.pid)
                start = int(self._boot_ms + r.start * 1000.0 / _CLK) if r.start is not None else None
                cur = live[r.pid] = [r.start, _Entry(r.pid, st[2] if st else None, r.comm, _argv(r.pid), start)]
            cur[0] = r.start
            e = cur[1]
            if r.comm and r.comm != e.name and e.last is not None:  # it exec'd since the last reading
                e.argv = _argv(r.pid) or e.argv
            e.name = r.comm or e.name
            e.last = r
            e.end_ms = now_ms
            hw = r.hwm_kb if r.hwm_kb is not None else r.rss_kb
            if hw and hw > e.peak_kb:
                e.peak_kb = hw
        for pid in [p for p, cur in live.items()
                    if p not in seen and p != self._root and cur[1].last is not None and not cur[1].exited]:
            self._done.append(live.pop(pid)[1])

    def finish(self, timeout: float = 0.0) -> list[dict]:
        out = self.drain()
        for _start, e in self._live.values():
            if not e.exited and _running(e.pid):
                e.end_ms = None
            out.append(e.values("sampled"))
        self._live.clear()
        return out

    def close(self) -> None:
        pass
