"""Parquet sink: a crash-safe journal while the command runs, one Parquet file when it ends.

While CMD runs, every record is appended as a JSON line to a journal beside the destination
(``DIR/.NAME.parquet.journal``), exactly like the JSONL sink: one ``write`` per line, nothing
buffered in user space, so a ``kill -9`` of denet leaves every complete line readable. pyarrow is
not imported before :meth:`ParquetSink.close`, that is after CMD has ended.

At close the journal is converted into the ``rows`` layout declared in ``schemas/records.json``
(tidy rows: one per process per sample plus one for the tree aggregate; metadata, env and summary
records as JSON in the file's key-value metadata), written to a temporary name in the same
directory, flushed to disk and renamed over the destination; then the journal is removed. So the
destination is either absent or complete, never corrupt. ``denet recover`` runs the same
conversion on a journal left behind by a run that was killed.
"""

from __future__ import annotations

import json
import os

from .. import schema
from ..atomic import replace_file
from ..schema import SCHEMA_VERSION
from .jsonl import JsonlSink

TYPE_CHECKING = False  # typing itself costs milliseconds on the `run` path
if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

__all__ = [
    "JOURNAL_SUFFIX",
    "KV",
    "PROCESSES_SUFFIX",
    "ParquetSink",
    "Recovered",
    "RowBuilder",
    "destination_of",
    "journal_path",
    "jsonl_tables",
    "journal_to_parquet",
    "process_table",
    "processes_path",
    "read_journal",
    "run_id_of",
    "write_processes_parquet",
    "write_rows_parquet",
]

JOURNAL_SUFFIX = ".journal"
# Key-value metadata of a denet Parquet file.
KV = {
    "schema_version": "denet.schema_version",
    "run_id": "denet.run_id",
    "metadata": "denet.metadata",
    "env": "denet.env",
    "summary": "denet.summary",
    "layout": "denet.layout",
    "processes": "denet.processes",  # a run file: its process ledger's sibling file and row count (JSON)
    "table": "denet.table",  # a sibling file: which table it holds ("processes")
}
ROW_GROUP_ROWS = 1 << 20

_LEAD = ("run_id", "scope", "pid", "command")
_ROW_FIELDS = schema.table_fields("rows")
_METRIC_FIELDS = tuple(f for f in _ROW_FIELDS if f.name not in _LEAD)
_METRIC_NAMES = tuple(f.name for f in _METRIC_FIELDS)
_ALIASES = tuple((i, f.aliases) for i, f in enumerate(_METRIC_FIELDS) if f.aliases)
_JSON_IDX = tuple(i for i, f in enumerate(_METRIC_FIELDS) if f.type == "json")


def journal_path(dest: str) -> str:
    """Where the journal of a Parquet destination lives: ``DIR/.NAME.journal``."""
    d, base = os.path.split(dest)
    return os.path.join(d, "." + base + JOURNAL_SUFFIX)


def destination_of(journal: str) -> str | None:
    """The Parquet destination a journal belongs to, or None when the name is not a journal's."""
    d, base = os.path.split(journal)
    if base.startswith(".") and base.endswith(JOURNAL_SUFFIX) and len(base) > len(JOURNAL_SUFFIX) + 1:
        return os.path.join(d, base[1 : -len(JOURNAL_SUFFIX)])
    return None


