"""What --enable-ebpf costs: a syscall-heavy step with and without it, side by side.

The workload is ``dd if=/dev/zero of=/dev/null bs=1 count=N`` (2 N syscalls, each traced by
``raw_syscalls:sys_enter``, plus a context switch now and then traced by ``sched:sched_switch``).
Per round, interleaved: bare ``dd``; ``denet -q run -- dd``; ``denet -q --enable-ebpf run -- dd``;
and, to see the per-event cost without denet's own start, ``dd`` while another denet with
``--enable-ebpf`` traces an idle ``sleep`` (system-wide tracepoints: every syscall on the machine
runs the program, which returns at once for processes outside the tree).

Printed: median over rounds of CMD's wall time (denet's summary ``wall_time_secs``; for bare dd
the time around ``subprocess.run``), the whole ``denet run`` wall time (start-up, loading the
programs, CMD, summary), and ratios against bare dd. No timed asserts.

    .venv/bin/python benchmarks/bench_ebpf.py [--count 2000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import loadavg, machine  # noqa: E402

DENET = [sys.executable, "-m", "denet"]


def dd(n: int) -> list[str]:
    return ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}", "status=none"]


def bare(n: int) -> float:
    t = time.monotonic()
    subprocess.run(dd(n), check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - t


def under_denet(n: int, ebpf: bool) -> tuple[float, float, dict]:
    """(CMD's wall time, denet's whole wall time, summary)."""
    with tempfile.TemporaryDirectory() as d:
        stats = os.path.join(d, "stats.json")
        args = DENET + ["-q", "--stats", stats] + (["--enable-ebpf"] if ebpf else []) + ["run", "--"] + dd(n)
        t = time.monotonic()
        r = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL)
        whole = time.monotonic() - t
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode(errors="replace"))
        with open(stats) as fh:
            s = json.load(fh)
    if ebpf and s.get("offcpu_source") != "ebpf":
        raise SystemExit(f"eBPF did not run: {r.stderr.decode(errors='replace').strip()}")
    return s["wall_time_secs"], whole, s


def beside_tracer(n: int) -> float:
    """Bare dd while another denet traces an idle sleep with eBPF (programs attached, dd not in its tree)."""
    p = subprocess.Popen(DENET + ["-q", "--enable-ebpf", "run", "--", "sleep", "600"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(2.0)  # loaded by then
        return bare(n)
    finally:
        p.terminate()
        p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2_000_000, help="dd blocks of 1 byte (default 2000000)")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {machine()}; load {loadavg()}")
    print(f"workload: dd bs=1 count={a.count} ({2 * a.count} syscalls); {a.rounds} rounds, interleaved; medians")
    res: dict[str, list[float]] = {k: [] for k in ("bare", "plain_cmd", "plain_all", "ebpf_cmd", "ebpf_all",
                                                   "beside")}
    last = None
    for _ in range(a.rounds):
        res["bare"].append(bare(a.count))
        c, w, _s = under_denet(a.count, False)
        res["plain_cmd"].append(c)
        res["plain_all"].append(w)
        c, w, last = under_denet(a.count, True)
        res["ebpf_cmd"].append(c)
        res["ebpf_all"].append(w)
        res["beside"].append(beside_tracer(a.count))
    med = {k: statistics.median(v) for k, v in res.items()}
    b = med["bare"]
    rows = [
        ("dd alone", b, None),
        ("dd under denet run (CMD wall)", med["plain_cmd"], med["plain_all"]),
        ("dd under denet --enable-ebpf run (CMD wall)", med["ebpf_cmd"], med["ebpf_all"]),
        ("dd alone, another denet tracing elsewhere", med["beside"], None),
    ]
    print(f"{'':46} {'CMD s':>8} {'x dd':>6} {'whole s':>8} {'x dd':>6}")
    for name, cmd, whole in rows:
        w = f"{whole:8.3f} {whole / b:6.2f}" if whole is not None else f"{'-':>8} {'-':>6}"
        print(f"{name:46} {cmd:8.3f} {cmd / b:6.2f} {w}")
    extra = med["ebpf_cmd"] - med["plain_cmd"]
    print(f"eBPF cost per syscall of the tree: {extra / (2 * a.count) * 1e9:.0f} ns "
          f"(CMD wall with eBPF − without, / syscalls)")
    print(f"eBPF cost per syscall outside the tree: {(med['beside'] - b) / (2 * a.count) * 1e9:.0f} ns")
    print(f"start-up added by loading the programs: {(med['ebpf_all'] - med['ebpf_cmd']) - (med['plain_all'] - med['plain_cmd']):.3f} s")
    if last is not None:
        top = {x["name"]: x["count"] for x in last["ebpf"]["syscalls"]["top_syscalls"]}
        print(f"counted (last round): read {top.get('read')}, write {top.get('write')} for {a.count} blocks; "
              f"lost events {last['ebpf'].get('lost_events')}")


if __name__ == "__main__":
    main()
