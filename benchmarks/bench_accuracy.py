"""Accuracy of denet's exact totals against the kernel's own accounting (``os.wait4`` of the workload).

(a) Short children: a script that runs ``--children`` sequential child processes (fork), each burning
    ``--burn-ms`` of CPU. It is run directly (the harness measures it with ``os.wait4``) and under
    ``denet --stats S.json --out R.jsonl -q run -- python work.py``, alternately, ``--rounds`` times each.
    denet's ``cpu_time_secs`` is compared with the wait4 CPU (and with the monitored run's own
    ``getrusage`` SELF + CHILDREN, written just before it exits), and so is what a sampler sees in the
    records: the sum over tree records of cpu_usage/100 x the time since the previous record, once for
    the tree's ``aggregated.cpu_usage`` and once for the per-process values (parent + children: what
    a sampler that only looks at the live processes it finds would report).
(b) Memory spike: a script whose child allocates and touches ``--spike-mb`` MB, holds it ~50 ms and
    exits. denet's ``peak_process_rss_kb`` is compared with ``ru_maxrss`` from ``os.wait4`` of the same
    workload run directly (and denet's sampled ``peak_mem_rss_kb`` is shown beside it).

No timed asserts; targets are printed as met / NOT met.

    .venv/bin/python benchmarks/bench_accuracy.py [--rounds 3] [--children 300] [--burn-ms 25]
                                                  [--spike-mb 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from _machine import loadavg, machine  # benchmarks/ is the script directory

WORK_SRC = r"""
import os, sys, time
n, burn = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        x = 0
        while time.process_time() < burn:  # a forked child starts with zero CPU time
            for _ in range(1000):
                x += 1
        os._exit(0)
    os.waitpid(pid, 0)
if len(sys.argv) > 3:  # the workload's own account, written just before it exits
    import resource
    own = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    with open(sys.argv[3], "w") as fh:
        fh.write(repr(sum(r.ru_utime + r.ru_stime for r in own)))
"""

SPIKE_SRC = r"""
import os, sys, time
mb = int(sys.argv[1])
time.sleep(0.15)
pid = os.fork()
if pid == 0:
    buf = bytearray(mb << 20)
    buf[::4096] = b"\1" * ((mb << 20) // 4096)  # touch every page
    time.sleep(0.05)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.05)
"""


def run_wait4(argv: list[str]) -> tuple[float, int, float]:
    """(CPU seconds, ru_maxrss KiB, wall seconds) of ``argv`` and everything it waited for."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                   (os.POSIX_SPAWN_DUP2, devnull, 2)]
        t0 = time.monotonic()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        _, status, ru = os.wait4(pid, 0)
        wall = time.monotonic() - t0
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {status}")
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss, wall


def run_denet(cmd: list[str], tmp: str) -> tuple[dict, list[dict]]:
    stats = os.path.join(tmp, "stats.json")
    out = os.path.join(tmp, "run.jsonl")
    for p in (stats, out):
        if os.path.exists(p):
            os.unlink(p)
    argv = [sys.executable, "-m", "denet", "--out", out, "-q", "run", "--stats", stats, "--", *cmd]
    run_wait4(argv)
    with open(stats) as fh:
        summary = json.load(fh)
    with open(out) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return summary, records


