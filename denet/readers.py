"""Reading records back from files.

``iter_records`` streams a JSON Lines file (ours, or the Rust denet's tagged or untagged
lines) as ``(kind, dict)`` pairs without any heavy import; ``denet stats`` and the Python API
build on it. Lines that are not records are reported with file and line number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from .errors import InputError, SchemaVersionError
from .schema import SCHEMA_VERSION
from .summary import EXACT_FIELDS, SummaryAccumulator

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from .sinks.parquet import RowBuilder

__all__ = [
    "DATASET_MARKER",
    "FORMATS",
    "RunEntry",
    "RunFile",
    "classify",
    "detect_format",
    "effective_summary",
    "entries_of",
    "find_inputs",
    "iter_records",
    "parquet_entry",
    "python_rows",
    "read_run",
    "row_tables",
    "scan_ndjson_tree_rows",
    "read_processes",
    "scan_rows",
]


def classify(obj: dict) -> str | None:
    """The kind of a record dict: its ``kind``, or inferred for files without one (older files)."""
    k = obj.get("kind")
    if isinstance(k, str):
        return k
    if "aggregated" in obj or ("parent" in obj and "children" in obj):
        return "tree"
    if "cpu_usage" in obj and "mem_rss_kb" in obj:
        return "sample"
    if any(key in obj for key in ("pid", "cmd", "executable", "t0_ms")):
        return "metadata"
    if "total_time_secs" in obj and "sample_count" in obj:
        return "summary"
    if "host" in obj and "kernel" in obj:
        return "env"
    return None


def iter_records(path: str, *, on_bad_line: Callable[[str], None] | None = None) -> Iterator[tuple[str, dict]]:
    """Yield ``(kind, record)`` for each record line of a JSONL file (or a JSON array file).

    A line that is not a JSON object is reported through ``on_bad_line`` with its file and line
    number (or raises :class:`InputError` when no callback is given) and skipped.
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a record file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        head = fh.read(1)
        while head in (b" ", b"\n", b"\r", b"\t"):
            head = fh.read(1)
        fh.seek(0)
        if head == b"[":
            try:
                items = json.loads(fh.read())
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise InputError(f"{path}: not a valid JSON array: {exc}") from None
            for n, obj in enumerate(items if isinstance(items, list) else [], 1):
                if isinstance(obj, dict):
                    k = classify(obj)
                    if k is not None:
                        yield k, obj
                elif on_bad_line is not None:
                    on_bad_line(f"{path}: item {n}: not a JSON object")
            return
        for n, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):
                msg = f"{path}:{n}: not a JSON record" + (" (truncated last line?)" if not raw.endswith(b"\n") else "")
                if on_bad_line is None:
                    raise InputError(msg) from None
                on_bad_line(msg)
                continue
            if not isinstance(obj, dict):
                msg = f"{path}:{n}: not a JSON object"
                if on_bad_line is None:
                    raise InputError(msg)
                on_bad_line(msg)
                continue
            k = classify(obj)
            if k is not None:
                if k == "metadata":
                    v = obj.get("schema_version")
                    if isinstance(v, int) and v > SCHEMA_VERSION:
                        raise SchemaVersionError(
                            f"{path}:{n}: written with record schema version {v}; this denet reads versions up "
                            f"to {SCHEMA_VERSION} (upgrade denet to read it)")
                yield k, obj


