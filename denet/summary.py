"""The run summary: one implementation for the live monitor, ``denet stats`` and the Python API.

The sampled part is accumulated from the tree's ``aggregated`` values (or plain ``sample``
records); the exact part comes from the runner (wait4 rusage) and is passed in when known.
"""

from __future__ import annotations

from .records import RunSummary

__all__ = ["EXACT_FIELDS", "SummaryAccumulator"]

EXACT_FIELDS = ("exit_code", "wall_time_secs", "cpu_user_secs", "cpu_system_secs", "cpu_time_secs",
                "peak_process_rss_kb")


class SummaryAccumulator:
    """Feeds on aggregated values, one record at a time."""

    __slots__ = ("count", "max_processes", "max_threads", "peak_rss", "cpu_sum", "last", "first_ts", "last_ts")

    def __init__(self) -> None:
        self.count = 0
        self.max_processes = 0
        self.max_threads = 0
        self.peak_rss = 0
        self.cpu_sum = 0.0
        self.last = (0, 0, 0, 0, 0, 0)  # disk r/w, syscall r/w, net rx/tx of the last record
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def add(self, ts_ms, cpu_usage, mem_rss_kb, thread_count, process_count, disk_read, disk_write,
            syscall_read, syscall_write, net_rx, net_tx) -> None:
        self.count += 1
        if process_count > self.max_processes:
            self.max_processes = process_count
        if thread_count > self.max_threads:
            self.max_threads = thread_count
        if mem_rss_kb > self.peak_rss:
            self.peak_rss = mem_rss_kb
        self.cpu_sum += cpu_usage
        self.last = (disk_read, disk_write, syscall_read or 0, syscall_write or 0, net_rx, net_tx)
        if ts_ms is not None:
            if self.first_ts is None:
                self.first_ts = ts_ms
            self.last_ts = ts_ms

    def add_record(self, rec) -> None:
        """Add an :class:`~denet.records.Aggregated` or :class:`~denet.records.Metrics` record."""
        self.add(rec.ts_ms, rec.cpu_usage, rec.mem_rss_kb, rec.thread_count, getattr(rec, "process_count", 1),
                 rec.disk_read_bytes, rec.disk_write_bytes, rec.syscall_read_bytes, rec.syscall_write_bytes,
                 rec.sys_net_rx_bytes, rec.sys_net_tx_bytes)

    def add_dict(self, d: dict) -> None:
        """Add aggregated values or a sample read back from a file (missing numbers count as 0)."""

        def num(key, alt=None, default=0):
            v = d.get(key)
            if v is None and alt is not None:
                v = d.get(alt)
            return default if v is None or isinstance(v, bool) or not isinstance(v, int | float) else v

        self.add(d.get("ts_ms") if isinstance(d.get("ts_ms"), int) else None, float(num("cpu_usage")),
                 num("mem_rss_kb"), num("thread_count"), num("process_count", default=1),
                 num("disk_read_bytes"), num("disk_write_bytes"), num("syscall_read_bytes"),
                 num("syscall_write_bytes"), num("sys_net_rx_bytes", "net_rx_bytes"),
                 num("sys_net_tx_bytes", "net_tx_bytes"))

    def elapsed_secs(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return (self.last_ts - self.first_ts) / 1000.0

    def build(self, total_time_secs: float | None = None, *, exit_code=None, wall_time_secs=None,
              cpu_user_secs=None, cpu_system_secs=None, peak_process_rss_kb=None,
              exact: tuple[str, ...] | list[str] = ()) -> RunSummary:
        """The summary record; the exact part is whatever the caller knows (None otherwise)."""
        dr, dw, sr, sw, rx, tx = self.last
        cpu_time = None
        if cpu_user_secs is not None and cpu_system_secs is not None:
            cpu_time = cpu_user_secs + cpu_system_secs
        return RunSummary(
            total_time_secs=self.elapsed_secs() if total_time_secs is None else total_time_secs,
            sample_count=self.count,
            max_processes=self.max_processes,
            max_threads=self.max_threads,
            total_disk_read_bytes=dr,
            total_disk_write_bytes=dw,
            total_syscall_read_bytes=sr,
            total_syscall_write_bytes=sw,
            total_sys_net_rx_bytes=rx,
            total_sys_net_tx_bytes=tx,
            peak_mem_rss_kb=self.peak_rss,
            avg_cpu_usage=self.cpu_sum / self.count if self.count else 0.0,
            exit_code=exit_code,
            wall_time_secs=wall_time_secs,
            cpu_user_secs=cpu_user_secs,
            cpu_system_secs=cpu_system_secs,
            cpu_time_secs=cpu_time,
            peak_process_rss_kb=peak_process_rss_kb,
            exact=list(exact),
        )
