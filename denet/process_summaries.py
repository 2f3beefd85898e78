"""The process ledger of many runs, and its breakdown by command (``summarize --by command``).

``process_table(paths)`` reads the ``process`` records of every run (JSON lines, journals, the
sibling ``NAME.processes.parquet`` of a Parquet run) into one polars frame, one row per process,
with the run's id, file and labels. ``command_table(procs, by)`` groups it by command name (and
the other --by keys, such as the ``rule`` label): the ``command_group`` table of
``schemas/records.json``. In both, ``command`` is the process's name (the record's ``name``) and
``argv`` its argv (the record's ``command``), so that ``--by command`` means what it says.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from . import readers, schema
from .errors import InputError, UsageError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["COMMAND_KEY", "command_table", "frame_of", "process_table"]

COMMAND_KEY = "command"
# Record field -> column of the process frame.
_RENAME = {"command": "argv", "name": COMMAND_KEY}
_NO_LEDGER_FORMATS = ("rust-jsonl", "snakemake-tsv", "snakemake-jsonl")

Note = Callable[[str], None]


def _columns() -> dict:
    """Column -> polars dtype of the process frame, from the ``process`` record's declaration."""
    import polars as pl

    cols = {"path": pl.String, "run_id": pl.String}
    for f in schema.fields("process"):
        cols[_RENAME.get(f.name, f.name)] = schema.polars_dtype(f.type)
    return cols


def frame_of(processes: list[dict], *, run_id: str = "", path: str = "", labels: dict | None = None,
             label_columns: dict[str, str] | None = None) -> pl.DataFrame:
    """One run's process records (dicts) as a frame: one row per process, plus ``cpu_time_secs``
    (user + system, null when either is) and ``wall_time_secs`` (end - start, null while running)."""
    import polars as pl

    n = len(processes)
    dtypes = _columns()
    data: dict[str, list] = {"path": [path] * n, "run_id": [run_id] * n}
    for f in schema.fields("process"):
        col = _RENAME.get(f.name, f.name)
        vals = [p.get(f.name) for p in processes]
        if f.type == "list<str>":
            vals = [[str(x) for x in v] if isinstance(v, list) else None for v in vals]
        elif f.type in ("int", "float"):
            vals = [v if isinstance(v, int | float) and not isinstance(v, bool) else None for v in vals]
        else:
            vals = [None if v is None else str(v) for v in vals]
        data[col] = vals
    schema_in = dict(dtypes)
    for key, col in (label_columns or {}).items():
        v = (labels or {}).get(key)
        data[col] = [None if v is None else str(v)] * n
        schema_in[col] = pl.String
    df = pl.DataFrame(data, schema=schema_in, strict=False)
    c = pl.col
    return df.with_columns(
        (c("cpu_user_secs") + c("cpu_system_secs")).alias("cpu_time_secs"),
        pl.when(c("end_ms").is_not_null() & c("start_ms").is_not_null())
        .then((c("end_ms") - c("start_ms")) / 1000.0).otherwise(None).alias("wall_time_secs"),
    )