class RunFile:
    """What a record file holds: metadata, env, the summary line (if the run finished) and a
    summary recomputed from the records."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.metadata: dict | None = None
        self.env: dict | None = None
        self.summary: dict | None = None
        self.records = 0
        self.bad_lines: list[str] = []
        self.computed = None  # RunSummary from the records


def read_run(path: str, *, max_reported_bad_lines: int = 5) -> RunFile:
    """Read a whole record file into a :class:`RunFile`; raises InputError when it holds no records.

    JSON lines (ours, a journal, the Rust denet's) and denet's Parquet files are accepted."""
    if _is_parquet(path):
        return _read_run_parquet(path)
    rf = RunFile(path)
    acc_tree = SummaryAccumulator()
    acc_sample = SummaryAccumulator()
    for kind, obj in iter_records(path, on_bad_line=rf.bad_lines.append):
        if kind == "metadata" and rf.metadata is None:
            rf.metadata = obj
        elif kind == "env" and rf.env is None:
            rf.env = obj
        elif kind == "summary":
            rf.summary = obj
        elif kind == "tree":
            agg = obj.get("aggregated")
            if isinstance(agg, dict):
                acc_tree.add_dict(agg)
            rf.records += 1
        elif kind == "sample":
            acc_sample.add_dict(obj)
            rf.records += 1
    acc = acc_tree if acc_tree.count else acc_sample
    if not rf.records and rf.metadata is None and rf.summary is None:
        detail = f" ({len(rf.bad_lines)} unreadable lines; first: {rf.bad_lines[0]})" if rf.bad_lines else ""
        raise InputError(f"{path}: no denet records found{detail}")
    rf.computed = acc.build()
    return rf


def _is_parquet(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False  # iter_records reports it


def _read_run_parquet(path: str) -> RunFile:
    """A denet Parquet file as a :class:`RunFile`: records from the key-value metadata, the
    summary recomputed from the tree (or sample) rows."""
    import pyarrow.parquet as pq

    from .schema import fields

    entry = parquet_entry(path)
    rf = RunFile(path)
    rf.metadata, rf.env, rf.summary = entry.metadata, entry.env, entry.summary
    want = [f.name for f in fields("aggregated") if f.type in ("int", "float")]
    try:
        pf = pq.ParquetFile(path)
        cols = [c for c in ["scope", *want] if c in pf.schema_arrow.names]
        rows = pf.read(columns=cols).to_pylist()
    except Exception as exc:  # pyarrow raises its own errors for damaged files
        raise InputError(f"{path}: cannot read the Parquet rows: {_short(exc)}") from None
    acc_tree = SummaryAccumulator()
    acc_sample = SummaryAccumulator()
    for r in rows:
        scope = r.get("scope")
        if scope == "tree":
            acc_tree.add_dict(r)
            rf.records += 1
        elif scope == "sample":
            acc_sample.add_dict(r)
            rf.records += 1
    rf.computed = (acc_tree if acc_tree.count else acc_sample).build()
    return rf


def effective_summary(rf: RunFile) -> dict:
    """The summary to show for a file: its own summary line when the run finished, else the one
    computed from its records, with the exact part marked missing."""
    from .schema import fields as schema_fields

    if rf.summary is not None:
        out = rf.computed.as_dict(keep_absent=True)
        for f in schema_fields("summary"):  # optional fields (the GPU figures) only when there
            if f.optional and f.name not in rf.summary:
                out.pop(f.name, None)
        out.update({k: v for k, v in rf.summary.items() if k != "kind"})
        out.setdefault("exact", [f for f in EXACT_FIELDS if out.get(f) is not None])
        return out
    out = rf.computed.as_dict()
    out["exact"] = []
    return out


# =============================================================================== formats, frames
#
# Everything below turns files into polars LazyFrames and run entries with the canonical column
# names of schemas/records.json: denet JSONL (and JSON arrays), denet Parquet, the journal a
# Parquet run leaves when it is cut short, compacted datasets, the Rust denet's JSONL (tagged or
# untagged, old `net_*_bytes` names), and Snakemake benchmark files (TSV and JSONL). polars and
# pyarrow are imported inside the functions that need them.

DATASET_MARKER = "_denet_dataset.json"
FORMATS = ("denet-jsonl", "denet-json", "denet-parquet", "denet-journal", "denet-dataset", "rust-jsonl",
           "snakemake-tsv", "snakemake-jsonl")
_HEAD = 4096


def _open(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a record file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _first_line(fh, limit: int = 1 << 24) -> bytes:
    fh.seek(0)
    return fh.readline(limit)


def _snakemake_header() -> list[str]:
    from .schema import table_fields

    return [f.name for f in table_fields("snakemake_benchmark")]


def detect_format(path: str) -> str:
    """What ``path`` holds (one of :data:`FORMATS`), judged by its first bytes; raises
    :class:`InputError` naming the file for empty files, binary data and anything else."""
    import os

    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, DATASET_MARKER)):
            return "denet-dataset"
        raise InputError(f"{path}: is a directory, not a record file")
    with _open(path) as fh:
        head = fh.read(_HEAD)
        if head.startswith(b"PAR1"):
            return "denet-parquet"
        if not head.strip():
            raise InputError(f"{path}: empty file" if not head else f"{path}: empty file (only blank space)")
        if b"\0" in head or not _is_text(head):
            raise InputError(f"{path}: not a denet record file (binary data)")
        from .sinks.parquet import destination_of

        if destination_of(path) is not None and path.endswith(".journal"):
            return "denet-journal"
        text = head.lstrip()
        if text.startswith(b"["):
            return "denet-json"
        if text.startswith(b"{"):
            skipped = len(head) - len(text)
            fh.seek(skipped)
            line = fh.readline(1 << 24)
            try:
                obj = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):
                what = "truncated record (the file ends in the middle of its first line)" \
                    if not line.endswith(b"\n") else "not a JSON record"
                raise InputError(f"{path}:1: {what}") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:1: not a JSON object")
            if "h:m:s" in obj or ("s" in obj and "max_rss" in obj):
                return "snakemake-jsonl"
            if isinstance(obj.get("kind"), str):
                return "denet-jsonl"
            if classify(obj) is not None:
                return "rust-jsonl"
            raise InputError(f"{path}:1: not a denet record (a JSON object with keys {', '.join(list(obj)[:6])})")
        first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace").split("\t")
        want = _snakemake_header()
        if first[: len(want)] == want:
            return "snakemake-tsv"
        raise InputError(f"{path}: not a denet record file (neither JSON lines, Parquet, nor a Snakemake "
                         "benchmark TSV)")


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and len(head) == _HEAD  # a character cut by the read size


def find_inputs(paths, *, on_skip: Callable[[str], None] | None = None) -> list[str]:
    """Files to read for ``paths``: files as given, directories searched recursively, globs
    expanded. In directories: ``*.jsonl``, ``*.parquet``, journals (``.*.journal``) whose Parquet
    file does not exist, Snakemake ``*.tsv`` benchmark files, and compacted datasets (a directory
    holding ``_denet_dataset.json`` is one input). A path that matches nothing is an error."""
    import glob
    import os

    from .sinks.parquet import destination_of

    out: list[str] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    def walk(d: str) -> None:
        if os.path.exists(os.path.join(d, DATASET_MARKER)):
            add(d)
            return
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            raise InputError(f"{d}: cannot list: {exc.strerror or exc}") from None
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                walk(e.path)
                continue
            name = e.name
            if name.endswith(".processes.parquet"):
                continue  # a run's process ledger: read with its run file
            if name.endswith((".jsonl", ".parquet")) and not name.startswith("."):
                add(e.path)
            elif name.endswith(".journal"):
                dest = destination_of(e.path)
                try:
                    empty = e.stat().st_size == 0  # denet was killed before it wrote anything
                except OSError:
                    empty = True
                if dest is not None and not os.path.exists(dest) and not empty:
                    add(e.path)
            elif name.endswith(".tsv") and not name.startswith("."):
                try:
                    with open(e.path, "rb") as fh:
                        first = fh.readline(4096).decode("utf-8", "replace").rstrip("\r\n").split("\t")
                except OSError:
                    continue
                if first[:10] == _snakemake_header():
                    add(e.path)
                elif on_skip is not None:
                    on_skip(f"{e.path}: not a Snakemake benchmark TSV, ignored")

    for p in [paths] if isinstance(paths, str) else list(paths):
        p = os.fspath(p)
        if os.path.isdir(p):
            walk(p)
        elif os.path.exists(p):
            add(p)
        elif glob.has_magic(p):
            hits = sorted(glob.glob(p, recursive=True))
            if not hits:
                raise InputError(f"{p}: no file matches")
            for h in hits:
                if os.path.isdir(h):
                    walk(h)
                else:
                    add(h)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


# ------------------------------------------------------------------------------- run entries


class RunEntry:
    """One run as read from a file: what its metadata, env and summary records say, before any
    row is read. ``sampled`` holds per-run figures of inputs without rows (Snakemake files)."""

    __slots__ = ("path", "format", "run_id", "metadata", "env", "summary", "sampled", "source")

    def __init__(self, path: str, format: str, run_id: str, metadata: dict | None = None,
                 env: dict | None = None, summary: dict | None = None, sampled: dict | None = None,
                 source: str | None = None) -> None:
        self.path = path
        self.format = format
        self.run_id = run_id
        self.metadata = metadata
        self.env = env
        self.summary = summary
        self.sampled = sampled
        self.source = source if source is not None else path  # the key its rows are found under

    @property
    def labels(self) -> dict:
        labels = (self.metadata or {}).get("labels")
        return labels if isinstance(labels, dict) else {}

    def __repr__(self) -> str:
        return f"RunEntry({self.path!r}, {self.format!r}, {self.run_id!r})"


def _check_version_of(meta: dict | None, where: str) -> None:
    if not meta:
        return
    v = meta.get("schema_version")
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool) and v > SCHEMA_VERSION:
        raise SchemaVersionError(f"{where}: written with record schema version {v}; this denet reads versions up "
                                 f"to {SCHEMA_VERSION} (upgrade denet to read it)")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def read_failures() -> tuple[type[BaseException], ...]:
    """What reading a damaged file with polars may raise, for ``except read_failures():`` (evaluated only
    when something was raised): its errors, and the panics of its Rust code, ``PanicException``, which
    derives from BaseException and would otherwise end denet with a traceback."""
    try:
        from polars.exceptions import PanicException
    except ImportError:  # pragma: no cover - an old polars
        return (Exception,)
    return (Exception, PanicException)


def parquet_kv(path: str) -> dict[str, str]:
    """The key-value metadata of a Parquet file; a file that is not complete Parquet is refused."""
    import polars as pl

    try:
        return pl.read_parquet_metadata(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except read_failures() as exc:  # polars raises ComputeError for files cut short or not Parquet at all
        raise InputError(f"{path}: not a complete Parquet file (cut short, or still being written?): "
                         f"{_short(exc)}") from None


def _json_object(text, where: str) -> dict | None:
    """The JSON object in ``text`` (None for other JSON values); ``where`` names it in the error."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise InputError(f"{where} is not valid JSON") from None
    return obj if isinstance(obj, dict) else None


def _kv_json(path: str, kv: dict, key: str) -> dict | None:
    from .sinks.parquet import KV

    raw = kv.get(KV[key])
    return None if raw is None else _json_object(raw, f"{path}: the Parquet key {KV[key]}")


def parquet_entry(path: str, kv: dict | None = None) -> RunEntry:
    """The run entry of a denet Parquet file, from its key-value metadata only."""
    from .sinks.parquet import KV, run_id_of

    if kv is None:
        kv = parquet_kv(path)
    if kv.get(KV["table"]) == "processes":
        raise InputError(f"{path}: the process ledger of a run, not a run file (give the run's file, "
                         f"{kv.get('denet.run_file') or 'NAME.parquet'})")
    if KV["metadata"] not in kv and KV["layout"] not in kv:
        raise InputError(f"{path}: a Parquet file, but not one written by denet (no {KV['metadata']} key)")
    sv = kv.get(KV["schema_version"])
    if sv is not None:
        _check_version_of({"schema_version": sv}, path)
    meta = _kv_json(path, kv, "metadata")
    _check_version_of(meta, path)
    import os

    rid = kv.get(KV["run_id"]) or run_id_of(meta, os.path.abspath(path))
    return RunEntry(path, "denet-parquet", rid, meta, _kv_json(path, kv, "env"), _kv_json(path, kv, "summary"))


def _count_lines(fh) -> int:
    fh.seek(0)
    n = 0
    while True:
        chunk = fh.read(1 << 20)
        if not chunk:
            return n
        n += chunk.count(b"\n")


def jsonl_entry(path: str, fmt: str) -> RunEntry:
    """The run entry of a JSONL file (denet's, a journal or the Rust denet's) from its first lines
    and its last line, without reading the records in between."""
    import os

    from .sinks.parquet import run_id_of

    meta = env = summary = None
    with _open(path) as fh:
        for n in range(1, 4):  # env and metadata come first
            raw = fh.readline(1 << 24)
            if not raw:
                break
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if fmt == "denet-journal" and not raw.endswith(b"\n"):
                    break
                raise InputError(f"{path}:{n}: not a JSON record" +
                                 ("" if raw.endswith(b"\n") else " (truncated record: the file ends mid-line)")) \
                    from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{n}: not a JSON object")
            k = classify(obj)
            if k == "metadata" and meta is None:
                _check_version_of(obj, f"{path}:{n}")
                meta = obj
            elif k == "env" and env is None:
                env = obj
            elif k in ("tree", "sample"):
                break
        size = fh.seek(0, 2)
        start = max(0, size - (1 << 16))
        fh.seek(start)
        tail = fh.read()
        if tail and not tail.endswith(b"\n") and fmt != "denet-journal":
            n = _count_lines(fh) + 1
            raise InputError(f"{path}:{n}: truncated record (the file ends in the middle of a line; "
                             "was it copied before the run ended?)")
        lines = tail.split(b"\n")
        if not tail.endswith(b"\n"):
            lines = lines[:-1]  # a journal's last line cut short
        for raw in reversed(lines):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if start and raw is lines[0]:
                    break  # the window cut this line
                n = _count_lines(fh)
                raise InputError(f"{path}:{n}: not a JSON record") from None
            if isinstance(obj, dict) and classify(obj) == "summary":
                summary = obj
            break
    return RunEntry(path, fmt, run_id_of(meta, os.path.abspath(path)), meta, env, summary)


def _na(v):
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip()
        if s in ("", "NA", "-", "nan", "NaN", "None"):
            return None
        return float(s)
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, int | float):
        return float(v) if v == v else None
    raise ValueError(v)


