"""Peer comparison: denet against the tools people use, on the same workloads, in one run.

Workloads (Python scripts written to a temporary directory; ``--quick`` makes them smaller):

- ``burn``:   two processes burn CPU on both cores for ``secs`` CPU seconds each; one of them holds
              ``mb`` MB (allocated and touched) and each writes and reads back ``io_mb`` MB of a file;
- ``short``:  ``n`` sequential forked children, each burning ``ms`` of CPU and writing 64 KiB;
- ``spikes``: ``k`` times, a child allocates and touches ``mb`` MB, holds it ``hold`` s and exits;
- ``tree``:   a tree of ``n`` processes (root, ``mid`` children, the rest grandchildren), each
              touching ``kb`` KB, burning ``ms`` of CPU and writing 256 KiB, all alive together for
              ``hold`` s.

Tools (each peer in its own venv under /tmp, installed with pip on first use; a peer that cannot be
installed is reported and skipped):

- ``denet``:      this checkout, ``python -m denet -q -o R.jsonl -i MS -m MS run --stats S.json -- CMD``;
- ``psrecord``:   ``psrecord CMD --include-children --include-io --interval S --log L --log-format csv``;
- ``procpath``:   ``procpath record -i S -d DB -f stat,cmdline,io,status --stop-without-result -p PID
                  QUERY`` attached to the workload, which waits (on its stdin) until procpath has
                  written its first record;
- ``duct``:       ``con-duct run -p PREFIX --sample-interval S -c none -o none -l NONE CMD`` (con-duct);
- ``rust-denet``: ``denet==0.10.3`` from the registry, ``execute_with_monitoring(CMD,
                  base_interval_ms=MS, max_interval_ms=MS, output_file=...)`` in its own interpreter;
- ``snakemake``:  Snakemake's benchmark recorder exactly as ``snakemake.shell`` drives it for a
                  ``benchmark:`` job (``Popen``, then ``with benchmarked(proc.pid, BenchmarkRecord()):
                  proc.wait()`` and ``write_benchmark_records``); Snakemake samples every
                  ``BENCHMARK_INTERVAL_SHORT`` (0.5 s) for the first 30 samples, then every
                  ``BENCHMARK_INTERVAL`` (30 s); this script sets both to the common interval (the
                  constant, and ``benchmarked(..., interval=S)``); ``--snakemake-own-interval`` keeps them;
- ``time``:       GNU ``/usr/bin/time -v -o OUT CMD`` (not a sampler: ``wait4`` of its child).

Ground truth: the workload's root writes, just before it ends with ``os._exit`` (no interpreter
shutdown after the truth is taken), its own ``getrusage`` SELF + CHILDREN (CPU user+sys: what
``wait4`` of the root returns, less the root's exit), its ``/proc/self/io`` (which includes the I/O
of every reaped descendant: the kernel adds it to the parent's signal accounting on ``wait``), the
largest ``VmHWM`` of any of its processes (each forked member sends its own ``VmHWM`` to the root
through a pipe just before it exits) and the tree's RSS at its plateau: the sum of ``VmRSS`` of all
its processes, read by the root at the moment it knows they all hold their memory (``short``: the
root's RSS plus the largest child's peak, one child living at a time). ``VmHWM`` rather than
``ru_maxrss`` is the per-process truth because the ``ru_maxrss`` of a process that was started with
``exec`` begins at the high-water mark of the process image it replaced, i.e. of the *wrapper* that
forked it (about 13 MB under ``python -m denet``, more under this harness's ``posix_spawn``): for
these workloads, whose largest process is a 10 MB interpreter, that would be the wrapper's memory,
not the workload's. Both are printed.

Monitor CPU (the tool's own cost): the harness is a child subreaper and reaps *everything* it
started, the tool and whatever the tool left behind (psrecord never reaps its child; procpath's
target is the harness's own child; con-duct's ``ps`` calls are reaped by con-duct) with ``wait4``,
so the sum of those rusages is the tool's CPU (its interpreter start-up included) plus the
workload's; the tool's own CPU is that sum minus the workload's truth. The error of this
subtraction is the workload root's exit after it wrote its truth (well under a millisecond).
A ``noop`` workload (the root exits at once) gives each tool's fixed cost (start-up and shut-down);
"ms/s" is (monitor CPU - fixed cost) per second of the workload's wall time: the cost of watching.

What each tool reports (its own output files, parsed after it exits, so parsing is not counted):
total CPU (denet: ``cpu_time_secs``; psrecord: sum of CPU% x time between its log lines; procpath: sum
over the pids it saw of the last ``utime+stime``; con-duct: ``average_pcpu`` x ``wall_clock_time``,
it has no CPU seconds; Rust denet: ``avg_cpu_usage`` x ``total_time_secs``; Snakemake: ``cpu_time``;
GNU time: user + system), tree peak (largest sampled sum of RSS; GNU time has none), per-process
peak (denet: ``peak_process_rss_kb``; procpath: largest ``VmHWM``; con-duct and Rust denet: largest
sampled RSS of one pid; GNU time: maximum resident set size; psrecord and Snakemake: none) and
written bytes (syscall level ``wchar`` and storage level ``write_bytes``, whichever it gives).

No timed asserts; the targets are printed as met / NOT met. Medians over ``--rounds`` interleaved
rounds (round by round, every workload under every tool in turn).

    .venv/bin/python benchmarks/peers.py [--quick] [--tools denet,psrecord,...] [--workloads burn,...]
                                         [--interval 0.1] [--rounds 3] [--markdown] [--save FILE]

``--tools`` names: denet, psrecord, procpath, duct, rust-denet, snakemake, time (the default set) and
denet-noledger (``denet --no-ledger``, to see the process ledger's share of denet's cost).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from _machine import loadavg, machine  # benchmarks/ is the script directory
from bench_sample_cost import RUST_VENV, RUST_VERSION, ensure_rust_venv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GNU_TIME = "/usr/bin/time"

WORKLOAD_SRC = r"""
import json, os, resource, struct, sys, time
t_start = time.monotonic()
mode, p = sys.argv[1], json.loads(sys.argv[2])
d = os.environ["PEER_DIR"]
if os.environ.get("PEER_GATE"):
    os.read(0, 1)  # procpath: wait until the monitor is recording
