"""denet's Snakemake logger plugin: one JSON line per job event, for ``denet summarize --jobs``.

``snakemake --logger denet [--logger-denet-jobs FILE]`` appends to FILE (default
``.snakemake/denet/jobs.jsonl``) one line per job event: ``job_info`` when a job is scheduled (its id,
rule, wildcards, threads, resources, shell command, output and log files), ``job_started``,
``job_finished`` and ``job_error``. The columns are declared in denet's ``schemas/records.json``
(table ``snakemake_jobs``). ``denet summarize RUNS --jobs FILE`` joins them to the run files, so
runs written by the zero-edit shell shim (which know nothing of rules) are reported per rule, with
requested threads and memory beside what was used.

This package imports nothing of denet: it only writes a file that denet reads.
"""

import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from logging import LogRecord
from typing import Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from .prefix import denet_prefix, shim_dir, shim_path

__all__ = ["DEFAULT_JOBS_FILE", "FIELDS", "LogHandler", "LogHandlerSettings", "denet_prefix", "job_line",
           "shim_dir", "shim_path"]

DEFAULT_JOBS_FILE = os.path.join(".snakemake", "denet", "jobs.jsonl")

# The keys of every line, in order (denet's schemas/records.json, table `snakemake_jobs`; a test checks both agree).
FIELDS = ("event", "time", "session", "host", "workdir", "jobid", "rule", "wildcards", "threads", "resources",
          "shellcmd", "output", "log")

_EVENTS = {"job_info", "job_started", "job_finished", "job_error"}


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    # A real type, not a string annotation: Snakemake builds its command-line option from it.
    jobs: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "The JSON-lines file the job records are appended to (default .snakemake/denet/jobs.jsonl); "
            "give it to `denet summarize --jobs FILE`.",
            "env_var": False,
            "required": False,
        },
    )


def _plain(value):
    """Strings, numbers and booleans as they are; anything else (Snakemake's TBD values, callables) as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _resources(res) -> dict | None:
    if res is None:
        return None
    try:
        items = list(res.items())
    except AttributeError:
        return None
    return {str(k): _plain(v) for k, v in items if not str(k).startswith("_")}


def _files(files) -> list[str]:
    out = []
    for f in files or ():
        out.append(os.path.abspath(str(f)))
    return out


def job_line(record: LogRecord, session: str, host: str) -> list[dict]:
    """The job lines (dicts with the keys of :data:`FIELDS`) of one Snakemake log record; [] for other records."""
    event = str(getattr(record, "event", "") or "")
    if event not in _EVENTS:
        return []
    base = dict.fromkeys(FIELDS)
    base.update(event=event, time=round(record.created, 3), session=session, host=host, workdir=os.getcwd())
    if event == "job_started":
        ids = getattr(record, "jobs", None) or []
        return [{**base, "jobid": int(j)} for j in ids]
    if event == "job_finished":
        return [{**base, "jobid": _int(getattr(record, "job_id", None))}]
    if event == "job_error":
        return [{**base, "jobid": _int(getattr(record, "jobid", None)), "rule": getattr(record, "rule_name", None),
                 "shellcmd": getattr(record, "shellcmd", None) or None, "log": _files(getattr(record, "log", None))}]
    wildcards = getattr(record, "wildcards", None)
    return [{**base, "jobid": _int(getattr(record, "jobid", None)), "rule": getattr(record, "rule_name", None),
             "wildcards": {str(k): _plain(v) for k, v in dict(wildcards or {}).items()},
             "threads": _int(getattr(record, "threads", None)),
             "resources": _resources(getattr(record, "resources", None)),
             "shellcmd": getattr(record, "shellcmd", None) or None,
             "output": _files(getattr(record, "output", None)), "log": _files(getattr(record, "log", None))}]


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class LogHandler(LogHandlerBase):
    """Appends the job records of this Snakemake run to the jobs file (one ``write`` per line)."""

    def __post_init__(self) -> None:
        path = (self.settings.jobs if self.settings is not None else None) or DEFAULT_JOBS_FILE
        self.path = os.path.abspath(path)
        self.session = f"{os.getpid()}-{time.time_ns():x}"
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._fd: Optional[int] = None  # noqa: UP045
        self._dry = bool(getattr(self.common_settings, "dryrun", False))

    def _open(self) -> int:
        if self._fd is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd

    def emit(self, record: LogRecord) -> None:
        if self._dry:
            return
        try:
            lines = job_line(record, self.session, self.host)
            if not lines:
                return
            data = "".join(json.dumps(x, separators=(",", ":"), default=str) + "\n" for x in lines).encode()
            with self._lock:
                os.write(self._open(), data)
        except Exception:  # a logger must never stop the workflow
            self.handleError(record)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every job event is wanted, whatever --quiet says

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False