def _wildcards_text(v) -> str | None:
    if v is None or v in ("", "NA", "-"):
        return None
    if isinstance(v, str):
        import ast

        try:
            v = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items())
    return str(v)


_MIB = 1024 * 1024


def _snakemake_entry(path: str, fmt: str, n: int, row: dict) -> RunEntry:
    import os

    from .sinks.parquet import run_id_of

    def num(col: str):
        try:
            return _na(row.get(col))
        except ValueError:
            raise InputError(f"{path}:{n}: column {col}: not a number: {row.get(col)!r}") from None

    s, rss, vms = num("s"), num("max_rss"), num("max_vms")
    io_in, io_out, load, cpu = num("io_in"), num("io_out"), num("mean_load"), num("cpu_time")
    labels: dict[str, str] = {}
    for col, key in (("rule_name", "rule"), ("threads", "threads"), ("jobid", "jobid")):
        v = row.get(col)
        if v not in (None, "", "NA", "-"):
            if isinstance(v, list | tuple) and len(v) == 1:
                v = v[0]
            text = str(v).strip()
            if text.startswith("(") and text.endswith(",)"):  # Snakemake writes some values as 1-tuples
                text = text[1:-2].strip().strip("'\"")
            labels[key] = text
    wc = _wildcards_text(row.get("wildcards"))
    if wc:
        labels["wildcards"] = wc
    summary = {
        "total_time_secs": s, "wall_time_secs": s, "cpu_time_secs": cpu, "avg_cpu_usage": load,
        "peak_mem_rss_kb": None if rss is None else round(rss * 1024),
        "total_disk_read_bytes": None if io_in is None else round(io_in * _MIB),
        "total_disk_write_bytes": None if io_out is None else round(io_out * _MIB),
    }
    sampled = {"peak_mem_vms_kb": None if vms is None else round(vms * 1024)}
    meta = {"cmd": [], "labels": labels}
    rid = run_id_of(None, f"{os.path.abspath(path)}:{n}")
    return RunEntry(path, fmt, rid, meta, None, summary, sampled)


