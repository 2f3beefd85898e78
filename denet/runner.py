"""Start CMD, forward signals, reap the tree, hand back the exit status and exact resource usage.

denet makes itself the child subreaper (``PR_SET_CHILD_SUBREAPER``) before it starts CMD,
so every descendant that outlives its parent is reparented to denet and reaped here with
``wait4``; the rusage of every reaped process therefore lands in exactly one ``wait4``
result (a process reaped by its own parent is folded into that parent's rusage by the
kernel). Only light standard modules are imported: this runs before CMD starts.
"""

from __future__ import annotations

import os

try:  # the C module under `signal`: the same functions and numbers, without building its enums at start
    import _signal as signal
except ImportError:  # pragma: no cover - other Python implementations
    import signal

from .errors import SpawnError

__all__ = ["Child", "Reaper", "Watchdog", "become_subreaper", "exit_code_of", "ignored", "spawn", "start_watchdog"]

PR_SET_CHILD_SUBREAPER = 36
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants (Linux only); False where impossible."""
    if not hasattr(os, "pidfd_open"):  # not Linux, or too old a Python/kernel for the rest anyway
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def own_hwm_kb() -> int:
    """This process's VmHWM: the floor a forked child's ``ru_maxrss`` inherits (0 if unknown)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            data = fh.read()
        i = data.find(b"VmHWM:")
        return int(data[i + 6 : data.index(b"k", i)]) if i >= 0 else 0
    except (OSError, ValueError):
        return 0


