"""Per-run and per-group resource summaries over many runs, with polars.

``summarize(paths)`` is what ``denet summarize`` prints and what the Python API exposes as
``denet.summarize``. Files are found by :func:`denet.readers.find_inputs`; each file's run
records (metadata, env, summary) come from its footer or its first and last lines; the sampled
per-run figures come from the tree (or sample) rows, read for all files of one format in one
polars query. The column names are those of the ``run`` and ``group`` tables declared in
``schemas/records.json`` (see docs/schema.md); they are a contract for scripts.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from . import readers, schema
from .atomic import replace_with_bytes
from .errors import InputError, UsageError
from .summary import EXACT_FIELDS

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "OUTPUT_FORMATS",
    "by_command",
    "default_by",
    "group_table",
    "profile_yaml",
    "render_table",
    "run_table",
    "snakemake_tsv",
    "suggest",
    "summarize",
    "write_output",
]

OUTPUT_FORMATS = ("table", "csv", "json", "parquet", "snakemake-tsv", "nextflow-trace")
# Formats with one row per run whatever --per-run says.
PER_RUN_FORMATS = ("snakemake-tsv", "nextflow-trace")

Progress = Callable[[int, int], None]
OnBad = Callable[[str], None]

# Summary fields that are sampled (recomputed from rows when a run has no summary record).
_SUMMARY = [f for f in schema.fields("summary") if f.name != "exact"]
# GPU figures come from the summary record only (a run cut short has none here; `denet stats` recomputes
# them from the records). Their columns are left out of both tables when no run has GPU values.
_GPU = tuple(f.name for f in _SUMMARY if "gpu" in f.name)
# The eBPF figures (--enable-ebpf) likewise: from the summary record only, columns left out when no run has them.
_EBPF = ("offcpu_secs", "offcpu_io_secs", "offcpu_source", "syscalls_total", "behavior", "ebpf")
_SAMPLED = [f.name for f in _SUMMARY if f.name not in EXACT_FIELDS and f.name not in _GPU and f.name not in _EBPF]
_ROW_ONLY = ("max_cpu_usage", "peak_mem_vms_kb")  # per-run figures that only rows (or Snakemake) give


def _row_stats_exprs() -> dict:
    """How each sampled figure is computed from a run's tree (or sample) rows: the same rules as
    :class:`denet.summary.SummaryAccumulator` (counters: the last row's; missing numbers: 0)."""
    import polars as pl

    c = pl.col
    return {
        "total_time_secs": ((c("ts_ms").max() - c("ts_ms").min()) / 1000.0),
        "sample_count": pl.len().cast(pl.Int64),
        "max_processes": c("process_count").fill_null(1).max(),
        "max_threads": c("thread_count").fill_null(0).max(),
        "total_disk_read_bytes": c("disk_read_bytes").last().fill_null(0),
        "total_disk_write_bytes": c("disk_write_bytes").last().fill_null(0),
        "total_syscall_read_bytes": c("syscall_read_bytes").last().fill_null(0),
        "total_syscall_write_bytes": c("syscall_write_bytes").last().fill_null(0),
        "total_sys_net_rx_bytes": c("sys_net_rx_bytes").last().fill_null(0),
        "total_sys_net_tx_bytes": c("sys_net_tx_bytes").last().fill_null(0),
        "peak_mem_rss_kb": c("mem_rss_kb").fill_null(0).max(),
        "avg_cpu_usage": c("cpu_usage").fill_null(0.0).mean(),
        "max_cpu_usage": c("cpu_usage").max(),
        "peak_mem_vms_kb": c("mem_vms_kb").max(),
    }


_STAT_COLUMNS = ("ts_ms", "cpu_usage", "mem_rss_kb", "mem_vms_kb", "thread_count", "process_count",
                 "disk_read_bytes", "disk_write_bytes", "syscall_read_bytes", "syscall_write_bytes",
                 "sys_net_rx_bytes", "sys_net_tx_bytes")
# What a run with a summary record still needs from its rows, and the columns that takes.
_LIGHT = {"max_cpu_usage": ("cpu_usage",), "peak_mem_vms_kb": ("mem_vms_kb",)}


def _columns(full: bool) -> tuple[str, ...]:
    return _STAT_COLUMNS if full else tuple(c for cols in _LIGHT.values() for c in cols)


def _stats(lf, full: bool):
    """Per ``run_id``: the sampled figures of its tree/sample rows (row order is time order).
    ``full`` for runs without a summary record; else only what the summary record lacks."""
    import polars as pl

    exprs = _row_stats_exprs()
    names = list(exprs) if full else list(_LIGHT)
    out = lf.group_by("run_id").agg([exprs[k].alias("_r_" + k) for k in names])
    if full:
        out = out.with_columns(pl.col("_r_sample_count").cast(pl.Int64))
    return out


def _tree_filter():
    import polars as pl

    return pl.col("scope").is_in(["tree", "sample"])


def _select(lf, full: bool, run_id=None):
    import polars as pl

    rid = pl.col("run_id") if run_id is None else run_id.alias("run_id")
    return lf.select(rid, *[pl.col(c) for c in _columns(full)])


# ------------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, skip_bad: bool, on_bad: OnBad | None) -> None:
        self.skip_bad = skip_bad
        self.on_bad = on_bad
        self.bad_sources: set[str] = set()

    def bad(self, exc: InputError, source: str | None = None) -> None:
        if not self.skip_bad:
            raise exc
        if source is not None:
            self.bad_sources.add(source)
        if self.on_bad is not None:
            self.on_bad(str(exc))


def _split(files: list[tuple[str, readers.RunEntry]]) -> list[tuple[bool, list]]:
    """Files of complete runs (light statistics) and of runs cut short (full statistics)."""
    light = [(f, e) for f, e in files if e.summary is not None]
    full = [(f, e) for f, e in files if e.summary is None]
    return [(False, light), (True, full)]


def _parquet_stats(files: list[tuple[str, readers.RunEntry]], rd: _Reader) -> list:
    import polars as pl

    def scan(fs, full):
        lf = pl.scan_parquet(fs, glob=False).filter(_tree_filter())
        return _stats(_select(lf, full), full)

    out = []
    for full, group in _split(files):
        if not group:
            continue
        try:
            out.append(scan([f for f, _ in group], full).collect())
        except readers.read_failures():  # a damaged file among many: find it
            for f, _e in group:
                try:
                    out.append(scan([f], full).collect())
                except readers.read_failures() as exc:
                    rd.bad(InputError(f"{f}: cannot read the Parquet rows: {readers._short(exc)}"), f)
    return out


def _ndjson_stats(files: list[tuple[str, readers.RunEntry]], rd: _Reader) -> list:
    import polars as pl

    def scan(group, full):
        ids = {f: e.run_id for f, e in group}
        lf = readers.scan_ndjson_tree_rows([f for f, _ in group], columns=_columns(full))
        rid = pl.col("path").replace_strict(ids, return_dtype=pl.String)
        return _stats(_select(lf, full, rid), full)

    out = []
    for full, group in _split(files):
        if not group:
            continue
        try:
            out.append(scan(group, full).collect())
        except readers.read_failures():
            for f, e in group:
                try:
                    out.append(scan([(f, e)], full).collect())
                except readers.read_failures():
                    try:  # the line-by-line reader names the file and line of what is wrong
                        out.append(_python_stats(f, None, e))
                    except InputError as exc:
                        rd.bad(exc, f)
    return out


def _python_stats(path: str, fmt: str | None, entry: readers.RunEntry):
    import polars as pl

    _rid, tree, _procs = readers.row_tables(path, fmt)
    lf = pl.from_arrow(tree).lazy()
    return _stats(_select(lf, True, pl.lit(entry.run_id)), True).collect()


def _dataset_stats(path: str, entries: list[readers.RunEntry], rd: _Reader) -> list:
    import polars as pl

    try:
        parts = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(path, "rows")) for f in fs
                       if f.endswith(".parquet") and not f.startswith("."))
        if not parts:
            return []
        lf = pl.scan_parquet(parts, glob=False, hive_partitioning=False).filter(_tree_filter())
        out = [_stats(_select(lf, False), False).collect()]
        cut = [e.run_id for e in entries if e.summary is None]
        if cut:
            full = _stats(_select(lf.filter(pl.col("run_id").is_in(cut)), True), True).collect()
            out[0] = out[0].filter(~pl.col("run_id").is_in(cut))
            out.append(full)
        return out
    except readers.read_failures() as exc:
        rd.bad(InputError(f"{path}: cannot read the dataset's rows: {readers._short(exc)}"), path)
        return []


