"""The live one-line display on a terminal (stderr), and the closing summary line."""

from __future__ import annotations

import os

__all__ = ["LiveLine", "fmt_bytes", "gpu_text", "live_wanted"]


def live_wanted(fd: int = 2) -> bool:
    """A live line only when ``fd`` is a terminal and NO_COLOR is unset."""
    if os.environ.get("NO_COLOR") is not None:
        return False
    try:
        return os.isatty(fd)
    except OSError:
        return False


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _colour(cpu: float, ncpu: int) -> str:
    load = cpu / (100.0 * max(ncpu, 1))
    if load < 0.5:
        return "\x1b[32m"
    if load < 0.85:
        return "\x1b[33m"
    return "\x1b[31m"


def gpu_text(gpu) -> str:
    """The live line's GPU part: the busiest GPU's utilisation and the tree's GPU memory."""
    utils = [d.utilization_pct for d in gpu.devices if d.utilization_pct is not None]
    util = f"{max(utils)}%" if utils else "-"
    return f"  GPU {util} {fmt_bytes(gpu.memory_bytes)}"


class LiveLine:
    """Rewrites one terminal line in place after each sample."""

    def __init__(self, fd: int = 2, *, update: bool = True) -> None:
        self.fd = fd
        self.update_in_place = update
        self.ncpu = os.cpu_count() or 1
        self.shown = False

    def _write(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode())
        except OSError:
            pass

    def update(self, agg, elapsed_s: float) -> None:
        """``agg``: an Aggregated or Metrics record."""
        if not self.update_in_place or agg is None:
            return
        procs = getattr(agg, "process_count", 1)
        c = _colour(agg.cpu_usage, self.ncpu)
        line = (
            f"\r\x1b[K{elapsed_s:7.1f}s  CPU {c}{agg.cpu_usage:6.1f}%\x1b[0m  MEM {fmt_bytes(agg.mem_rss_kb * 1024)}"
            f"  THR {agg.thread_count}  PROC {procs}"
            f"  R {fmt_bytes(agg.disk_read_bytes)}  W {fmt_bytes(agg.disk_write_bytes)}"
        )
        gpu = getattr(agg, "gpu", None)
        if gpu is not None:
            line += gpu_text(gpu)
        self._write(line)
        self.shown = True

    def finish(self, summary) -> None:
        cpu = summary.cpu_time_secs
        wall = summary.wall_time_secs if summary.wall_time_secs is not None else summary.total_time_secs
        peak = summary.peak_process_rss_kb if summary.peak_process_rss_kb is not None else summary.peak_mem_rss_kb
        parts = [f"denet: wall {wall:.2f}s"]
        if cpu is not None:
            parts.append(f"cpu {cpu:.2f}s")
        parts.append(f"peak rss {fmt_bytes(peak * 1024)}")
        parts.append(f"peak tree rss {fmt_bytes(summary.peak_mem_rss_kb * 1024)}")
        parts.append(f"max procs {summary.max_processes}")
        if getattr(summary, "peak_gpu_tree_memory_bytes", None) is not None:
            parts.append(f"peak gpu mem {fmt_bytes(summary.peak_gpu_tree_memory_bytes)}")
        if getattr(summary, "max_gpu_utilization_pct", None) is not None:
            parts.append(f"max gpu {summary.max_gpu_utilization_pct}%")
        if getattr(summary, "behavior", None) is not None:  # --enable-ebpf
            parts.append(f"{summary.behavior}, off-CPU {summary.offcpu_secs:.2f}s")
        if summary.exit_code is not None:
            parts.append(f"exit {summary.exit_code}")
        self._write(("\r\x1b[K" if self.shown else "") + "  ".join(parts) + "\n")