def _canonical(obj: dict) -> str:
    return json.dumps({k: v for k, v in obj.items() if k != "kind"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)


def run_id_of(metadata: dict | None, fallback: str = "") -> str:
    """The id of a run: 16 hex digits of a BLAKE2b hash of its metadata record (or of ``fallback``
    when the file has no metadata), the same whichever file format the run was written in."""
    import hashlib

    text = _canonical(metadata) if metadata else "no-metadata:" + fallback
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _metric_values(d: dict) -> list:
    vals = [d.get(n) for n in _METRIC_NAMES]
    for i, alts in _ALIASES:
        if vals[i] is None:
            for a in alts:
                v = d.get(a)
                if v is not None:
                    vals[i] = v
                    break
    for i in _JSON_IDX:
        v = vals[i]
        if v is not None and not isinstance(v, str):
            vals[i] = json.dumps(v, separators=(",", ":"), default=str)
    return vals


class RowBuilder:
    """Turns record dicts (as read from JSON lines) into the tidy ``rows`` layout.

    ``add(kind, obj)`` takes one record; ``tables()`` returns the tree/sample rows and the
    process rows as two Arrow tables of the ``rows`` schema.
    """

    def __init__(self) -> None:
        self.metadata: dict | None = None
        self.env: dict | None = None
        self.summary: dict | None = None
        self.records = 0
        self._root_pid = None
        self._root_cmd = None
        self._tree: list = []  # tree aggregates, or plain samples
        self._root: list = []
        self._child: list = []
        self.processes: list[dict] = []  # `process` records (the process ledger), in file order

    def add(self, kind: str, obj: dict) -> None:
        if kind == "tree":
            self.records += 1
            agg = obj.get("aggregated")
            if isinstance(agg, dict):
                self._tree.append(("tree", None, None, *_metric_values(agg)))
            parent = obj.get("parent")
            if isinstance(parent, dict):
                self._root.append(("root", self._root_pid, self._root_cmd, *_metric_values(parent)))
            children = obj.get("children")
            if isinstance(children, list):
                for ch in children:
                    if isinstance(ch, dict):
                        m = ch.get("metrics")
                        self._child.append(("child", ch.get("pid"), ch.get("command"),
                                            *_metric_values(m if isinstance(m, dict) else {})))
        elif kind == "sample":
            self.records += 1
            self._tree.append(("sample", self._root_pid, self._root_cmd, *_metric_values(obj)))
        elif kind == "metadata":
            if self.metadata is None:
                self.metadata = obj
                pid = obj.get("pid")
                self._root_pid = pid if isinstance(pid, int) else None
                cmd = obj.get("cmd")
                if isinstance(cmd, list) and cmd:
                    self._root_cmd = os.path.basename(str(cmd[0]))
        elif kind == "env":
            if self.env is None:
                self.env = obj
        elif kind == "summary":
            self.summary = obj
        elif kind == "process":
            self.processes.append(obj)

    @property
    def row_count(self) -> int:
        return len(self._tree) + len(self._root) + len(self._child)

    def run_id(self, fallback: str = "") -> str:
        return run_id_of(self.metadata, fallback)

    def tables(self, run_id: str) -> tuple[pa.Table, pa.Table]:
        """(tree-or-sample rows, process rows) as Arrow tables of the ``rows`` schema."""
        children = sorted(self._child, key=lambda r: r[1] if isinstance(r[1], int) else -1)  # stable: time order kept
        return _table(self._tree, run_id), _table(self._root + children, run_id)

    def table(self, run_id: str) -> pa.Table:
        import pyarrow as pa

        a, b = self.tables(run_id)
        return pa.concat_tables([a, b])

    fast_rows = 0

    def kv_metadata(self, run_id: str) -> dict[str, str]:
        kv = {KV["schema_version"]: str(SCHEMA_VERSION), KV["run_id"]: run_id, KV["layout"]: "rows"}
        for key, obj, tag in (("metadata", self.metadata, "metadata"), ("env", self.env, "env"),
                              ("summary", self.summary, "summary")):
            if obj is not None:
                kv[KV[key]] = json.dumps({"kind": tag, **{k: v for k, v in obj.items() if k != "kind"}},
                                         separators=(",", ":"), ensure_ascii=False, default=str)
        return kv


def _coerce(v, t: str):
    """A value that does not fit the declared type becomes null (files written by other tools)."""
    if v is None:
        return None
    if t == "int":
        return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) < 2**63 else None
    if t == "float":
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v == v else None
    return v if isinstance(v, str) else json.dumps(v, default=str)


_TYPES = tuple(f.type for f in _ROW_FIELDS[1:])
_NAMES = tuple(f.name for f in _ROW_FIELDS[1:])


