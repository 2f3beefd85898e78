"""Reading records back from files.

``iter_records`` streams a JSON Lines file (ours, or the Rust denet's tagged or untagged
lines) as ``(kind, dict)`` pairs without any heavy import; ``denet stats`` and the Python API
build on it. Lines that are not records are reported with file and line number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from .errors import InputError, SchemaVersionError
from .schema import SCHEMA_VERSION
from .summary import EXACT_FIELDS, SummaryAccumulator

__all__ = ["classify", "iter_records", "read_run", "RunFile"]


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
            except (ValueError, UnicodeDecodeError) as exc:
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
            except (ValueError, UnicodeDecodeError):
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
    """Read a whole record file into a :class:`RunFile`; raises InputError when it holds no records."""
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


def effective_summary(rf: RunFile) -> dict:
    """The summary to show for a file: its own summary line when the run finished, else the one
    computed from its records, with the exact part marked missing."""
    if rf.summary is not None:
        out = rf.computed.as_dict(keep_absent=True)
        out.update({k: v for k, v in rf.summary.items() if k != "kind"})
        out.setdefault("exact", [f for f in EXACT_FIELDS if out.get(f) is not None])
        return out
    out = rf.computed.as_dict(keep_absent=True)
    out["exact"] = []
    return out
