"""How fast `denet summarize` reads many runs: per-run Parquet, per-run JSONL, a compacted dataset.

Generates RUNS runs x SAMPLES samples (a root and CHILDREN children per sample, so
(2 + CHILDREN) tidy rows per sample) with denet's own writers: the record classes of
denet.records and the JSONL and Parquet sinks (no processes are run). Then times
`denet.summaries.summarize()` (the per-group table, as `denet summarize DIR` prints it) on each
input, side by side with a plain-pandas baseline that computes the same per-rule figures.

    .venv/bin/python benchmarks/summarize.py                 # 2000 runs x 600 samples, under /tmp
    .venv/bin/python benchmarks/summarize.py --runs 200      # quicker

Rows per second count every tidy row of the inputs (tree, root and child rows): that is what the
files hold. The tree rows alone (what the per-run figures are computed from) are printed too.
The generated data is kept under --dir and reused when its parameters match.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from multiprocessing import Pool

RULES = ["align", "sort", "index", "call", "filter", "merge", "qc", "trim", "count", "report"]


def _records(i: int, samples: int, children: int):
    """The records of run ``i``: metadata, tree samples, summary (deterministic)."""
    from denet.records import Aggregated, Capability, Child, Metrics, RunHeader, TreeSample
    from denet.summary import EXACT_FIELDS, SummaryAccumulator

    rng = random.Random(i)
    rule = RULES[i % len(RULES)]
    threads = 1 + i % 4
    t0 = 1_700_000_000_000 + i * 3_600_000
    pid = 10_000 + i
    caps = {k: Capability(False, "not collected") for k in ("gpu", "ebpf", "psi", "perf_hw")}
    yield RunHeader(pid=pid, cmd=["tool", rule, f"sample{i}.dat"], executable="/usr/bin/tool", t0_ms=t0,
                    capabilities=caps, schema_version=1, denet_version="bench",
                    labels={"rule": rule, "sample": f"s{i}", "threads": str(threads)}, interval_ms=100,
                    max_interval_ms=1000, include_children=True, since_process_start=False)
    acc = SummaryAccumulator()
    base_rss = rng.randint(20_000, 2_000_000)
    read = write = 0
    ts = t0
    for k in range(samples):
        ts += 100 if k < 10 else 1000
        procs = []
        for c in range(children + 1):
            cpu = rng.uniform(0, 100.0 * threads / (children + 1))
            rss = base_rss // (children + 1) + rng.randint(0, 5000)
            read += rng.randint(0, 1 << 16)
            write += rng.randint(0, 1 << 15)
            procs.append(Metrics(ts, round(cpu, 3), rss, rss * 3, read, write, 0, 0, 1 + c % 2, k, c % 2,
                                 read * 2, write * 2, k * 10, 0))
        agg = Aggregated(ts, round(sum(p.cpu_usage for p in procs), 3), sum(p.mem_rss_kb for p in procs),
                         sum(p.mem_vms_kb for p in procs), sum(p.disk_read_bytes for p in procs),
                         sum(p.disk_write_bytes for p in procs), 0, 0, sum(p.thread_count for p in procs),
                         len(procs), k, sum(p.syscall_read_bytes for p in procs),
                         sum(p.syscall_write_bytes for p in procs), sum(p.page_faults_cached for p in procs), 0)
        acc.add_record(agg)
        yield TreeSample(ts, procs[0], [Child(pid + 1 + c, f"worker{c}", procs[1 + c]) for c in range(children)],
                         agg)
    wall = (ts - t0) / 1000.0 + 0.05
    cpu_user = acc.cpu_sum / 100.0 * wall / max(acc.count, 1)
    yield acc.build(wall, exit_code=1 if i % 20 == 7 else 0, wall_time_secs=wall, cpu_user_secs=round(cpu_user, 3),
                    cpu_system_secs=round(cpu_user * 0.05, 3), peak_process_rss_kb=base_rss // (children + 1) + 5000,
                    exact=EXACT_FIELDS)


def _write_run(args) -> None:
    i, samples, children, root = args
    from denet.sinks import JsonlSink
    from denet.sinks.parquet import ParquetSink

    sinks = [JsonlSink(os.path.join(root, "jsonl", RULES[i % len(RULES)], f"run{i:05d}.jsonl")),
             ParquetSink(os.path.join(root, "parquet", RULES[i % len(RULES)], f"run{i:05d}.parquet"))]
    for rec in _records(i, samples, children):
        line = rec.to_line()  # encoded once, written by both sinks
        for s in sinks:
            s.write_line(line)
    for s in sinks:
        s.close()


def generate(root: str, runs: int, samples: int, children: int) -> None:
    params = {"runs": runs, "samples": samples, "children": children, "version": 2}
    marker = os.path.join(root, "params.json")
    try:
        with open(marker) as fh:
            if json.load(fh) == params:
                print(f"reusing the data under {root}")
                return
    except (OSError, ValueError):
        pass
    shutil.rmtree(root, ignore_errors=True)
    for kind in ("jsonl", "parquet"):
        for r in RULES:
            os.makedirs(os.path.join(root, kind, r))
    t = time.perf_counter()
    with Pool(os.cpu_count() or 2) as pool:
        for n, _ in enumerate(pool.imap_unordered(_write_run, [(i, samples, children, root) for i in range(runs)],
                                                  chunksize=8), 1):
            if n % 200 == 0:
                print(f"  generated {n}/{runs} runs ({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"generated {runs} runs x {samples} samples as JSONL and Parquet in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    from denet.compact import compact

    res = compact([os.path.join(root, "parquet")], os.path.join(root, "dataset"), by="rule")
    print(f"compacted into {res.partitions} partitions in {time.perf_counter() - t:.1f} s")
    with open(marker, "w") as fh:
        json.dump(params, fh)


def _du(path: str) -> int:
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


# ----------------------------------------------------------------------------- the pandas baseline

PANDAS_COLUMNS = ["scope", "ts_ms", "cpu_usage", "mem_rss_kb"]


def _pandas_finish(pd, per_run: list[dict]):
    df = pd.DataFrame(per_run)
    df["cores"] = df["cpu_time_secs"] / df["wall_time_secs"]
    g = df.groupby("rule").agg(runs=("rule", "size"), failed=("failed", "sum"),
                               wall_time_secs_mean=("wall_time_secs", "mean"),
                               wall_time_secs_max=("wall_time_secs", "max"),
                               cpu_time_secs_sum=("cpu_time_secs", "sum"), cores_mean=("cores", "mean"),
                               peak_mem_rss_kb_max=("peak_mem_rss_kb", "max"),
                               max_cpu_usage_max=("max_cpu_usage", "max"))
    g["wall_time_secs_p95"] = df.groupby("rule")["wall_time_secs"].quantile(0.95)
    return g


def pandas_parquet(files: list[str]):
    import pandas as pd
    import pyarrow.parquet as pq

    per_run = []
    for f in files:
        kv = pq.read_schema(f).metadata
        meta = json.loads(kv[b"denet.metadata"])
        summ = json.loads(kv[b"denet.summary"])
        rows = pd.read_parquet(f, columns=PANDAS_COLUMNS)
        tree = rows[rows["scope"] == "tree"]
        per_run.append({"rule": meta["labels"].get("rule"), "failed": summ["exit_code"] != 0,
                        "wall_time_secs": summ["wall_time_secs"], "cpu_time_secs": summ["cpu_time_secs"],
                        "peak_mem_rss_kb": tree["mem_rss_kb"].max(), "max_cpu_usage": tree["cpu_usage"].max()})
    return _pandas_finish(pd, per_run)


def pandas_jsonl(files: list[str]):
    import pandas as pd

    per_run = []
    for f in files:
        meta = summ = None
        aggs = []
        with open(f) as fh:
            for line in fh:
                obj = json.loads(line)
                k = obj.get("kind")
                if k == "tree" and obj.get("aggregated"):
                    aggs.append(obj["aggregated"])
                elif k == "metadata":
                    meta = obj
                elif k == "summary":
                    summ = obj
        tree = pd.DataFrame(aggs, columns=["ts_ms", "cpu_usage", "mem_rss_kb"])
        per_run.append({"rule": meta["labels"].get("rule"), "failed": summ["exit_code"] != 0,
                        "wall_time_secs": summ["wall_time_secs"], "cpu_time_secs": summ["cpu_time_secs"],
                        "peak_mem_rss_kb": tree["mem_rss_kb"].max(), "max_cpu_usage": tree["cpu_usage"].max()})
    return _pandas_finish(pd, per_run)


def pandas_dataset(root: str):
    import pandas as pd

    runs = pd.read_parquet(os.path.join(root, "runs.parquet"))
    rows = pd.read_parquet(os.path.join(root, "rows"), columns=["run_id", *PANDAS_COLUMNS],
                           filters=[("scope", "==", "tree")])
    st = rows.groupby("run_id").agg(peak_mem_rss_kb=("mem_rss_kb", "max"), max_cpu_usage=("cpu_usage", "max"))
    per_run = []
    for r in runs.itertuples():
        meta = json.loads(r.metadata_json)
        summ = json.loads(r.summary_json)
        per_run.append({"run_id": r.run_id, "rule": meta["labels"].get("rule"), "failed": summ["exit_code"] != 0,
                        "wall_time_secs": summ["wall_time_secs"], "cpu_time_secs": summ["cpu_time_secs"]})
    df = pd.DataFrame(per_run).merge(st, left_on="run_id", right_index=True)
    return _pandas_finish(pd, df.to_dict("records"))


# ----------------------------------------------------------------------------- timing


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/denet-bench-summarize")
    a = ap.parse_args(argv)

    generate(a.dir, a.runs, a.samples, a.children)
    from denet.summaries import summarize

    pq_files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(a.dir, "parquet")) for f in fs)
    js_files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(a.dir, "jsonl")) for f in fs)
    tree_rows = a.runs * a.samples
    rows = tree_rows * (2 + a.children)
    print(f"\n{a.runs} runs x {a.samples} samples x {2 + a.children} rows = {rows:,} rows ({tree_rows:,} tree rows); "
          f"on disk: Parquet {_du(os.path.join(a.dir, 'parquet')) / 1e6:.0f} MB, "
          f"JSONL {_du(os.path.join(a.dir, 'jsonl')) / 1e6:.0f} MB, "
          f"dataset {_du(os.path.join(a.dir, 'dataset')) / 1e6:.0f} MB; best (median) of {a.repeat}\n")
    try:
        import pandas  # noqa: F401

        have_pandas = True
    except ImportError:
        have_pandas = False
        print("pandas is not installed: no baseline (pip install pandas into the venv to get one)\n")

    cases = [
        ("per-run Parquet", lambda: summarize(os.path.join(a.dir, "parquet")), lambda: pandas_parquet(pq_files)),
        ("per-run JSONL", lambda: summarize(os.path.join(a.dir, "jsonl")), lambda: pandas_jsonl(js_files)),
        ("compacted dataset", lambda: summarize(os.path.join(a.dir, "dataset")),
         lambda: pandas_dataset(os.path.join(a.dir, "dataset"))),
    ]
    head = f"{'input':<18} {'denet s':>8} {'M rows/s':>9} {'M tree/s':>9}"
    if have_pandas:
        head += f" {'pandas s':>9} {'M rows/s':>9} {'denet/pandas':>13}"
    print(head)
    results = {}
    for name, ours, theirs in cases:
        best, med, df = timed(ours, a.repeat)
        assert df["runs"].sum() == a.runs, df
        line = f"{name:<18} {best:>8.3f} {rows / best / 1e6:>9.2f} {tree_rows / best / 1e6:>9.2f}"
        pbest = None
        if have_pandas:
            # one pass of the baseline when it is slow (the JSONL one takes minutes)
            pbest, _, g = timed(theirs, 1 if name == "per-run JSONL" else a.repeat)
            assert int(g["runs"].sum()) == a.runs
            line += f" {pbest:>9.3f} {rows / pbest / 1e6:>9.2f} {pbest / best:>12.1f}x"
        print(line + f"   (median {med:.3f} s)", flush=True)
        results[name] = (best, pbest)
    print()
    for name, target in (("per-run Parquet", 2e6), ("compacted dataset", 8e6)):
        best = results[name][0]
        rate = rows / best
        print(f"target {name}: >= {target / 1e6:.0f} M rows/s: {rate / 1e6:.1f} M rows/s "
              f"({'met' if rate >= target else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
