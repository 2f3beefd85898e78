"""``denet report``: a self-contained HTML report of many runs, or a PNG/SVG image of one run.

Built on the readers and the run and group tables of :mod:`denet.summaries`; charts are altair
definitions rendered in the page by the Vega libraries (inlined, so the file opens from disk
with no network) or to an image by vl-convert. altair, vl-convert and polars are imported only
when a report is made. See docs/report.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..atomic import replace_with_bytes
from ..errors import DenetError, InputError, UsageError
from .data import Caps

__all__ = ["FORMATS", "Caps", "ReportResult", "format_of", "report"]

FORMATS = ("html", "png", "svg")
IMAGE_SIZE = (1000, 800)  # default width and height of a run's image, in pixels
_EXT = {".html": "html", ".htm": "html", ".png": "png", ".svg": "svg"}


@dataclass
class ReportResult:
    """What was written."""

    path: str
    format: str
    runs: int
    groups: int = 0
    charts: int = 0
    series_runs: int = 0
    notes: list[str] = field(default_factory=list)


def format_of(out: str, fmt: str | None) -> str:
    """The output format: ``fmt`` when given, else from the extension of ``out``."""
    if fmt:
        f = fmt.lower()
        if f not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return f
    ext = os.path.splitext(out)[1].lower()
    if ext in _EXT:
        return _EXT[ext]
    raise UsageError(f"-o {out}: cannot tell the format from the extension (use .html, .png or .svg, "
                     "or give --format html|png|svg)")


def _need_libraries() -> None:
    missing = []
    for mod, dist in (("altair", "altair"), ("vl_convert", "vl-convert-python")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(dist)
    if missing:
        raise DenetError(f"denet report needs {' and '.join(missing)}: pip install 'denet[report]'")


def report(paths: Sequence[str] | str, out: str, *, fmt: str | None = None, by: str | Sequence[str] | None = None,
           title: str | None = None, width: int | None = None, height: int | None = None, caps: Caps | None = None,
           skip_bad: bool = False,
           on_bad: Callable[[str], None] | None = None, on_note: Callable[[str], None] | None = None) -> ReportResult:
    """Write a report of the runs in ``paths`` to ``out``: HTML (many runs), PNG or SVG (one run)."""
    fmt = format_of(out, fmt)
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise DenetError(f"cannot write {out}: directory {d} does not exist")
    _need_libraries()
    from . import data

    caps = caps or Caps()
    wf = data.load(paths, by, skip_bad=skip_bad, on_bad=on_bad, on_note=on_note)
    if fmt == "html":
        from .page import html_report

        text, info = html_report(wf, caps, title=title)
        _write(out, text.encode("utf-8"))
        return ReportResult(out, fmt, wf.runs.height, groups=wf.groups.height, charts=info["charts"],
                            series_runs=info["series_runs"], notes=wf.notes)
    if wf.runs.height != 1:
        raise UsageError(f"a {fmt.upper()} image shows one run, and {wf.runs.height} runs were found in "
                         f"{', '.join(map(str, [paths] if isinstance(paths, str) else paths))} "
                         "(give one run file, or write an .html report)")
    img = run_image(wf, 0, fmt=fmt, width=width or IMAGE_SIZE[0], height=height or IMAGE_SIZE[1], title=title)
    _write(out, img)
    return ReportResult(out, fmt, 1, groups=1, charts=1, series_runs=1, notes=wf.notes)


def run_image(wf, i: int, *, fmt: str, width: int = 1000, height: int = 800, title: str | None = None) -> bytes:
    """The stacked-panel image of run ``i`` of a workflow."""
    from . import data
    from .charts import run_image as render
    from .text import run_subtitle, run_title

    entry = wf.entries[i]
    series = data.run_series(entry, 4 * data.Caps().series_points)
    if series is None:
        raise InputError(f"{entry.path}: a Snakemake benchmark file has no samples to draw (only per-run figures)")
    row = wf.runs.row(i, named=True)
    cols = data.series_columns(series)
    limits = limits_of(row)
    return render(cols, title=title or run_title(row), subtitle=run_subtitle(row, series, limits),
                  limits=drawn_limits(limits, cols), width=width, height=height, fmt=fmt)


def drawn_limits(limits: list[dict], series: dict) -> list[dict]:
    """The requests worth a line in the panels: those within 4 times the run's peak (a larger one
    would squash the run's own curve; the subtitle still names it)."""
    peak = {"cpu": max(series.get("cpu") or [0]), "mem": max(series.get("rss") or [0]) * 1024.0}
    return [lim for lim in limits if lim["value"] <= 4 * peak.get(lim["panel"], 0)]


def limits_of(row: dict) -> list[dict]:
    """Requested resources of a run, from its labels: ``threads`` (as CPU %), ``mem_mb``
    (megabytes, 10^6 bytes, as Snakemake counts them) or ``mem_mib`` (2^20 bytes)."""
    out = []
    th = _float(row.get("threads"))
    if th is not None and th > 0:
        out.append({"panel": "cpu", "value": th * 100.0, "label": f"threads={row.get('threads')}"})
    for label, unit in (("mem_mb", 1e6), ("mem_mib", float(1 << 20))):
        mem = _float(row.get(label))
        if mem is not None and mem > 0:
            out.append({"panel": "mem", "value": mem * unit, "label": f"{label}={row.get(label)}"})
            break
    return out


def _float(v) -> float | None:
    if v is None:
        return None
    try:
        f = float(str(v).strip())
    except ValueError:
        return None
    return f if f == f else None


def _write(path: str, data: bytes) -> None:
    try:
        replace_with_bytes(path, data)
    except OSError as exc:
        raise DenetError(f"cannot write {path}: {exc.strerror or exc}") from None