MB = 1 << 20
hwm_r, hwm_w = os.pipe()  # every process sends its VmHWM here just before it exits

def touch(n):
    b = bytearray(n)
    b[::4096] = b"\1" * len(range(0, n, 4096))
    return b

def burn(sec):  # CPU seconds of this process (a forked child starts from zero)
    end = time.process_time() + sec
    x = 0
    while time.process_time() < end:
        for _ in range(1000):
            x += 1

def vmrss(pid, key="VmRSS:"):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def leave():  # a forked member of the tree ends: its own peak RSS to the root, then exit
    os.write(hwm_w, struct.pack("i", vmrss("self", "VmHWM:")))
    os._exit(0)

def write_file(name, nbytes, read_back=False):
    path = os.path.join(d, name)
    chunk = b"x" * min(nbytes, MB)
    with open(path, "wb") as fh:
        left = nbytes
        while left > 0:
            fh.write(chunk[:left])
            left -= len(chunk)
    if read_back:
        with open(path, "rb") as fh:
            while fh.read(MB):
                pass

tree_kb = None
if mode == "burn":
    r, w = os.pipe()
    kids = []
    for i in range(2):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            buf = touch(p["mb"] * MB) if i == 0 else None
            write_file(f"burn{i}", p["io_mb"] * MB, read_back=True)
            os.write(w, b"r")
            burn(p["secs"])
            leave()
        kids.append(pid)
    os.close(w)
    got = 0
    while got < 2:
        got += len(os.read(r, 2))
    tree_kb = vmrss(os.getpid()) + sum(vmrss(k) for k in kids)
    for k in kids:
        os.waitpid(k, 0)
elif mode == "short":
    for i in range(p["n"]):
        pid = os.fork()
        if pid == 0:
            burn(p["ms"] / 1000.0)
            write_file(f"short{i}", 64 << 10)
            leave()
        os.waitpid(pid, 0)
    tree_kb = None  # below: the root's RSS + the largest child's peak (one child at a time)
elif mode == "spikes":
    tree_kb = 0
    time.sleep(0.2)
    for i in range(p["k"]):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            buf = touch(p["mb"] * MB)
            os.write(w, b"r")
            time.sleep(p["hold"])
            leave()
        os.close(w)
        os.read(r, 1)
        os.close(r)
        tree_kb = max(tree_kb, vmrss(os.getpid()) + vmrss(pid))
        os.waitpid(pid, 0)
        time.sleep(p["gap"])
