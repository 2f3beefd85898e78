"""Ties runner, sampler and sinks together: monitor a command (``run``) or a running process (``attach``).

The loop sleeps on the root's pidfd, so the end of CMD is noticed at once instead of at the next
tick; it samples on the adaptive schedule, writes each record to every sink as it is taken, and
closes with the summary (exact totals from the runner, sampled figures from the sampler).
"""

from __future__ import annotations

import os
import select

try:  # the C module under `signal`: the same functions and numbers, without building its enums at start
    import _signal as signal
except ImportError:  # pragma: no cover - other Python implementations
    import signal
import time

from ._version import __version__
from .collectors import process_collector
from .errors import DenetError, ProcessNotFound
from .records import Capability, EnvRecord, Lscpu, Numa, ProcessRecord, RunHeader
from .runner import FORWARDED_SIGNALS, Reaper, become_subreaper, exit_code_of, ignored, spawn, start_watchdog
from .sampler import Sampler, boot_ticks_now, interval_ms_at
from .schema import SCHEMA_VERSION
from .summary import EXACT_FIELDS, EXACT_IO_FIELDS

__all__ = ["Monitor", "RunResult", "capabilities", "cmdline_of", "env_record"]

# After a drain of the process ledger that found no event of the tree, its sockets are not watched
# for this long (seconds): on a machine busy with other processes denet then wakes up at most
# 1/LEDGER_QUIET_S times a second for them, and reads their events in batches.
LEDGER_QUIET_S = 0.01
# The ledger's sockets whose events may wait (EventLedger.wake_fds: on Linux >= 6.6 all but the
# exec events') are not watched while the tree is busy: after a drain that found events of the tree
# a full drain (every socket, then the records) comes LEDGER_BATCH_S (seconds) later; an exec drain
# meanwhile reads the fork/exit events too (the exec's fork must be known), not taskstats. When they
# become readable while watched, they are read LEDGER_BATCH_S later. A child's fork, exit and
# taskstats message so ride on the wake-up of an exec or of a batch instead of waking denet each
# (docs/ledger.md, "Wake-ups").
LEDGER_BATCH_S = 0.1
# Drains that exec events bring come at least this far apart (seconds): in a burst of short processes
# denet reads their events in batches (those that end within it keep their name, not their argv).
LEDGER_EXEC_GAP_S = 0.005


class RunResult:
    """What a monitored run ends with."""

    __slots__ = ("exit_code", "summary", "pid", "warnings")

    def __init__(self, exit_code, summary, pid, warnings) -> None:
        self.exit_code = exit_code
        self.summary = summary
        self.pid = pid
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"RunResult(exit_code={self.exit_code!r}, pid={self.pid}, summary={self.summary!r})"


def _exact_io(reaper, survivors, zombies, ended: set) -> tuple[int, int, int, int] | None:
    """The tree's I/O totals from the kernel's accounting, or None where some part is unknown: what
    denet read of each process it reaped (their own I/O and what they had reaped, each counted once),
    plus the /proc counters of the processes still running at the end (orphans). A zombie left that
    denet did not reap (a survivor's child not waited for) is in nobody's counters: None."""
    if reaper.io_missed or any(pid not in ended for pid, _ in (zombies or ())):
        return None
    rb, wb, rc, wc = reaper.io
    for r in survivors:
        if r.rchar is None or r.wchar is None:
            return None
        rb += r.read_bytes
        wb += r.write_bytes
        rc += r.rchar
        wc += r.wchar
    return rb, wb, rc, wc


def capabilities(gpu=None, ledger: tuple[bool, str | None] | None = None,
                 ebpf: tuple[bool, str | None] | None = None) -> dict:
    """The optional sources: available, or why not. ``gpu``: the session's probed GPU collector
    (:func:`denet.collectors.gpu.probe`); probed here, and released again, when not given.
    ``ledger``: (available, reason) of the session's process ledger; None when it is off.
    ``ebpf``: (available, reason) of the session's eBPF collector; None when not requested."""
    if gpu is None:
        from .collectors.gpu import probe

        gpu = probe()
        gpu.close()
    return {
        "gpu": Capability(*gpu.capability()),
        "ebpf": Capability(*ebpf) if ebpf is not None else Capability(False, "off (not requested: --enable-ebpf)"),
        "psi": Capability(False, "pressure stall information is not collected by this version of denet"),
        "perf_hw": Capability(False, "hardware counters are not collected by this version of denet"),
        "ledger": Capability(*ledger) if ledger is not None else Capability(False, "off (not requested)"),
    }