def snakemake_entries(path: str, fmt: str | None = None) -> list[RunEntry]:
    """Runs of a Snakemake benchmark file (TSV, or JSONL from ``benchmark: "x.jsonl"``): one per row."""
    fmt = fmt or detect_format(path)
    out: list[RunEntry] = []
    with _open(path) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a Snakemake benchmark file (binary data)") from None
    lines = text.splitlines()
    if fmt == "snakemake-jsonl":
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                raise InputError(f"{path}:{n}: not a JSON record" +
                                 ("" if n < len(lines) or text.endswith("\n") else " (truncated last line)")) from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{n}: not a JSON object")
            out.append(_snakemake_entry(path, fmt, n, obj))
        return out
    header = lines[0].split("\t") if lines else []
    want = _snakemake_header()
    if header[: len(want)] != want:
        raise InputError(f"{path}:1: not a Snakemake benchmark header (expected {' '.join(want)})")
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise InputError(f"{path}:{n}: {len(cells)} tab-separated columns where the header has {len(header)}"
                             + (" (truncated last line?)" if n == len(lines) and not text.endswith("\n") else ""))
        out.append(_snakemake_entry(path, fmt, n, dict(zip(header, cells, strict=True))))
    return out


def dataset_entries(path: str) -> list[RunEntry]:
    """Runs of a compacted dataset (``denet compact``), from its ``runs.parquet``."""
    import os

    import polars as pl

    marker = os.path.join(path, DATASET_MARKER)
    try:
        with open(marker, "rb") as fh:
            info = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"{marker}: unreadable dataset marker: {_short(exc)}") from None
    v = info.get("schema_version") if isinstance(info, dict) else None
    _check_version_of({"schema_version": v}, marker)
    runs = os.path.join(path, "runs.parquet")
    parquet_kv(runs)
    try:
        df = pl.read_parquet(runs, glob=False)
    except read_failures() as exc:
        raise InputError(f"{runs}: cannot read: {_short(exc)}") from None
    out = []

    def obj(s):
        return None if s is None else _json_object(s, f"{runs}: a JSON column")

    for r in df.iter_rows(named=True):
        meta = obj(r.get("metadata_json"))
        _check_version_of(meta, runs)
        out.append(RunEntry(r["source_path"], "denet-dataset", r["run_id"], meta, obj(r.get("env_json")),
                            obj(r.get("summary_json")), obj(r.get("sampled_json")),
                            source=f"{path}#{r['run_id']}"))
    return out


