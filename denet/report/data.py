"""What the report shows, as small tables: built on :func:`denet.summaries.run_table` and
:func:`denet.summaries.group_table`, aggregated and capped with polars before anything is
embedded in a page or an image. polars is imported by the functions that need it; this module
is imported only by the ``report`` command."""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import readers, schema
from ..errors import InputError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["Caps", "Workflow", "distribution_data", "load", "run_series", "timeline_data"]

OnMessage = Callable[[str], None]
NONE_KEY = "(none)"


@dataclass
class Caps:
    """How much of a large input is embedded (see docs/report.md)."""

    series_runs: int = 50  # runs whose time series are embedded in the HTML report
    series_points: int = 1000  # points per run's series; longer series keep min and max per bucket
    table_runs: int = 2000  # rows of the runs table (the first runs by start time)
    timeline_runs: int = 5000  # bars of the timeline (the longest runs)
    strip_points: int = 200  # dots per group and metric in the distributions (spread over the ranks)
    groups: int = 40  # groups drawn in the distributions (those with the most CPU time); the table lists all


@dataclass
class Workflow:
    """The runs of a report and what was said while reading them."""

    runs: pl.DataFrame  # the run table plus: idx, group, name, status, start_ms, dur_s, interval_ms
    groups: pl.DataFrame  # the group table plus: group, requests (mem_mb, runtime) where labels carry them
    keys: list[str]
    entries: list  # readers.RunEntry, in the order of ``runs``
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _num_label(col: str):
    import polars as pl

    return pl.col(col).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def load(paths: Sequence[str] | str, by: str | Sequence[str] | None = None, *, skip_bad: bool = False,
         on_bad: OnMessage | None = None, on_note: OnMessage | None = None) -> Workflow:
    """Read the runs in ``paths`` (files, directories, globs) into a :class:`Workflow`."""
    import polars as pl

    from ..summaries import group_table, run_table

    skipped: list[str] = []
    notes: list[str] = []

    def bad(msg: str) -> None:
        skipped.append(msg)
        if on_bad is not None:
            on_bad(msg)

    def note(msg: str) -> None:
        notes.append(msg)
        if on_note is not None:
            on_note(msg)

    plist = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    entries: list[readers.RunEntry] = []
    runs = run_table(plist, skip_bad=skip_bad, on_bad=bad, on_note=note, entries_out=entries)
    if runs.height == 0:
        where = ", ".join(map(str, plist))
        raise InputError(f"no runs found in {where}" + (f" ({len(skipped)} files skipped)" if skipped else ""))
    groups = group_table(runs, by)
    keys = [c for c in groups.columns if c not in schema.table_names_of("group")]

    def key_expr():
        return pl.concat_str([pl.col(k).cast(pl.String).fill_null(NONE_KEY) for k in keys], separator=" / ")

    intervals = [_int((e.metadata or {}).get("interval_ms")) for e in entries]
    names = _names(entries)
    runs = runs.with_columns(
        pl.Series("idx", range(runs.height), dtype=pl.Int64),
        key_expr().alias("group"),
        pl.Series("name", names, dtype=pl.String),
        pl.Series("interval_ms", intervals, dtype=pl.Int64),
        pl.coalesce([pl.col("wall_time_secs"), pl.col("total_time_secs")]).alias("dur_s"),
    )
    runs = runs.with_columns(
        pl.when(~pl.col("complete")).then(pl.lit("cut short"))
        .when(pl.col("failed")).then(pl.lit("failed"))
        .when(pl.col("exit_code").is_null()).then(pl.lit("no exit code"))
        .otherwise(pl.lit("ok")).alias("status"),
        pl.when(pl.col("complete") & pl.col("interval_ms").is_not_null() & pl.col("dur_s").is_not_null()
                & (pl.col("dur_s") * 1000.0 < pl.col("interval_ms")))
        .then(True).otherwise(False).alias("short"),
    )
    groups = groups.with_columns(key_expr().alias("group"))
    req = []
    for label, name in (("mem_mb", "req_mem_mb"), ("runtime", "req_runtime_min")):
        if label in runs.columns:
            req.append(_num_label(label).max().alias(name))
    if req:
        groups = groups.join(runs.group_by("group").agg(req), on="group", how="left")
    return Workflow(runs=runs, groups=groups, keys=keys, entries=entries,
                    files=len({e.path for e in entries}), skipped=skipped, notes=notes)


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _names(entries: list) -> list[str]:
    """A short name per run: the file's base name (with the row or run id where a file holds many)."""
    per_file = Counter(e.path for e in entries)
    out = []
    for e in entries:
        base = os.path.basename(os.path.normpath(e.path)) or e.path
        if per_file[e.path] > 1:
            base = f"{base} #{e.run_id[:8]}"
        out.append(base)
    return out


