"""``denet compact``: many per-run files merged into one Parquet dataset.

Layout (readable by pyarrow, polars and DuckDB without denet)::

    DIR/_denet_dataset.json                 marker: format, version, the --by keys, counts
    DIR/runs.parquet                        one row per run (table ``dataset_runs``): what a
                                            per-run file keeps in its footer, as JSON columns
    DIR/rows/KEY=VALUE/part-0.parquet       the runs' rows (table ``rows``), hive-partitioned
                                            by the --by key(s); in each file the tree rows come
                                            first, in row groups of their own
    DIR/processes.parquet                   the runs' process ledgers (table ``processes``),
                                            when any run has one

The dataset is built in a temporary directory beside DIR and renamed into place at the end, so
DIR is either absent or complete. ``denet summarize DIR`` reads it with one query over
``rows/`` plus ``runs.parquet``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import quote

from . import readers, schema
from ._version import __version__
from .errors import InputError, UsageError

__all__ = ["CompactResult", "compact"]

FLUSH_ROWS = 1 << 20
DATASET_PROCESSES = "processes.parquet"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class CompactResult:
    __slots__ = ("out_dir", "runs", "rows", "files", "partitions", "duplicates", "by")

    def __init__(self, out_dir: str, by: list[str]) -> None:
        self.out_dir = out_dir
        self.by = by
        self.runs = 0
        self.rows = 0
        self.files = 0
        self.partitions = 0
        self.duplicates: list[str] = []


class _Partition:
    """One ``rows/KEY=VALUE/part-0.parquet`` file, written in row groups as rows arrive."""

    def __init__(self, path: str, sch) -> None:
        self.path = path
        self.schema = sch
        self.writer = None
        self.tree: list = []
        self.procs: list = []
        self.buffered = 0

    def add(self, tree, procs) -> None:
        self.tree.append(tree)
        self.procs.append(procs)
        self.buffered += tree.num_rows + procs.num_rows
        if self.buffered >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffered:
            return
        if self.writer is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        for part in (self.tree, self.procs):
            if part:
                t = pa.concat_tables(part)
                if t.num_rows:
                    self.writer.write_table(t, row_group_size=FLUSH_ROWS)
        self.tree, self.procs, self.buffered = [], [], 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def _key_value(entry: readers.RunEntry, key: str) -> str | None:
    labels = entry.labels
    if key in labels:
        return None if labels[key] is None else str(labels[key])
    if key == "command":
        from .summaries import _command

        return _command(entry.metadata)
    if key == "host":
        h = (entry.env or {}).get("host")
        return h if isinstance(h, str) else None
    if key == "format":
        return entry.format
    return None


def _hive_dir(keys: list[str], values: list[str | None]) -> str:
    parts = [f"{quote(k, safe='')}={HIVE_NULL if v is None else quote(v, safe='')}" for k, v in zip(keys, values,
                                                                                                      strict=True)]
    return os.path.join(*parts)


def _rows_of(path: str, fmt: str, entry: readers.RunEntry):
    """(tree rows, process rows) of a run file as Arrow tables of the ``rows`` schema."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    sch = schema.arrow_table_schema("rows")
    if fmt == "denet-parquet":
        try:
            t = pq.read_table(path)
        except Exception as exc:
            raise InputError(f"{path}: cannot read the Parquet rows: {readers._short(exc)}") from None
        cols = []
        for f in sch:
            if f.name in t.column_names:
                cols.append(t.column(f.name).cast(f.type))
            else:
                cols.append(pa.nulls(t.num_rows, f.type))
        t = pa.Table.from_arrays(cols, schema=sch)
        is_tree = pc.is_in(t.column("scope"), value_set=pa.array(["tree", "sample"]))
        return t.filter(is_tree), t.filter(pc.invert(is_tree))
    rid, tree, procs = readers.row_tables(path, fmt)
    if rid != entry.run_id:  # pragma: no cover - both derive from the same metadata record
        raise InputError(f"{path}: run id mismatch ({rid} != {entry.run_id})")
    return tree, procs


def _by_keys(by: str | Sequence[str] | None, entries_sample: list[readers.RunEntry]) -> list[str]:
    if by is None:
        return ["rule"]
    keys = [by] if isinstance(by, str) else list(by)
    out = [x.strip() for k in keys for x in str(k).split(",") if x.strip()]
    if not out:
        raise UsageError("--by expects a label name")
    clash = set(out) & set(schema.table_names_of("rows"))
    if clash:
        raise UsageError(f"--by {', '.join(sorted(clash))}: the name of a row column; partition by a label")
    return out