elif mode == "tree":
    n, mid = p["n"], p["mid"]
    leaves = [(n - 1 - mid) // mid + (1 if i < (n - 1 - mid) % mid else 0) for i in range(mid)]
    r, w = os.pipe()
    go_r, go_w = os.pipe()

    def member():
        buf = touch(p["kb"] << 10)
        burn(p["ms"] / 1000.0)
        write_file(f"tree{os.getpid()}", 256 << 10)
        os.write(w, struct.pack("i", os.getpid()))
        os.read(go_r, 1)  # EOF when the root closes go_w
        return buf

    for i in range(mid):
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.close(r)
            kids = []
            for _ in range(leaves[i]):
                k = os.fork()
                if k == 0:
                    member()
                    leave()
                kids.append(k)
            member()
            for k in kids:
                os.waitpid(k, 0)
            leave()
    os.close(w)
    os.close(go_r)
    pids, data = [], b""
    while len(pids) < n - 1:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
        while len(data) >= 4:
            pids.append(struct.unpack("i", data[:4])[0])
            data = data[4:]
    tree_kb = vmrss(os.getpid()) + sum(vmrss(q) for q in pids)
    time.sleep(p["hold"])
    os.close(go_w)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
elif mode != "noop":
    sys.exit(f"unknown workload {mode}")

os.close(hwm_w)
data = b""
while chunk := os.read(hwm_r, 65536):
    data += chunk
hwms = [v for (v,) in struct.iter_unpack("i", data)]
if mode == "short":
    tree_kb = vmrss("self") + max(hwms, default=0)
s = resource.getrusage(resource.RUSAGE_SELF)
c = resource.getrusage(resource.RUSAGE_CHILDREN)
with open("/proc/self/io") as fh:
    io = {k: int(v) for k, v in (line.split(":") for line in fh)}
truth = {"cpu": s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime,
         "hwm_kb": max(hwms + [vmrss("self", "VmHWM:")]), "ru_maxrss_kb": max(s.ru_maxrss, c.ru_maxrss),
         "processes": len(hwms) + 1, "tree_kb": tree_kb, "wchar": io["wchar"], "rchar": io["rchar"],
         "write_bytes": io["write_bytes"], "wall": time.monotonic() - t_start}
fd = os.open(os.environ["PEER_TRUTH"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, json.dumps(truth).encode())
os._exit(0)  # no interpreter shutdown after the truth was taken (it would add CPU the truth lacks)
"""

RUST_DRIVER = r"""
import json, sys
import denet
out, summary_path, ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
code, m = denet.execute_with_monitoring(sys.argv[4:], stdout_file="/dev/null", stderr_file="/dev/null",
                                        base_interval_ms=ms, max_interval_ms=ms, output_file=out, quiet=True)
with open(summary_path, "w") as fh:
    fh.write(m.get_summary())
sys.exit(code)
"""

# What snakemake.shell does for a job with a benchmark: directive (Popen, benchmarked(proc.pid, record)
# around proc.wait(), then the TSV written by write_benchmark_records).
SNAKEMAKE_DRIVER = r"""
import subprocess, sys
import snakemake.benchmark as B
out, interval = sys.argv[1], sys.argv[2]
if interval != "own":
    B.BENCHMARK_INTERVAL_SHORT = float(interval)
record = B.BenchmarkRecord()
proc = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL)
with (B.benchmarked(proc.pid, record) if interval == "own" else
      B.benchmarked(proc.pid, record, interval=float(interval))):
    code = proc.wait()
B.write_benchmark_records([record], out, False)
sys.exit(code)
"""


# --------------------------------------------------------------------------------------- the harness

def set_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def spawn(argv: list[str], env: dict[str, str], out: str, stdin_fd: int | None = None) -> int:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    actions = [(os.POSIX_SPAWN_DUP2, stdin_fd if stdin_fd is not None else null, 0),
               (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]
    try:
        return os.posix_spawn(argv[0], argv, env, file_actions=actions)
    finally:
        os.close(fd)
        os.close(null)


def reap_all(first: int, deadline_s: float = 120.0) -> tuple[float, int]:
    """wait4 the tool's process, then every other child or orphan of ours: (their CPU seconds, tool status)."""
    _, status, ru = os.wait4(first, 0)
    cpu = ru.ru_utime + ru.ru_stime
    end = time.monotonic() + deadline_s
    while True:
        try:
            pid, _, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > end:
                raise RuntimeError("a process the tool left behind did not end")
            time.sleep(0.01)
            continue
        cpu += ru.ru_utime + ru.ru_stime
    return cpu, status


@dataclass
class Reported:
    """What a tool says about a run (None: the tool does not report it)."""
    cpu: float | None = None
    tree_kb: float | None = None
    proc_kb: float | None = None
    wchar: float | None = None
    write_bytes: float | None = None
    samples: int | None = None


@dataclass
class Tool:
    name: str
    sampling: bool
    setup: Callable[[], tuple[str | None, str]]   # -> (python or program, or None; why / version)
    argv: Callable[[str, list[str], str, float], list[str]]  # (program, cmd, outdir, interval)
    parse: Callable[[str], Reported]
    attach: bool = False
    note: str = ""
    prepare: Callable[[], None] | None = None
    prog: str | None = field(default=None, init=False)


def ensure_venv(name: str, package: str, module: str) -> tuple[str | None, str]:
    """A venv /tmp/peer-NAME-venv with PACKAGE (pip, from the configured registry); (python, why)."""
    venv = f"/tmp/peer-{name}-venv"
    py = os.path.join(venv, "bin", "python")
    check = [py, "-I", "-c", f"import importlib.metadata as m, {module}; print(m.version({package!r}))"]

    def version() -> str | None:
        r = subprocess.run(check, capture_output=True, text=True, cwd="/")
        return r.stdout.strip() if r.returncode == 0 else None

    if os.path.exists(py) and (v := version()):
        return py, f"{package} {v} ({venv}, reused)"
    try:
        if not os.path.exists(py):
            subprocess.run(["python3", "-m", "venv", venv], check=True, capture_output=True, text=True)
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", package],
                           capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot create {venv}: {exc}"
    if r.returncode != 0:
        return None, f"pip install {package} failed: {(r.stderr or r.stdout).strip()[-300:]}"
    v = version()
    if not v:
        return None, f"{package} installed but {module} not importable in {venv}"
    return py, f"{package} {v} ({venv}, installed)"


def _load_json(path: str) -> dict:
    with open(path) as fh:
        return json.load(fh)


# -------------------------------------------------------------------------------------------- tools

def _denet_prepare() -> None:
    """Bytecode for the checkout, as ``pip install`` leaves it (the peers' venvs have theirs): without it,
    where PYTHONDONTWRITEBYTECODE is set or a source changed since, every start compiles denet's big
    modules again (about 30 ms of CPU). Done before every run: the tree may be edited meanwhile."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "denet")],
                   capture_output=True, check=False)


def _denet_setup() -> tuple[str | None, str]:
    _denet_prepare()
    r = subprocess.run([sys.executable, "-m", "denet", "--version"], capture_output=True, text=True, cwd=REPO)
    return (sys.executable, f"denet {r.stdout.strip().split()[-1] if r.stdout.strip() else '?'} (this checkout)") \
        if r.returncode == 0 else (None, r.stderr.strip()[-300:])


def _denet_argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
    ms = str(round(interval * 1000))
    return [py, "-m", "denet", "-q", "--clobber", "-o", f"{out}/run.jsonl", "-i", ms, "-m", ms, "run",
            "--stats", f"{out}/stats.json", "--", *cmd]


def _denet_noledger_argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
    argv = _denet_argv(py, cmd, out, interval)
    argv.insert(argv.index("run") + 1, "--no-ledger")
    return argv


def _denet_parse(out: str) -> Reported:
    s = _load_json(f"{out}/stats.json")
    return Reported(cpu=s.get("cpu_time_secs"), tree_kb=s.get("peak_mem_rss_kb"),
                    proc_kb=s.get("peak_process_rss_kb"), wchar=s.get("total_syscall_write_bytes"),
                    write_bytes=s.get("total_disk_write_bytes"), samples=s.get("sample_count"))


def _psrecord_argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
    return [os.path.join(os.path.dirname(py), "psrecord"), shlex.join(cmd), "--include-children",
            "--include-io", "--interval", str(interval), "--log", f"{out}/log.csv", "--log-format", "csv"]


def _psrecord_parse(out: str) -> Reported:
    rows = []
    with open(f"{out}/log.csv") as fh:
        head = fh.readline().strip().split(",")
        for line in fh:
            if line.strip():
                rows.append(dict(zip(head, map(float, line.split(",")), strict=True)))
    cpu = sum(b["cpu"] / 100.0 * (b["elapsed_time"] - a["elapsed_time"]) for a, b in zip(rows, rows[1:], strict=False))
    return Reported(cpu=cpu, tree_kb=max((r["mem_real"] for r in rows), default=0) * 1024,
                    write_bytes=rows[-1]["write_bytes"] if rows else None, samples=len(rows))


PROCPATH_QUERY = "$..children[?(@.stat.pid == {pid})]"


def _procpath_argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
    pid = cmd[0]  # for an attaching tool, cmd is [pid]
    return [os.path.join(os.path.dirname(py), "procpath"), "record", "-i", str(interval), "-d",
            f"{out}/pp.sqlite", "-f", "stat,cmdline,io,status", "--stop-without-result", "-p", pid,
            PROCPATH_QUERY.format(pid=pid)]


def _procpath_parse(out: str) -> Reported:
    tick, page_kb = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE") // 1024
    con = sqlite3.connect(f"{out}/pp.sqlite")
    try:
        cpu, wchar, wb = con.execute(
            "select sum(c), sum(w), sum(b) from (select max(stat_utime + stat_stime) c, max(io_wchar) w, "
            "max(io_write_bytes) b from record group by stat_pid)").fetchone()
        tree = con.execute("select max(s) from (select sum(stat_rss) s from record group by ts)").fetchone()[0]
        hwm = con.execute("select max(status_vmhwm) from record").fetchone()[0]
        n = con.execute("select count(distinct ts) from record").fetchone()[0]
    finally:
        con.close()
    return Reported(cpu=(cpu or 0) / tick, tree_kb=(tree or 0) * page_kb, proc_kb=hwm, wchar=wchar,
                    write_bytes=wb, samples=n)


def _duct_argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
    return [os.path.join(os.path.dirname(py), "con-duct"), "run", "-l", "NONE", "-p", f"{out}/duct_",
            "--sample-interval", str(interval), "-c", "none", "-o", "none", *cmd]


def _duct_parse(out: str) -> Reported:
    s = _load_json(f"{out}/duct_info.json")["execution_summary"]
    proc = 0
    with open(f"{out}/duct_usage.jsonl") as fh:
        for line in fh:
            for st in json.loads(line).get("processes", {}).values():
                proc = max(proc, st.get("rss") or 0)
    cpu = None
    if s.get("average_pcpu") is not None and s.get("wall_clock_time") is not None:
        cpu = s["average_pcpu"] / 100.0 * s["wall_clock_time"]
    return Reported(cpu=cpu, tree_kb=(s.get("peak_rss") or 0) / 1024, proc_kb=proc / 1024,
                    samples=s.get("num_samples"))


def _rust_argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
    return [py, "-I", "-c", RUST_DRIVER, f"{out}/rust.jsonl", f"{out}/rust-summary.json",
            str(round(interval * 1000)), *cmd]


def _rust_parse(out: str) -> Reported:
    s = _load_json(f"{out}/rust-summary.json")
    proc = 0
    with open(f"{out}/rust.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            procs = [rec.get("parent") or {}] + [c.get("metrics") or {} for c in rec.get("children") or []]
            if "mem_rss_kb" in rec:
                procs.append(rec)
            proc = max([proc] + [p.get("mem_rss_kb") or 0 for p in procs])
    return Reported(cpu=s.get("avg_cpu_usage", 0) / 100.0 * s.get("total_time_secs", 0),
                    tree_kb=s.get("peak_mem_rss_kb"), proc_kb=proc, wchar=s.get("total_syscall_write_bytes"),
                    write_bytes=s.get("total_disk_write_bytes"), samples=s.get("sample_count"))


def _snakemake_argv_for(interval_arg: Callable[[float], str]):
    def argv(py: str, cmd: list[str], out: str, interval: float) -> list[str]:
        return [py, "-I", "-c", SNAKEMAKE_DRIVER, f"{out}/bench.tsv", interval_arg(interval), *cmd]
    return argv


def _snakemake_parse(out: str) -> Reported:
    with open(f"{out}/bench.tsv") as fh:
        head, row = (line.rstrip("\n").split("\t") for line in fh.readlines()[:2])
    d = dict(zip(head, row, strict=False))

    def num(k: str) -> float | None:
        try:
            return float(d[k])
        except (KeyError, ValueError):
            return None

    mib = num("max_rss")
    io = num("io_out")
    return Reported(cpu=num("cpu_time"), tree_kb=None if mib is None else mib * 1024,
                    write_bytes=None if io is None else io * (1 << 20))


def _time_setup() -> tuple[str | None, str]:
    if not os.access(GNU_TIME, os.X_OK):
        return None, f"{GNU_TIME} not found (Debian package 'time')"
    r = subprocess.run([GNU_TIME, "--version"], capture_output=True, text=True)
    return GNU_TIME, (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else "GNU time"


def _time_argv(prog: str, cmd: list[str], out: str, interval: float) -> list[str]:
    return [prog, "-v", "-o", f"{out}/time.txt", *cmd]


def _time_parse(out: str) -> Reported:
    v: dict[str, str] = {}
    with open(f"{out}/time.txt") as fh:
        for line in fh:
            k, _, val = line.strip().rpartition(": ")
            v[k] = val
    return Reported(cpu=float(v["User time (seconds)"]) + float(v["System time (seconds)"]),
                    proc_kb=float(v["Maximum resident set size (kbytes)"]),
                    write_bytes=float(v["File system outputs"]) * 512)


def make_tools(snakemake_own: bool) -> list[Tool]:
    return [
        Tool("denet", True, _denet_setup, _denet_argv, _denet_parse, prepare=_denet_prepare,
             note="bytecode compiled before each run, as an installed package has it"),
        Tool("denet-noledger", True, _denet_setup, _denet_noledger_argv, _denet_parse, prepare=_denet_prepare,
             note="denet --no-ledger (not in the default --tools)"),
        Tool("psrecord", True, lambda: ensure_venv("psrecord", "psrecord", "psrecord"), _psrecord_argv,
             _psrecord_parse, note="psutil; CPU% of each process since its previous sample"),
        Tool("procpath", True, lambda: ensure_venv("procpath", "procpath", "procpath"), _procpath_argv,
             _procpath_parse, attach=True, note="attaches to a PID; reads every process on the machine"),
        Tool("duct", True, lambda: ensure_venv("con-duct", "con-duct", "con_duct"), _duct_argv, _duct_parse,
             note="runs `ps -s SID` per sample"),
        Tool("rust-denet", True, ensure_rust_venv, _rust_argv, _rust_parse,
             note=f"denet {RUST_VERSION} in {RUST_VENV}"),
        Tool("snakemake", True, lambda: ensure_venv("snakemake", "snakemake", "snakemake.benchmark"),
             _snakemake_argv_for((lambda i: "own") if snakemake_own else str), _snakemake_parse,
             note="its own interval: 0.5 s, 30 s after 30 samples" if snakemake_own
             else "both of its intervals set to the common one (its own: 0.5 s, 30 s after 30 samples)"),
        Tool("time", False, _time_setup, _time_argv, _time_parse, note="wait4, not a sampler"),
    ]


# ---------------------------------------------------------------------------------------- workloads

FULL = {"noop": {},
        "burn": {"secs": 4.0, "mb": 500, "io_mb": 64},
        "short": {"n": 300, "ms": 20},
        "spikes": {"k": 4, "mb": 1024, "hold": 0.05, "gap": 0.5},
        "tree": {"n": 100, "mid": 9, "kb": 4096, "ms": 30, "hold": 2.0}}
QUICK = {"noop": {},
         "burn": {"secs": 1.5, "mb": 200, "io_mb": 16},
         "short": {"n": 60, "ms": 20},
         "spikes": {"k": 2, "mb": 512, "hold": 0.05, "gap": 0.4},
         "tree": {"n": 30, "mid": 5, "kb": 2048, "ms": 20, "hold": 1.0}}
DESCR = {"burn": "2-core CPU burn holding {mb} MB, {secs:g} CPU s per core, {io_mb} MB written + read per process",
         "short": "{n} sequential children x {ms} ms CPU, 64 KiB written each",
         "spikes": "{k} x a child touching {mb} MB for {hold:g} s",
         "tree": "{n}-process tree ({mid} children, the rest grandchildren), {kb} KB + {ms} ms CPU each, "
                 "alive together {hold:g} s",
         "noop": "the root exits at once (each tool's fixed cost)"}


@dataclass
class Result:
    monitor_cpu: float
    truth: dict
    rep: Reported


def run_once(tool: Tool, workload: str, params: dict, script: str, interval: float, tmp: str) -> Result:
    out = tempfile.mkdtemp(prefix=f"{tool.name}-", dir=tmp)
    data = os.path.join(out, "data")
    os.mkdir(data)
    truth_path = os.path.join(out, "truth.json")
    env = dict(os.environ, PEER_DIR=data, PEER_TRUTH=truth_path)
    cmd = [sys.executable, script, workload, json.dumps(params)]
    log = os.path.join(out, "tool.log")
    if tool.prepare is not None:
        tool.prepare()
    if tool.attach:
        gate_r, gate_w = os.pipe()
        wl = spawn(cmd, dict(env, PEER_GATE="1"), log, stdin_fd=gate_r)
        os.close(gate_r)
        pid = spawn(tool.argv(tool.prog, [str(wl)], out, interval), env, log)
        db = os.path.join(out, "pp.sqlite")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
                try:
                    if con.execute("select count(*) from record").fetchone()[0] > 0:
                        break
                finally:
                    con.close()
            except sqlite3.Error:
                pass
            time.sleep(0.02)
        os.write(gate_w, b"g")
        os.close(gate_w)
        _, st, ru = os.wait4(wl, 0)
        cpu, status = reap_all(pid)
        cpu += ru.ru_utime + ru.ru_stime
    else:
        pid = spawn(tool.argv(tool.prog, cmd, out, interval), env, log)
        cpu, status = reap_all(pid)
    try:
        truth = _load_json(truth_path)
        rep = tool.parse(out)
    except (OSError, ValueError, KeyError, IndexError, sqlite3.Error) as exc:
        with open(log, errors="replace") as fh:
            tail = fh.read()[-400:]
        raise RuntimeError(f"{tool.name} on {workload}: {exc!r} (exit status {status}); log: {tail}") from exc
    shutil.rmtree(out, ignore_errors=True)
    return Result(cpu - truth["cpu"], truth, rep)


# ------------------------------------------------------------------------------------------ report

def med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def io_ratio(a: float | None, b: float | None) -> float | None:
    """I/O ratios only where the workload wrote at least 1 MiB (below that the truth is the harness's noise)."""
    return ratio(a, b) if b is not None and b >= 1 << 20 else None


def pct(v: float | None, width: int = 8) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width - 1}.1%} " if abs(v) < 10 else f"{v:>{width - 1}.0%} "