# ------------------------------------------------------------------------------- header facts


def capabilities(entries: Iterable) -> list[dict]:
    """Per optional collector: in how many runs it was on, off, and the most common reason it was off."""
    on: Counter = Counter()
    off: Counter = Counter()
    reasons: dict[str, Counter] = {}
    for e in entries:
        caps = (e.metadata or {}).get("capabilities")
        if not isinstance(caps, dict):
            continue
        for name, c in caps.items():
            if not isinstance(c, dict):
                continue
            if c.get("available"):
                on[name] += 1
            else:
                off[name] += 1
                r = c.get("reason")
                if isinstance(r, str) and r:
                    reasons.setdefault(name, Counter())[r] += 1
    out = []
    for name in sorted(set(on) | set(off)):
        rs = reasons.get(name)
        out.append({"name": name, "on": on[name], "off": off[name],
                    "reason": rs.most_common(1)[0][0] if rs else None})
    return out


def machines(entries: Iterable) -> list[dict]:
    """The machines of the runs' env records: host, kernel, CPU model, logical CPUs, and run counts."""
    seen: dict[tuple, dict] = {}
    for e in entries:
        env = e.env
        if not isinstance(env, dict):
            continue
        lscpu = env.get("lscpu") if isinstance(env.get("lscpu"), dict) else {}
        parts = [lscpu.get(k) for k in ("sockets", "cores_per_socket", "threads_per_core")]
        cpus = None
        if all(isinstance(p, int) for p in parts):
            cpus = parts[0] * parts[1] * parts[2]
        numa = env.get("numa") if isinstance(env.get("numa"), dict) else {}
        key = (env.get("host"), env.get("kernel"), lscpu.get("model"), cpus)
        m = seen.get(key)
        if m is None:
            m = seen[key] = {"host": env.get("host"), "kernel": env.get("kernel"), "model": lscpu.get("model"),
                             "cpus": cpus, "topology": parts if cpus else None, "numa_nodes": numa.get("nodes"),
                             "affinity": env.get("affinity_inherited"), "runs": 0}
        m["runs"] += 1
    return sorted(seen.values(), key=lambda m: -m["runs"])


def versions(entries: Iterable) -> list[str]:
    return sorted({v for e in entries if isinstance(v := (e.metadata or {}).get("denet_version"), str)})


def intervals(entries: Iterable) -> list[tuple[int, int]]:
    out = set()
    for e in entries:
        m = e.metadata or {}
        a, b = _int(m.get("interval_ms")), _int(m.get("max_interval_ms"))
        if a is not None:
            out.add((a, b if b is not None else a))
    return sorted(out)


# ------------------------------------------------------------------------------- distributions

# (column of the run table, panel title, unit the values are shown in, divisor from the column's unit)
def dist_metrics(runs: pl.DataFrame) -> list[tuple[str, str, str, float]]:
    """The metrics drawn per group: wall time, effective cores, peak memory, I/O, and GPU columns
    when the run table has them."""
    out = [("wall_time_secs", "Wall time", "s", 1.0), ("cores", "Effective cores (CPU s / wall s)", "cores", 1.0),
           ("peak_mem_rss_kb", "Peak memory (tree RSS, sampled)", "MiB", 1024.0)]
    disk = _nonzero(runs, "total_disk_read_bytes") or _nonzero(runs, "total_disk_write_bytes")
    if disk:
        out.append(("_io", "I/O: disk read + written", "MiB", 1024.0 * 1024.0))
    else:
        out.append(("_io", "I/O: read() + write() bytes (no block-layer bytes recorded)", "MiB", 1024.0 * 1024.0))
    for col, title, unit, div in _GPU_METRICS:
        if col in runs.columns and runs[col].null_count() < runs.height:
            out.append((col, title, unit, div))
    return out


