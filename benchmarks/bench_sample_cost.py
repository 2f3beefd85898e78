"""Monitor CPU per sample: denet's /proc fast path vs a psutil sampler vs the Rust denet (0.10.3).

Starts real process trees of 1, 11 and 101 processes (a root that forks idle children), then, side by
side and in interleaved rounds, measures the CPU time the *monitoring* process spends per sample:

- denet:           ``Sampler(ProcCollector(root)).sample().to_line()``
- denet, no cache: the same, but the bytes last read from every /proc file are forgotten before each
                   sample, so every file is parsed again (what a tree whose processes all changed
                   costs; the idle trees here otherwise let denet skip parsing unchanged files)
- psutil:          ``Sampler(PsutilCollector(root)).sample().to_line()``
- Rust denet:      ``ProcessMonitor.from_pid(pid, 100, 1000).sample_once()`` in a subprocess running
                   a separate venv with ``denet==0.10.3`` from PyPI (installed on first use)

CPU is ``time.process_time()`` of the measuring process (all its threads) over ``--samples`` samples
after a few warm-ups; the figure reported is the median over ``--rounds`` rounds. No timed asserts.

    .venv/bin/python benchmarks/bench_sample_cost.py [--sizes 1,11,101] [--samples 200] [--rounds 5]
                                                     [--background N] [--no-rust]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from _machine import loadavg, machine  # benchmarks/ is the script directory

from denet.collectors.fallback import PsutilCollector
from denet.collectors.proc import ProcCollector
from denet.sampler import Sampler

RUST_VENV = "/tmp/rustdenet-venv"
RUST_VERSION = "0.10.3"
WARMUP = 5

# The tree: a root that forks n-1 children; everyone then sleeps until killed.
TREE_SRC = r"""
import os, signal, sys
n = int(sys.argv[1])
for _ in range(n - 1):
    if os.fork() == 0:
        signal.pause()
        os._exit(0)
signal.pause()
"""

# Runs inside the Rust denet's venv (python -I: the repo's own denet package is not importable there).
RUST_SRC = r"""
import json, sys, time
import denet
pid, warm, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
m = denet.ProcessMonitor.from_pid(pid, 100, 1000)
line = None
for _ in range(warm):
    line = m.sample_once()
c0, w0 = time.process_time(), time.perf_counter()
for _ in range(n):
    line = m.sample_once()
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
rec = json.loads(line) if line else {}
kids = rec.get("children")
agg = rec.get("aggregated") or {}
print(json.dumps({"cpu": cpu, "wall": wall, "children": None if kids is None else len(kids),
                  "process_count": agg.get("process_count"), "version": getattr(denet, "__version__", "?")}))