class Child:
    """A started command."""

    __slots__ = ("pid", "pgid", "own_group", "pidfd", "argv", "start_mono", "hwm_floor_kb")

    def __init__(self, pid: int, own_group: bool, argv: list[str], start_mono: float, hwm_floor_kb: int) -> None:
        self.pid = pid
        self.own_group = own_group
        self.pgid = pid if own_group else os.getpgrp()
        self.argv = argv
        self.start_mono = start_mono
        self.hwm_floor_kb = hwm_floor_kb
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def send(self, signum: int) -> None:
        """Deliver ``signum`` to the command: its whole process group when it has its own."""
        try:
            if self.own_group:
                os.killpg(self.pgid, signum)
            else:
                os.kill(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def ignored(signum: int) -> bool:
    """True when ``signum`` is ignored here (inherited from denet's parent: ``nohup``, a background job)."""
    try:
        return signal.getsignal(signum) == signal.SIG_IGN
    except (ValueError, OSError):
        return False


def _foreground_tty() -> bool:
    """True when denet runs as the foreground job of a terminal (then CMD shares its process group)."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def spawn(argv: list[str], *, stdout: str | int = "inherit", stderr: str | int = "inherit") -> Child:
    """Start ``argv`` without a shell.

    ``stdout``/``stderr``: ``"inherit"``, ``"null"`` (discard) or ``"stderr"`` (stdout only: send CMD's
    stdout to denet's stderr, used with ``--json``), or a file descriptor to put there. In a terminal's
    foreground job CMD shares denet's process group, so the terminal's Ctrl-C and Ctrl-Z reach it as they
    would without denet; elsewhere it gets a process group of its own, to which denet forwards the signals
    it receives.
    Raises :class:`SpawnError` (127 not found, 126 not executable).
    """
    import time

    if not argv:
        raise SpawnError("no command given", 2)
    actions = []
    if stdout == "null":
        actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
    elif stdout == "stderr":
        actions.append((os.POSIX_SPAWN_DUP2, 2, 1))
    elif isinstance(stdout, int):  # a file descriptor (the write end of a --capture pipe)
        actions.append((os.POSIX_SPAWN_DUP2, stdout, 1))
    if stderr == "null":
        actions.append((os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0))
    elif isinstance(stderr, int):
        actions.append((os.POSIX_SPAWN_DUP2, stderr, 2))
    own_group = not _foreground_tty()
    floor = own_hwm_kb()
    prog = argv[0]
    kwargs = {
        "file_actions": actions,
        # Python ignores SIGPIPE and SIGXFSZ; CMD must get the defaults back (`yes | head` relies on it).
        # A signal denet was started with ignored (`nohup`: SIGHUP; `CMD &` in a script: SIGINT, SIGQUIT)
        # stays ignored in CMD, as it would without denet.
        "setsigdef": (signal.SIGPIPE, signal.SIGXFSZ,
                      *(s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT) if not ignored(s))),
        "setsigmask": (),
    }
    if own_group:
        kwargs["setpgroup"] = 0
    start = time.monotonic()
    try:
        pid = _do_spawn(prog, argv, kwargs)
    except FileNotFoundError:
        raise SpawnError(f"{prog}: command not found", 127) from None
    except (PermissionError, IsADirectoryError):
        raise SpawnError(f"{prog}: permission denied (not executable)", 126) from None
    except OSError as exc:
        raise SpawnError(f"{prog}: cannot execute: {exc.strerror or exc}", 126) from None
    return Child(pid, own_group, list(argv), start, floor)


def _do_spawn(prog: str, argv: list[str], kwargs: dict) -> int:
    if "/" in prog:
        return os.posix_spawn(prog, argv, os.environ, **kwargs)
    return os.posix_spawnp(prog, argv, os.environ, **kwargs)


# The watchdog: a tiny shell, denet's child in a session of its own, that reads CMD's process group from a
# pipe only denet writes to. When denet ends normally it writes "ok" first; when denet is killed (SIGKILL,
# the OOM killer) the pipe closes without it, and the watchdog ends CMD's group: SIGTERM, then SIGKILL.
_WATCHDOG = ('read -r target || exit 0; read -r done; [ "$done" = ok ] && exit 0; '
             'kill -s TERM -- "$target" 2>/dev/null || exit 0; sleep 2; kill -s KILL -- "$target" 2>/dev/null; exit 0')


class Watchdog:
    """Ends CMD's process group if denet itself dies before CMD has ended (see ``start_watchdog``)."""

    __slots__ = ("pid", "fd")

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd: int | None = fd

    def _send(self, text: str) -> None:
        if self.fd is not None:
            try:
                os.write(self.fd, text.encode())
            except OSError:  # the watchdog is gone (killed by someone): nothing to do
                pass

    def arm(self, child: Child) -> None:
        """Watch ``child``: its whole process group when it has one of its own, else the process."""
        self._send(f"-{child.pgid}\n" if child.own_group else f"{child.pid}\n")

    def disarm(self) -> None:
        """CMD has ended normally: the watchdog leaves at once (and is reaped here)."""
        if self.fd is None:
            return
        self._send("ok\n")
        self.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped already (Reaper.ignore keeps it out of the totals)
            pass

    def close(self) -> None:
        """Close the pipe; without ``disarm`` first this ends CMD's group (denet is failing)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def start_watchdog() -> Watchdog | None:
    """Start the watchdog (``/bin/sh``, about a millisecond, after CMD has started); None where impossible."""
    if not os.path.exists("/bin/sh"):
        return None
    r, w = os.pipe()  # both ends close-on-exec: CMD never inherits them
    try:
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", _WATCHDOG], {"PATH": "/usr/bin:/bin"},
                             file_actions=[(os.POSIX_SPAWN_DUP2, r, 0),
                                           (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                                           (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)],
                             setsid=True, setsigmask=(),
                             setsigdef=(signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    except OSError:
        os.close(w)
        return None
    finally:
        os.close(r)
    return Watchdog(pid, w)


def exit_code_of(status: int) -> int:
    """Shell-style exit code of a wait status: the code, or 128+N for signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 1


class Reaper:
    """Reaps the processes that end under denet and adds up their rusage, and their I/O.

    ``reap_all=True`` (the CLI, where every child of denet belongs to the tree) waits for any
    child; otherwise only for the root, so that a host program's other children are left alone.

    I/O: before a child is reaped, its ``/proc/PID/io`` is read (``waitid`` with ``WNOWAIT`` leaves
    it a zombie meanwhile). A zombie's accounting is final and includes everything it reaped itself
    (the kernel adds a reaped child's I/O to its parent's), so ``io`` is the I/O of every process
    that ended under denet, each counted once; ``io_missed`` counts the children it could not read.
    """

    def __init__(self, root_pid: int, *, reap_all: bool = True, hwm_floor_kb: int = 0) -> None:
        self.root_pid = root_pid
        self.reap_all = reap_all
        self.hwm_floor_kb = hwm_floor_kb
        self.root_status: int | None = None
        self.root_end_mono: float | None = None
        self.ignore: set[int] = set()  # denet's own helpers (the watchdog): reaped, never counted
        self.user_secs = 0.0
        self.system_secs = 0.0
        self.reaped = 0
        self.reaped_pids: list[int] = []
        self.io = [0, 0, 0, 0]  # read_bytes, write_bytes, rchar, wchar of the reaped (ignore left out)
        self.io_missed = 0 if hasattr(os, "waitid") else 1
        # Largest ru_maxrss above the fork floor, and the largest at all (KiB).
        self.maxrss_above_floor_kb = 0
        self.maxrss_any_kb = 0

    def _account(self, pid: int, status: int, ru) -> None:
        self.reaped += 1
        self.reaped_pids.append(pid)
        self.user_secs += ru.ru_utime
        self.system_secs += ru.ru_stime
        self.maxrss_any_kb = max(self.maxrss_any_kb, ru.ru_maxrss)
        # A child's ru_maxrss starts at the RSS denet had when it forked (the kernel keeps the pre-exec
        # high-water mark); only values clearly above that floor say something about CMD.
        if ru.ru_maxrss > self.hwm_floor_kb + 256:
            self.maxrss_above_floor_kb = max(self.maxrss_above_floor_kb, ru.ru_maxrss)
        if pid == self.root_pid:
            import time

            self.root_status = status
            self.root_end_mono = time.monotonic()

    def _peek(self, flags: int) -> int | None:
        """The pid of a child that has ended, left unreaped, after its I/O was read; 0 when none has
        (with WNOHANG); None where waitid is missing (then wait4 reaps without the I/O)."""
        if self.io_missed and not hasattr(os, "waitid"):
            return None
        idtype, ident = (os.P_ALL, 0) if self.reap_all else (os.P_PID, self.root_pid)
        info = os.waitid(idtype, ident, os.WEXITED | os.WNOWAIT | flags)
        if info is None or info.si_pid == 0:
            return 0
        pid = info.si_pid
        if pid not in self.ignore:
            try:
                with open(f"/proc/{pid}/io", "rb") as fh:
                    t = fh.read().split()
                io = self.io
                io[0] += int(t[9])
                io[1] += int(t[11])
                io[2] += int(t[1])
                io[3] += int(t[3])
            except (OSError, ValueError, IndexError):
                self.io_missed += 1
        return pid

    def reap(self, block: bool = False) -> bool:
        """Reap what has ended; with ``block``, wait for the root. True once the root has been reaped."""
        # Block only while the root is still running: orphans it leaves behind are not waited for.
        flags = 0 if block and self.root_status is None else os.WNOHANG
        target = -1 if self.reap_all else self.root_pid
        while True:
            try:
                peeked = self._peek(flags)
                if peeked == 0:
                    break
                pid, status, ru = os.wait4(target if peeked is None else peeked, flags)
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            if pid == 0:
                break
            if os.WIFSTOPPED(status) or os.WIFCONTINUED(status) or pid in self.ignore:
                continue
            self._account(pid, status, ru)
            if block and pid == self.root_pid:
                flags = os.WNOHANG
        return self.root_status is not None