_GPU_METRICS = (("peak_gpu_tree_memory_bytes", "GPU memory of the tree (peak, sampled)", "MiB", float(1 << 20)),
                ("max_gpu_utilization_pct", "GPU utilisation (busiest GPU, max, sampled)", "%", 1.0))


def _nonzero(runs: pl.DataFrame, col: str) -> bool:
    if col not in runs.columns:
        return False
    s = runs[col].drop_nulls()
    return bool(s.len()) and bool((s > 0).any())


def _io_expr(runs: pl.DataFrame):
    import polars as pl

    disk = _nonzero(runs, "total_disk_read_bytes") or _nonzero(runs, "total_disk_write_bytes")
    a, b = (("total_disk_read_bytes", "total_disk_write_bytes") if disk
            else ("total_syscall_read_bytes", "total_syscall_write_bytes"))
    cols = [pl.col(c).cast(pl.Float64) for c in (a, b) if c in runs.columns]
    if not cols:
        return pl.lit(None, pl.Float64)
    return pl.sum_horizontal(cols).alias("_io") if len(cols) > 1 else cols[0].alias("_io")


def group_order(wf: Workflow, limit: int | None = None) -> list[str]:
    """Groups by total CPU time (then runs, then name), at most ``limit``."""
    import polars as pl

    g = wf.runs.group_by("group").agg(pl.col("cpu_time_secs").fill_null(0).sum().alias("_cpu"),
                                      pl.col("dur_s").fill_null(0).sum().alias("_dur"),
                                      pl.len().alias("_n"))
    g = g.sort(["_cpu", "_dur", "_n", "group"], descending=[True, True, True, False])
    order = g["group"].to_list()
    return order if limit is None else order[:limit]