def process_table(paths: str | os.PathLike | Iterable[str | os.PathLike], *, skip_bad: bool = False,
                  on_bad: Note | None = None, progress: Callable[[int, int], None] | None = None,
                  on_note: Note | None = None) -> pl.DataFrame:
    """Every process of every run in ``paths`` (files, directories, globs): one row each.

    Runs without process records are left out and counted in one note (``on_note``); a run found
    in two files (the same run id) is read once. A bad file raises :class:`InputError` naming it,
    or with ``skip_bad`` goes to ``on_bad`` and is left out."""
    import polars as pl

    files = readers.find_inputs(paths)
    found: list[tuple[readers.RunEntry, list[dict]]] = []
    missing: list[str] = []
    seen: set[str] = set()
    for i, f in enumerate(files):
        if progress is not None:
            progress(i, len(files))
        try:
            fmt = readers.detect_format(f)
            if fmt in _NO_LEDGER_FORMATS:
                missing.append(f"{f}: no process records ({fmt})")
                continue
            if fmt == "denet-dataset":
                for entry, procs in _dataset_ledgers(f):
                    if entry.run_id in seen:
                        continue
                    seen.add(entry.run_id)
                    if procs is None:
                        missing.append(f"{f}#{entry.run_id}: no process records")
                    else:
                        found.append((entry, procs))
                continue
            entry = readers.entries_of(f, fmt)[0]
            if entry.run_id in seen:
                continue
            seen.add(entry.run_id)
            procs, why = readers.read_processes(f, fmt)
        except InputError as exc:
            if not skip_bad:
                raise
            if on_bad is not None:
                on_bad(str(exc))
            continue
        if procs is None:
            missing.append(why or f"{f}: no process records")
        else:
            found.append((entry, procs))
    if progress is not None:
        progress(len(files), len(files))
    if missing and on_note is not None:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        on_note(f"{len(missing)} run(s) without a process ledger are not in the breakdown: {missing[0]}{more}")
    keys: list[str] = []
    for e, _ in found:
        for k in e.labels:
            if str(k) not in keys:
                keys.append(str(k))
    keys.sort(key=lambda k: (k != "rule", k))
    static = set(_columns()) | {"cpu_time_secs", "wall_time_secs"}
    label_columns = {k: (f"label_{k}" if k in static else k) for k in keys}
    frames = [frame_of(procs, run_id=e.run_id, path=e.path, labels=e.labels, label_columns=label_columns)
              for e, procs in found]
    if not frames:
        return frame_of([], label_columns=label_columns)
    return pl.concat(frames, how="vertical_relaxed")


def _dataset_ledgers(path: str) -> list[tuple[readers.RunEntry, list[dict] | None]]:
    """The runs of a compacted dataset with their ledgers (its ``processes.parquet``)."""
    from .compact import DATASET_PROCESSES

    entries = readers.dataset_entries(path)
    by_run: dict[str, list[dict]] = {}
    f = os.path.join(path, DATASET_PROCESSES)
    if os.path.exists(f):
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(f).to_pylist()
        except Exception as exc:
            raise InputError(f"{f}: cannot read the process ledgers: {readers._short(exc)}") from None
        for r in rows:
            by_run.setdefault(r.pop("run_id"), []).append(r)
    return [(e, by_run.get(e.run_id)) for e in entries]


def _keys(by: str | Sequence[str] | None, procs) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by or [COMMAND_KEY])
    out: list[str] = []
    for k in keys:
        out += [x.strip() for x in str(k).split(",") if x.strip()]
    if COMMAND_KEY not in out:
        out.append(COMMAND_KEY)
    for k in out:
        if k not in procs.columns and procs.height:
            labels = [c for c in procs.columns if c not in _columns() and c not in ("cpu_time_secs", "wall_time_secs")]
            raise UsageError(f"--by {k}: no run with a process ledger has a label of that name"
                             + (f" (labels: {', '.join(labels)})" if labels else " (the runs carry no labels)"))
    return out


def command_table(procs: pl.DataFrame, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """The processes grouped by command name and the other ``by`` keys (the ``command_group``
    table of docs/schema.md); within the other keys, the command with most CPU comes first."""
    import polars as pl

    from .summaries import _stat_expr

    keys = _keys(by, procs)
    for k in keys:
        if k not in procs.columns:
            procs = procs.with_columns(pl.lit(None, pl.String).alias(k))
    out_fields = schema.table_fields("command_group", key=keys)
    c = pl.col
    aggs = [
        pl.len().cast(pl.Int64).alias("processes"),
        c("run_id").n_unique().cast(pl.Int64).alias("runs"),
        ((c("exit_code").is_not_null() & (c("exit_code") != 0)) | c("exit_signal").is_not_null())
        .sum().cast(pl.Int64).alias("failed"),
        c("end_ms").is_null().sum().cast(pl.Int64).alias("running"),
        *[_stat_expr(f, procs) for f in out_fields if f.stat is not None],
        c("source").drop_nulls().unique().sort().str.join(",").alias("sources"),
    ]
    g = procs.group_by(keys).agg(aggs)
    others = [k for k in keys if k != COMMAND_KEY]
    g = g.sort([*others, "cpu_time_secs_sum", COMMAND_KEY], descending=[False] * len(others) + [True, False],
               nulls_last=True)
    dt = {f.name: schema.polars_dtype(f.type) for f in out_fields if f.placeholder is None}
    return g.select([c(f.name).cast(dt[f.name], strict=False) if f.name in dt else c(f.name) for f in out_fields])
