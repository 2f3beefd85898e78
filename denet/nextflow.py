"""``denet summarize --format nextflow-trace``: the runs as Nextflow's trace file.

Column names and order come from the ``nextflow_trace`` table of ``schemas/records.json``; values
are written the way Nextflow writes its ``trace.txt`` by default (``trace.raw = false``): durations
as ``250ms``, ``1.5s``, ``1m 2s``; sizes 1024-based as ``12.3 MB``; ``%cpu`` as ``123.4%``; times as
``yyyy-MM-dd HH:mm:ss.SSS`` in local time; ``-`` for what is unknown.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

from . import schema

if TYPE_CHECKING:
    import polars as pl

__all__ = ["fmt_date", "fmt_duration", "fmt_memory", "nextflow_trace"]

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")


def _num(v):
    return v if isinstance(v, int | float) and not isinstance(v, bool) and v == v else None


def fmt_duration(secs: float | None) -> str:
    """Nextflow's Duration text: ``250ms`` below a second, ``1.5s`` below a minute, else ``1h 2m 3s``."""
    secs = _num(secs)
    if secs is None or secs < 0:
        return "-"
    ms = int(round(secs * 1000))
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        tenths = round(ms / 100.0) / 10.0
        return (f"{tenths:.1f}".rstrip("0").rstrip(".")) + "s"
    s = int(round(ms / 1000.0))
    mins, s = divmod(s, 60)
    hours, mins = divmod(mins, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (mins, "m"), (s, "s")) if v]
    return " ".join(parts)


def fmt_memory(nbytes: float | None) -> str:
    """Nextflow's MemoryUnit text: 1024-based, at most one decimal (``0``, ``512 B``, ``12.3 MB``)."""
    nbytes = _num(nbytes)
    if nbytes is None:
        return "-"
    if nbytes <= 0:
        return "0"
    group = min(int(math.log10(nbytes) / math.log10(1024)), len(_UNITS) - 1)
    v = nbytes / 1024.0**group
    text = f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{text} {_UNITS[group]}"


def fmt_date(ms: float | None) -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in local time."""
    ms = _num(ms)
    if ms is None:
        return "-"
    whole, frac = divmod(int(round(ms)), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)) + f".{frac:03d}"


def _label(r: dict, *keys: str):
    for k in keys:
        for name in (k, f"label_{k}"):
            v = r.get(name)
            if v not in (None, ""):
                return str(v)
    return None


def _process(r: dict) -> str:
    p = _label(r, "process", "rule")
    if p:
        return p
    cmd = r.get("command") or ""
    first = cmd.split(" ", 1)[0] if cmd else ""
    return os.path.basename(first) or "-"


def _hash(r: dict) -> str:
    h = _label(r, "hash")
    if h:
        return h
    rid = "".join(c for c in str(r.get("run_id") or "") if c.isalnum())
    return f"{rid[:2]}/{rid[2:8]}" if len(rid) >= 8 else "-"


def _memory_request(r: dict) -> str:
    m = _label(r, "memory")
    if m:
        return m
    mb = _label(r, "mem_mb")
    try:
        return fmt_memory(float(mb) * 1e6) if mb is not None else "-"
    except ValueError:
        return "-"


def _kib(v):
    return None if _num(v) is None else v * 1024


def _row(n: int, r: dict) -> dict[str, str]:
    wall = _num(r.get("wall_time_secs"))
    cpu = _num(r.get("cpu_time_secs"))
    exit_code = r.get("exit_code")
    status = "ABORTED" if exit_code is None else "COMPLETED" if exit_code == 0 else "FAILED"
    peaks = [x for x in (_num(r.get("peak_mem_rss_kb")), _num(r.get("peak_process_rss_kb"))) if x is not None]
    t0 = _num(r.get("t0_ms"))
    tag = _label(r, "tag", "wildcards")
    name = _process(r) + (f" ({tag})" if tag else "")
    return {
        "task_id": str(n),
        "hash": _hash(r),
        "native_id": _label(r, "jobid") or "-",
        "name": name,
        "status": status,
        "exit": "-" if exit_code is None else str(exit_code),
        "submit": fmt_date(t0),
        "duration": fmt_duration(wall),
        "realtime": fmt_duration(wall),
        "%cpu": f"{cpu / wall * 100.0:.1f}%" if cpu is not None and wall else "-",
        "peak_rss": fmt_memory(_kib(max(peaks)) if peaks else None),
        "peak_vmem": fmt_memory(_kib(r.get("peak_mem_vms_kb"))),
        "rchar": fmt_memory(r.get("total_syscall_read_bytes")),
        "wchar": fmt_memory(r.get("total_syscall_write_bytes")),
        "process": _process(r),
        "tag": tag or "-",
        "cpus": _label(r, "cpus", "threads") or "-",
        "memory": _memory_request(r),
        "start": fmt_date(t0),
        "complete": fmt_date(t0 + wall * 1000.0) if t0 is not None and wall is not None else "-",
        "read_bytes": fmt_memory(r.get("total_disk_read_bytes")),
        "write_bytes": fmt_memory(r.get("total_disk_write_bytes")),
        "hostname": str(r.get("host") or "-"),
    }


def nextflow_trace(runs: pl.DataFrame) -> str:
    """Nextflow's trace file (tab-separated, header first) with one row per run, in start order."""
    names = schema.table_names_of("nextflow_trace")
    rows = list(runs.iter_rows(named=True))
    rows.sort(key=lambda r: (_num(r.get("t0_ms")) is None, _num(r.get("t0_ms")) or 0))
    lines = ["\t".join(names)]
    for n, r in enumerate(rows, 1):
        cells = _row(n, r)
        lines.append("\t".join(cells[k].replace("\t", " ").replace("\n", " ") for k in names))
    return "\n".join(lines) + "\n"