def distribution_data(wf: Workflow, caps: Caps) -> tuple[pl.DataFrame, pl.DataFrame, list[dict], list[str]]:
    """(box statistics, points, metrics, groups drawn): per group and metric the five-number
    summary over all runs, and at most ``caps.strip_points`` points spread evenly over the ranks
    (the smallest and the largest always among them)."""
    import polars as pl

    runs = wf.runs.with_columns(_io_expr(wf.runs))
    metrics = dist_metrics(wf.runs)
    shown = group_order(wf, caps.groups)
    runs = runs.filter(pl.col("group").is_in(shown))
    parts = []
    for col, title, unit, div in metrics:
        if col not in runs.columns:
            continue
        parts.append(runs.select(
            pl.col("group"), pl.col("idx"), pl.col("name"), pl.col("status"),
            pl.lit(title).alias("metric"), pl.lit(unit).alias("unit"),
            (pl.col(col).cast(pl.Float64) / div).alias("value"),
        ).filter(pl.col("value").is_not_null() & pl.col("value").is_finite()))
    long = pl.concat(parts) if parts else pl.DataFrame(
        schema={"group": pl.String, "idx": pl.Int64, "name": pl.String, "status": pl.String, "metric": pl.String,
                "unit": pl.String, "value": pl.Float64})
    # a metric spanning more than two decades is drawn on a log scale (without its zeros)
    span = long.group_by("metric").agg(pl.col("value").filter(pl.col("value") > 0).min().alias("lo"),
                                       pl.col("value").max().alias("hi"))
    log = {m for m, lo, hi in span.iter_rows() if lo is not None and hi is not None and hi / lo >= 100.0}
    long = long.filter(~pl.col("metric").is_in(list(log)) | (pl.col("value") > 0))
    over = ["group", "metric"]
    box = long.group_by(over).agg(
        pl.len().alias("n"), pl.col("value").min().alias("min"),
        pl.col("value").quantile(0.25, interpolation="linear").alias("q1"),
        pl.col("value").median().alias("median"),
        pl.col("value").quantile(0.75, interpolation="linear").alias("q3"),
        pl.col("value").max().alias("max"), pl.col("unit").first().alias("unit"),
    ).sort(over)
    cap = max(2, caps.strip_points)
    rank = pl.col("value").rank("ordinal").over(over)
    n = pl.len().over(over)
    keep = (n <= cap) | (rank == 1) | (rank == n) | (
        ((rank * cap) // n) != (((rank - 1) * cap) // n))
    pts = long.filter(keep).with_columns(
        (((pl.col("idx") * 2654435761) % 1000).cast(pl.Float64) / 1000.0 - 0.5).alias("jitter"))
    bounds = {m: (lo, hi) for m, lo, hi in span.iter_rows()}
    used = [{"column": c, "title": t, "unit": u, "log": t in log, "ticks": _decades(*bounds[t]) if t in log else None}
            for c, t, u, _d in metrics if c in runs.columns]
    return box, pts.sort(["metric", "group", "idx"]), used, shown


def _decades(lo: float, hi: float) -> list[float]:
    """Powers of ten (and 3 x them when there are few) from below ``lo`` to above ``hi``: the ticks of a log axis."""
    import math

    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    out = [10.0 ** k for k in range(a, b + 1)]
    if b - a <= 3:
        out = sorted(out + [3 * 10.0 ** k for k in range(a, b)])
    return out


# ------------------------------------------------------------------------------- timeline


def timeline_data(wf: Workflow, caps: Caps) -> tuple[pl.DataFrame, int, int]:
    """Bars of the timeline: runs with a start time, in lanes (a run takes the first lane free at
    its start). Returns (bars, runs left out by the cap, runs without a start time)."""
    import polars as pl

    r = wf.runs.filter(pl.col("t0_ms").is_not_null())
    no_start = wf.runs.height - r.height
    cut = 0
    if r.height > caps.timeline_runs:
        cut = r.height - caps.timeline_runs
        r = r.sort("dur_s", descending=True, nulls_last=True).head(caps.timeline_runs)
    r = r.with_columns(pl.col("dur_s").fill_null(0.0)).sort(["t0_ms", "idx"])
    if r.height == 0:
        return r.with_columns(pl.lit(0, pl.Int64).alias("lane")), cut, no_start
    t_first = r["t0_ms"].min()
    starts = r["t0_ms"].to_list()
    durs = r["dur_s"].to_list()
    free: list[tuple[float, int]] = []
    lanes = []
    n_lanes = 0
    for s, d in zip(starts, durs, strict=True):
        end = s + max(d, 0.0) * 1000.0
        if free and free[0][0] <= s:
            _, lane = heapq.heappop(free)
        else:
            lane = n_lanes
            n_lanes += 1
        lanes.append(lane)
        heapq.heappush(free, (end, lane))
    bars = r.with_columns(
        pl.Series("lane", lanes, dtype=pl.Int64),
        (pl.col("t0_ms") - t_first).alias("start"),
        (pl.col("t0_ms") - t_first + (pl.col("dur_s") * 1000.0).round(0).cast(pl.Int64)).alias("end"),
    )
    return bars, cut, no_start


# ------------------------------------------------------------------------------- time series

SERIES_COLUMNS = ("t", "cpu", "rss", "rd", "wr", "srd", "swr", "thr", "prc")
GPU_COLUMNS = ("gmem", "gutil", "gsm")  # tree GPU memory (bytes), busiest GPU %, tree SM % (100 = one GPU)
_COUNTERS = {"rd": "disk_read_bytes", "wr": "disk_write_bytes", "srd": "syscall_read_bytes",
             "swr": "syscall_write_bytes"}


def _tree_rows(entry) -> pl.DataFrame | None:
    """The tree (or sample) rows of one run, in time order; None for inputs without rows."""
    import polars as pl

    fmt = entry.format
    want = ["ts_ms", "cpu_usage", "mem_rss_kb", "thread_count", "process_count", *_COUNTERS.values()]
    if fmt in ("snakemake-tsv", "snakemake-jsonl"):
        return None
    df = None
    if fmt in ("denet-jsonl", "rust-jsonl"):
        try:
            df = readers.scan_ndjson_tree_rows([entry.path], columns=want).collect()
        except readers.read_failures():  # polars' reader refuses something unusual: read it record by record
            df = None
    if df is None:
        if fmt == "denet-dataset":
            src = entry.source.split("#", 1)[0]
            lf = readers.scan_rows(src, fmt).filter(pl.col("run_id") == entry.run_id)
        else:
            lf = readers.scan_rows(entry.path, fmt)
        lf = lf.filter(pl.col("scope").is_in(["tree", "sample"]))
        names = lf.collect_schema().names()
        df = lf.select([c for c in want if c in names]).collect()
    for c in want:
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.Int64).alias(c))
    return df.filter(pl.col("ts_ms").is_not_null()).sort("ts_ms", maintain_order=True)