def _table(rows: list, run_id: str):
    """Rows (tuples in the ``rows`` order, without run_id) as an Arrow table.

    Built through pyarrow's JSON reader rather than ``pa.array`` on Python lists: with numpy
    installed, pyarrow imports pandas for the latter (most of a second), which every Parquet run
    would pay at close."""
    import io

    import pyarrow.json as pj

    sch = schema.arrow_table_schema("rows")
    if not rows:
        return _empty(sch)
    dumps = json.dumps
    lines = [dumps({n: _coerce(v, t) for n, v, t in zip(_NAMES, r, _TYPES, strict=True)}, separators=(",", ":"),
                   allow_nan=False) for r in rows]
    body = pa_schema_without_run_id(sch)
    t = pj.read_json(io.BytesIO("\n".join(lines).encode()), read_options=_read_options(sum(map(len, lines))),
                     parse_options=pj.ParseOptions(explicit_schema=body, unexpected_field_behavior="ignore"))
    return _with_run_id(t, run_id, sch)


def pa_schema_without_run_id(sch):
    import pyarrow as pa

    return pa.schema([f for f in sch if f.name != "run_id"])


def _read_options(nbytes: int):
    import pyarrow.json as pj

    return pj.ReadOptions(block_size=max(1 << 20, min(nbytes + 1, 1 << 30)))


def _empty(sch):
    """An empty table of ``sch`` (``Schema.empty_table()`` imports pandas when numpy is installed)."""
    import pyarrow as pa

    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in sch], schema=sch)


def _index_zeros(n: int):
    import pyarrow as pa

    return pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(bytes(4 * n))])


def _const(value, typ, n: int):
    """An array of ``n`` times ``value`` (str or int), built without pyarrow's Python-object
    conversion (which imports pandas when numpy is installed)."""
    import struct

    import pyarrow as pa

    if value is None or n == 0:
        return pa.nulls(n, typ)
    if pa.types.is_string(typ):
        b = str(value).encode("utf-8", "surrogateescape")
        one = pa.Array.from_buffers(typ, 1, [None, pa.py_buffer(struct.pack("<ii", 0, len(b))), pa.py_buffer(b)])
    else:
        one = pa.Array.from_buffers(typ, 1, [None, pa.py_buffer(struct.pack("<q", int(value)))])
    return one.take(_index_zeros(n))