def env_record() -> EnvRecord:
    from .collectors.env import read_env

    v = read_env()
    v["lscpu"] = Lscpu(**v["lscpu"])
    v["numa"] = Numa(**v["numa"])
    return EnvRecord(**v)


def _raise_nofile() -> None:
    """Open files are kept per process; allow more than the usual 1024 (after CMD has started,
    so CMD keeps the limits it was given)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 1 << 20
        want = min(want, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


class Monitor:
    """One monitoring session, configured once.

    ``sinks``: objects with ``write(record)`` and ``close()``. ``live``: a LiveLine or None.
    ``warn``: called once per problem with a one-line message (sinks failing, for example).
    """

    def __init__(self, *, interval_ms: int = 100, max_interval_ms: int = 1000, duration_s: float | None = None,
                 include_children: bool = True, since_process_start: bool = False, write_env: bool = False,
                 labels: dict | None = None, sinks=(), live=None, warn=None, ledger: bool | None = None,
                 gpu: bool = True, note: str | None = None, ebpf: bool = False, ebpf_stacks: bool = False) -> None:
        self.interval_ms = interval_ms
        self.max_interval_ms = max_interval_ms
        self.duration_s = duration_s
        self.include_children = include_children
        self.since_process_start = since_process_start
        self.write_env = write_env
        self.labels = dict(labels or {})
        self.note = note  # --note: stored in the metadata
        self.sinks = list(sinks)
        self.live = live
        self._warn_fn = warn
        self.warnings: list[str] = []
        self._stop = False
        self.info: dict = {}  # how the session ran, for --debug
        self._gpu = None
        self.gpu = gpu  # False: the GPU collector is off (--no-gpu), NVML is not even probed
        # The process ledger (collectors/ledger.py): on with ``ledger=True`` (the CLI's default), off
        # with False (--no-ledger) or None (not asked for: the Python API). Opened before CMD starts.
        self.ledger = ledger
        self._ledger = None
        self._ledger_cap: tuple[bool, str | None] | None = None
        # eBPF (collectors/ebpf.py), with --enable-ebpf: loaded before CMD starts; when it cannot run,
        # the schedstat off-CPU estimate (collectors/offcpu.py) stands in for it.
        self.ebpf = ebpf or ebpf_stacks
        self.ebpf_stacks = ebpf_stacks
        self._ebpf = None
        self._ebpf_cap: tuple[bool, str | None] | None = None

    # ------------------------------------------------------------------ helpers

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        if self._warn_fn is not None:
            self._warn_fn(msg)

    def _emit(self, record) -> None:
        for sink in self.sinks:
            if getattr(sink, "failed", None) is not None:
                continue
            try:
                sink.write(record)
            except OSError as exc:
                self._warn(f"cannot write to {getattr(sink, 'name', 'output')}: {exc.strerror or exc}; "
                           "records from here on are lost, the command goes on")

    def gpu_collector(self):
        """The session's GPU collector, probed on first use (call it after CMD has started: the
        probe may import pynvml). Its degradation is reported through ``warn``."""
        if self._gpu is None:
            from .collectors.gpu import GpuCollector, probe

            self._gpu = probe() if self.gpu else GpuCollector(False, "off (--no-gpu)")
            self._gpu.on_degrade = self._warn
            self.info["gpu"] = self._gpu.device_count if self._gpu.available else "absent"
        return self._gpu

    # ------------------------------------------------------------------ the process ledger

    def _open_ledger(self) -> None:
        """Open the process ledger; before CMD starts, so that its fork and exec are not missed."""
        if not self.ledger:
            self._ledger_cap = None if self.ledger is None else (False, "off (--no-ledger)")
            return
        try:
            from .collectors.ledger import open_ledger

            self._ledger, avail, reason = open_ledger(True)
        except Exception as exc:  # an optional collector never fails the run
            self._ledger, avail, reason = None, False, f"the process ledger could not start: {exc}"
        self._ledger_cap = (avail, reason)
        self.info["ledger"] = getattr(self._ledger, "source", "off")

    def _ledger_do(self, what: str, *args) -> None:
        """Call the ledger and write the process records it hands back; a fault stops the ledger,
        never the run."""
        led = self._ledger
        if led is None:
            return
        try:
            for v in getattr(led, what)(*args) or ():
                self._emit(ProcessRecord(**v))
        except Exception as exc:
            self._ledger = None
            self._warn(f"the process ledger stopped ({what}: {exc}); the command goes on")
            try:
                led.close()
            except Exception:
                pass

    def _close_ledger(self) -> None:
        """The records of the processes not written yet; then the ledger is closed."""
        led = self._ledger
        if led is None:
            return
        self._ledger_do("finish")
        self._ledger = None
        if led.degraded:
            self._warn(f"the process ledger stopped early: {led.degraded}")
        if led.lost:
            self._warn(f"the process ledger missed kernel events {led.lost} times (receive buffer full on a busy "
                       "machine): some processes may be missing from it")
        self.info["ledger_events"] = f"{led.kept}/{led.events}"

    # ------------------------------------------------------------------ eBPF

    def _open_ebpf(self) -> None:
        """Probe and load eBPF (before CMD starts, so its first syscalls count); when it cannot run,
        say why once and use the schedstat estimate."""
        if not self.ebpf:
            return
        reason = None
        try:
            from .collectors.ebpf import probe

            got = probe(stacks=self.ebpf_stacks)
            coll, reason = got.collector, got.reason
        except Exception as exc:  # an optional collector never fails the run
            coll, reason = None, f"the eBPF probe failed: {type(exc).__name__}: {exc}"
        if coll is not None:
            coll.on_degrade = self._warn
            self._ebpf = coll
            self._ebpf_cap = (True, None)
            self.info["ebpf"] = f"loaded in {coll.load_secs:.2f} s ({coll.headers})"
            return
        self._ebpf_cap = (False, reason)
        self._warn(f"eBPF is off: {reason}; reporting the schedstat off-CPU estimate instead")
        try:
            from .collectors.offcpu import SchedstatEstimate, available

            why = available()
            if why is None:
                self._ebpf = SchedstatEstimate(reason)
                self._ebpf.on_degrade = self._warn
            else:
                self._warn(f"no off-CPU estimate either: {why}")
        except Exception as exc:
            self._warn(f"no off-CPU estimate either: {type(exc).__name__}: {exc}")
        self.info["ebpf"] = "schedstat estimate" if self._ebpf is not None else "off"

    def _ebpf_summary(self, summary, pids=()):
        """The summary with the eBPF fields, from a last reading taken after CMD ended."""
        coll = self._ebpf
        if coll is None:
            return summary
        try:
            d = coll.read(list(pids), final=True)
            if d is None:
                return summary
            from .records import from_plain

            off = d["offcpu"]
            sc = d.get("syscalls")
            beh = d.get("behavior") or {}
            return summary._replace(
                offcpu_secs=off["total_time_ns"] / 1e9,
                offcpu_io_secs=off["io_ns"] / 1e9 if off.get("io_ns") is not None else None,
                offcpu_source=d["source"],
                syscalls_total=sc["total"] if sc is not None else None,
                behavior=beh.get("classification"),
                ebpf=from_plain("ebpf_aggregated", d),
            )
        except Exception as exc:
            self._warn(f"eBPF summary lost: {type(exc).__name__}: {exc}")
            return summary

    def _close_ebpf(self) -> None:
        coll, self._ebpf = self._ebpf, None
        if coll is not None:
            try:
                coll.close()
            except Exception:  # noqa: S110 - nothing to do about it at the end of a run
                pass

    def header(self, pid: int, argv: list[str], t0_ms: int) -> RunHeader:
        """The metadata record of a session on ``pid``."""
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = ""
        return RunHeader(
            pid=pid, cmd=list(argv), executable=exe, t0_ms=t0_ms,
            capabilities=capabilities(self.gpu_collector(), self._ledger_cap, self._ebpf_cap),
            schema_version=SCHEMA_VERSION, denet_version=__version__, labels=self.labels,
            interval_ms=self.interval_ms, max_interval_ms=self.max_interval_ms,
            include_children=self.include_children, since_process_start=self.since_process_start,
            note=self.note, host=os.uname().nodename,
        )

    def _start_records(self, pid: int, argv: list[str], t0_ms: int) -> None:
        if self.write_env:
            self._emit(env_record())
        self._emit(self.header(pid, argv, t0_ms))

    def loop(self, sampler, pidfd: int | None, alive, start_mono: float) -> None:
        """Sample until the root ends (``alive()`` False), the duration is over, or stop() is called.

        ``sampler``: anything with ``sample()`` returning a record or None (the Python API passes a
        locked wrapper)."""
        poller = None
        led = self._ledger
        lfds = led.fds() if led is not None else ()
        if pidfd is not None or lfds:
            poller = select.poll()
            if pidfd is not None:
                poller.register(pidfd, select.POLLIN)
            for fd in lfds:
                poller.register(fd, select.POLLIN)
        # Sockets of the ledger: those in ``wake`` are drained as soon as they are readable; the others
        # (``lazy``) are unwatched (lazy_on False) while a drain is due at drain_at (LEDGER_BATCH_S).
        # None is watched for LEDGER_QUIET_S (until unmute_at) after a drain that found nothing of the tree.
        wake = set(led.wake_fds()) if lfds else set()
        lazy = [fd for fd in lfds if fd not in wake]
        lazy_on = True
        drain_at = unmute_at = hold_until = None  # hold_until: ``wake`` unwatched (LEDGER_EXEC_GAP_S)
        last_drain = -1.0
        next_t = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            elapsed = now - start_mono
            if self.duration_s is not None and elapsed >= self.duration_s:
                return
            if now >= next_t:
                if not alive():
                    return
                try:
                    rec = sampler.sample()
                except Exception as exc:  # a reader's fault ends the sampling, never the command
                    self._warn(f"sampling stopped: {type(exc).__name__}: {exc}; the command goes on and its "
                               "exact totals are kept")
                    return
                if rec is None:
                    return
                self._emit(rec)
                if self._ledger is not None:
                    self._ledger_do("observe", getattr(sampler, "last_readings", ()))
                if self.live is not None:
                    self.live.update(getattr(rec, "aggregated", rec), elapsed)
                now = time.monotonic()
                next_t = now + interval_ms_at(now - start_mono, self.interval_ms, self.max_interval_ms) / 1000.0
            wait = next_t - now
            if self.duration_s is not None:
                wait = min(wait, start_mono + self.duration_s - now)
            if unmute_at is not None:
                wait = min(wait, unmute_at - now)
            else:
                if drain_at is not None:
                    wait = min(wait, drain_at - now)
                if hold_until is not None:
                    wait = min(wait, hold_until - now)
            wait = max(wait, 0.0)
            if poller is not None:
                ready = poller.poll(wait * 1000.0)
                if lfds:
                    now = time.monotonic()
                    if unmute_at is not None and now >= unmute_at:
                        unmute_at = None
                        for fd in wake:
                            poller.register(fd, select.POLLIN)
                        if drain_at is None:
                            for fd in lazy:
                                poller.register(fd, select.POLLIN)
                            lazy_on = True
                    if unmute_at is None:
                        due = drain_at is not None and now >= drain_at
                        if hold_until is None:
                            woke = any(fd in wake for fd, _ in ready)
                            if woke and now - last_drain < LEDGER_EXEC_GAP_S:
                                hold_until = last_drain + LEDGER_EXEC_GAP_S
                                for fd in wake:
                                    poller.unregister(fd)
                                woke = False
                        else:
                            woke = now >= hold_until
                            if woke:
                                hold_until = None
                                for fd in wake:
                                    poller.register(fd, select.POLLIN)
                        if due or woke:
                            # An exec while a batch is pending: its events only (the command line is read
                            # now); the taskstats messages, and the records, come with the batch.
                            full = drain_at is None or due
                            if full:
                                drain_at = None
                            if hold_until is not None:
                                hold_until = None
                                for fd in wake:
                                    poller.register(fd, select.POLLIN)
                            last_drain = now
                            self._ledger_do("drain", full)
                            led = self._ledger
                            gone = led is None or led.degraded is not None  # its sockets are closed
                            if gone or not led.tree_events_last_drain:
                                for fd in lfds:
                                    if lazy_on or fd in wake:
                                        poller.unregister(fd)
                                lazy_on = False
                                if gone:
                                    lfds = ()
                                else:
                                    unmute_at = now + LEDGER_QUIET_S
                            elif lazy:  # the tree is busy: its next events wait for its next exec's
                                if lazy_on:
                                    for fd in lazy:
                                        poller.unregister(fd)
                                    lazy_on = False
                                if drain_at is None:
                                    drain_at = now + LEDGER_BATCH_S
                        elif lazy_on and any(fd in lazy for fd, _ in ready):  # the first events of a batch
                            drain_at = now + LEDGER_BATCH_S
                            for fd in lazy:
                                poller.unregister(fd)
                            lazy_on = False
                if pidfd is not None and any(fd == pidfd for fd, _ in ready):
                    return  # the root has exited
            else:
                time.sleep(min(wait, 0.05))

    def stop(self) -> None:
        """Ask the loop to finish at its next wake-up (thread- and signal-safe)."""
        self._stop = True

    def _finish(self, summary) -> None:
        self._emit(summary)
        for sink in self.sinks:
            try:
                sink.close()
            except OSError as exc:
                self._warn(f"cannot close {getattr(sink, 'name', 'output')}: {exc.strerror or exc}")
        if self.live is not None:
            self.live.finish(summary)

    # ------------------------------------------------------------------ run

    def run(self, argv: list[str], *, stdout: str | int = "inherit", stderr: str | int = "inherit",
            reap_all: bool = True, forward_signals: bool = True, raise_nofile: bool = True) -> RunResult:
        """Start ``argv`` and monitor it to its end; raises SpawnError if it cannot start.

        The CLI owns its process: it becomes the tree's subreaper (``reap_all``), forwards signals and
        raises its open-file limit. A host program (the Python API) turns all three off."""
        t0_ms = int(time.time() * 1000)
        t0_boot = boot_ticks_now()
        self.info["subreaper"] = become_subreaper() if reap_all else False
        self._open_ledger()
        self._open_ebpf()
        spawning = getattr(self._ebpf, "begin_spawn", None)
        # The forwarded signals wait (blocked) from just before CMD starts until their handlers are in place:
        # a SIGTERM sent as soon as CMD runs is forwarded to it instead of killing denet unfinished.
        blocked = forward_signals and _block(FORWARDED_SIGNALS)
        try:
            if spawning is not None:
                spawning()
            child = spawn(argv, stdout=stdout, stderr=stderr)
        except BaseException:
            if blocked:
                _unblock(FORWARDED_SIGNALS)
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            self._close_ebpf()
            raise
        if spawning is not None:
            self._ebpf.end_spawn(child.pid)
        self._ledger_do("track_root", child.pid, os.getpid(), child.start_mono, list(argv))
        # The CLI's CMD does not outlive a killed denet: its watchdog ends CMD's group (runner.start_watchdog).
        watchdog = start_watchdog() if reap_all and forward_signals else None
        if watchdog is not None:
            watchdog.arm(child)
        old_handlers: dict = {}
        if forward_signals:

            def forward(signum, _frame):
                child.send(signum)

            def ignore(_signum, _frame):
                pass

            for s in FORWARDED_SIGNALS:
                if ignored(s):  # ignored by denet's parent's wish (nohup, a background job): CMD ignores it too
                    continue
                # When CMD shares the terminal's foreground group it gets Ctrl-C and Ctrl-\ itself.
                own = child.own_group or s not in (signal.SIGINT, signal.SIGQUIT)
                _set_handler(old_handlers, s, forward if own else ignore)
        if blocked:
            _unblock(FORWARDED_SIGNALS)  # what arrived meanwhile is forwarded now
        if raise_nofile:
            _raise_nofile()
        reaper = Reaper(child.pid, reap_all=reap_all, hwm_floor_kb=child.hwm_floor_kb)
        collector = process_collector(child.pid, include_children=self.include_children, adopt_orphans=reap_all)
        if watchdog is not None:  # denet's own child: neither sampled nor counted
            reaper.ignore.add(watchdog.pid)
            getattr(collector, "hidden", set()).add(watchdog.pid)
        gpu = self.gpu_collector()  # probed once CMD runs
        sampler = Sampler(collector, include_children=self.include_children,
                          since_process_start=self.since_process_start, t0_boot_ticks=t0_boot,
                          reaped_cpu_secs=lambda: reaper.user_secs + reaper.system_secs,
                          gpu=gpu if gpu.available else None, ebpf=self._ebpf, reaped_pids=reaper.reaped_pids)
        self.info["collector"] = "proc" if getattr(collector, "fast", False) else "psutil"
        self.info["own_group"] = child.own_group
        try:
            self._start_records(child.pid, argv, t0_ms)

            def alive() -> bool:
                return not reaper.reap()

            self.loop(sampler, child.pidfd, alive, child.start_mono)
            if self._ledger is not None and not reaper.reap():
                self._close_ledger()  # monitoring ended before CMD did (--duration): so does the ledger
            reaper.reap(block=True)
            end_mono = time.monotonic()
            if watchdog is not None:
                watchdog.disarm()  # CMD has ended: what it leaves running is not the watchdog's business
            # Descendants still running (orphans adopted by denet) count with what they used so far.
            live_user = live_sys = 0.0
            io_totals = None
            if reap_all and self.include_children:
                try:
                    survivors = collector.read()[1]  # zombies are not listed: their CPU comes from wait4
                    io_known = True
                except Exception:  # already reported by the loop, if it is the reader's fault
                    survivors = []
                    io_known = False
                # One that ended between that reading and now is reaped here and counted by its rusage.
                before = len(reaper.reaped_pids)
                reaper.reap()
                ended = set(reaper.reaped_pids[before:])
                sampler.last_readings = [r for r in survivors if r.pid not in ended]
                live_user, live_sys = sampler.live_cpu_secs()
                io_totals = _exact_io(reaper, sampler.last_readings, getattr(collector, "zombies", None), ended) \
                    if io_known else None
            if self._ledger is not None:
                if reaper.root_status is not None:
                    self._ledger_do("set_exit", child.pid, reaper.root_status, reaper.root_end_mono)
                self._ledger_do("observe", sampler.last_readings)
                self._close_ledger()
            ebpf_pids = [r.pid for r in sampler.last_readings]
        except BaseException:
            self._close_ebpf()
            raise
        finally:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            collector.close()
            gpu.close()
            child.close()
            if watchdog is not None:
                watchdog.close()  # not disarmed: denet is failing, and CMD's group is ended
            for s, h in old_handlers.items():
                signal.signal(s, h)
        self.info["reaped"] = reaper.reaped
        status = reaper.root_status
        code = exit_code_of(status) if status is not None else None
        peak = max(sampler.peak_hwm_kb, reaper.maxrss_above_floor_kb) or reaper.maxrss_any_kb
        summary = sampler.summary.build(
            end_mono - child.start_mono,
            exit_code=code,
            wall_time_secs=(reaper.root_end_mono or end_mono) - child.start_mono,
            cpu_user_secs=reaper.user_secs + live_user,
            cpu_system_secs=reaper.system_secs + live_sys,
            peak_process_rss_kb=peak,
            exact=EXACT_FIELDS + (EXACT_IO_FIELDS if io_totals is not None else ()),
            io_totals=io_totals,
        )
        if self._ebpf is not None:
            summary = self._ebpf_summary(summary, ebpf_pids)
            self._close_ebpf()
        self._finish(summary)
        return RunResult(code if code is not None else 1, summary, child.pid, self.warnings)

    # ------------------------------------------------------------------ attach

    def attach(self, pid: int, *, handle_signals: bool = True) -> RunResult:
        """Monitor a running process until it ends (or the duration is over, or SIGINT/SIGTERM)."""
        if pid <= 0 or not _pid_exists(pid):
            raise ProcessNotFound(f"no process with pid {pid}")
        _check_readable(pid)
        t0_ms = int(time.time() * 1000)
        start = time.monotonic()
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise ProcessNotFound(f"no process with pid {pid}") from None
        except (AttributeError, OSError):
            pidfd = None
        collector = process_collector(pid, include_children=self.include_children)
        self.info["collector"] = "proc" if getattr(collector, "fast", False) else "psutil"
        gpu = self.gpu_collector()
        sampler = Sampler(collector, include_children=self.include_children,
                          since_process_start=self.since_process_start, t0_boot_ticks=boot_ticks_now(),
                          gpu=gpu if gpu.available else None)
        old_handlers: dict = {}
        if handle_signals:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                _set_handler(old_handlers, s, lambda *_: self.stop())
        self._open_ledger()
        self._ledger_do("seed", pid)
        self._open_ebpf()
        if hasattr(self._ebpf, "track"):  # the process and its descendants now; their children from here on
            from .collectors.ebpf import tree_pids

            self._ebpf.end_spawn(None)
            self._ebpf.track(tree_pids(pid))
        sampler.ebpf = self._ebpf
        try:
            self._start_records(pid, cmdline_of(pid), t0_ms)
            self.loop(sampler, pidfd, lambda: _pid_exists(pid), start)
            end = time.monotonic()
            user, system = sampler.live_cpu_secs()
            if self._ledger is not None:
                self._ledger_do("observe", sampler.last_readings)
                self._close_ledger()
        except BaseException:
            self._close_ebpf()
            raise
        finally:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            collector.close()
            gpu.close()
            if pidfd is not None:
                os.close(pidfd)
            for s, h in old_handlers.items():
                signal.signal(s, h)
        seen = sampler.summary.count > 0
        # Attached: denet is not the parent, so nothing is exact. CPU and peak are the kernel's own
        # accounting (utime/stime + cutime/cstime, VmHWM) as of the last reading.
        summary = sampler.summary.build(
            end - start, exit_code=None, wall_time_secs=None,
            cpu_user_secs=user if seen else None,
            cpu_system_secs=system if seen else None,
            peak_process_rss_kb=sampler.peak_hwm_kb if seen else None,
            exact=(),
        )
        if self._ebpf is not None:
            summary = self._ebpf_summary(summary, [r.pid for r in sampler.last_readings])
            self._close_ebpf()
        self._finish(summary)
        return RunResult(0, summary, pid, self.warnings)


def _check_readable(pid: int) -> None:
    """Refuse, in plain words, a process whose counters this user may not read (another user's, or one
    that is not dumpable): attached anyway, its I/O would read as zeros."""
    try:
        with open(f"/proc/{pid}/io", "rb") as fh:
            fh.read(1)
    except PermissionError:
        try:
            import pwd

            uid = os.stat(f"/proc/{pid}").st_uid
            owner = f"user {pwd.getpwuid(uid).pw_name}"
        except (OSError, KeyError, ImportError):
            owner = "another user"
        raise DenetError(f"cannot attach to pid {pid}: permission denied reading /proc/{pid}/io (the process belongs "
                         f"to {owner} or is not dumpable); attach as its user or as root") from None
    except OSError:  # gone meanwhile, or no /proc here: the collector has its own answer
        pass


def cmdline_of(pid: int) -> list[str]:
    """argv of a running process ([] when unreadable, for example once it has exited)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def _block(signals) -> bool:
    """Block ``signals`` in this thread; False where that is not possible."""
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _unblock(signals) -> None:
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    except (AttributeError, OSError, ValueError):
        pass


def _set_handler(saved: dict, signum: int, handler) -> None:
    """Install a handler, remembering the old one; outside the main thread Python allows none."""
    try:
        saved[signum] = signal.signal(signum, handler)
    except ValueError:
        pass


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

