"""JSON Lines sink: one record per line, written with one ``write`` call and no user-space buffer,
so a ``kill -9`` of denet leaves every complete line readable."""

from __future__ import annotations

import os

__all__ = ["JsonlSink"]


class JsonlSink:
    """Writes records to a path (created or truncated) or to an already open file descriptor."""

    def __init__(self, target: str | int, *, append: bool = False) -> None:
        if isinstance(target, int):
            self.fd = target
            self.name = {1: "<stdout>", 2: "<stderr>"}.get(target, f"<fd {target}>")
            self._owned = False
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
            self.fd = os.open(target, flags, 0o666)
            self.name = target
            self._owned = True
        self.failed: OSError | None = None

    def write_line(self, line: str) -> None:
        """Write one line; after a failure (disk full, closed pipe) the sink stays silent and keeps the error."""
        if self.failed is not None:
            return
        data = (line + "\n").encode()
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError as exc:
            self.failed = exc
            raise

    def write(self, record) -> None:
        self.write_line(record.to_line())

    def close(self) -> None:
        if self._owned and self.fd >= 0:
            try:
                os.close(self.fd)
            finally:
                self.fd = -1
