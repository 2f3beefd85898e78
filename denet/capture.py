"""``--capture``: CMD's stdout/stderr through a pipe, copied to a file and passed through.

One thread per captured stream reads the pipe as data comes (CMD never blocks on a full pipe),
writes every chunk to the capture file and then to where the stream would have gone (denet's
stdout or stderr; nowhere with ``--quiet``), so the file holds exactly the bytes that passed
through. When the pass-through is a closed pipe (``denet run --capture stdout CMD | head``) the
read end is closed too, so CMD gets SIGPIPE as it would without denet. After CMD ends the pipe is
read to its end; descendants that outlive CMD and keep the pipe open are read for a short grace
time (:data:`GRACE_S`), then left.
"""

from __future__ import annotations

import os
import select
import threading

from .errors import DenetError

__all__ = ["GRACE_S", "Tee"]

GRACE_S = 2.0  # after CMD's end, at most this long for a pipe that descendants still hold open
CHUNK = 1 << 16


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Tee:
    """A pipe for one of CMD's streams: ``wfd`` goes to CMD; the thread copies the read end to
    ``path`` and to ``passthrough`` (a file descriptor, or None)."""

    def __init__(self, path: str, passthrough: int | None) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_TRUNC  # resolve_outputs checked that it was free
        try:
            self.file_fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise DenetError(f"cannot open the --capture file {path}: {exc.strerror or exc}") from None
        self.path = path
        self.rfd, self.wfd = os.pipe2(os.O_CLOEXEC)
        self.passthrough = passthrough
        self.error: str | None = None
        self.bytes = 0
        self._ending = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"denet-capture-{path}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self.rfd, select.POLLIN)
        deadline = None
        import time

        while True:
            if self._ending.is_set() and deadline is None:
                deadline = time.monotonic() + GRACE_S
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not poller.poll(100):
                if self._ending.is_set():
                    break  # CMD has ended and nothing more came within 0.1 s: descendants hold the pipe
                continue
            data = os.read(self.rfd, CHUNK)
            if not data:
                break  # every writer has closed it
            if self.passthrough is not None:
                try:
                    _write_all(self.passthrough, data)
                except BrokenPipeError:
                    break  # nobody reads denet's output: closing our end gives CMD its SIGPIPE
                except OSError:
                    self.passthrough = None
            self.bytes += len(data)
            if self.file_fd >= 0:
                try:
                    _write_all(self.file_fd, data)
                except OSError as exc:
                    self.error = f"cannot write {self.path}: {exc.strerror or exc}; the rest is not captured"
                    os.close(self.file_fd)
                    self.file_fd = -1
        os.close(self.rfd)

    def started(self) -> None:
        """CMD holds the write end now: close ours, so that the pipe ends when CMD's tree is done with it."""
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1

    def finish(self) -> None:
        """After CMD's end: read what is left, then close the file."""
        self.started()
        self._ending.set()
        self._thread.join()
        if self.file_fd >= 0:
            os.close(self.file_fd)
            self.file_fd = -1
