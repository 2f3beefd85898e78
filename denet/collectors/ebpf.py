"""eBPF collector (bcc, tracepoints only): syscalls and off-CPU time of the monitored tree.

:func:`probe` checks, in this order, what eBPF needs and stops at the first thing missing, with a
one-line reason for the metadata's ``capabilities.ebpf``: Linux; root, or CAP_BPF and CAP_PERFMON
(CAP_SYS_ADMIN also does); a readable tracefs; bcc importable (Debian's ``python3-bpfcc`` is found in
the system's ``dist-packages`` without putting that folder ahead of denet's own packages); kernel
headers (the real ones, else a small stub folder generated once in the user's cache: tracepoint
programs need only a few type definitions, their argument structs come from tracefs); and then the
programs themselves are compiled and loaded (the compile test; clang's messages are kept out of
the terminal and the first error goes into the reason).

Programs (``ebpf_program.c``): ``raw_syscalls:sys_enter`` counts syscalls per process and number;
``sched:sched_switch`` adds up the time each thread of the tree spends switched out, by state
(sleeping, blocked on I/O, preempted) and on CPU; ``sched:sched_process_fork`` adds every child of
a tracked process to the tree in the kernel, so short-lived children count; with ``stacks`` the user
stack of each switch-out is kept and the longest waits are named (``ebpf_symbols``).

:meth:`EbpfCollector.read` returns plain values: the fields of ``ebpf_aggregated`` in
``schemas/records.json``, as nested dicts. It never raises: a fault degrades the collector, which
reports once through ``on_degrade`` and returns None from then on.
"""

from __future__ import annotations

import os
import sys
import time

from . import report_degrade

__all__ = ["BCC_MISSING", "EbpfCollector", "ProbeResult", "classify", "probe", "tracefs_dir", "tree_pids"]

BCC_MISSING = "bcc missing: apt-get install python3-bpfcc"
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
# Where Debian/Ubuntu (and Fedora) put the bcc Python package of python3-bpfcc.
BCC_DIRS = ("/usr/lib/python3/dist-packages", "/usr/lib/python3/site-packages",
            f"/usr/lib/python3.{sys.version_info[1]}/site-packages", "/usr/lib64/python3/site-packages")
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
TOP = 10  # entries of the top lists
TOP_STACKS = 5
STATES = ("sleeping", "io", "preempted", "oncpu")  # the `state` of the programs' off-CPU keys


# ---------------------------------------------------------------------------------------------- probe


def _cap_eff() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def privilege_reason() -> str | None:
    """None when this process may load tracing programs, else why not (one line)."""
    caps = _cap_eff()
    if caps >> CAP_SYS_ADMIN & 1 or (caps >> CAP_BPF & 1 and caps >> CAP_PERFMON & 1):
        return None
    if os.geteuid() != 0:
        return ("not root and without CAP_BPF and CAP_PERFMON: run denet as root (or give the Python "
                "interpreter cap_bpf,cap_perfmon,cap_dac_read_search)")
    return "running as root but without CAP_BPF and CAP_PERFMON (capabilities dropped)"


def tracefs_dir() -> tuple[str | None, str | None]:
    """(tracefs folder, None), or (None, why not)."""
    mounted = None
    for d in TRACEFS_DIRS:
        probe_file = os.path.join(d, "events", "raw_syscalls", "sys_enter", "id")
        if os.path.exists(probe_file):
            try:
                with open(probe_file) as fh:
                    fh.read()
                return d, None
            except OSError as exc:
                mounted = f"cannot read tracefs ({probe_file}: {exc.strerror or exc})"
        elif os.path.isdir(os.path.join(d, "events")):
            mounted = mounted or f"tracefs at {d} has no raw_syscalls tracepoints (kernel without CONFIG_FTRACE_SYSCALLS?)"
    return None, mounted or "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "denet")


