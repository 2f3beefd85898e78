"""denet's exceptions: a small tree. Only ``denet.cli`` turns them into messages and exit codes."""

from __future__ import annotations


class DenetError(Exception):
    """Base of every error denet raises on purpose."""

    exit_code = 1


class UsageError(DenetError):
    """Bad options or arguments (exit code 2)."""

    exit_code = 2


class SpawnError(DenetError):
    """The command could not be started: 127 when not found, 126 when not executable."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ProcessNotFound(DenetError):
    """A pid to attach to does not exist."""


class InputError(DenetError):
    """A file given to denet cannot be read as records; the message names the file and line."""


class SchemaVersionError(InputError):
    """A file was written with a schema version this denet does not know."""