def _with_run_id(t, run_id: str, sch):
    import pyarrow as pa

    cols = [_const(run_id, pa.string(), t.num_rows)]
    for f in sch:
        if f.name == "run_id":
            continue
        cols.append(t.column(f.name) if f.name in t.column_names else pa.nulls(t.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=sch)


# -- the fast path: our own JSON lines, parsed by pyarrow's C++ reader and flattened with Arrow compute


def _struct_type(record: str):
    import pyarrow as pa

    return pa.struct([pa.field(f.name, schema.arrow_type(_flat(f.type))) for f in schema.fields(record)])


def _flat(t: str) -> str:
    return "json" if t.startswith(("record:", "map<")) else t


def _metric_columns(struct_arr, scope: str, pid, command, n_hint=None):
    """Columns of the ``rows`` schema (without run_id) from a StructArray of metrics/aggregated."""
    import pyarrow as pa

    sch = schema.arrow_table_schema("rows")
    n = len(struct_arr)
    fields = {struct_arr.type.field(i).name: a for i, a in enumerate(struct_arr.flatten())}
    cols = {"scope": _const(scope, pa.string(), n)}
    cols["pid"] = pid if isinstance(pid, pa.Array) else _const(pid, pa.int64(), n)
    cols["command"] = command if isinstance(command, pa.Array) else _const(command, pa.string(), n)
    for name in _METRIC_NAMES:
        typ = sch.field(name).type
        a = fields.get(name)
        cols[name] = a if a is not None and a.type == typ else (a.cast(typ) if a is not None else pa.nulls(n, typ))
    return cols


def _table_from_cols(cols: dict, run_id: str):
    import pyarrow as pa

    sch = schema.arrow_table_schema("rows")
    n = len(cols["scope"])
    arrays = [_const(run_id, pa.string(), n)] + [cols[f.name] for f in sch if f.name != "run_id"]
    return pa.Table.from_arrays(arrays, schema=sch)


def _valid(arr):
    import pyarrow.compute as pc

    arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    if arr.null_count:
        arr = pc.filter(arr, arr.is_valid())
    return arr


def fast_tables(tree_lines: list[bytes], sample_lines: list[bytes], run_id: str, root_pid: int | None,
                root_cmd: str | None) -> tuple[pa.Table, pa.Table]:
    """(tree-or-sample rows, process rows) from our own tree/sample JSON lines, in C++.

    Raises pyarrow's errors when a line does not fit the declared layout (JSON objects in
    ``gpu``/``ebpf``, lines of other writers); the caller then reads the records in Python."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    sch = schema.arrow_table_schema("rows")
    trees, procs = [], []
    if tree_lines:
        metrics = _struct_type("metrics")
        child = pa.struct([pa.field("pid", pa.int64()), pa.field("command", pa.string()),
                           pa.field("metrics", metrics)])
        tsch = pa.schema([("ts_ms", pa.int64()), ("parent", metrics), ("children", pa.list_(child)),
                          ("aggregated", _struct_type("aggregated"))])
        data = b"\n".join(tree_lines)
        t = pj.read_json(io.BytesIO(data), read_options=_read_options(len(data)),
                         parse_options=pj.ParseOptions(explicit_schema=tsch, unexpected_field_behavior="ignore"))
        agg = _valid(t.column("aggregated"))
        trees.append(_table_from_cols(_metric_columns(agg, "tree", None, None), run_id))
        parent = _valid(t.column("parent"))
        procs.append(_table_from_cols(_metric_columns(parent, "root", root_pid, root_cmd), run_id))
        lists = t.column("children").combine_chunks()
        kids = pc.list_flatten(lists)
        if len(kids):
            kids = _valid(kids)
            pid, command, m = kids.flatten()
            ct = _table_from_cols(_metric_columns(m, "child", pid, command), run_id)
            procs.append(ct.take(pc.sort_indices(ct, sort_keys=[("pid", "ascending")])))  # stable: time order kept
    if sample_lines:
        ssch = pa.schema([pa.field(f.name, schema.arrow_type(_flat(f.type))) for f in schema.fields("metrics")])
        data = b"\n".join(sample_lines)
        t = pj.read_json(io.BytesIO(data), read_options=_read_options(len(data)),
                         parse_options=pj.ParseOptions(explicit_schema=ssch, unexpected_field_behavior="ignore"))
        st = pa.StructArray.from_arrays([t.column(n).combine_chunks() for n in ssch.names], names=ssch.names)
        trees.append(_table_from_cols(_metric_columns(st, "sample", root_pid, root_cmd), run_id))
    tree = pa.concat_tables(trees) if trees else _empty(sch)
    proc = pa.concat_tables(procs) if procs else _empty(sch)
    return tree, proc


_TREE_PREFIX = b'{"kind":"tree",'
_SAMPLE_PREFIX = b'{"kind":"sample",'


def jsonl_tables(path: str, *, lenient_last_line: bool, fallback: Callable[[str], RowBuilder] | None = None,
                 ) -> tuple[RowBuilder, str, pa.Table, pa.Table, list[str]]:
    """Read a JSON-lines record file of ours (a journal, or a ``.jsonl`` written by denet):
    returns (builder with metadata/env/summary, run_id, tree rows, process rows, bad lines).

    Tree and sample lines go through the C++ fast path; anything unusual (untagged lines of the
    Rust denet, JSON objects in gpu/ebpf, a damaged line) sends the whole file through
    ``fallback(path)`` (a function returning a RowBuilder) or :func:`read_journal`."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    partial = lines.pop()  # b"" when the file ends with a newline
    trees: list[bytes] = []
    samples: list[bytes] = []
    b = RowBuilder()
    ok = not partial.strip() or lenient_last_line
    if ok:
        loads = json.loads
        for raw in lines:
            if raw.startswith(_TREE_PREFIX):
                trees.append(raw)
            elif raw.startswith(_SAMPLE_PREFIX):
                samples.append(raw)
            elif raw.strip():
                try:
                    obj = loads(raw)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    ok = False
                    break
                kind = obj.get("kind") if isinstance(obj, dict) else None
                if not isinstance(kind, str) or kind in ("tree", "sample"):
                    ok = False  # not our layout: the slow path reads (or reports) it
                    break
                if kind == "metadata" and b.metadata is None:
                    _check_version(obj, path)
                b.add(kind, obj)
    if ok:
        rid = b.run_id(os.path.abspath(path))
        try:
            tree, procs = fast_tables(trees, samples, rid, b._root_pid, b._root_cmd)
            b.records = len(trees) + len(samples)
            b.fast_rows = tree.num_rows + procs.num_rows
            return b, rid, tree, procs, []
        except Exception:  # pyarrow's errors: the slow path reads it line by line
            pass
    if fallback is not None:
        b, bad = fallback(path), []
    else:
        b, bad = read_journal(path)
    rid = b.run_id(os.path.abspath(path))
    tree, procs = b.tables(rid)
    return b, rid, tree, procs, bad


def write_rows_parquet(dest: str, tables: tuple[pa.Table, ...], kv: dict[str, str]) -> None:
    """Write row tables to ``dest`` atomically: a temporary file in the same directory, flushed
    to disk, renamed over ``dest``."""
    import pyarrow.parquet as pq

    sch = schema.arrow_table_schema("rows")
    sch = sch.with_metadata({**(sch.metadata or {}), **{k.encode(): v.encode() for k, v in kv.items()}})

    def write(tmp: str) -> None:
        with pq.ParquetWriter(tmp, sch, compression="zstd") as w:
            for t in tables:
                if t.num_rows:
                    w.write_table(t.replace_schema_metadata(sch.metadata), row_group_size=ROW_GROUP_ROWS)

    replace_file(dest, write, fsync=True)


# -- the process ledger: a sibling file (see the `processes` table in schemas/records.json)

PROCESSES_SUFFIX = ".processes.parquet"


def processes_path(dest: str) -> str:
    """The process ledger's file beside a Parquet run file: NAME.processes.parquet for NAME.parquet."""
    base = dest[: -len(".parquet")] if dest.lower().endswith(".parquet") else dest
    return base + PROCESSES_SUFFIX


def process_table(processes: list[dict], run_id: str) -> pa.Table:
    """`process` records (dicts) as an Arrow table of the ``processes`` schema, built through
    pyarrow's JSON reader (no pandas, see :func:`_table`)."""
    import io

    import pyarrow.json as pj

    sch = schema.arrow_table_schema("processes")
    if not processes:
        return _empty(sch)
    types = {f.name: f.type for f in schema.table_fields("processes")}
    lines = []
    for obj in processes:
        row = {}
        for n, t in types.items():
            if n == "run_id":
                continue
            v = obj.get(n)
            if t.startswith("list<"):
                row[n] = [str(x) for x in v] if isinstance(v, list) else None
            else:
                row[n] = _coerce(v, t)
        lines.append(json.dumps(row, separators=(",", ":"), allow_nan=False))
    body = pa_schema_without_run_id(sch)
    t = pj.read_json(io.BytesIO("\n".join(lines).encode()), read_options=_read_options(sum(map(len, lines))),
                     parse_options=pj.ParseOptions(explicit_schema=body, unexpected_field_behavior="ignore"))
    return _with_run_id(t, run_id, sch)


def write_processes_parquet(dest: str, table: pa.Table, run_id: str, run_file: str) -> None:
    """Write the process ledger of a run to ``dest`` atomically (temporary name, fsync, rename)."""
    import pyarrow.parquet as pq

    kv = {KV["schema_version"]: str(SCHEMA_VERSION), KV["run_id"]: run_id, KV["table"]: "processes",
          "denet.run_file": run_file}
    sch = table.schema.with_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in kv.items()}})
    replace_file(dest, lambda tmp: pq.write_table(table.replace_schema_metadata(sch.metadata), tmp,
                                                  compression="zstd"), fsync=True)