def import_bcc():
    """The ``bcc`` module, or raise ImportError. The system's dist-packages folder is never put on
    ``sys.path`` as a whole: a private folder holding only a link to its ``bcc`` is appended."""
    mod = sys.modules.get("bcc")
    if mod is not None:
        return mod
    try:
        import bcc  # an environment that has it (the system Python, a venv with system site packages)

        return bcc
    except ImportError:
        pass
    for d in BCC_DIRS:
        src = os.path.join(d, "bcc")
        if not os.path.isfile(os.path.join(src, "__init__.py")):
            continue
        link_dir = os.path.join(cache_dir(), "bcc-path")
        link = os.path.join(link_dir, "bcc")
        try:
            os.makedirs(link_dir, exist_ok=True)
            if os.path.realpath(link) != os.path.realpath(src):
                tmp = f"{link}.{os.getpid()}"
                os.symlink(src, tmp)
                os.replace(tmp, link)
        except OSError:
            link_dir = _private_link_dir(src)
        if link_dir not in sys.path:
            sys.path.append(link_dir)
        import bcc

        return bcc
    raise ImportError(BCC_MISSING)


def _private_link_dir(src: str) -> str:
    import tempfile

    d = tempfile.mkdtemp(prefix="denet-bcc-")
    os.symlink(src, os.path.join(d, "bcc"))
    return d


_STUB_TYPES = """#ifndef _DENET_STUB_LINUX_TYPES_H
#define _DENET_STUB_LINUX_TYPES_H
/* Stub kernel headers generated by denet: enough for bcc to compile tracepoint programs. */
typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __s8 s8;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u16 __le16;
typedef __u32 __le32;
typedef __u64 __le64;
typedef __u16 __sum16;
typedef __u32 __wsum;
typedef __u64 __aligned_u64 __attribute__((aligned(8)));
typedef _Bool bool;
enum { false = 0, true = 1 };
typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned long uintptr_t;
typedef int pid_t;
typedef unsigned int uid_t;
typedef unsigned int gid_t;
#define NULL ((void *)0)
#endif
"""
# Headers bcc's own helpers include: empty files suffice for tracepoint programs.
_STUB_EMPTY = ("linux/bpf_common.h", "uapi/linux/bpf.h", "uapi/linux/if_packet.h", "asm/page.h")
_STUB_LOG2 = """/* roundup_pow_of_two as a constant expression (bcc sizes stack tables with it) */
#define roundup_pow_of_two(n) ((((n) - 1) | (((n) - 1) >> 1) | (((n) - 1) >> 2) | (((n) - 1) >> 4) | \\
    (((n) - 1) >> 8) | (((n) - 1) >> 16)) + 1)
"""
_STUB_VERSION = 2  # bumped when the stub files change: a new folder is written


def _version_code(release: str) -> int:
    nums = []
    for part in release.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit()) or "0"
        nums.append(int(digits))
    while len(nums) < 3:
        nums.append(0)
    return (nums[0] << 16) + (nums[1] << 8) + min(nums[2], 255)


def stub_headers(release: str | None = None, root: str | None = None) -> str:
    """The stub kernel-header folder for this kernel release, written once (atomically) into the cache."""
    release = release or os.uname().release
    d = os.path.join(root or os.path.join(cache_dir(), "bcc-headers"), f"v{_STUB_VERSION}", release)
    marker = os.path.join(d, ".complete")
    if os.path.exists(marker):
        return d
    files = {
        "include/linux/kconfig.h": "#define CONFIG_BPF_SYSCALL 1\n",
        "include/linux/types.h": _STUB_TYPES,
        "include/linux/log2.h": _STUB_LOG2,
        "include/linux/version.h": (f"#define LINUX_VERSION_CODE {_version_code(release)}\n"
                                    "#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))\n"),
        **{"include/" + name: "" for name in _STUB_EMPTY},
    }
    for rel, text in files.items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    with open(marker, "w") as fh:
        fh.write("stub kernel headers for bcc, generated by denet\n")
    return d


def kernel_source() -> tuple[str | None, str]:
    """(folder for BCC_KERNEL_SOURCE or None to let bcc find the real headers, what is used)."""
    if os.environ.get("BCC_KERNEL_SOURCE"):
        return os.environ["BCC_KERNEL_SOURCE"], "BCC_KERNEL_SOURCE"
    release = os.uname().release
    for d in (f"/lib/modules/{release}/build", f"/lib/modules/{release}/source", f"/usr/src/linux-headers-{release}"):
        if os.path.isdir(os.path.join(d, "include")):
            return None, "kernel headers"
    try:
        return stub_headers(release), "stub headers"
    except OSError:  # no writable cache folder: a fresh folder for this run
        import tempfile

        return stub_headers(release, root=tempfile.mkdtemp(prefix="denet-bcc-headers-")), "stub headers"