def entries_of(path: str, fmt: str | None = None) -> list[RunEntry]:
    """The runs a file holds (one for a denet file, one per row for Snakemake files, many for a
    compacted dataset)."""
    fmt = fmt or detect_format(path)
    if fmt == "denet-parquet":
        return [parquet_entry(path)]
    if fmt in ("denet-jsonl", "rust-jsonl", "denet-journal"):
        return [jsonl_entry(path, fmt)]
    if fmt == "denet-json":
        b = python_rows(path, fmt)
        import os

        from .sinks.parquet import run_id_of

        return [RunEntry(path, fmt, run_id_of(b.metadata, os.path.abspath(path)), b.metadata, b.env, b.summary)]
    if fmt in ("snakemake-tsv", "snakemake-jsonl"):
        return snakemake_entries(path, fmt)
    if fmt == "denet-dataset":
        return dataset_entries(path)
    raise InputError(f"{path}: unknown format {fmt}")  # pragma: no cover


# ------------------------------------------------------------------------------- rows


def python_rows(path: str, fmt: str | None = None) -> RowBuilder:
    """Read a JSON-lines (or JSON array) file record by record into a
    :class:`~denet.sinks.parquet.RowBuilder`; bad lines raise :class:`InputError` with file and
    line (a journal's last line cut short is dropped, as the run was killed while writing it)."""
    from .sinks.parquet import RowBuilder, read_journal

    fmt = fmt or detect_format(path)
    if fmt == "denet-journal":
        b, bad = read_journal(path)
        if bad:
            raise InputError(bad[0])
        return b
    b = RowBuilder()
    for kind, obj in iter_records(path):
        b.add(kind, obj)
    return b