class Recovered:
    """What a journal held and where it went."""

    __slots__ = ("journal", "dest", "rows", "records", "complete", "bad_lines", "run_id")

    def __init__(self, journal, dest, rows, records, complete, bad_lines, run_id) -> None:
        self.journal = journal
        self.dest = dest
        self.rows = rows
        self.records = records
        self.complete = complete
        self.bad_lines = bad_lines
        self.run_id = run_id


def read_journal(journal: str, builder: RowBuilder | None = None) -> tuple[RowBuilder, list[str]]:
    """Read a journal (JSON lines written by denet) into a RowBuilder.

    A last line cut short (the run was killed while writing it) is dropped silently; other lines
    that are not records are skipped and returned as messages naming the file and line.
    """
    b = builder or RowBuilder()
    bad: list[str] = []
    loads = json.loads
    add = b.add
    with open(journal, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                obj = loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if raw.strip() and raw.endswith(b"\n"):  # a last line without newline was cut short: dropped
                    bad.append(f"{journal}:{n}: not a JSON record")
                continue
            if not isinstance(obj, dict):
                bad.append(f"{journal}:{n}: not a JSON object")
                continue
            kind = obj.get("kind")
            if isinstance(kind, str):
                if kind == "metadata":
                    _check_version(obj, f"{journal}:{n}")
                add(kind, obj)
    return b, bad


def _check_version(meta: dict, where: str) -> None:
    v = meta.get("schema_version")
    if isinstance(v, int) and not isinstance(v, bool) and v > SCHEMA_VERSION:
        from ..errors import SchemaVersionError

        raise SchemaVersionError(f"{where}: written with record schema version {v}; this denet reads versions up "
                                 f"to {SCHEMA_VERSION} (upgrade denet to read it)")


def journal_to_parquet(journal: str, dest: str | None = None, *, remove_journal: bool = True) -> Recovered:
    """Convert a journal into a Parquet file (``dest``, by default the destination the journal
    belongs to) and remove the journal."""
    if dest is None:
        dest = destination_of(journal)
        if dest is None:
            raise ValueError(f"{journal}: not a journal name (.NAME.journal); give the destination")
    b, rid, tree, procs, bad = jsonl_tables(journal, lenient_last_line=True)
    kv = b.kv_metadata(rid)
    if b.processes:  # the ledger first: a run file that names it finds it complete
        sibling = processes_path(dest)
        write_processes_parquet(sibling, process_table(b.processes, rid), rid, os.path.basename(dest))
        kv[KV["processes"]] = json.dumps({"file": os.path.basename(sibling), "rows": len(b.processes)})
    write_rows_parquet(dest, (tree, procs), kv)
    if remove_journal:
        try:
            os.unlink(journal)
        except FileNotFoundError:
            pass
    return Recovered(journal, dest, tree.num_rows + procs.num_rows, b.records, b.summary is not None, bad, rid)


class ParquetSink:
    """Records to a Parquet file: journal while running, conversion at close (see the module doc)."""

    def __init__(self, path: str) -> None:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a directory", path)
        self.name = path
        self.journal = journal_path(path)
        self._journal = JsonlSink(self.journal)
        self._failed: OSError | None = None
        self._closed = False
        self.recovered: Recovered | None = None

    @property
    def failed(self) -> OSError | None:
        return self._failed or self._journal.failed

    def write(self, record) -> None:
        self._journal.write(record)

    def write_line(self, line: str) -> None:
        """Write a record already encoded as a JSON line (without newline)."""
        self._journal.write_line(line)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._journal.close()
        try:
            if os.path.getsize(self.journal) == 0:  # nothing was recorded (CMD could not start): no file
                os.unlink(self.journal)
                return
        except OSError:
            pass
        try:
            self.recovered = journal_to_parquet(self.journal, self.name)
        except ImportError as exc:
            self._failed = OSError(f"pyarrow is not installed ({exc})")
        except Exception as exc:  # any failure keeps the journal; the message says how to recover
            text = getattr(exc, "strerror", None) or str(exc)
            self._failed = OSError(text)
        if self._failed is not None:
            raise OSError(f"{self._failed}; the records are kept in {self.journal} "
                          f"(`denet recover {self.journal}` writes the Parquet file)")