class ProbeResult:
    __slots__ = ("available", "reason", "collector")

    def __init__(self, available: bool, reason: str | None, collector: EbpfCollector | None = None) -> None:
        self.available = available
        self.reason = reason
        self.collector = collector


def probe(*, stacks: bool = False, load: bool = True) -> ProbeResult:
    """Check what eBPF needs and (``load``) compile and load the programs. Never raises."""
    if not sys.platform.startswith("linux"):
        return ProbeResult(False, "eBPF needs Linux")
    why = privilege_reason()
    if why:
        return ProbeResult(False, why)
    tracefs, why = tracefs_dir()
    if tracefs is None:
        return ProbeResult(False, why)
    try:
        import_bcc()
    except ImportError:
        return ProbeResult(False, BCC_MISSING)
    except Exception as exc:  # a broken install
        return ProbeResult(False, f"cannot import bcc: {type(exc).__name__}: {exc}")
    if not load:
        return ProbeResult(True, None)
    try:
        ksrc, headers = kernel_source()
    except OSError as exc:
        return ProbeResult(False, f"cannot write stub kernel headers: {exc.strerror or exc}")
    try:
        coll = EbpfCollector.load(ksrc, stacks=stacks, tracefs=tracefs)
    except _LoadError as exc:
        return ProbeResult(False, str(exc))
    except Exception as exc:
        return ProbeResult(False, f"bcc could not load the programs: {type(exc).__name__}: {exc}")
    coll.headers = headers
    return ProbeResult(True, None, coll)


def _categories_of(pids: set[int], sysc, cat_of_nr: dict[int, str]) -> dict[int, dict[str, int]]:
    """The syscall counts per category (most first) of each of ``pids``, in one pass."""
    out: dict[int, dict[str, int]] = {p: {} for p in pids}
    for tgid, nr, n in sysc:
        d = out.get(tgid)
        if d is not None:
            cat = cat_of_nr[nr]
            d[cat] = d.get(cat, 0) + n
    return {p: dict(sorted(d.items(), key=lambda kv: -kv[1])) for p, d in out.items()}


def _int(v) -> int:
    """A map key or value: a ctypes integer, or already an int (batch lookups)."""
    return int(getattr(v, "value", v))


class _LoadError(Exception):
    pass