def _gpu_on(entry) -> bool:
    caps = (entry.metadata or {}).get("capabilities")
    g = caps.get("gpu") if isinstance(caps, dict) else None
    return isinstance(g, dict) and bool(g.get("available"))


def _gpu_values(g) -> tuple:
    if not isinstance(g, dict):
        return None, None, None
    mem = g.get("memory_bytes")
    utils = [d.get("utilization_pct") for d in g.get("devices") or [] if isinstance(d, dict)]
    utils = [u for u in utils if isinstance(u, int | float)]
    sm = g.get("sm_utilization_pct")
    return (mem if isinstance(mem, int | float) else None, max(utils) if utils else None,
            sm if isinstance(sm, int | float) else None)


def _gpu_rows(entry) -> pl.DataFrame | None:
    """The tree's GPU values per record (the GPU collector's ``gpu`` objects), for runs that had
    the collector on; None otherwise."""
    import polars as pl

    if not _gpu_on(entry):
        return None
    ts: list = []
    vals: list = []
    fmt = entry.format
    if fmt in ("denet-jsonl", "rust-jsonl", "denet-json"):
        for kind, obj in readers.iter_records(entry.path, on_bad_line=lambda _m: None):
            if kind == "tree" and isinstance(obj.get("aggregated"), dict):
                ts.append(obj.get("ts_ms"))
                vals.append(_gpu_values(obj["aggregated"].get("gpu")))
            elif kind == "sample":
                ts.append(obj.get("ts_ms"))
                vals.append(_gpu_values(obj.get("gpu")))
    else:
        src = entry.source.split("#", 1)[0] if fmt == "denet-dataset" else entry.path
        lf = readers.scan_rows(src, fmt)
        if fmt == "denet-dataset":
            lf = lf.filter(pl.col("run_id") == entry.run_id)
        if "gpu" not in lf.collect_schema().names():
            return None
        rows = lf.filter(pl.col("scope").is_in(["tree", "sample"])).select("ts_ms", "gpu").collect()
        for t, g in rows.iter_rows():
            import json

            try:
                obj = json.loads(g) if isinstance(g, str) else g
            except (ValueError, RecursionError):
                obj = None
            ts.append(t)
            vals.append(_gpu_values(obj))
    if not any(v != (None, None, None) for v in vals):
        return None
    return pl.DataFrame({"ts_ms": ts, "gmem": [v[0] for v in vals], "gutil": [v[1] for v in vals],
                         "gsm": [v[2] for v in vals]},
                        schema={"ts_ms": pl.Int64, "gmem": pl.Float64, "gutil": pl.Float64, "gsm": pl.Float64}
                        ).unique(subset="ts_ms", keep="first", maintain_order=True)