def compact(paths: str | os.PathLike | Iterable[str | os.PathLike], out_dir: str, *,
            by: str | Sequence[str] | None = None, skip_bad: bool = False,
            on_bad: Callable[[str], None] | None = None,
            progress: Callable[[int, int], None] | None = None) -> CompactResult:
    """Merge the runs in ``paths`` into a Parquet dataset at ``out_dir`` partitioned by ``by``
    (default: the ``rule`` label). ``out_dir`` must not exist (or be an empty directory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .sinks.parquet import KV

    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise UsageError(f"{out_dir} already exists; compact writes a new directory")
    keys = _by_keys(by, [])
    files = readers.find_inputs(paths)
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {out_dir}: directory {parent} does not exist")
    tmp = os.path.join(parent, f".{os.path.basename(os.path.abspath(out_dir))}.tmp-{os.getpid()}")
    res = CompactResult(out_dir, keys)
    sch = schema.arrow_table_schema("rows")
    sch = sch.with_metadata({**(sch.metadata or {}), KV["schema_version"].encode(): str(schema.SCHEMA_VERSION).encode(),
                             KV["layout"].encode(): b"rows"})
    partitions: dict[tuple, _Partition] = {}
    run_rows: list[dict] = []
    ledgers: list = []  # process ledgers (Arrow tables of the `processes` schema)
    seen: dict[str, str] = {}

    def bad(exc: InputError) -> None:
        if not skip_bad:
            raise exc
        if on_bad is not None:
            on_bad(str(exc))

    os.makedirs(tmp)
    try:
        for i, f in enumerate(files):
            if progress is not None:
                progress(i, len(files))
            try:
                fmt = readers.detect_format(f)
                if fmt == "denet-dataset":
                    raise InputError(f"{f}: already a compacted dataset; compact its source files instead")
                entries = readers.entries_of(f, fmt)
                if fmt in ("snakemake-tsv", "snakemake-jsonl"):
                    tables = ledger = None
                else:
                    tables = _rows_of(f, fmt, entries[0])
                    ledger = readers.read_processes(f, fmt)[0] if fmt != "rust-jsonl" else None
            except InputError as exc:
                bad(exc)
                continue
            res.files += 1
            for e in entries:
                if e.run_id in seen:
                    res.duplicates.append(f"{e.path}: the same run as {seen[e.run_id]}, left out")
                    continue
                seen[e.run_id] = e.path
                values = [_key_value(e, k) for k in keys]
                n = 0
                if tables is not None:
                    tree, procs = tables
                    n = tree.num_rows + procs.num_rows
                    pk = tuple(values)
                    part = partitions.get(pk)
                    if part is None:
                        part = partitions[pk] = _Partition(
                            os.path.join(tmp, "rows", _hive_dir(keys, values), "part-0.parquet"), sch)
                    part.add(tree.replace_schema_metadata(sch.metadata), procs.replace_schema_metadata(sch.metadata))
                row = {"run_id": e.run_id, "source_path": e.path, "source_format": e.format, "row_count": n,
                       "metadata_json": _dump(e.metadata), "env_json": _dump(e.env),
                       "summary_json": _dump(e.summary), "sampled_json": _dump(e.sampled)}
                row.update(dict(zip(keys, values, strict=True)))
                run_rows.append(row)
                if ledger:
                    from .sinks.parquet import process_table

                    ledgers.append(process_table(ledger, e.run_id))
                res.runs += 1
                res.rows += n
        if progress is not None:
            progress(len(files), len(files))
        for part in partitions.values():
            part.close()
        res.partitions = sum(1 for part in partitions.values() if part.writer is not None)
        rsch = schema.arrow_table_schema("dataset_runs", key=keys)
        rsch = rsch.with_metadata({**(rsch.metadata or {}),
                                   KV["schema_version"].encode(): str(schema.SCHEMA_VERSION).encode(),
                                   b"denet.dataset": b"1"})
        table = pa.Table.from_pylist(run_rows, schema=rsch)
        pq.write_table(table, os.path.join(tmp, "runs.parquet"), compression="zstd")
        if ledgers:
            pq.write_table(pa.concat_tables(ledgers), os.path.join(tmp, DATASET_PROCESSES), compression="zstd")
        marker = {"format": "denet-dataset", "version": 1, "schema_version": schema.SCHEMA_VERSION, "by": keys,
                  "runs": res.runs, "rows": res.rows, "partitions": res.partitions, "denet_version": __version__}
        with open(os.path.join(tmp, readers.DATASET_MARKER), "w") as fh:
            fh.write(json.dumps(marker, indent=1) + "\n")
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty, checked above
        os.replace(tmp, out_dir)
    except BaseException:
        for part in partitions.values():
            try:
                if part.writer is not None:
                    part.writer.close()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return res


def _dump(obj: dict | None) -> str | None:
    if obj is None:
        return None
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