def _compile(text: bytes, cflags: list[str], ksrc: str | None):
    """``bcc.BPF(text=...)`` with clang's messages kept out of the terminal and BCC_KERNEL_SOURCE set
    for the compile only (CMD does not inherit it)."""
    import tempfile

    from bcc import BPF

    old_env = os.environ.get("BCC_KERNEL_SOURCE")
    if ksrc is not None:
        os.environ["BCC_KERNEL_SOURCE"] = ksrc
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err:
        try:
            sys.stderr.flush()
            os.dup2(err.fileno(), 2)
            try:
                return BPF(text=text, cflags=cflags)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        except Exception as exc:
            err.seek(0)
            msgs = err.read().decode("utf-8", "replace").splitlines()
            first = next((m for m in msgs if "error" in m), None) or next((m for m in msgs if m.strip()), None)
            raise _LoadError(f"bcc could not compile the programs: {(first or str(exc)).strip()}") from None
        finally:
            if ksrc is not None:
                if old_env is None:
                    os.environ.pop("BCC_KERNEL_SOURCE", None)
                else:
                    os.environ["BCC_KERNEL_SOURCE"] = old_env


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants (``/proc/PID/task/TID/children``), for ``attach``."""
    out, todo, seen = [], [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    todo.extend(int(x) for x in fh.read().split())
            except (OSError, ValueError):
                continue
    return out


# ------------------------------------------------------------------------------------ classification


def classify(oncpu_ns: int, sleeping_ns: int | None, io_ns: int | None, preempted_ns: int,
             syscalls: int | None = None, by_category: dict | None = None, futex: int | None = None,
             blocked_ns: int | None = None) -> dict:
    """The behaviour of a run from where its threads spent their time (and, with eBPF, its syscalls).

    Thread time T = on CPU + sleeping + blocked on I/O + preempted, summed over the tree's threads.
    The first rule that holds names the run: io-bound (I/O wait ≥ 20 % of T and the largest wait),
    network-bound (sleeping ≥ 30 % and network syscalls ≥ 20 % of syscalls), lock-heavy (sleeping ≥ 20 %
    and futex ≥ 20 % of syscalls), cpu-bound (on CPU + preempted ≥ 60 %), sleeping (sleeping or blocked
    ≥ 50 %), else mixed. The fractions that led to it come with it."""
    blocked = blocked_ns if blocked_ns is not None else (sleeping_ns or 0) + (io_ns or 0)
    total = oncpu_ns + blocked + preempted_ns
    cat = by_category or {}

    def frac(a, b):
        return None if a is None or not b else a / b

    out = {
        "classification": "unknown",
        "reason": "",
        "cpu_fraction": frac(oncpu_ns, total),
        "sleep_fraction": frac(sleeping_ns, total),
        "io_fraction": frac(io_ns, total),
        "blocked_fraction": frac(blocked, total),
        "preempted_fraction": frac(preempted_ns, total),
        "network_syscall_fraction": frac(cat.get("network", 0), syscalls) if syscalls is not None else None,
        "futex_syscall_fraction": frac(futex or 0, syscalls) if syscalls is not None else None,
        "file_syscall_fraction": frac(cat.get("file_io", 0), syscalls) if syscalls is not None else None,
    }
    if not total:
        out["reason"] = "no scheduler time seen for the tree"
        return out

    def pct(x):
        return f"{100.0 * (x or 0.0):.0f} %"

    cpu, sl, io, bl, pre = (out["cpu_fraction"], out["sleep_fraction"], out["io_fraction"], out["blocked_fraction"],
                            out["preempted_fraction"])
    net, fx = out["network_syscall_fraction"] or 0.0, out["futex_syscall_fraction"] or 0.0
    sl_v = sl or 0.0
    if io is not None and io >= 0.2 and io >= sl_v and io >= pre:
        c, r = "io-bound", f"blocked on I/O {pct(io)} of thread time (sleeping {pct(sl)}, on CPU {pct(cpu)})"
    elif sl is not None and sl >= 0.3 and net >= 0.2:
        c, r = "network-bound", f"sleeping {pct(sl)} of thread time, network syscalls {pct(net)} of syscalls"
    elif sl is not None and sl >= 0.2 and fx >= 0.2:
        c, r = "lock-heavy", f"sleeping {pct(sl)} of thread time, futex {pct(fx)} of syscalls"
    elif cpu + pre >= 0.6:
        c, r = "cpu-bound", f"on CPU {pct(cpu)} and preempted {pct(pre)} of thread time"
    elif bl >= 0.5:
        what = "sleeping" if sl is not None else "blocked (sleeping or I/O; the estimate cannot tell)"
        c, r = "sleeping", f"{what} {pct(sl if sl is not None else bl)} of thread time, on CPU {pct(cpu)}"
    else:
        c, r = "mixed", (f"on CPU {pct(cpu)}, blocked {pct(bl)}, preempted {pct(pre)} of thread time: "
                         "no single cause dominates")
    out["classification"], out["reason"] = c, r
    return out


# ------------------------------------------------------------------------------------------ collector


class EbpfCollector:
    """The loaded programs of one session. Build it with :func:`probe`."""

    available = True
    reason = None

    def __init__(self, bpf, *, stacks: bool, tracefs: str) -> None:
        self._bpf = bpf
        self.stacks = stacks
        self.tracefs = tracefs
        self.headers = ""
        self.degraded: str | None = None
        self.on_degrade = None
        self._closed = False
        self._names: dict[int, str] | None = None
        self._spawn_tid: int | None = None
        self._t0 = time.monotonic()
        self._last: tuple[float, int] | None = None  # (when, syscall total) of the previous reading
        self._comm: dict[int, str] = {}  # tid -> name, read while the thread lives
        self._sym = None
        self.load_secs = 0.0

    @classmethod
    def load(cls, ksrc: str | None, *, stacks: bool, tracefs: str) -> EbpfCollector:
        t = time.monotonic()
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "ebpf_program.c"), "rb") as fh:
            text = fh.read()
        bpf = _compile(text, ["-DDENET_STACKS"] if stacks else [], ksrc)
        coll = cls(bpf, stacks=stacks, tracefs=tracefs)
        coll.load_secs = time.monotonic() - t
        return coll

    def capability(self) -> tuple[bool, str | None]:
        return True, None

    @property
    def active(self) -> bool:
        return self.degraded is None and not self._closed

    # ---------------------------------------------------------------- the tree

    def begin_spawn(self) -> None:
        """Call right before this thread starts CMD: the fork that creates it is tracked."""
        import threading

        ct = self._bpf[b"spawner"]
        tid = threading.get_native_id()
        ct[ct.Key(tid)] = ct.Leaf(1)
        self._spawn_tid = tid

    def end_spawn(self, pid: int | None) -> None:
        """CMD has started (``pid``) or failed to (None): stop tracking this thread's forks."""
        try:
            if self._spawn_tid is not None:
                ct = self._bpf[b"spawner"]
                try:
                    del ct[ct.Key(self._spawn_tid)]
                except KeyError:
                    pass
                self._spawn_tid = None
            if pid is not None:
                self.track([pid])
            self._t0 = time.monotonic()
        except Exception as exc:
            self._degrade(f"{type(exc).__name__}: {exc}")

    def track(self, pids) -> None:
        """Add running processes to the tree (``attach``: the process and its descendants)."""
        ct = self._bpf[b"tracked"]
        for pid in pids:
            ct[ct.Key(pid)] = ct.Leaf(1)

    # ---------------------------------------------------------------- reading

    def read(self, pids=(), final: bool = False) -> dict | None:
        """The tree's values so far (the fields of ``ebpf_aggregated``), or None once degraded.
        ``pids`` is not needed (the tree is followed in the kernel); ``final``: the end of the run
        (the named stacks are added with ``stacks``). Never raises."""
        if not self.active:
            return None
        try:
            return self._read(final)
        except Exception as exc:  # bcc or the kernel misbehaving: the run goes on without eBPF
            self._degrade(f"{type(exc).__name__}: {exc}")
        return None

    def _items(self, name: str):
        table = self._bpf[name.encode()]
        batch = getattr(table, "items_lookup_batch", None)
        if batch is not None:
            try:
                return list(batch())
            except Exception:  # noqa: S110 - kernels without batch ops: one at a time
                pass
        return list(table.items())

    def _read_maps(self):
        sysc = [(k.tgid, k.nr, _int(v)) for k, v in self._items("sysc")]
        off = [(k.tgid, k.tid, k.state, v.total_ns, v.count, v.max_ns) for k, v in self._items("offcpu")]
        comms = {_int(k): v.comm.decode("utf-8", "replace") for k, v in self._items("comms")}
        return sysc, off, comms

    def _names_table(self) -> dict[int, str]:
        if self._names is None:
            from .ebpf_syscalls import syscall_table

            self._names = syscall_table()
        return self._names

    def _thread_comm(self, tgid: int, tid: int, comms: dict) -> str:
        try:  # read each time: an exec renames the thread
            with open(f"/proc/{tgid}/task/{tid}/comm") as fh:
                name = fh.read().strip()
            self._comm[tid] = name
            return name
        except OSError:
            return self._comm.get(tid) or comms.get(tgid) or comms.get(tid) or ""

    def _read(self, final: bool) -> dict:
        from .ebpf_syscalls import CATEGORIES, category_of

        now = time.monotonic()
        sysc, off, comms = self._read_maps()
        names = self._names_table()
        by_nr: dict[int, int] = {}
        by_pid: dict[int, int] = {}
        total = 0
        for tgid, nr, n in sysc:
            total += n
            by_nr[nr] = by_nr.get(nr, 0) + n
            by_pid[tgid] = by_pid.get(tgid, 0) + n
        cat_of_nr = {nr: category_of(names.get(nr, "")) for nr in by_nr}
        by_cat = dict.fromkeys(CATEGORIES, 0)
        by_name: dict[str, int] = {}
        for nr, n in by_nr.items():
            name = names.get(nr, f"syscall_{nr}")
            by_name[name] = by_name.get(name, 0) + n
            by_cat[category_of(name)] += n
        top = sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        if self._last is None:
            rate = total / (now - self._t0) if now > self._t0 else 0.0
        else:
            dt = now - self._last[0]
            rate = (total - self._last[1]) / dt if dt > 0 else 0.0
        self._last = (now, total)
        elapsed = now - self._t0
        procs = sorted(by_pid.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        pcats = _categories_of({p for p, _c in procs}, sysc, cat_of_nr)
        syscalls = {
            "total": total,
            "rate_per_sec": rate,
            "avg_rate_per_sec": total / elapsed if elapsed > 0 else 0.0,
            "by_category": by_cat,
            "top_syscalls": [{"name": n, "count": c, "category": category_of(n)} for n, c in top],
            "process_count": len(by_pid),
            "top_processes": [{"pid": p, "comm": comms.get(p, ""), "count": c, "by_category": pcats[p]}
                              for p, c in procs],
        }
        # off-CPU, per thread and state
        threads: dict[tuple[int, int], list] = {}
        sums = [0, 0, 0, 0]
        events = 0
        longest = 0
        for tgid, tid, state, ns, count, mx in off:
            if state > 3:
                continue
            t = threads.get((tgid, tid))
            if t is None:
                t = threads[(tgid, tid)] = [0, 0, 0, 0, 0]  # sleeping, io, preempted, oncpu, longest wait
            t[state] += ns
            sums[state] += ns
            if state != 3:
                events += count
                if mx > longest:
                    longest = mx
                if mx > t[4]:
                    t[4] = mx
        sleeping, io, preempted, oncpu = sums
        off_total = sleeping + io + preempted
        ranked = sorted(threads.items(), key=lambda kv: -(kv[1][0] + kv[1][1] + kv[1][2]))[:TOP]
        top_threads = []
        for (tgid, tid), (sl, i, pr, _on, mx) in ranked:
            t_off = sl + i + pr
            if not t_off:
                continue
            top_threads.append({
                "pid": tgid, "tid": tid, "comm": self._thread_comm(tgid, tid, comms),
                "time_ms": t_off / 1e6, "percentage": 100.0 * t_off / off_total if off_total else 0.0,
                "sleeping_ms": sl / 1e6, "io_ms": i / 1e6, "preempted_ms": pr / 1e6, "max_ms": mx / 1e6,
            })
        offcpu = {
            "total_time_ns": off_total,
            "total_events": events,
            "avg_time_ns": off_total // events if events else 0,
            "max_time_ns": longest,
            "sleeping_ns": sleeping,
            "io_ns": io,
            "blocked_ns": sleeping + io,
            "preempted_ns": preempted,
            "oncpu_ns": oncpu,
            "thread_count": len(threads),
            "top_blocking_threads": top_threads,
        }
        futex = sum(n for name, n in by_name.items() if name.startswith("futex"))
        out = {
            "source": "ebpf",
            "estimate": False,
            "offcpu": offcpu,
            "syscalls": syscalls,
            "behavior": classify(oncpu, sleeping, io, preempted, total, by_cat, futex),
            "lost_events": self._lost(),
        }
        if self.stacks:
            self._snapshot_maps(by_pid)
            if final:
                out["stacks"] = self._stacks(comms)
        return out

    def _lost(self) -> int:
        try:
            return int(sum(_int(v) for v in self._bpf[b"lost"].values()))
        except Exception:
            return 0

    # ---------------------------------------------------------------- stacks

    def _snapshot_maps(self, pids) -> None:
        """Read the maps of the tree's live processes, for naming their stacks later."""
        from .ebpf_symbols import Symbolizer

        if self._sym is None:
            self._sym = Symbolizer()
        for tgid in pids:
            self._sym.snapshot(tgid)

    def _stacks(self, comms: dict) -> list[dict]:
        """The longest waits by user stack (TOP_STACKS), their addresses named."""
        from .ebpf_symbols import Symbolizer

        if self._sym is None:
            self._sym = Symbolizer()
        waits = [(k.tgid, k.tid, k.stackid, v.total_ns, v.count, v.max_ns) for k, v in self._items("stackwait")]
        waits.sort(key=lambda w: -w[3])
        table = self._bpf[b"stacks"]
        out = []
        for tgid, tid, stackid, ns, count, mx in waits[:TOP_STACKS]:
            frames: list[str] = []
            if stackid >= 0:
                try:
                    frames = [self._sym.name(tgid, addr) for addr in table.walk(stackid)]
                except Exception:  # the stack was overwritten (table full): no frames
                    frames = []
            out.append({"pid": tgid, "tid": tid, "comm": self._thread_comm(tgid, tid, comms),
                        "stack_id": int(stackid), "time_ms": ns / 1e6, "count": count, "max_ms": mx / 1e6,
                        "frames": frames})
        return out

    # ---------------------------------------------------------------- end

    def _degrade(self, why: str) -> None:
        if report_degrade(self, "eBPF", why):
            self.close()

    def close(self) -> None:
        """Detach the programs and free the maps (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._bpf.cleanup()
        except Exception:  # noqa: S110 - nothing to do about it at the end of a run
            pass