def num(v: float | None, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{fmt}}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads, one round")
    ap.add_argument("--tools", default="denet,psrecord,procpath,duct,rust-denet,snakemake,time",
                    help="comma-separated subset of the tools (denet is always run: it is the reference)")
    ap.add_argument("--workloads", default="burn,short,spikes,tree", help="comma-separated subset")
    ap.add_argument("--interval", type=float, default=0.1, help="sampling interval of every sampler, seconds")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, 1 with --quick)")
    ap.add_argument("--snakemake-own-interval", action="store_true",
                    help="leave Snakemake's recorder at its own interval (0.5 s) instead of --interval")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--save", metavar="FILE", help="also write every run's figures (truth, report, cost) as JSON")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    params = QUICK if args.quick else FULL
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    wanted = {t.strip() for t in args.tools.split(",") if t.strip()} | {"denet"}
    all_tools = make_tools(args.snakemake_own_interval)
    unknown = (wanted - {t.name for t in all_tools}) | (set(workloads) - set(FULL) - {"noop"})
    if unknown:
        ap.error(f"unknown tool or workload: {', '.join(sorted(unknown))}")

    print(f"machine: {machine()}; load average {loadavg()}")
    subreaper = set_subreaper()
    print(f"harness is a child subreaper: {'yes' if subreaper else 'NO (orphans are not counted)'}")
    tools = []
    for t in all_tools:
        if t.name not in wanted:
            continue
        prog, why = t.setup()
        if prog is None:
            print(f"{t.name}: not measured: {why}")
            continue
        t.prog = prog
        print(f"{t.name}: {why}" + (f"; {t.note}" if t.note else ""))
        tools.append(t)
    print(f"interval {args.interval:g} s for every sampler; {rounds} interleaved round(s); "
          f"{'--quick ' if args.quick else ''}workloads:")
    for w in workloads:
        print(f"  {w}: {DESCR[w].format(**params[w])}")

    tmp = tempfile.mkdtemp(prefix="denet-peers-")
    results: dict[tuple[str, str], list[Result]] = {}
    try:
        script = os.path.join(tmp, "workload.py")
        with open(script, "w") as fh:
            fh.write(WORKLOAD_SRC)
        for rnd in range(rounds):
            for w in ["noop"] + workloads:
                for t in tools:
                    try:
                        res = run_once(t, w, params[w], script, args.interval, tmp)
                    except (RuntimeError, OSError) as exc:
                        print(f"round {rnd + 1}: {exc}")
                        continue
                    results.setdefault((t.name, w), []).append(res)
            print(f"round {rnd + 1} done; load average {loadavg()}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.save:
        with open(args.save, "w") as fh:
            json.dump([{"tool": t, "workload": w, "round": i, "monitor_cpu": r.monitor_cpu, "truth": r.truth,
                        "reported": r.rep.__dict__} for (t, w), runs in results.items() for i, r in enumerate(runs)],
                      fh, indent=1)
    report(tools, workloads, results, args.interval, args.markdown)
    print(f"\nload average at the end: {loadavg()}")
    return 0


def report(tools: list[Tool], workloads: list[str], results: dict, interval: float, markdown: bool = False) -> None:
    def row(cells: list[str]) -> str:
        if markdown:
            return "| " + " | ".join(c.strip() for c in cells) + " |"
        return "|".join(cells)

    def m(tool: str, w: str, get: Callable[[Result], float | None]) -> float | None:
        return med([get(r) for r in results.get((tool, w), [])])

    print("\nfixed cost (noop workload: start-up and shut-down), monitor CPU ms, median:")
    print("  " + ", ".join(f"{t.name} {1000 * v:.0f}" for t in tools
                           if (v := m(t.name, "noop", lambda r: r.monitor_cpu)) is not None))
    verdict: dict[str, list[str]] = {"cost": [], "cost_rate": [], "cpu": [], "proc": []}
    for w in workloads:
        tw = m("denet", w, lambda r: r.truth["wall"])
        print(f"\n== {w}: truth (median) CPU {m('denet', w, lambda r: r.truth['cpu']) or 0:.3f} s, "
              f"per-process peak (VmHWM) {m('denet', w, lambda r: r.truth['hwm_kb']) or 0:,.0f} KiB "
              f"(ru_maxrss under denet {m('denet', w, lambda r: r.truth['ru_maxrss_kb']) or 0:,.0f}), "
              f"{m('denet', w, lambda r: r.truth['processes']) or 0:.0f} processes, tree RSS "
              f"{m('denet', w, lambda r: r.truth['tree_kb']) or 0:,.0f} KiB, wchar "
              f"{m('denet', w, lambda r: r.truth['wchar']) or 0:,.0f} B, write_bytes "
              f"{m('denet', w, lambda r: r.truth['write_bytes']) or 0:,.0f} B, wall {tw or 0:.2f} s")
        head = row([f"{'tool':<14}", f"{'mon CPU s':>10}", f"{'÷denet':>8}", f"{'ms/s':>7}", f"{'÷denet':>8}",
                    f"{'CPU÷truth':>10}", f"{'tree÷truth':>11}", f"{'proc÷truth':>11}", f"{'wchar÷':>8}",
                    f"{'wbytes÷':>8}", f"{'samples':>8}"])
        print(head)
        print("|---|" + "---:|" * 10 if markdown else "-" * len(head))
        d_cost = m("denet", w, lambda r: r.monitor_cpu)
        d_fixed = m("denet", "noop", lambda r: r.monitor_cpu) or 0.0

        def rate(name: str, fixed: float, w: str = w) -> float | None:
            return m(name, w, lambda res: (res.monitor_cpu - fixed) / res.truth["wall"] * 1000)

        d_rate = rate("denet", d_fixed)
        for t in tools:
            if (t.name, w) not in results:
                print(row([f"{t.name:<14}", " (no result)"]))
                continue
            cost = m(t.name, w, lambda r: r.monitor_cpu)
            fixed = m(t.name, "noop", lambda r: r.monitor_cpu) or 0.0
            rt = rate(t.name, fixed)
            cpu_r = m(t.name, w, lambda r: ratio(r.rep.cpu, r.truth["cpu"]))
            tree_r = m(t.name, w, lambda r: ratio(r.rep.tree_kb, r.truth["tree_kb"]))
            proc_r = m(t.name, w, lambda r: ratio(r.rep.proc_kb, r.truth["hwm_kb"]))
            wc_r = m(t.name, w, lambda r: io_ratio(r.rep.wchar, r.truth["wchar"]))
            wb_r = m(t.name, w, lambda r: io_ratio(r.rep.write_bytes, r.truth["write_bytes"]))
            samples = m(t.name, w, lambda r: r.rep.samples)
            rt_r = ratio(rt, d_rate) if rt is not None and rt > 0 and d_rate is not None and d_rate > 0 else None
            print(row([f"{t.name:<14}", num(cost, ".3f", 10), num(ratio(cost, d_cost), ".1f", 8), num(rt, ".1f", 7),
                       num(rt_r, ".1f", 8), pct(cpu_r, 10), pct(tree_r, 11), pct(proc_r, 11), pct(wc_r), pct(wb_r),
                       num(samples, ".0f", 8)]))
            if t.sampling and not t.name.startswith("denet"):
                verdict["cost"].append(f"{w}/{t.name} {ratio(cost, d_cost) or 0:.1f}x")
                verdict["cost_rate"].append(f"{w}/{t.name} {rt_r or 0:.1f}x")
            if t.sampling:
                runs = results[(t.name, w)]
                worst_cpu = max((abs(ratio(r.rep.cpu, r.truth["cpu"]) - 1) if r.rep.cpu is not None else 1.0)
                                for r in runs)
                worst_proc = max((abs(ratio(r.rep.proc_kb, r.truth["hwm_kb"]) - 1)
                                  if r.rep.proc_kb is not None else 1.0) for r in runs)
                verdict["cpu"].append((t.name, w, worst_cpu))
                verdict["proc"].append((t.name, w, worst_proc))

    print(f"\nmon CPU s: the tool's own CPU (all rounds' median), start-up included; ms/s: (mon CPU - its noop "
          f"cost) per second of the workload's wall time; ÷denet: over denet's figure; X÷truth: what the "
          f"tool reports over the ground truth; '-': not reported. Interval {interval:g} s.")
    print("\ntargets")
    for key, label in (("cost", "monitor CPU"), ("cost_rate", "monitor CPU per second, after the fixed cost")):
        vals = verdict[key]
        if vals:
            low = [v for v in vals if float(v.rsplit(" ", 1)[1][:-1]) < 10]
            print(f"- denet's {label} <= 1/10 of every sampling peer: {'met' if not low else 'NOT met'}"
                  + (f" (below 10x: {', '.join(low)})" if low else ""))
    for key, label in (("cpu", "total CPU"), ("proc", "per-process peak")):
        within = sorted({t for t, _, e in verdict[key]} - {t for t, _, e in verdict[key] if e > 0.01})
        print(f"- sampling tools with {label} within 1 % of the truth on every workload and round: "
              f"{', '.join(within) or 'none'}"
              f" -> {'met' if within and all(t.startswith('denet') for t in within) else 'NOT met'} "
              "(target: denet only)")
        worst = {}
        for t, _w, e in verdict[key]:
            worst[t] = max(worst.get(t, 0.0), e)
        print("  worst deviation: " + ", ".join(f"{t} {e:.1%}" for t, e in worst.items()))


if __name__ == "__main__":
    sys.exit(main())
