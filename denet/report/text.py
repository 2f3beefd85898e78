"""Numbers and runs in words, for the report's tables, titles and tooltips."""

from __future__ import annotations

import time

__all__ = ["fmt_bytes", "fmt_kib", "fmt_secs", "fmt_time", "run_subtitle", "run_title"]


def fmt_secs(v) -> str:
    if v is None:
        return "–"
    v = float(v)
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 60:
        return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"
    m, s = divmod(int(round(v)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def fmt_bytes(v) -> str:
    if v is None:
        return "–"
    v = float(v)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(v) < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024.0
    return f"{v:.1f} PiB"  # pragma: no cover


def fmt_kib(v) -> str:
    return "–" if v is None else fmt_bytes(float(v) * 1024.0)


def fmt_num(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_time(ms) -> str:
    """A Unix time in ms as local date and time with the UTC offset."""
    if ms is None:
        return "–"
    t = time.localtime(ms / 1000.0)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + " " + _offset(t)


def _offset(t: time.struct_time) -> str:
    off = t.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"UTC{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(1, n - 1)] + "…"


def run_title(row: dict) -> str:
    group = row.get("group")
    name = row.get("name") or row.get("path")
    return f"{group} · {name}" if group and group != "(none)" else str(name)


def run_subtitle(row: dict, series: dict | None = None, limits: list[dict] | None = None) -> list[str]:
    cmd = row.get("command") or ""
    lines = [clip(cmd, 150)] if cmd else []
    status = row.get("status")
    exit_code = row.get("exit_code")
    parts = []
    if status == "cut short":
        parts.append("cut short: no summary (exact figures missing)")
    elif exit_code is not None:
        parts.append(f"exit {exit_code}")
    parts.append(f"wall {fmt_secs(row.get('dur_s'))}")
    if row.get("cpu_time_secs") is not None:
        parts.append(f"CPU {fmt_secs(row.get('cpu_time_secs'))}")
    if row.get("cores") is not None:
        parts.append(f"{row['cores']:.2f} cores")
    if row.get("sample_count"):
        parts.append(f"peak RSS {fmt_kib(row.get('peak_mem_rss_kb'))}")
    if row.get("peak_process_rss_kb") is not None:
        parts.append(f"largest process {fmt_kib(row.get('peak_process_rss_kb'))}")
    if row.get("t0_ms") is not None:
        parts.append(f"started {fmt_time(row.get('t0_ms'))}")
    if row.get("host"):
        parts.append(f"on {row['host']}")
    lines.append(" · ".join(parts))
    if row.get("note"):
        lines.append(f"note: {clip(row['note'], 150)}")
    more = []
    for lim in limits or []:
        if lim["panel"] == "cpu" and row.get("cores") is not None:
            more.append(f"requested {lim['label']}, used {row['cores']:.2f} cores")
        elif lim["panel"] == "mem" and row.get("sample_count"):
            used = float(row.get("peak_mem_rss_kb") or 0) * 1024.0
            more.append(f"requested {lim['label']}, peak RSS {100.0 * used / lim['value']:.0f}% of it")
    if series is not None and series.get("n", 0) == 0:
        iv = row.get("interval_ms")
        more.append("no samples: the run ended before the first one"
                    + (f" (sampling interval {iv} ms)" if iv else ""))
    elif series is not None and series.get("shown", 0) < series.get("n", 0):
        more.append(f"{series['n']} samples, drawn as {series['shown']} points (min and max per bucket)")
    if more:
        lines.append(" · ".join(more))
    return lines