def row_tables(path: str, fmt: str | None = None) -> tuple[str, pa.Table, pa.Table]:
    """(tree-or-sample rows, process rows) of a JSON-lines record file as Arrow tables of the
    ``rows`` layout, with the run's id: ``(run_id, tree, procs)``. denet's own lines take the C++
    fast path; the Rust denet's lines, JSON arrays and anything unusual are read record by record."""
    import os

    from .sinks.parquet import jsonl_tables

    fmt = fmt or detect_format(path)
    if fmt in ("denet-jsonl", "denet-journal"):
        _b, rid, tree, procs, bad = jsonl_tables(path, lenient_last_line=fmt == "denet-journal",
                                                 fallback=lambda p: python_rows(p, fmt))
        return rid, tree, procs
    b = python_rows(path, fmt)
    rid = b.run_id(os.path.abspath(path))
    tree, procs = b.tables(rid)
    return rid, tree, procs


def _scalar_fields(record: str):
    from .schema import fields

    return [f for f in fields(record) if f.type in ("int", "float")]


def _ndjson_schema(columns=None) -> dict:
    import polars as pl

    from .schema import polars_dtype

    def struct_of(record: str) -> dict:
        d = {}
        for f in _scalar_fields(record):
            if columns is not None and f.name not in columns:
                continue
            d[f.name] = polars_dtype(f.type)
            for a in f.aliases:
                d[a] = polars_dtype(f.type)
        return d

    top = {"kind": pl.String}
    top.update(struct_of("metrics"))
    top["aggregated"] = pl.Struct(struct_of("aggregated"))
    return top