def _command(meta: dict | None) -> str | None:
    cmd = (meta or {}).get("cmd")
    if isinstance(cmd, list) and cmd:
        return shlex.join(str(x) for x in cmd)
    if isinstance(cmd, str) and cmd:
        return cmd
    return None


def _label_columns(entries: list) -> tuple[list[str], dict[str, str]]:
    """Label keys found in any run (``rule`` first) and the column each becomes."""
    keys: list[str] = []
    seen: set[str] = set()
    for e in entries:
        for k in e.labels:
            if k not in seen:
                seen.add(k)
                keys.append(str(k))
    keys.sort(key=lambda k: (k != "rule", k))
    static = set(schema.table_names_of("run"))
    rename = {k: (f"label_{k}" if k in static else k) for k in keys}
    return keys, rename


def _text(v) -> str | None:
    return v if isinstance(v, str) and v else None


def run_table(paths: str | os.PathLike | Iterable[str | os.PathLike], *, skip_bad: bool = False,
              on_bad: OnBad | None = None, progress: Progress | None = None,
              on_note: OnBad | None = None, entries_out: list | None = None,
              jobs: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> pl.DataFrame:
    """One row per run (the ``run`` table of docs/schema.md) for files, directories and globs.

    A bad file raises :class:`~denet.errors.InputError` naming it; with ``skip_bad`` it is passed
    to ``on_bad`` (path and reason) and left out. ``progress(done, total)`` is called as files
    are opened. A run found in two files (the same run id) is counted once and reported to
    ``on_note``. ``entries_out``, when given, receives the runs' :class:`~denet.readers.RunEntry`
    objects (metadata, env, summary records), in the order of the rows. ``jobs``: job files of
    denet's Snakemake logger plugin; each run matched to a job gets the job's rule, jobid, wildcards,
    threads and numeric resources as labels where it lacks them (:mod:`denet.jobs`).
    """

    rd = _Reader(skip_bad, on_bad)
    files = readers.find_inputs(paths)
    entries: list[readers.RunEntry] = []
    by_format: dict[str, list] = {"parquet": [], "ndjson": [], "python": [], "dataset": []}
    seen: dict[str, str] = {}
    total = len(files)
    for i, f in enumerate(files):
        if progress is not None:
            progress(i, total)
        try:
            fmt = readers.detect_format(f)
            es = readers.entries_of(f, fmt)
        except InputError as exc:
            rd.bad(exc)
            continue
        fresh = []
        for e in es:
            if e.run_id in seen:  # the same run in two files (say, --out run.parquet --json > run.jsonl)
                if on_note is not None:
                    on_note(f"{e.path}: the same run as {seen[e.run_id]}, counted once")
                continue
            seen[e.run_id] = e.path
            fresh.append(e)
        entries.extend(fresh)
        if not fresh:
            continue
        if fmt == "denet-parquet":
            by_format["parquet"].append((f, fresh[0]))
        elif fmt in ("denet-jsonl", "rust-jsonl"):
            by_format["ndjson"].append((f, fresh[0]))
        elif fmt in ("denet-journal", "denet-json"):
            by_format["python"].append((f, fmt, fresh[0]))
        elif fmt == "denet-dataset":
            by_format["dataset"].append((f, fresh))
    if progress is not None:
        progress(total, total)

    stats: list = []
    if by_format["parquet"]:
        stats += _parquet_stats(by_format["parquet"], rd)
    if by_format["ndjson"]:
        # polars expands glob characters in JSON-lines paths: such names go through the line reader
        plain = [(f, e) for f, e in by_format["ndjson"] if not _GLOBBY.search(f)]
        by_format["python"] += [(f, None, e) for f, e in by_format["ndjson"] if _GLOBBY.search(f)]
        if plain:
            stats += _ndjson_stats(plain, rd)
    for f, fmt, e in by_format["python"]:
        try:
            stats.append(_python_stats(f, fmt, e))
        except InputError as exc:
            rd.bad(exc, f)
    for d, es in by_format["dataset"]:
        stats += _dataset_stats(d, es, rd)
    if rd.bad_sources:
        entries = [e for e in entries if e.path not in rd.bad_sources and e.source.split("#")[0] not in rd.bad_sources]
    if jobs:  # the job records of the Snakemake logger plugin: rule, wildcards, threads, resources as labels
        from .jobs import annotate, read_jobs

        job_list = read_jobs(jobs)
        matched, without = annotate(entries, job_list)
        if on_note is not None:
            on_note(f"--jobs: {matched} of {len(entries)} runs matched to {len(job_list)} jobs"
                    + (f"; {without} jobs with a command have no run file" if without else ""))
    if entries_out is not None:
        entries_out.extend(entries)
    return _drop_absent_gpu(_assemble(entries, stats))


_NUM = (int, float)
_GLOBBY = re.compile(r"[*?\[\]{}]")


def _num(v):
    return v if isinstance(v, _NUM) and not isinstance(v, bool) else None


def _assemble(entries: list, stats: list):
    import polars as pl

    label_keys, rename = _label_columns(entries)
    label_cols = [rename[k] for k in label_keys]
    out_fields = schema.table_fields("run", labels=label_cols)
    dtypes = {f.name: schema.polars_dtype(f.type) for f in out_fields}

    metas = [e.metadata or {} for e in entries]
    summs = [e.summary or {} for e in entries]
    sampled = [e.sampled or {} for e in entries]
    cols: dict[str, list] = {
        "path": [e.path for e in entries],
        "format": [e.format for e in entries],
        "run_id": [e.run_id for e in entries],
        "command": [_command(m) for m in metas],
        "t0_ms": [_num(m.get("t0_ms")) for m in metas],
        "host": [_text(m.get("host")) or _text((e.env or {}).get("host")) for m, e in zip(metas, entries, strict=True)],
        "note": [_text(m.get("note")) for m in metas],
        "complete": [e.summary is not None for e in entries],
    }
    schema_in = {"path": pl.String, "format": pl.String, "run_id": pl.String, "command": pl.String,
                 "t0_ms": pl.Int64, "host": pl.String, "note": pl.String, "complete": pl.Boolean}
    labels = [e.labels for e in entries]
    for k in label_keys:
        cols[rename[k]] = [None if (v := lab.get(k)) is None else str(v) for lab in labels]
        schema_in[rename[k]] = pl.String
    for f in _SUMMARY:
        if f.type == "str":
            cols["_s_" + f.name] = [_text(x.get(f.name)) for x in summs]
        elif f.type.startswith("record:"):  # nested values: JSON text, as in every flat table
            cols["_s_" + f.name] = [json.dumps(v, separators=(",", ":")) if isinstance(v := x.get(f.name), dict)
                                    else None for x in summs]
        else:
            cols["_s_" + f.name] = [_num(x.get(f.name)) for x in summs]
        schema_in["_s_" + f.name] = dtypes.get(f.name) or schema.polars_dtype(f.type)
    for k in _ROW_ONLY:
        cols["_x_" + k] = [_num(x.get(k)) for x in sampled]
        schema_in["_x_" + k] = dtypes[k]
    runs = pl.DataFrame(cols, schema=schema_in, strict=False).with_row_index("_order")

    stat_names = list(_row_stats_exprs())
    empty = pl.DataFrame(schema={"run_id": pl.String, **{"_r_" + k: pl.Float64 for k in stat_names}})
    st = pl.concat([empty, *[x for x in stats if x.height]], how="diagonal_relaxed")
    st = st.unique(subset="run_id", keep="first")
    runs = runs.join(st, on="run_id", how="left").sort("_order")

    exprs = []
    for f in _SUMMARY:
        v = pl.col("_s_" + f.name)
        if f.name in _SAMPLED:
            v = pl.coalesce([v, pl.col("_r_" + f.name).cast(dtypes[f.name], strict=False)])
        exprs.append(v.cast(dtypes[f.name], strict=False).alias(f.name))
    for k in _ROW_ONLY:
        exprs.append(pl.coalesce([pl.col("_r_" + k).cast(dtypes[k], strict=False), pl.col("_x_" + k)]).alias(k))
    runs = runs.with_columns(exprs)
    wall, cpu = pl.col("wall_time_secs"), pl.col("cpu_time_secs")
    runs = runs.with_columns(
        pl.when(wall > 0).then(cpu / wall).otherwise(None).alias("cores"),
        (pl.col("exit_code").is_not_null() & (pl.col("exit_code") != 0)).alias("failed"),
    )
    threads_col = rename.get("threads")
    if threads_col is not None:
        th = pl.col(threads_col).str.strip_chars().cast(pl.Float64, strict=False)
        runs = runs.with_columns(pl.when(th > 0).then(pl.col("cores") / th).otherwise(None).alias("cpu_efficiency"))
    else:
        runs = runs.with_columns(pl.lit(None, pl.Float64).alias("cpu_efficiency"))
    return runs.select([pl.col(f.name).cast(dtypes[f.name], strict=False) for f in out_fields])


# ------------------------------------------------------------------------------- groups


def default_by(runs: pl.DataFrame) -> list[str]:
    """The ``rule`` label when any run has one, else the command."""
    if "rule" in runs.columns and runs["rule"].null_count() < runs.height:
        return ["rule"]
    return ["command"]


def _parse_by(by: str | Sequence[str] | None, runs) -> list[str]:
    if by is None:
        return default_by(runs)
    keys = [by] if isinstance(by, str) else list(by)
    out: list[str] = []
    for k in keys:
        out += [x.strip() for x in str(k).split(",") if x.strip()]
    if not out:
        raise UsageError("--by expects a label or column name")
    for k in out:
        if k not in runs.columns:
            if runs.height == 0:
                continue
            labels = [c for c in runs.columns if c not in schema.table_names_of("run")]
            raise UsageError(f"--by {k}: no run has a label or column of that name"
                             + (f" (labels: {', '.join(labels)})" if labels else " (the runs carry no labels)"))
    return out


def _stat_expr(f: schema.Field, runs):
    import polars as pl

    if f.source not in runs.columns:
        return pl.lit(None).alias(f.name)
    c = pl.col(f.source)
    if runs.schema[f.source] == pl.String:
        c = c.str.strip_chars().cast(pl.Float64, strict=False)
    st = f.stat
    if st == "mean":
        e = c.mean()
    elif st == "p95":
        e = c.quantile(0.95, interpolation="linear")
    elif st == "max":
        e = c.max()
    elif st == "min":
        e = c.min()
    elif st == "sum":
        e = pl.when(c.count() > 0).then(c.sum()).otherwise(None)
    elif st == "count":
        e = c.count()
    else:  # pragma: no cover - the declaration's stats are the ones above
        raise ValueError(f"unknown statistic {st!r} in the group table")
    return e.alias(f.name)


def group_table(runs: pl.DataFrame, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """One row per group of runs (the ``group`` table of docs/schema.md)."""
    import polars as pl

    keys = _parse_by(by, runs)
    for k in keys:
        if k not in runs.columns:
            runs = runs.with_columns(pl.lit(None, pl.String).alias(k))
    out_fields = schema.table_fields("group", key=keys)
    aggs = [pl.len().cast(pl.Int64).alias("runs"), pl.col("failed").sum().cast(pl.Int64).alias("failed"),
            (~pl.col("complete")).sum().cast(pl.Int64).alias("incomplete")]
    aggs += [_stat_expr(f, runs) for f in out_fields if f.stat is not None]
    g = runs.group_by(keys).agg(aggs).sort(keys, nulls_last=True)
    dt = {f.name: schema.polars_dtype(f.type) for f in out_fields if f.placeholder is None}
    return _drop_absent_gpu(g.select([pl.col(f.name).cast(dt[f.name], strict=False) if f.name in dt else pl.col(f.name)
                                      for f in out_fields]))


def _gpu_columns(names: tuple[str, ...] = _GPU) -> set[str]:
    """The run and group columns of GPU figures (or of the other summary-only ``names``)."""
    return set(names) | {f.name for f in schema.table_fields("group") if f.source in names}


def _drop_absent_gpu(df: pl.DataFrame) -> pl.DataFrame:
    """Without GPU values in any run, the GPU columns are left out (present only when some run has them);
    the eBPF columns likewise."""
    for names in (_GPU, _EBPF):
        cols = [c for c in df.columns if c in _gpu_columns(names)]
        if cols and df.select(cols).null_count().row(0) == (df.height,) * len(cols):
            df = df.drop(cols)
    return df


def summarize(paths: str | os.PathLike | Iterable[str | os.PathLike], by: str | Sequence[str] | None = None,
              per_run: bool = False, *, skip_bad: bool = False, on_bad: OnBad | None = None,
              progress: Progress | None = None, on_note: OnBad | None = None,
              jobs: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> pl.DataFrame:
    """Summaries of the runs in ``paths`` (files, directories searched recursively, globs):
    one row per group of ``by`` (default: the ``rule`` label, else the command), or one row per
    run with ``per_run``. Returns a polars DataFrame whose columns are the contract of
    docs/schema.md (tables ``group`` and ``run``). A ``by`` that names ``command`` (``"command"``,
    ``"rule,command"``) breaks the runs' process ledgers down by command name instead (table
    ``command_group``; runs without a ledger are counted in a note). ``jobs``: job files of denet's
    Snakemake logger plugin, joined to the runs (see :func:`run_table`)."""
    if not per_run and by_command(by):
        from .process_summaries import command_table, process_table

        procs = process_table(paths, skip_bad=skip_bad, on_bad=on_bad, progress=progress, on_note=on_note)
        if procs.height == 0:
            raise InputError("no process records found in " + ", ".join(
                map(str, [paths] if isinstance(paths, str | os.PathLike) else paths)))
        return command_table(procs, by)
    runs = run_table(paths, skip_bad=skip_bad, on_bad=on_bad, progress=progress, on_note=on_note, jobs=jobs)
    if runs.height == 0:
        raise InputError("no runs found in " + ", ".join(map(str, [paths] if isinstance(paths, str | os.PathLike)
                                                                else paths)))
    if per_run:
        return runs
    return group_table(runs, by)


def by_command(by: str | Sequence[str] | None) -> bool:
    """Whether the --by keys name ``command``: the per-command breakdown of the process ledger."""
    if by is None:
        return False
    keys = [by] if isinstance(by, str) else list(by)
    return any(x.strip() == "command" for k in keys for x in str(k).split(","))


# ------------------------------------------------------------------------------- suggestions


def suggest(groups: pl.DataFrame, *, by: Sequence[str] | None = None, mem_headroom: float = 1.2,
            runtime_headroom: float = 1.5) -> list[dict]:
    """Resources to request next time, per group: ``mem_mb`` = the largest peak (tree RSS or
    single-process high-water mark) × ``mem_headroom``; ``threads`` = the ceiling of the p95
    effective cores (at least 1); ``runtime`` (minutes) = the longest wall time ×
    ``runtime_headroom`` (at least 1). Groups without a key value are left out."""
    if by is None:
        by = [c for c in groups.columns if c not in schema.table_names_of("group")]
    out = []
    for r in groups.iter_rows(named=True):
        key = [r.get(k) for k in by]
        if any(v is None for v in key):
            continue
        peaks = [v for v in (r.get("peak_mem_rss_kb_max"), r.get("peak_process_rss_kb_max")) if v is not None]
        item: dict = {"key": "/".join(str(v) for v in key), "runs": r.get("runs")}
        if peaks:
            item["mem_mb"] = max(1, math.ceil(max(peaks) / 1024.0 * mem_headroom))
        wall = r.get("wall_time_secs_max")
        if wall is not None:
            item["runtime"] = max(1, math.ceil(wall * runtime_headroom / 60.0))
        cores = r.get("cores_p95")
        if cores is not None:
            item["threads"] = max(1, math.ceil(round(cores, 2)))
        out.append(item)
    return out


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_key(k: str) -> str:
    import re

    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", k) and k.lower() not in _YAML_WORDS:
        return k
    return json.dumps(k)


def profile_yaml(suggestions: list[dict], *, by: Sequence[str] = ("rule",), mem_headroom: float = 1.2,
                 runtime_headroom: float = 1.5, runs: int | None = None) -> str:
    """A Snakemake profile (``config.yaml``) fragment: ``set-resources`` (mem_mb, runtime in
    minutes) and ``set-threads`` per rule."""
    lines = ["# Snakemake profile from `denet summarize --suggest`"
             + (f": {runs} runs" if runs is not None else "") + f" in {len(suggestions)} groups.",
             f"# mem_mb: largest peak RSS x {mem_headroom:g}; runtime (minutes): longest wall time x "
             f"{runtime_headroom:g}; threads: ceiling of the p95 effective cores."]
    if list(by) != ["rule"]:
        lines.append(f"# Grouped by {', '.join(by)}, not by rule: rename the keys to rule names before use.")
    res = [s for s in suggestions if "mem_mb" in s or "runtime" in s]
    thr = [s for s in suggestions if "threads" in s]
    lines.append("set-resources:" + ("" if res else " {}"))
    for s in res:
        lines.append(f"  {_yaml_key(s['key'])}:")
        if "mem_mb" in s:
            lines.append(f"    mem_mb: {s['mem_mb']}")
        if "runtime" in s:
            lines.append(f"    runtime: {s['runtime']}")
    lines.append("set-threads:" + ("" if thr else " {}"))
    for s in thr:
        lines.append(f"  {_yaml_key(s['key'])}: {s['threads']}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- output


def snakemake_tsv(runs: pl.DataFrame) -> str:
    """Snakemake's benchmark TSV with one row per run."""
    from .sinks.benchmark import benchmark_header, benchmark_row

    lines = [benchmark_header()]
    for r in runs.iter_rows(named=True):
        lines.append(benchmark_row(r, r.get("peak_mem_vms_kb")))
    return "\n".join(lines) + "\n"


def write_output(df: pl.DataFrame, fmt: str, out: str | None, *, kind: str = "group", width: int = 100,
                 runs: pl.DataFrame | None = None) -> bytes | None:
    """Render ``df`` in ``fmt``: written to ``out`` when given, else returned as bytes."""
    import io

    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet needs -o FILE")
        df.write_parquet(out, compression="zstd")
        return None
    if fmt == "csv":
        data = df.write_csv().encode()
    elif fmt == "json":
        buf = io.BytesIO()
        df.write_json(buf)
        data = buf.getvalue().rstrip(b"\n") + b"\n"
    elif fmt == "snakemake-tsv":
        data = snakemake_tsv(runs if runs is not None else df).encode()
    elif fmt == "nextflow-trace":
        from .nextflow import nextflow_trace

        data = nextflow_trace(runs if runs is not None else df).encode()
    else:
        data = render_table(df, kind=kind, width=width).encode()
    if out is None:
        return data
    replace_with_bytes(out, data)
    return None


# -- the terminal table

_SHORT = {"wall_time_secs": "wall", "cpu_time_secs": "cpu", "cores": "cores", "peak_mem_rss_kb": "rss",
          "peak_process_rss_kb": "proc rss", "disk_read_bytes": "read", "disk_write_bytes": "write",
          "syscall_read_bytes": "rchar", "syscall_write_bytes": "wchar", "avg_cpu_usage": "cpu%",
          "max_cpu_usage": "cpu% max", "max_processes": "procs", "max_threads": "threads",
          "threads": "req thr", "mem_mb": "req MB", "cpu_efficiency": "eff", "exit_code": "exit", "total_disk_read_bytes": "read",
          "total_disk_write_bytes": "write", "peak_mem_vms_kb": "vms", "path": "file",
          "peak_gpu_tree_memory_bytes": "gpu mem", "peak_gpu_memory_used_bytes": "gpu dev mem",
          "max_gpu_utilization_pct": "gpu% max", "avg_gpu_utilization_pct": "gpu%", "gpu_device_count": "gpus"}
_SHORT.update({"peak_rss_kb": "rss", "processes": "procs", "sources": "source"})  # the command table
# Which columns to keep when the terminal is narrow, most wanted first.
_COMMAND_PRIORITY = ("processes", "cpu_time_secs_sum", "peak_rss_kb_max", "failed", "runs", "wall_time_secs_max",
                     "sources", "cpu_time_secs_max", "disk_read_bytes_sum", "disk_write_bytes_sum", "running",
                     "peak_rss_kb_mean", "cpu_time_secs_mean", "wall_time_secs_sum", "syscall_read_bytes_sum",
                     "syscall_write_bytes_sum")
_GROUP_PRIORITY = ("runs", "failed", "wall_time_secs_max", "peak_mem_rss_kb_max", "cores_mean",
                   "peak_gpu_tree_memory_bytes_max", "max_gpu_utilization_pct_max", "cpu_time_secs_sum",
                   "wall_time_secs_mean", "peak_mem_rss_kb_mean", "cpu_efficiency_mean", "wall_time_secs_p95",
                   "peak_mem_rss_kb_p95", "cores_max", "peak_process_rss_kb_max", "disk_read_bytes_sum",
                   "disk_write_bytes_sum", "incomplete", "cores_p95", "cpu_time_secs_mean", "max_processes_max",
                   "threads_max", "mem_mb_max")
_RUN_PRIORITY = ("exit_code", "wall_time_secs", "cpu_time_secs", "cores", "peak_mem_rss_kb", "peak_process_rss_kb",
                 "peak_gpu_tree_memory_bytes", "max_gpu_utilization_pct", "peak_gpu_memory_used_bytes",
                 "max_cpu_usage", "total_disk_read_bytes", "total_disk_write_bytes", "max_processes", "complete",
                 "path")


def _fmt_secs(v: float) -> str:
    if v < 60:
        return f"{v:.2f}s" if v < 10 else f"{v:.1f}s"
    m, s = divmod(int(round(v)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _fmt_bytes(v: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(v) < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024.0
    return str(v)  # pragma: no cover


def _cell(v, unit: str) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if unit == "s" and isinstance(v, int | float):
        return _fmt_secs(float(v))
    if unit == "KiB" and isinstance(v, int | float):
        return _fmt_bytes(float(v) * 1024)
    if unit == "bytes" and isinstance(v, int | float):
        return _fmt_bytes(float(v))
    if isinstance(v, float):
        return f"{v:.2f}" if unit in ("cores", "ratio") else f"{v:.1f}"
    return str(v)


def _header(name: str, f: schema.Field | None) -> str:
    if f is not None and f.stat is not None:
        metric = name[: -len(f.stat) - 1]
        return f"{_SHORT.get(metric, metric)} {f.stat}"
    return _SHORT.get(name, name)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(1, n - 1)] + "…"


def render_table(df: pl.DataFrame, *, kind: str = "group", width: int = 100) -> str:
    """A plain-text table that fits ``width`` columns: the most wanted columns first, human
    units; the rest are named in a last line (``--format csv`` or ``json`` shows every column)."""
    table = {"group": "group", "command": "command_group"}.get(kind, "run")
    grouped = kind in ("group", "command")
    declared = {f.name: f for f in schema.table_fields(table)}
    static = set(declared)
    keys = [c for c in df.columns if c not in static]
    if not grouped:
        keys = [c for c in keys if c not in ("path", "format", "run_id")] or []
    prio = _COMMAND_PRIORITY if kind == "command" else _GROUP_PRIORITY if grouped else _RUN_PRIORITY
    wanted = [c for c in prio if c in df.columns]
    rows = list(df.iter_rows(named=True))

    def col_cells(c: str) -> list[str]:
        f = declared.get(c)
        unit = f.unit if f is not None else ""
        if c == "path":
            return [os.path.basename(str(r[c])) for r in rows]
        return [_cell(r[c], unit) for r in rows]

    key_cells = {k: [_clip("-" if r[k] is None else str(r[k]), 40) for r in rows] for k in keys}
    cols: list[tuple[str, list[str], bool]] = [(k, key_cells[k], False) for k in keys]
    if not grouped and not keys:
        cols.append(("command", [_clip(str(r.get("command") or "-"), 40) for r in rows], False))
    used = sum(max([len(k)] + [len(x) for x in cells]) + 2 for k, cells, _ in cols)
    chosen: list[str] = []
    hidden: list[str] = []
    for c in wanted:
        cells = col_cells(c)
        h = _header(c, declared.get(c))
        w = max([len(h)] + [len(x) for x in cells]) + 2
        if used + w <= width or not chosen:
            chosen.append(c)
            used += w
        else:
            hidden.append(c)
    order = [c for c in df.columns if c in chosen] if grouped else chosen
    for c in order:
        cols.append((_header(c, declared.get(c)), col_cells(c), c not in ("path", "complete", "sources")))
    widths = [max([len(h)] + [len(x) for x in cells]) for h, cells, _ in cols]
    lines = ["  ".join(h.rjust(w) if num else h.ljust(w) for (h, _, num), w in zip(cols, widths, strict=True)).rstrip()]
    for i in range(len(rows)):
        lines.append("  ".join(cells[i].rjust(w) if num else cells[i].ljust(w)
                               for (_, cells, num), w in zip(cols, widths, strict=True)).rstrip())
    extra = len([c for c in df.columns if c not in chosen and c not in keys])
    if extra:
        lines.append(f"({len(rows)} {'groups' if grouped else 'runs'}; {extra} more columns with "
                     "--format csv or json)")
    return "\n".join(lines) + "\n"