def run_series(entry, max_points: int) -> dict | None:
    """One run's time series, columnar: ``t`` (ms since the run started), ``cpu`` (%), ``rss``
    (KiB), I/O rates in bytes/s (``rd``/``wr`` block layer, ``srd``/``swr`` read()/write()),
    ``thr`` threads, ``prc`` processes, and for runs with GPU values ``gmem`` (bytes), ``gutil``
    and ``gsm`` (%). Longer than ``max_points``: the time range is cut into ``max_points / 2``
    buckets and each keeps its smallest and its largest values (peaks survive). None when the
    input has no rows (Snakemake benchmark files)."""
    import polars as pl

    df = _tree_rows(entry)
    if df is None:
        return None
    gpu = _gpu_rows(entry) if df.height else None
    columns = SERIES_COLUMNS + (GPU_COLUMNS if gpu is not None else ())
    if df.height == 0:
        return {c: [] for c in columns} | {"n": 0, "shown": 0, "gpu": False}
    if gpu is not None:
        df = df.join(gpu, on="ts_ms", how="left", maintain_order="left")
    t0 = _int((entry.metadata or {}).get("t0_ms"))
    first = df["ts_ms"][0]
    base = t0 if t0 is not None and t0 <= first else first
    dt = pl.col("ts_ms").diff().cast(pl.Float64)
    exprs = [(pl.col("ts_ms") - base).alias("t"), pl.col("cpu_usage").cast(pl.Float64).fill_null(0.0).alias("cpu"),
             pl.col("mem_rss_kb").cast(pl.Int64).fill_null(0).alias("rss"),
             pl.col("thread_count").cast(pl.Int64).fill_null(0).alias("thr"),
             pl.col("process_count").cast(pl.Int64).fill_null(1).alias("prc")]
    if gpu is not None:
        exprs += [pl.col(c) for c in GPU_COLUMNS]
    for short, col in _COUNTERS.items():
        d = pl.col(col).cast(pl.Float64).diff().clip(lower_bound=0.0)  # a child that ends takes its bytes along
        exprs.append(pl.when(dt > 0).then(d / dt * 1000.0).otherwise(0.0).fill_null(0.0).alias(short))
    s = df.select(exprs)
    n = s.height
    limit = max(4, max_points)
    if n > limit:
        buckets = limit // 2
        span = max(1, s["t"].max() - s["t"].min())
        s = s.with_columns(((pl.col("t") - s["t"].min()) * buckets // (span + 1)).alias("_b"))
        vals = [c for c in columns if c != "t"]
        lo = s.group_by("_b").agg(pl.col("t").min(), *[pl.col(c).min() for c in vals]).with_columns(
            pl.lit(0).alias("_o"))
        hi = s.group_by("_b").agg(pl.col("t").max(), *[pl.col(c).max() for c in vals]).with_columns(
            pl.lit(1).alias("_o"))
        s = pl.concat([lo, hi]).sort(["_b", "_o"]).unique(subset=["_b", "t"], keep="last", maintain_order=True)
        s = s.drop("_b", "_o")
    s = s.with_columns(pl.col("cpu").round(1), *[pl.col(c).round(0).cast(pl.Int64) for c in _COUNTERS])
    if gpu is not None:
        s = s.with_columns(pl.col("gmem").round(0).cast(pl.Int64), pl.col("gutil").round(1), pl.col("gsm").round(1))
    out: dict = {c: s[c].to_list() for c in columns}
    out["n"] = n
    out["shown"] = s.height
    out["gpu"] = gpu is not None
    return out


def series_columns(series: dict) -> dict:
    """The data columns of a :func:`run_series` result."""
    return {c: series[c] for c in SERIES_COLUMNS + (GPU_COLUMNS if series.get("gpu") else ())}


def series_runs(wf: Workflow, cap: int) -> list[int]:
    """Which runs get their series embedded: the longest run of each group (groups by CPU time),
    then the failed and cut-short runs, then the longest of the rest; at most ``cap``."""
    import polars as pl

    r = wf.runs.filter(~pl.col("format").is_in(["snakemake-tsv", "snakemake-jsonl"]))
    if cap <= 0 or r.height == 0:
        return []
    chosen: list[int] = []
    seen: set[int] = set()

    def take(ids) -> None:
        for i in ids:
            if len(chosen) >= cap:
                return
            if i not in seen:
                seen.add(i)
                chosen.append(i)

    by_len = r.sort(["dur_s", "idx"], descending=[True, False], nulls_last=True)
    first = by_len.unique(subset="group", keep="first", maintain_order=True)
    order = {g: k for k, g in enumerate(group_order(wf))}
    take(sorted(first["idx"].to_list(), key=lambda i: order.get(wf.runs["group"][i], 0)))
    take(by_len.filter(pl.col("status").is_in(["failed", "cut short"]))["idx"].to_list())
    take(by_len["idx"].to_list())
    return chosen
