"""How long `denet report` takes and how large its HTML gets on a large generated workflow, beside
`denet summarize` on the same files (the report reads them with the same code, then aggregates,
caps and renders).

    .venv/bin/python benchmarks/bench_report.py [--runs 2000] [--rules 20] [--samples 60] [--long 5]
        [--long-samples 50000] [--rounds 3]

The runs are JSON-lines files written here (--runs short runs of --samples tree records each, in
--rules rules, and --long runs of --long-samples records). Times are medians of --rounds, wall
clock, as commands (interpreter start-up included)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DENET = [sys.executable, "-m", "denet"]
T0 = 1_700_000_000_000


def write_run(path: Path, rule: str, n: int, t0: int, seed: int) -> None:
    meta = {"kind": "metadata", "pid": 1000 + seed, "cmd": ["tool", rule, str(seed)], "executable": "/bin/tool",
            "t0_ms": t0, "capabilities": {"gpu": {"available": False, "reason": "off"}}, "schema_version": 1,
            "denet_version": "bench", "labels": {"rule": rule, "threads": "2"}, "interval_ms": 100,
            "max_interval_ms": 1000, "include_children": True, "since_process_start": False}
    out = [json.dumps(meta, separators=(",", ":"))]
    for i in range(n):
        ts = t0 + i * 1000
        m = {"ts_ms": ts, "cpu_usage": float((seed * 7 + i * 13) % 200), "mem_rss_kb": 10000 + (i * 97 + seed) % 50000,
             "mem_vms_kb": 90000, "disk_read_bytes": i * 4096, "disk_write_bytes": i * 1024, "sys_net_rx_bytes": 0,
             "sys_net_tx_bytes": 0, "thread_count": 3, "uptime_secs": i, "cpu_core": 0}
        agg = {k: v for k, v in m.items() if k != "cpu_core"} | {"process_count": 2}
        out.append(json.dumps({"kind": "tree", "ts_ms": ts, "parent": m, "children": [], "aggregated": agg},
                              separators=(",", ":")))
    wall = max(1, n - 1) * 1.0
    out.append(json.dumps({
        "kind": "summary", "total_time_secs": wall, "sample_count": n, "max_processes": 2, "max_threads": 3,
        "total_disk_read_bytes": (n - 1) * 4096, "total_disk_write_bytes": (n - 1) * 1024,
        "total_syscall_read_bytes": 0, "total_syscall_write_bytes": 0, "total_sys_net_rx_bytes": 0,
        "total_sys_net_tx_bytes": 0, "peak_mem_rss_kb": 60000, "avg_cpu_usage": 100.0,
        "exit_code": 1 if seed % 97 == 0 else 0, "wall_time_secs": wall, "cpu_user_secs": wall * 0.8,
        "cpu_system_secs": wall * 0.1, "cpu_time_secs": wall * 0.9, "peak_process_rss_kb": 50000,
        "exact": ["exit_code", "wall_time_secs", "cpu_user_secs", "cpu_system_secs", "cpu_time_secs",
                  "peak_process_rss_kb"]}, separators=(",", ":")))
    path.write_text("\n".join(out) + "\n")


def timed(cmd: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr.decode()}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--rules", type=int, default=20)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--long", type=int, default=5)
    ap.add_argument("--long-samples", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="denet-bench-report-") as tmp:
        d = Path(tmp) / "runs"
        d.mkdir()
        for k in range(a.runs):
            write_run(d / f"r{k:05d}.jsonl", f"rule{k % a.rules:02d}", a.samples, T0 + k * 5000, k)
        for k in range(a.long):
            write_run(d / f"long{k}.jsonl", "long", a.long_samples, T0 + k * 7000, 100000 + k)
        size = sum(f.stat().st_size for f in d.iterdir())
        print(f"input: {a.runs} runs of {a.samples} samples in {a.rules} rules + {a.long} runs of "
              f"{a.long_samples} samples: {size / 1e6:.1f} MB of JSON lines; median of {a.rounds} rounds")
        html = Path(tmp) / "r.html"
        png = Path(tmp) / "r.png"
        t_sum = timed([*DENET, "summarize", str(d), "-o", str(Path(tmp) / "s.txt")], a.rounds)
        t_html = timed([*DENET, "report", str(d), "-o", str(html)], a.rounds)
        t_png = timed([*DENET, "report", str(d / "long0.jsonl"), "-o", str(png)], a.rounds)
        print(f"{'command':<44} {'seconds':>8} {'vs summarize':>13} {'output':>10}")
        print(f"{'denet summarize DIR':<44} {t_sum:8.2f} {1.0:13.2f}")
        print(f"{'denet report DIR -o r.html':<44} {t_html:8.2f} {t_html / t_sum:13.2f} "
              f"{html.stat().st_size / 1e6:8.1f}MB")
        print(f"{'denet report LONGRUN -o r.png (one run)':<44} {t_png:8.2f} {t_png / t_sum:13.2f} "
              f"{png.stat().st_size / 1e3:8.0f}kB")
        print(f"(the HTML holds the Vega libraries, {os.path.getsize(html) / 1e6:.1f} MB in all)")


if __name__ == "__main__":
    main()