def _aliased(record: str, prefix=None, columns=None) -> list:
    """Expressions selecting the scalar fields of ``record`` (old names coalesced in)."""
    import polars as pl

    def col(name):
        return pl.col(prefix).struct.field(name) if prefix else pl.col(name)

    out = []
    for f in _scalar_fields(record):
        if columns is not None and f.name not in columns:
            continue
        e = col(f.name)
        if f.aliases:
            e = pl.coalesce([e, *[col(a) for a in f.aliases]])
        out.append(e.alias(f.name))
    return out


def _tree_columns() -> list[str]:
    from .schema import table_fields

    lead = ("run_id", "pid", "command")
    return [f.name for f in table_fields("rows") if f.name not in lead and f.type in ("int", "float", "str")]


def scan_ndjson_tree_rows(paths: list[str], columns: Iterable[str] | None = None) -> pl.LazyFrame:
    """Tree (or sample) rows of JSON-lines files as one LazyFrame with a ``path`` column: the
    fast path of ``summarize`` (polars' own JSON reader; any error is the caller's cue to read
    the files one by one with :func:`python_rows`). ``columns``: only these metric columns (the
    parser skips the rest faster)."""
    import polars as pl

    cols = None if columns is None else set(columns) | {"ts_ms"}
    sch = _ndjson_schema(cols)
    for key in ("cpu_usage", "mem_rss_kb"):  # what tells an untagged sample line
        sch.setdefault(key, pl.Float64 if key == "cpu_usage" else pl.Int64)
    lf = pl.scan_ndjson(paths, schema=sch, include_file_paths="path")
    kind = pl.col("kind")
    is_tree = pl.col("aggregated").is_not_null() & (kind.is_null() | (kind == "tree"))
    is_sample = (kind == "sample") | (kind.is_null() & pl.col("aggregated").is_null()
                                      & pl.col("cpu_usage").is_not_null() & pl.col("mem_rss_kb").is_not_null())
    # one pass over the files: a tree line's values come from its aggregate, a sample line's from the line
    tree_vals = {e.meta.output_name(): e for e in _aliased("aggregated", "aggregated", cols)}
    sample_vals = {e.meta.output_name(): e for e in _aliased("metrics", None, cols)}
    sample_vals["process_count"] = pl.lit(1, pl.Int64)
    out = [pl.col("path"), pl.when(is_tree).then(pl.lit("tree")).when(is_sample).then(pl.lit("sample"))
           .otherwise(None).alias("scope")]
    for name, e in tree_vals.items():
        alt = sample_vals.get(name)
        out.append((pl.when(is_tree).then(e).otherwise(alt) if alt is not None else e).alias(name))
    return lf.select(out).filter(pl.col("scope").is_not_null())