def sampled_cpu(records: list[dict]) -> tuple[float, float]:
    """CPU seconds a sampler sees: (from aggregated.cpu_usage, from the per-process cpu_usage values)."""
    agg = per = 0.0
    prev = None
    for r in records:
        if r.get("kind") != "tree":
            continue
        if prev is not None:
            dt = (r["ts_ms"] - prev) / 1000.0
            if r.get("aggregated"):
                agg += r["aggregated"]["cpu_usage"] / 100.0 * dt
            procs = [r["parent"]] if r.get("parent") else []
            procs += [c["metrics"] for c in r.get("children") or []]
            per += sum(p["cpu_usage"] for p in procs) / 100.0 * dt
        prev = r["ts_ms"]
    return agg, per


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side per workload (alternated)")
    ap.add_argument("--children", type=int, default=300, help="short children in workload (a)")
    ap.add_argument("--burn-ms", type=float, default=25.0, help="CPU ms each child burns")
    ap.add_argument("--spike-mb", type=int, default=300, help="MB the child of workload (b) touches")
    args = ap.parse_args()

    print(f"machine: {machine()}; load average {loadavg()}")
    tmp = tempfile.mkdtemp(prefix="denet-acc-")
    try:
        work = os.path.join(tmp, "work.py")
        spike = os.path.join(tmp, "spike.py")
        with open(work, "w") as fh:
            fh.write(WORK_SRC)
        with open(spike, "w") as fh:
            fh.write(SPIKE_SRC)

        # ---------------------------------------------------------------- (a) short children
        own_file = os.path.join(tmp, "own.txt")
        cmd = [sys.executable, work, str(args.children), str(args.burn_ms), own_file]
        print(f"\n(a) {args.children} sequential children x {args.burn_ms:g} ms CPU; "
              f"{args.rounds} rounds, alternated")
        print(f"{'round':>5} | {'wait4 CPU s':>11} | {'denet cpu_time_secs':>19} | {'denet/wait4':>11} | "
              f"{'denet/self':>10} | {'sampled: aggregated':>19} | {'sampled: per-process':>20} | "
              f"{'samples':>7}")
        rows_a = []
        for i in range(args.rounds):
            w_cpu, _, _ = run_wait4(cmd)
            summary, records = run_denet(cmd, tmp)
            with open(own_file) as fh:
                own = float(fh.read())
            agg, per = sampled_cpu(records)
            d_cpu = summary["cpu_time_secs"]
            rows_a.append((w_cpu, d_cpu, agg, per, own))
            print(f"{i + 1:>5} | {w_cpu:>11.3f} | {d_cpu:>19.3f} | {d_cpu / w_cpu:>11.2%} | "
                  f"{d_cpu / own:>10.2%} | "
                  f"{agg:>8.3f} ({agg / w_cpu:>7.1%}) | {per:>9.3f} ({per / w_cpu:>7.1%}) | "
                  f"{summary.get('sample_count', '?'):>7}")
        w = statistics.median(r[0] for r in rows_a)
        d = statistics.median(r[1] for r in rows_a)
        ratios = [r[1] / r[0] for r in rows_a]
        print(f"median: wait4 {w:.3f} s, denet {d:.3f} s; denet/wait4 per round: min {min(ratios):.2%}, "
              f"median {statistics.median(ratios):.2%}")
        print("denet/self: against the same run's own getrusage (SELF + CHILDREN) just before it exits: "
              f"median {statistics.median(r[1] / r[4] for r in rows_a):.2%}")
        print(f"sampled / wait4 (median): aggregated {statistics.median(r[2] / r[0] for r in rows_a):.1%}, "
              f"per-process {statistics.median(r[3] / r[0] for r in rows_a):.1%}")
        print(f"target (denet captures >= 99 % of the wait4 CPU): "
              f"{'met' if min(ratios) >= 0.99 else 'NOT met'} (worst round {min(ratios):.2%})")

        # ---------------------------------------------------------------- (b) memory spike
        cmd = [sys.executable, spike, str(args.spike_mb)]
        print(f"\n(b) child touching {args.spike_mb} MB for ~50 ms; {max(args.rounds, 3)} rounds, alternated")
        print(f"{'round':>5} | {'wait4 ru_maxrss KiB':>19} | {'denet peak_process_rss_kb':>25} | "
              f"{'denet/wait4':>11} | "
              f"{'sampled peak_mem_rss_kb':>23}")
        rows_b = []
        for i in range(max(args.rounds, 3)):
            _, w_rss, _ = run_wait4(cmd)
            summary, _ = run_denet(cmd, tmp)
            d_rss = summary["peak_process_rss_kb"]
            rows_b.append((w_rss, d_rss))
            print(f"{i + 1:>5} | {w_rss:>19} | {d_rss:>25} | {d_rss / w_rss:>11.2%} | "
                  f"{summary.get('peak_mem_rss_kb')!s:>23}")
        ratios = [r[1] / r[0] for r in rows_b]
        worst = max(abs(x - 1) for x in ratios)
        print(f"target (peak_process_rss_kb within ±1 % of ru_maxrss): "
              f"{'met' if worst <= 0.01 else 'NOT met'} "
              f"(worst round {worst:.2%} off)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average at the end: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
