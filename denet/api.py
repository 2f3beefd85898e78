"""The Python API: ``ProcessMonitor``, ``execute_with_monitoring``, the summary functions (compatible
with the Rust denet's Python package), and :func:`monitor_command`, our typed addition.

Everything here is built on the same pieces as ``denet run``: the process collector, the
:class:`~denet.sampler.Sampler` and its adaptive clock, the schema-derived records, the
:class:`~denet.summary.SummaryAccumulator` and :mod:`denet.readers`. Records cross the API as JSON
strings (callers ``json.loads`` them); lines carry ``"kind"`` as their first key.

Rules kept for the host program: the API never waits for any child but the one it started
(no ``wait4(-1)``), never makes the host a subreaper and installs no signal handlers.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .collectors import process_collector
from .errors import InputError, SpawnError
from .monitor import Monitor, _pid_exists, capabilities, cmdline_of, env_record
from .readers import classify, iter_records
from .records import EnvRecord, RunHeader, RunSummary
from .runner import spawn
from .sampler import Sampler, boot_ticks_now
from .sinks.jsonl import JsonlSink
from .summary import SummaryAccumulator

__all__ = [
    "CommandResult",
    "ProcessMonitor",
    "execute_with_monitoring",
    "generate_summary_from_file",
    "generate_summary_from_metrics_json",
    "monitor_command",
]

_FORMATS = ("json", "jsonl", "jsonlines")
_TERM_GRACE_S = 1.0  # between SIGTERM and SIGKILL on a timeout


# ---------------------------------------------------------------------------------------- helpers


def _check_format(output_format: object) -> str:
    if not isinstance(output_format, str):
        raise TypeError(f"output_format must be a str, not {type(output_format).__name__}")
    fmt = output_format.lower()
    if fmt not in _FORMATS:
        raise ValueError(f"Invalid output format: {output_format!r} (expected 'json', 'jsonl' or 'jsonlines')")
    return fmt


def _argv(cmd: object) -> list[str]:
    """``cmd`` as a list of str; a plain string is refused (it is not split, and no shell is used)."""
    if isinstance(cmd, str | bytes):
        raise TypeError("cmd must be a list of strings such as ['sleep', '1'], not a single string")
    try:
        items = list(cmd)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"cmd must be a list of strings, not {type(cmd).__name__}") from None
    out = []
    for a in items:
        if isinstance(a, os.PathLike):
            a = os.fspath(a)
        if not isinstance(a, str):
            raise TypeError(f"cmd must be a list of strings; got an item of type {type(a).__name__}")
        out.append(a)
    return out


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (without reaping it: it may be someone else's child)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return False
    except OSError:
        return _pid_exists(pid)
    state = data[data.rfind(b")") + 2 : data.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"")


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _accumulate(pairs: Iterable[tuple[str | None, dict]]) -> tuple[SummaryAccumulator, bool]:
    """Feed ``(kind, record)`` pairs to the summary accumulator: tree records through their
    ``aggregated`` part, and when any tree is present only trees count. Returns the accumulator
    and whether any metrics record (tree or sample) was seen."""
    trees = SummaryAccumulator()
    samples = SummaryAccumulator()
    any_tree = False
    for kind, obj in pairs:
        if kind == "tree":
            any_tree = True
            agg = obj.get("aggregated")
            if isinstance(agg, dict):
                if "ts_ms" not in agg and "ts_ms" in obj:
                    agg = {**agg, "ts_ms": obj["ts_ms"]}
                trees.add_dict(agg)
        elif kind == "sample":
            samples.add_dict(obj)
    return (trees if any_tree else samples), (any_tree or samples.count > 0)


def _parsed(items: Iterable[object]) -> Iterator[tuple[str | None, dict]]:
    """``(kind, dict)`` of each JSON string (or dict); strings that are not JSON objects are skipped."""
    for item in items:
        if isinstance(item, dict):
            obj = item
        elif isinstance(item, str | bytes | bytearray):
            try:
                obj = json.loads(item)
            except (ValueError, RecursionError):
                continue
        else:
            raise TypeError(f"expected JSON strings, got an item of type {type(item).__name__}")
        if isinstance(obj, dict):
            yield classify(obj), obj


# ---------------------------------------------------------------------------------------- ProcessMonitor

_abandoned: list[int] = []  # children of monitors that were dropped while their command still ran
_abandoned_lock = threading.Lock()


def _reap_abandoned() -> None:
    with _abandoned_lock:
        for pid in list(_abandoned):
            try:
                done = os.waitpid(pid, os.WNOHANG)[0] != 0
            except ChildProcessError:
                done = True
            if done:
                _abandoned.remove(pid)


class _LockedSampling:
    """What ``Monitor.loop`` samples through in :meth:`ProcessMonitor.run`: the monitor's own locked
    path, so records taken by ``run()`` and by other threads' ``sample_once()`` never interleave."""

    def __init__(self, pm: ProcessMonitor, echo: bool) -> None:
        self.pm = pm
        self.echo = echo

    def sample(self):
        rec, line = self.pm._take()
        if rec is not None and self.echo:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return rec