def _rows_polars_schema() -> dict:
    from .schema import polars_table_schema

    return polars_table_schema("rows")


def scan_rows(path: str, fmt: str | None = None) -> pl.LazyFrame:
    """All rows of one run file (or of a compacted dataset) as a polars LazyFrame in the ``rows``
    layout (see docs/schema.md): tree, root, child and sample rows."""
    import os

    import polars as pl

    fmt = fmt or detect_format(path)
    if fmt == "denet-parquet":
        parquet_entry(path)
        return pl.scan_parquet(path, glob=False)
    if fmt == "denet-dataset":
        dataset_entries(path)
        parts = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(path, "rows")) for f in fs
                       if f.endswith(".parquet") and not f.startswith("."))
        return pl.scan_parquet(parts, glob=False, hive_partitioning=False) if parts else \
            pl.LazyFrame(schema=_rows_polars_schema())
    if fmt in ("snakemake-tsv", "snakemake-jsonl"):
        raise InputError(f"{path}: a Snakemake benchmark file has no samples, only per-run figures")
    import pyarrow as pa

    _rid, tree, procs = row_tables(path, fmt)
    return pl.from_arrow(pa.concat_tables([tree, procs])).lazy()


# ------------------------------------------------------------------------------- the process ledger

_PROCESS_PREFIX = b'{"kind":"process",'


def read_processes(path: str, fmt: str | None = None) -> tuple[list[dict] | None, str | None]:
    """The process ledger of one run file: ``(process records as dicts, None)``, or
    ``(None, why not)`` for a run without one (written before the ledger, with --no-ledger, by
    the Rust denet or Snakemake, or a Parquet run whose sibling file is missing). A journal's
    last line cut short is dropped; other lines that are not records raise :class:`InputError`."""
    import os

    fmt = fmt or detect_format(path)
    if fmt == "denet-parquet":
        from .sinks.parquet import KV

        kv = parquet_kv(path)
        raw = kv.get(KV["processes"])
        if raw is None:
            return None, f"{path}: no process records (written without the process ledger)"
        try:
            info = json.loads(raw)
            sibling = os.path.join(os.path.dirname(path), str(info["file"]))
        except (ValueError, KeyError, TypeError, RecursionError):
            raise InputError(f"{path}: the Parquet key {KV['processes']} is not valid") from None
        if not os.path.exists(sibling):
            return None, f"{path}: its process ledger {sibling} is missing (moved without it?)"
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(sibling).to_pylist()
        except Exception as exc:
            raise InputError(f"{sibling}: cannot read the process ledger: {_short(exc)}") from None
        for r in rows:
            r.pop("run_id", None)
        return rows, None
    if fmt in ("denet-jsonl", "denet-journal"):
        out: list[dict] = []
        with _open(path) as fh:
            for n, raw in enumerate(fh, 1):
                if not raw.startswith(_PROCESS_PREFIX):
                    continue
                try:
                    obj = json.loads(raw)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    if fmt == "denet-journal" and not raw.endswith(b"\n"):
                        break  # the run was killed while writing it
                    raise InputError(f"{path}:{n}: not a JSON record") from None
                out.append(obj)
        return (out, None) if out else (None, f"{path}: no process records (written without the process ledger)")
    if fmt == "denet-json":
        found = [obj for kind, obj in iter_records(path) if kind == "process"]
        return (found, None) if found else (None, f"{path}: no process records")
    return None, f"{path}: no process records ({fmt} files have none)"
