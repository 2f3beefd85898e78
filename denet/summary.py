"""The run summary: one implementation for the live monitor, ``denet stats`` and the Python API.

The sampled part is accumulated from the tree's ``aggregated`` values (or plain ``sample``
records); the exact part comes from the runner (wait4 rusage) and is passed in when known.
"""

from __future__ import annotations

from .records import RunSummary

__all__ = ["EXACT_FIELDS", "EXACT_IO_FIELDS", "SummaryAccumulator"]

EXACT_FIELDS = ("exit_code", "wall_time_secs", "cpu_user_secs", "cpu_system_secs", "cpu_time_secs",
                "peak_process_rss_kb")
# The I/O totals, exact when the runner read the I/O of every process it reaped (``io_totals``).
EXACT_IO_FIELDS = ("total_disk_read_bytes", "total_disk_write_bytes", "total_syscall_read_bytes",
                   "total_syscall_write_bytes")


class SummaryAccumulator:
    """Feeds on aggregated values, one record at a time."""

    __slots__ = ("count", "max_processes", "max_threads", "peak_rss", "cpu_sum", "last", "first_ts", "last_ts",
                 "gpu_seen", "gpu_devices", "gpu_peak_used", "gpu_peak_tree", "gpu_max_util", "gpu_util_sum",
                 "gpu_util_n")

    def __init__(self) -> None:
        self.count = 0
        self.max_processes = 0
        self.max_threads = 0
        self.peak_rss = 0
        self.cpu_sum = 0.0
        self.last = (0, 0, 0, 0, 0, 0)  # disk r/w, syscall r/w, net rx/tx of the last record
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        # GPU figures (records with a `gpu` object only)
        self.gpu_seen = False
        self.gpu_devices = 0
        self.gpu_peak_used: int | None = None
        self.gpu_peak_tree = 0
        self.gpu_max_util: int | None = None
        self.gpu_util_sum = 0.0
        self.gpu_util_n = 0

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
        g = rec.gpu
        if g is not None:
            self.add_gpu(g.memory_bytes, [(d.memory_used_bytes, d.utilization_pct) for d in g.devices])

    def add_gpu(self, tree_memory_bytes, devices) -> None:
        """One record's GPU values: the tree's (or root's) GPU memory and (memory used, utilisation %)
        of each device (None where unknown)."""
        self.gpu_seen = True
        if len(devices) > self.gpu_devices:
            self.gpu_devices = len(devices)
        if isinstance(tree_memory_bytes, int) and tree_memory_bytes > self.gpu_peak_tree:
            self.gpu_peak_tree = tree_memory_bytes
        for used, util in devices:
            if used is not None and (self.gpu_peak_used is None or used > self.gpu_peak_used):
                self.gpu_peak_used = used
            if util is not None:
                if self.gpu_max_util is None or util > self.gpu_max_util:
                    self.gpu_max_util = util
                self.gpu_util_sum += util
                self.gpu_util_n += 1

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
        g = d.get("gpu")
        if isinstance(g, dict):
            devs = g.get("devices")

            def val(x, key):
                v = x.get(key) if isinstance(x, dict) else None
                return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

            self.add_gpu(val(g, "memory_bytes"),
                         [(val(x, "memory_used_bytes"), val(x, "utilization_pct")) for x in devs]
                         if isinstance(devs, list) else [])

    def elapsed_secs(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return (self.last_ts - self.first_ts) / 1000.0

    def build(self, total_time_secs: float | None = None, *, exit_code=None, wall_time_secs=None,
              cpu_user_secs=None, cpu_system_secs=None, peak_process_rss_kb=None,
              exact: tuple[str, ...] | list[str] = (), io_totals: tuple[int, int, int, int] | None = None,
              ) -> RunSummary:
        """The summary record; the exact part is whatever the caller knows (None otherwise).
        ``io_totals``: (disk read, disk write, syscall read, syscall write) bytes when known exactly,
        instead of the last record's."""
        dr, dw, sr, sw, rx, tx = self.last
        if io_totals is not None:
            dr, dw, sr, sw = io_totals
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
            **self.gpu_fields(),
        )

    def gpu_fields(self) -> dict:
        """The summary's GPU fields; {} when no record had GPU values (they are left out)."""
        if not self.gpu_seen:
            return {}
        return {
            "gpu_device_count": self.gpu_devices,
            "peak_gpu_memory_used_bytes": self.gpu_peak_used,
            "peak_gpu_tree_memory_bytes": self.gpu_peak_tree,
            "max_gpu_utilization_pct": self.gpu_max_util,
            "avg_gpu_utilization_pct": self.gpu_util_sum / self.gpu_util_n if self.gpu_util_n else None,
        }