class ProcessMonitor:
    """Monitors one process (and by default its descendants), one record per :meth:`sample_once`.

    ``ProcessMonitor(cmd, ...)`` starts ``cmd`` at once (no shell, stdout/stderr discarded);
    :meth:`from_pid` attaches to a running process. Records are JSON strings.
    """

    def __init__(self, cmd: Sequence[str], base_interval_ms: int, max_interval_ms: int,
                 since_process_start: bool = False, output_file: str | None = None,
                 output_format: str = "jsonl", store_in_memory: bool = True, quiet: bool = False,
                 include_children: bool = True, write_metadata: bool = False, write_env: bool = False,
                 enable_ebpf: bool = False) -> None:
        argv = _argv(cmd)
        _check_format(output_format)
        if not argv:
            raise RuntimeError("IO Error: empty command: nothing to run")
        _reap_abandoned()
        monitor = self._new_monitor(base_interval_ms, max_interval_ms, include_children, since_process_start,
                                    write_env, enable_ebpf)
        # eBPF is loaded before the command starts, so that its first syscalls and children count
        monitor._open_ebpf()
        spawning = getattr(monitor._ebpf, "begin_spawn", None)
        t0_ms = int(time.time() * 1000)
        t0_boot = boot_ticks_now()
        try:
            if spawning is not None:
                spawning()
            child = spawn(argv, stdout="null", stderr="null")
        except SpawnError as exc:
            monitor._close_ebpf()
            raise RuntimeError(f"IO Error: {exc}") from None
        if spawning is not None:
            monitor._ebpf.end_spawn(child.pid)
        child.close()  # the pidfd; run() opens its own
        self._setup(child.pid, argv, True, t0_ms, t0_boot, child.start_mono, base_interval_ms, max_interval_ms,
                    since_process_start, output_file, store_in_memory, quiet, include_children,
                    bool(write_metadata), bool(write_env), monitor)

    @staticmethod
    def _new_monitor(base_interval_ms, max_interval_ms, include_children, since_process_start, write_env,
                     enable_ebpf) -> Monitor:
        # The Monitor is the CLI's: it builds the metadata record and runs the adaptive loop in run().
        return Monitor(interval_ms=base_interval_ms, max_interval_ms=max_interval_ms,
                       include_children=bool(include_children), since_process_start=bool(since_process_start),
                       write_env=bool(write_env), ebpf=bool(enable_ebpf))

    @staticmethod
    def from_pid(pid: int, base_interval_ms: int, max_interval_ms: int, since_process_start: bool = False,
                 output_file: str | None = None, output_format: str = "jsonl", store_in_memory: bool = True,
                 quiet: bool = False, include_children: bool = True, write_metadata: bool | None = None,
                 write_env: bool | None = None, enable_ebpf: bool = False) -> ProcessMonitor:
        """Attach to a running process (this process's own pid included). ``enable_ebpf``: trace the
        process, its descendants and, from now on, their children with eBPF (``--enable-ebpf``)."""
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise TypeError(f"pid must be an int, not {type(pid).__name__}")
        _check_format(output_format)
        found = False
        for attempt in range(3):  # a process that is just being created may not be visible yet
            try:
                found = pid > 0 and _pid_exists(pid)
            except (OverflowError, ValueError):
                found = False
            if found or pid <= 0:
                break
            if attempt < 2:
                time.sleep(0.015)
        if not found:
            raise RuntimeError(f"IO Error: Process with PID {pid} not found")
        self = ProcessMonitor.__new__(ProcessMonitor)
        monitor = ProcessMonitor._new_monitor(base_interval_ms, max_interval_ms, include_children,
                                              since_process_start, write_env, enable_ebpf)
        monitor._open_ebpf()
        if hasattr(monitor._ebpf, "track"):  # the process and its descendants now; their children from here on
            from .collectors.ebpf import tree_pids

            monitor._ebpf.end_spawn(None)
            monitor._ebpf.track(tree_pids(pid))
        self._setup(pid, cmdline_of(pid), False, int(time.time() * 1000), boot_ticks_now(), time.monotonic(),
                    base_interval_ms, max_interval_ms, since_process_start, output_file, store_in_memory, quiet,
                    include_children, bool(write_metadata), bool(write_env), monitor)
        return self

    def _setup(self, pid: int, argv: list[str], owned: bool, t0_ms: int, t0_boot: int, start_mono: float,
               base_interval_ms, max_interval_ms, since_process_start, output_file, store_in_memory, quiet,
               include_children, write_metadata: bool, write_env: bool, monitor: Monitor) -> None:
        self._pid = pid
        self._owned = owned  # started by this monitor: reaped by is_running()
        self._status: int | None = None
        self._lock = threading.RLock()
        self._start_mono = start_mono
        self._store = bool(store_in_memory)
        self._quiet = bool(quiet)
        self._output_file = os.fspath(output_file) if output_file is not None else None
        self._write_metadata = write_metadata
        self._write_env = write_env
        self._samples: list[str] = []
        self._sink: JsonlSink | None = None
        self._file_started = False
        self._env: EnvRecord | None = None
        self._monitor = monitor
        self._header: RunHeader = self._monitor.header(pid, argv, t0_ms)
        self._collector = process_collector(pid, include_children=bool(include_children))
        gpu = self._monitor.gpu_collector()  # probed once (header() above already did)
        self._sampler: Sampler | None = Sampler(self._collector, include_children=bool(include_children),
                                                since_process_start=bool(since_process_start),
                                                t0_boot_ticks=t0_boot, gpu=gpu if gpu.available else None,
                                                ebpf=monitor._ebpf)

    # ------------------------------------------------------------------ sampling

    def _open_file(self, truncate: bool) -> None:
        if self._sink is not None:
            self._sink.close()
        self._sink = JsonlSink(self._output_file, append=not truncate)  # type: ignore[arg-type]
        self._file_started = True

    def _take(self):
        """One record and its line (both None once the process is gone), stored and written in order."""
        with self._lock:
            if self._sampler is None:
                return None, None
            if self._output_file is not None and not self._file_started:
                self._open_file(truncate=self._write_env or self._write_metadata)
                if self._write_env:
                    self._sink.write_line(self._env_record().to_line())  # type: ignore[union-attr]
                if self._write_metadata:
                    self._sink.write_line(self._header.to_line())  # type: ignore[union-attr]
            rec = self._sampler.sample()
            if rec is None:
                if self._owned:
                    self.is_running()  # reap the child that has ended
                self._monitor._close_ebpf()  # the tree has ended: its eBPF programs are unloaded
                return None, None
            line = rec.to_line()
            if self._store:
                self._samples.append(line)
            if self._sink is not None:
                self._sink.write_line(line)
            return rec, line

    def sample_once(self) -> str | None:
        """Take one record now: a ``tree`` line (a ``sample`` line with ``include_children=False``),
        or None when the process is no longer running. Thread-safe."""
        return self._take()[1]

    def run(self) -> None:
        """Sample on the adaptive schedule until the process ends.

        ``output_file`` is truncated and receives one record per line (no metadata line); without an
        output file, each record is printed to stdout unless ``quiet``.
        """
        if self._output_file is not None:
            with self._lock:
                self._open_file(truncate=True)
        echo = self._output_file is None and not self._quiet
        try:
            pidfd: int | None = os.pidfd_open(self._pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            self._monitor.loop(_LockedSampling(self, echo), pidfd, self.is_running, self._start_mono)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if self._owned:
            self.is_running()

    # ------------------------------------------------------------------ state

    def is_running(self) -> bool:
        """True while the process runs; a child started by this monitor is reaped once it has exited."""
        if not self._owned:
            return _alive(self._pid)
        with self._lock:
            if self._status is not None:
                return False
            try:
                pid, status = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else
                self._status = -1
                return False
            if pid == 0:
                return True
            self._status = status
            return False

    def get_pid(self) -> int:
        return self._pid

    def get_metadata(self) -> str | None:
        """The run's metadata as a JSON object without ``kind`` (pid, cmd, executable, t0_ms, ...)."""
        return self._header.to_json()

    def _env_record(self) -> EnvRecord:
        if self._env is None:
            self._env = env_record()
        return self._env

    def get_env(self) -> str:
        """The host description as a tagged ``env`` line (read once, then cached)."""
        return self._env_record().to_line()

    def get_samples(self) -> list[str]:
        with self._lock:
            return list(self._samples)

    def clear_samples(self) -> None:
        with self._lock:
            self._samples.clear()

    def save_samples(self, path: str, format: str | None = None) -> None:
        """Write the stored records: one per line (``None``, ``jsonl``, ``jsonlines``) or a JSON array
        (``json``). No metadata line."""
        fmt = "jsonl" if format is None else _check_format(format)
        samples = self.get_samples()
        if fmt == "json":
            text = "[" + ",".join(samples) + "]"
        else:
            text = "".join(s + "\n" for s in samples)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)

    def get_summary(self) -> str:
        """Summary JSON over the stored records; elapsed time = last minus first record's ``ts_ms``."""
        acc, _ = _accumulate(_parsed(self.get_samples()))
        return acc.build().to_json()

    # ------------------------------------------------------------------ GPU

    def is_gpu_enabled(self) -> bool:
        """True when the GPU collector (NVML) was found at start and has not stopped since."""
        return self._monitor.gpu_collector().active

    def gpu_device_count(self) -> int:
        """GPUs NVML showed at start (0 without the GPU collector)."""
        return self._monitor.gpu_collector().device_count

    def get_gpu_summary(self) -> str:
        """JSON object: ``available``, ``reason`` (when not), ``device_count``, ``degraded`` (why the
        collector stopped, when it did), ``devices`` (each GPU now, the fields of ``gpu_device``; []
        without the collector) and the summary's GPU figures over the stored records, where they
        carry GPU values (``peak_gpu_memory_used_bytes``, ``peak_gpu_tree_memory_bytes``, ...)."""
        gpu = self._monitor.gpu_collector()
        cap = capabilities(gpu)["gpu"]
        out: dict = {"available": cap.available}
        if cap.reason is not None:
            out["reason"] = cap.reason
        out["device_count"] = gpu.device_count
        devices = gpu.read_devices() or []
        if gpu.degraded is not None:
            out["degraded"] = gpu.degraded
        out["devices"] = devices
        acc, _ = _accumulate(_parsed(self.get_samples()))
        out.update(acc.gpu_fields())
        return json.dumps(out, separators=(",", ":"))

    # ------------------------------------------------------------------ teardown

    def _close(self) -> None:
        with self._lock:
            if self._sampler is not None:
                self._sampler = None
                self._collector.close()
                self._monitor._close_ebpf()
            if self._sink is not None:
                self._sink.close()
                self._sink = None
        if self._owned and self.is_running():
            # A running command is left running; it is reaped later (like subprocess.Popen does), so an
            # abandoned monitor leaves no zombie behind in a long-lived host.
            with _abandoned_lock:
                _abandoned.append(self._pid)

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # noqa: S110 - never raise from a finaliser
            pass

    def __repr__(self) -> str:
        return f"ProcessMonitor(pid={getattr(self, '_pid', None)})"