"""


def start_tree(n: int) -> subprocess.Popen:
    """Start a tree of n processes and wait until every child is listed under the root."""
    p = subprocess.Popen([sys.executable, "-c", TREE_SRC, str(n)], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    path = f"/proc/{p.pid}/task/{p.pid}/children"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                if len(fh.read().split()) >= n - 1:
                    return p
        except OSError:
            pass
        time.sleep(0.02)
    kill_tree(p)
    raise RuntimeError(f"tree of {n} processes did not appear within 30 s")


def kill_tree(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    # The children were reparented when the root died; reap nothing of ours is left behind.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _forget_cache(collector: ProcCollector) -> None:
    # Benchmark-only peek at the collector's internals: make every file look changed.
    for proc in collector._procs.values():
        for name in proc.__slots__:
            if name.startswith("last_") and isinstance(getattr(proc, name, None), bytes):
                setattr(proc, name, b"")


def measure_python(make_collector, pid: int, n: int, *, no_cache: bool = False) -> dict:
    collector = make_collector(pid)
    sampler = Sampler(collector)
    try:
        line = ""
        for _ in range(WARMUP):
            line = sampler.sample().to_line()
        if no_cache:
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                _forget_cache(collector)
                line = sampler.sample().to_line()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        else:
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                line = sampler.sample().to_line()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        collector.close()
    rec = json.loads(line)
    return {"cpu": cpu, "wall": wall, "children": len(rec["children"]),
            "process_count": rec["aggregated"]["process_count"]}


def ensure_rust_venv() -> tuple[str | None, str]:
    """(python of the Rust denet's venv, or None, and why not)."""
    py = os.path.join(RUST_VENV, "bin", "python")
    check = [py, "-I", "-c",
             f"import denet, sys; sys.exit(0 if denet.__version__ == '{RUST_VERSION}' else 1)"]
    if os.path.exists(py) and subprocess.run(check, capture_output=True, cwd="/").returncode == 0:
        return py, "reused"
    try:
        if not os.path.exists(py):
            subprocess.run(["python3", "-m", "venv", RUST_VENV], check=True, capture_output=True, text=True)
        r = subprocess.run([os.path.join(RUST_VENV, "bin", "pip"), "install", "-q", f"denet=={RUST_VERSION}"],
                           capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot create {RUST_VENV}: {exc}"
    if r.returncode != 0:
        return None, f"pip install denet=={RUST_VERSION} failed: {(r.stderr or r.stdout).strip()[-400:]}"
    if subprocess.run(check, capture_output=True, cwd="/").returncode != 0:
        return None, f"denet {RUST_VERSION} installed but not importable in {RUST_VENV}"
    return py, "installed"


def measure_rust(py: str, pid: int, n: int) -> dict:
    r = subprocess.run([py, "-I", "-c", RUST_SRC, str(pid), str(WARMUP), str(n)], capture_output=True,
                       text=True, cwd="/", timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"Rust denet run failed: {r.stderr.strip()[-400:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def count_processes() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,11,101", help="tree sizes (processes), comma separated")
    ap.add_argument("--samples", type=int, default=200, help="timed samples per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is reported)")
    ap.add_argument("--no-rust", action="store_true", help="skip the Rust denet column")
    ap.add_argument("--background", type=int, default=0,
                    help="also start this many idle processes outside the measured trees")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    background = start_tree(args.background) if args.background > 0 else None
    try:
        return report(args, sizes, background is not None)
    finally:
        if background is not None:
            kill_tree(background)


def report(args: argparse.Namespace, sizes: list[int], background: bool) -> int:
    print(f"machine: {machine()}; load average {loadavg()}")
    print(f"processes on the machine before the trees start: {count_processes()}"
          + (f" (including --background {args.background} idle processes outside the trees)" if background else "")
          + "; the Rust denet's cost per sample grows with this number, not only with the tree's size")
    rust_py = None
    if args.no_rust:
        print("Rust denet: skipped (--no-rust)")
    else:
        rust_py, why = ensure_rust_venv()
        if rust_py is None:
            print(f"Rust denet: not measured: {why}")
        else:
            print(f"Rust denet {RUST_VERSION}: venv {RUST_VENV} ({why})")
    print(f"{args.samples} samples per measurement after {WARMUP} warm-ups, median of {args.rounds} "
          "interleaved rounds; CPU = process_time of the measuring process\n")

    columns = [("denet", lambda pid: ProcCollector(pid), False),
               ("denet-nocache", lambda pid: ProcCollector(pid), True),
               ("psutil", lambda pid: PsutilCollector(pid), False)]
    results: dict[int, dict[str, list[dict]]] = {}
    for size in sizes:
        tree = start_tree(size)
        try:
            res: dict[str, list[dict]] = {name: [] for name, _, _ in columns}
            if rust_py:
                res["rust"] = []
            for _ in range(args.rounds):
                for name, make, no_cache in columns:
                    res[name].append(measure_python(make, tree.pid, args.samples, no_cache=no_cache))
                if rust_py:
                    try:
                        res["rust"].append(measure_rust(rust_py, tree.pid, args.samples))
                    except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                        print(f"Rust denet at {size} processes: {exc}")
                        res.pop("rust")
                        rust_py = None
            results[size] = res
        finally:
            kill_tree(tree)

    names = [n for n, _, _ in columns] + (["rust"] if any("rust" in r for r in results.values()) else [])

    def us(size: int, name: str, key: str = "cpu", agg=statistics.median) -> float | None:
        runs = results[size].get(name)
        if not runs:
            return None
        return agg(r[key] for r in runs) / args.samples * 1e6

    def table(title: str, key: str, per_process: bool, agg=statistics.median) -> None:
        print(title)
        head = f"{'procs':>5} | " + " | ".join(f"{n:>13}" for n in names)
        print(head)
        print("-" * len(head))
        for size in sizes:
            cells = []
            for n in names:
                v = us(size, n, key, agg)
                if v is not None and per_process:
                    v /= size
                cells.append(f"{'-':>13}" if v is None else f"{v:>13.1f}" if per_process else f"{v:>13.0f}")
            print(f"{size:>5} | " + " | ".join(cells))
        print()

    table("CPU per sample (µs), median of the rounds", "cpu", False)
    table("CPU per sample (µs), best round (least disturbed by other work on the machine)", "cpu", False, min)
    table("CPU per sample and process (µs)", "cpu", True)
    table("wall time per sample (µs)", "wall", False)

    print("ratios of CPU per sample")
    print(f"{'procs':>5} | {'psutil/denet':>12} | {'rust/denet':>10} | {'rust/denet-nocache':>18} | "
          f"{'denet-nocache/denet':>19}")
    for size in sizes:
        d, dn, p, r = (us(size, n) for n in ("denet", "denet-nocache", "psutil", "rust"))
        rr = f"{r / d:>10.1f}" if r else f"{'-':>10}"
        rn = f"{r / dn:>18.1f}" if r else f"{'-':>18}"
        print(f"{size:>5} | {p / d:>12.1f} | {rr} | {rn} | {dn / d:>19.2f}")

    print("\nprocesses in the last sample (root + children; expected = tree size)")
    for size in sizes:
        have = [n for n in names if results[size].get(n)]
        seen = ", ".join(f"{n}={results[size][n][-1]['process_count']}" for n in have)
        kids = ", ".join(f"{n}={results[size][n][-1]['children']}" for n in have)
        print(f"{size:>5}: process_count {seen}; children {kids}")
    if "rust" in names:
        ok = all(results[s]["rust"][-1]["children"] == s - 1 for s in sizes if results[s].get("rust"))
        print("Rust denet samples contain all children: " + ("yes" if ok else "NO"))

    big = max(sizes)
    d, r = us(big, "denet"), us(big, "rust")
    if r:
        verdict = "met" if d <= r / 15 else "NOT met"
        print(f"\ntarget (denet <= 1/15 of the Rust denet's CPU per sample at {big} processes): "
              f"denet {d:.0f} µs vs Rust {r:.0f} µs = 1/{r / d:.1f} -> {verdict} (medians)")
        d_min, r_min = us(big, "denet", agg=min), us(big, "rust", agg=min)
        print(f"best rounds: denet {d_min:.0f} µs vs Rust {r_min:.0f} µs = 1/{r_min / d_min:.1f}; "
              f"1/15 of the Rust denet (median) is {r / 15:.0f} µs")
    print(f"\nload average at the end: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
