"""Replace a file whole: readers see the old file or the complete new one, never a part of it.

The new contents go to a hidden temporary file in the same directory (so a directory scan never
picks it up), optionally flushed to disk, then renamed over the destination; on any failure the
temporary file is removed and the error passes on. Only ``os`` is imported.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: schema.cached() is on the `denet run` path
    from collections.abc import Callable

__all__ = ["replace_file", "replace_with_bytes"]


def replace_file(dest: str, write: Callable[[str], object], *, fsync: bool = False) -> None:
    """Call ``write(tmp_path)`` to produce the new contents, then rename them over ``dest``."""
    d, base = os.path.split(os.path.abspath(dest))
    tmp = os.path.join(d, f".{base}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def replace_with_bytes(dest: str, data: bytes) -> None:
    """``dest`` now holds ``data``."""

    def write(path: str) -> None:
        with open(path, "wb") as fh:
            fh.write(data)

    replace_file(dest, write)