# ---------------------------------------------------------------------------------------- execute


def _open_out(target):
    """(file for Popen, whether we opened it)."""
    if target is None:
        return subprocess.PIPE, False
    if hasattr(target, "fileno"):
        return target, False
    return open(target, "wb"), True


def _drain(stream) -> None:
    try:
        while stream.read(65536):
            pass
    except (OSError, ValueError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _exited(pid: int) -> bool:
    """Has ``pid`` (our child) exited? Without reaping it, so its process group id stays valid."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_stopped(pid: int, limit_s: float = 2.0) -> None:
    """Wait until ``pid`` (our child, just sent SIGSTOP) has stopped or ended, without reaping it:
    the signal is delivered asynchronously."""
    end = time.monotonic() + limit_s
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WSTOPPED | os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        if time.monotonic() >= end:
            return
        time.sleep(0.0005)


def _end_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the process group, up to ``grace_s`` for the leader to exit, then SIGKILL to the
    group, then reap the leader."""
    pgid = process.pid  # start_new_session: the leader's pid is the group's id
    if grace_s > 0:
        _killpg(pgid, signal.SIGTERM)
        _killpg(pgid, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
        end = time.monotonic() + grace_s
        while time.monotonic() < end and not _exited(process.pid):
            time.sleep(0.01)
    _killpg(pgid, signal.SIGKILL)
    process.wait()


def execute_with_monitoring(cmd: str | Sequence[str], stdout_file=None, stderr_file=None,
                            timeout: float | None = None, base_interval_ms: int = 100,
                            max_interval_ms: int = 1000, store_in_memory: bool = True,
                            output_file: str | None = None, output_format: str = "jsonl",
                            since_process_start: bool = False, pause_for_attachment: bool = True,
                            quiet: bool = False, include_children: bool = True,
                            write_metadata: bool = False, enable_ebpf: bool = False) -> tuple[int, ProcessMonitor]:
    """Run ``cmd`` in its own session, monitored from a background thread; returns
    ``(exit_code, monitor)`` with the exit code as :mod:`subprocess` reports it (negative for a signal).
    ``enable_ebpf``: also trace the tree with eBPF (``--enable-ebpf``); the values are in each record's
    ``aggregated.ebpf``, and when eBPF cannot run the schedstat estimate stands in (the reason is in
    the metadata's ``capabilities.ebpf``).

    On ``timeout``: SIGTERM, then SIGKILL, to the process group, then ``subprocess.TimeoutExpired``.
    """
    argv = cmd.split() if isinstance(cmd, str) else _argv(cmd)
    _check_format(output_format)
    if not argv:
        raise ValueError("empty command")
    out, close_out = _open_out(stdout_file)
    try:
        err, close_err = _open_out(stderr_file)
    except BaseException:
        if close_out:
            out.close()
        raise
    opened = [f for f, c in ((out, close_out), (err, close_err)) if c]
    try:
        process = subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True)
    except BaseException:
        for f in opened:
            f.close()
        raise
    try:
        for stream in (process.stdout, process.stderr):
            if stream is not None:  # our pipes: drained so that the child never blocks on them
                threading.Thread(target=_drain, args=(stream,), daemon=True, name="denet-drain").start()
        try:
            if pause_for_attachment:
                os.kill(process.pid, signal.SIGSTOP)
                _wait_stopped(process.pid)
            monitor = ProcessMonitor.from_pid(
                process.pid, base_interval_ms, max_interval_ms, since_process_start=since_process_start,
                output_file=output_file, output_format=output_format, store_in_memory=store_in_memory,
                quiet=quiet, include_children=include_children, write_metadata=write_metadata,
                enable_ebpf=enable_ebpf)
        except BaseException:
            _end_group(process, 0)  # SIGKILL ends a stopped process too
            raise
        finally:
            if pause_for_attachment and process.returncode is None:
                _killpg(process.pid, signal.SIGCONT)
        if isinstance(monitor, ProcessMonitor) and not monitor._header.cmd:
            # a command that has already ended has no /proc cmdline left: say what was run
            monitor._header = monitor._header._replace(cmd=list(argv))

        done = threading.Event()
        interval = max(float(base_interval_ms), 1.0) / 1000.0

        def sample_loop() -> None:
            while not done.is_set():
                try:
                    if monitor.sample_once() is None:
                        return
                except Exception as exc:  # e.g. the output file cannot be written
                    import warnings

                    warnings.warn(f"denet: sampling stopped: {exc}", RuntimeWarning, stacklevel=1)
                    return
                done.wait(interval)

        sampler = threading.Thread(target=sample_loop, daemon=True, name="denet-sampler")
        sampler.start()
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(process, _TERM_GRACE_S)
            raise
        except BaseException:
            _end_group(process, 0)
            raise
        finally:
            done.set()
            sampler.join()
        return exit_code, monitor
    finally:
        for f in opened:
            f.close()


# ---------------------------------------------------------------------------------------- summaries


def generate_summary_from_metrics_json(metrics_json: Sequence[str], elapsed_time: float) -> str:
    """Summary JSON over record strings (strings that are not metrics are skipped);
    ``total_time_secs`` is ``elapsed_time``."""
    if isinstance(metrics_json, str | bytes):
        raise TypeError("metrics_json must be a list of JSON strings, not a single string")
    acc, _ = _accumulate(_parsed(metrics_json))
    return acc.build(float(elapsed_time)).to_json()


def generate_summary_from_file(path: str) -> str:
    """Summary JSON over a record file (JSONL, ours or the Rust denet's, or a JSON array); elapsed time =
    last minus first record's ``ts_ms``. A missing or empty file, or one without metrics: ``OSError``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    try:
        acc, found = _accumulate(iter_records(path, on_bad_line=lambda _msg: None))
    except InputError as exc:
        raise OSError(str(exc)) from None
    if not found:
        raise OSError(f"{path}: no metrics records found")
    return acc.build().to_json()


# ---------------------------------------------------------------------------------------- typed API


@dataclass(frozen=True)
class CommandResult:
    """What :func:`monitor_command` hands back."""

    exit_code: int  # shell style, as `denet run` returns it: the code, or 128+N for signal N
    summary: RunSummary  # sampled figures and exact totals (wait4 rusage) of the whole tree
    samples: list = field(repr=False)  # TreeSample records (Metrics with include_children=False)
    out: str | None  # the JSONL file written, if any
    pid: int
    metadata: RunHeader | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)


class _MemorySink:
    """Keeps the records of a run in memory (a sink: ``write(record)`` and ``close()``)."""

    name = "<memory>"
    failed = None

    def __init__(self) -> None:
        self.header: RunHeader | None = None
        self.summary: RunSummary | None = None
        self.samples: list = []
        self.started = threading.Event()

    def write(self, record) -> None:
        if isinstance(record, RunHeader):
            self.header = record
            self.started.set()
        elif isinstance(record, RunSummary):
            self.summary = record
        elif not isinstance(record, EnvRecord):
            self.samples.append(record)

    def close(self) -> None:
        pass


class _Deadline(threading.Thread):
    """Ends the command at its deadline: SIGTERM, then SIGKILL (to its group when it has its own)."""

    def __init__(self, sink: _MemorySink, timeout: float) -> None:
        super().__init__(daemon=True, name="denet-timeout")
        self.sink = sink
        self.timeout = timeout
        self.finished = threading.Event()
        self.fired = False

    def _send(self, pid: int, sig: int) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:  # shares our process group (a terminal's foreground job): the command only
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def run(self) -> None:
        if self.finished.wait(self.timeout):
            return
        self.sink.started.wait()
        if self.finished.is_set() or self.sink.header is None:
            return
        pid = self.sink.header.pid
        self.fired = True
        self._send(pid, signal.SIGTERM)
        if not self.finished.wait(_TERM_GRACE_S):
            self._send(pid, signal.SIGKILL)


def monitor_command(cmd: Sequence[str], *, interval_ms: int = 100, max_interval_ms: int = 1000,
                    out: str | os.PathLike[str] | None = None, labels: dict[str, str] | None = None,
                    include_children: bool = True, quiet: bool = True,
                    timeout: float | None = None, enable_ebpf: bool = False,
                    ebpf_stacks: bool = False) -> CommandResult:
    """Run ``cmd`` (a list, no shell) under the same monitor as ``denet run`` and return its records.

    The summary carries the exact totals of the whole tree (wait4 rusage), like ``denet run``'s.
    ``out``: also write the JSONL record file (metadata, records, summary). ``quiet``: discard the
    command's stdout/stderr (else they are this process's). ``timeout``: seconds, after which the
    command gets SIGTERM (then SIGKILL) and ``subprocess.TimeoutExpired`` is raised, with the
    :class:`CommandResult` as its ``result`` attribute. Raises ``FileNotFoundError`` /
    ``PermissionError`` when the command cannot start. ``enable_ebpf``: profile the tree with eBPF
    like ``--enable-ebpf`` (the values in each record's ``aggregated.ebpf`` and the summary; when
    eBPF cannot run, the reason is in the metadata's ``capabilities.ebpf`` and in ``warnings``, and
    the schedstat off-CPU estimate stands in); ``ebpf_stacks``: like ``--ebpf-stacks``.
    """
    argv = _argv(cmd)
    if not argv:
        raise ValueError("empty command")
    mem = _MemorySink()
    sinks: list = [mem]
    out_path = os.fspath(out) if out is not None else None
    if out_path is not None:
        sinks.append(JsonlSink(out_path))
    mon = Monitor(interval_ms=interval_ms, max_interval_ms=max_interval_ms, include_children=include_children,
                  labels=labels, sinks=sinks, ebpf=enable_ebpf, ebpf_stacks=ebpf_stacks)
    deadline = _Deadline(mem, timeout) if timeout is not None else None
    if deadline is not None:
        deadline.start()
    stdio = "null" if quiet else "inherit"
    try:
        res = mon.run(argv, stdout=stdio, stderr=stdio, reap_all=False, forward_signals=False, raise_nofile=False)
    except SpawnError as exc:
        for s in sinks:
            s.close()
        if exc.exit_code == 127:
            raise FileNotFoundError(errno.ENOENT, str(exc), argv[0]) from None
        raise PermissionError(errno.EACCES, str(exc), argv[0]) from None
    finally:
        if deadline is not None:
            deadline.finished.set()
            mem.started.set()
            deadline.join()
    result = CommandResult(exit_code=res.exit_code, summary=res.summary, samples=mem.samples, out=out_path,
                           pid=res.pid, metadata=mem.header, warnings=list(res.warnings))
    if deadline is not None and deadline.fired:
        exc = subprocess.TimeoutExpired(argv, timeout)  # type: ignore[arg-type]
        exc.result = result  # type: ignore[attr-defined]
        raise exc
    return result
