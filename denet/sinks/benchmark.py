"""Snakemake's benchmark TSV for one run (``denet run --benchmark FILE.tsv``).

The columns, their order and units come from the ``snakemake_benchmark`` table of
``schemas/records.json``. Values are denet's: exact wall time, CPU seconds and peak process RSS,
sampled tree peaks and I/O, ``NA`` where denet has nothing (USS, PSS). Written at close, to a
temporary name renamed over the destination, so a reader never sees half a file. Imports nothing
heavy.
"""

from __future__ import annotations

import os

from .. import schema
from ..atomic import replace_with_bytes

__all__ = ["BenchmarkSink", "benchmark_header", "benchmark_row", "hms"]

_MIB = 1024 * 1024


def benchmark_header() -> str:
    """Snakemake's header line (without newline)."""
    return "\t".join(f.name for f in schema.table_fields("snakemake_benchmark"))


def hms(secs: float) -> str:
    """Snakemake's ``h:m:s``: whole seconds, ``N day(s), `` in front past a day."""
    whole = int(secs) if secs > 0 else 0
    days, rest = divmod(whole, 86400)
    mm, ss = divmod(rest, 60)
    hh, mm = divmod(mm, 60)
    s = f"{hh}:{mm:02d}:{ss:02d}"
    if days:
        s = f"{days} day{'s' if days != 1 else ''}, " + s
    return s


def _f(v) -> str:
    return "NA" if v is None else f"{float(v):.2f}"


def _num(v):
    return v if isinstance(v, int | float) and not isinstance(v, bool) and v == v else None


def benchmark_row(summary: dict, peak_vms_kb: int | float | None = None) -> str:
    """One TSV line (without newline) in Snakemake's format from a run's summary figures.

    ``summary`` has the summary record's field names (missing or None values become NA);
    ``peak_vms_kb`` is the sampled peak virtual size of the tree, when known.
    """
    wall = _num(summary.get("wall_time_secs"))
    if wall is None:
        wall = _num(summary.get("total_time_secs"))
    samples = _num(summary.get("sample_count")) or 0
    rss = [x for x in (_num(summary.get("peak_mem_rss_kb")), _num(summary.get("peak_process_rss_kb"))) if x]
    cpu = _num(summary.get("cpu_time_secs"))
    load = cpu / wall * 100.0 if cpu is not None and wall else None
    rd, wr = _num(summary.get("total_disk_read_bytes")), _num(summary.get("total_disk_write_bytes"))
    vms = _num(peak_vms_kb)
    cells = [
        "NA" if wall is None else f"{round(wall, 4):.2f}",
        "NA" if wall is None else hms(wall),
        _f(max(rss) / 1024 if rss else None),
        _f(vms / 1024 if vms else None),
        "NA",
        "NA",
        _f(rd / _MIB if rd is not None and samples else None),
        _f(wr / _MIB if wr is not None and samples else None),
        _f(load),
        _f(cpu),
    ]
    return "\t".join(cells)


class BenchmarkSink:
    """Writes Snakemake's benchmark TSV for the run when it closes."""

    def __init__(self, path: str) -> None:
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise FileNotFoundError(2, f"directory {d} does not exist", path)
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a directory", path)
        if not os.access(d, os.W_OK):
            raise PermissionError(13, f"directory {d} is not writable", path)
        self.name = path
        self.failed: OSError | None = None
        self._vms = 0
        self._seen = False
        self._summary = None

    def write(self, record) -> None:
        tag = record._tag
        if tag == "tree":
            agg = record.aggregated
            if agg is not None:
                self._seen = True
                if agg.mem_vms_kb > self._vms:
                    self._vms = agg.mem_vms_kb
        elif tag == "sample":
            self._seen = True
            if record.mem_vms_kb > self._vms:
                self._vms = record.mem_vms_kb
        elif tag == "summary":
            self._summary = record

    def close(self) -> None:
        if self._summary is None or self.failed is not None:
            return
        text = benchmark_header() + "\n" + benchmark_row(self._summary.as_dict(keep_absent=True),
                                                         self._vms if self._seen else None) + "\n"
        try:
            replace_with_bytes(self.name, text.encode())
        except OSError as exc:
            self.failed = exc
            raise
        self._summary = None
