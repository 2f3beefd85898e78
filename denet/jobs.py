"""Join the job records of denet's Snakemake logger plugin to run files (``summarize --jobs FILE``).

The plugin (``integrations/snakemake``, a separate distribution that this module never imports)
appends one JSON object per job event to a file; its keys are the ``snakemake_jobs`` table of
``schemas/records.json``. Here the events are folded into one :class:`Job` per (session, jobid), and
each run is matched to its job:

1. by file: the run's file is one of the job's ``log`` files (the per-rule prefix declares its
   ``--out`` under ``log:``);
2. by command: the run's command is ``SHELL -c 'PREFIX CMD'`` (the zero-edit shim) and ``CMD`` is the
   job's ``shellcmd``, whitespace aside; among several such jobs the one that was running when the run
   started (else the closest in time) wins.

The job's rule, jobid, wildcards, threads and numeric resources (``mem_mb``, ``runtime``, ...) become
the run's labels where the run does not have them already.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

from . import schema
from .errors import InputError

__all__ = ["Job", "annotate", "match", "read_jobs"]

_EVENTS = ("job_info", "job_started", "job_finished", "job_error")
# Started this long before the job's first event, or after its last, still counts as the job's (seconds).
_SLACK = 5.0


class Job:
    """One Snakemake job, from all its events."""

    __slots__ = ("session", "jobid", "rule", "wildcards", "threads", "resources", "shellcmd", "log", "output",
                 "host", "start", "end", "status")

    def __init__(self, session: str, jobid: int) -> None:
        self.session = session
        self.jobid = jobid
        self.rule: str | None = None
        self.wildcards: dict = {}
        self.threads: int | None = None
        self.resources: dict = {}
        self.shellcmd: str | None = None
        self.log: list[str] = []
        self.output: list[str] = []
        self.host: str | None = None
        self.start: float | None = None
        self.end: float | None = None
        self.status = "running"  # "ok", "error"

    def labels(self) -> dict[str, str]:
        """What the job tells about a run of it, as labels."""
        out: dict[str, str] = {"jobid": str(self.jobid)}
        if self.rule:
            out["rule"] = self.rule
        if self.wildcards:
            out["wildcards"] = ",".join(f"{k}={v}" for k, v in self.wildcards.items())
        if self.threads is not None:
            out["threads"] = str(self.threads)
        for k, v in self.resources.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in out:
                out[k] = str(v)
        return out

    def __repr__(self) -> str:
        return f"Job({self.session!r}, {self.jobid}, rule={self.rule!r}, status={self.status!r})"


def _norm(cmd: str) -> str:
    return " ".join(cmd.split())


def read_jobs(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Job]:
    """The jobs of one or more job files; a line that is not a job record raises :class:`InputError`
    naming the file and line."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    keys = set(schema.table_names_of("snakemake_jobs"))
    jobs: dict[tuple[str, int], Job] = {}
    for p in map(str, paths):
        try:
            fh = open(p, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--jobs {p}: cannot read: {exc.strerror or exc}") from None
        with fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    if not line.endswith("\n"):  # the last line of a file still being written
                        break
                    raise InputError(f"{p}:{n}: not a JSON object") from None
                if not isinstance(rec, dict) or rec.get("event") not in _EVENTS or not keys >= set(rec):
                    raise InputError(f"{p}:{n}: not a job record of denet's Snakemake logger plugin (keys: "
                                     f"{', '.join(sorted(keys))})")
                jobid, session = rec.get("jobid"), rec.get("session")
                if not isinstance(jobid, int) or not isinstance(session, str):
                    continue
                job = jobs.get((session, jobid))
                if job is None:
                    job = jobs[(session, jobid)] = Job(session, jobid)
                _fold(job, rec)
    return list(jobs.values())


def _fold(job: Job, rec: dict) -> None:
    t = rec.get("time")
    t = float(t) if isinstance(t, int | float) else None
    ev = rec["event"]
    if t is not None and ev in ("job_info", "job_started"):
        job.start = t if job.start is None else min(job.start, t)
    if t is not None and ev in ("job_finished", "job_error"):
        job.end = t if job.end is None else max(job.end, t)
    if ev == "job_finished":
        job.status = "ok"
    elif ev == "job_error":
        job.status = "error"
    if rec.get("rule"):
        job.rule = str(rec["rule"])
    if isinstance(rec.get("wildcards"), dict) and rec["wildcards"]:
        job.wildcards = rec["wildcards"]
    if isinstance(rec.get("threads"), int):
        job.threads = rec["threads"]
    if isinstance(rec.get("resources"), dict):
        job.resources = rec["resources"]
    if isinstance(rec.get("shellcmd"), str) and rec["shellcmd"].strip():
        job.shellcmd = rec["shellcmd"]
    for key in ("log", "output"):
        v = rec.get(key)
        if isinstance(v, list):
            have = getattr(job, key)
            have.extend(str(x) for x in v if str(x) not in have)
    if rec.get("host"):
        job.host = str(rec["host"])


def _shell_string(cmd) -> str | None:
    """The STRING of a run whose command is ``SHELL [OPTS] -c STRING ...``."""
    if not isinstance(cmd, list) or len(cmd) < 3:
        return None
    try:
        i = cmd.index("-c", 1)
    except ValueError:
        return None
    return cmd[i + 1] if i + 1 < len(cmd) and isinstance(cmd[i + 1], str) else None


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


class _Index:
    def __init__(self, jobs: Sequence[Job]) -> None:
        self.by_log: dict[str, Job] = {}
        self.by_cmd: list[tuple[str, Job]] = []
        for j in jobs:
            for f in j.log:
                self.by_log[_real(f)] = j
            if j.shellcmd:
                self.by_cmd.append((_norm(j.shellcmd), j))
        # longest commands first: a job whose command ends with a shorter job's command is the better match
        self.by_cmd.sort(key=lambda x: -len(x[0]))


def _when(job: Job, t0: float | None) -> tuple:
    """Sort key: jobs that were running at ``t0`` first, then the closest start."""
    if t0 is None or job.start is None:
        return (2, 0.0)
    end = job.end if job.end is not None else float("inf")
    inside = job.start - _SLACK <= t0 <= end + _SLACK
    return (0 if inside else 1, abs(t0 - job.start))


def match(path: str, metadata: dict | None, index: _Index) -> Job | None:
    """The job a run belongs to, or None."""
    j = index.by_log.get(_real(path))
    if j is not None:
        return j
    meta = metadata or {}
    text = _shell_string(meta.get("cmd"))
    if text is None:
        return None
    run = _norm(text)
    cands = []
    for cmd, job in index.by_cmd:
        if run == cmd or (run.endswith(cmd) and run[-len(cmd) - 1] in " ;"):
            if cands and len(cmd) < len(_norm(cands[0].shellcmd or "")):
                break
            cands.append(job)
    if not cands:
        return None
    t0 = meta.get("t0_ms")
    t0s = t0 / 1000.0 if isinstance(t0, int | float) else None
    host = meta.get("host")
    cands.sort(key=lambda j: (host is not None and j.host is not None and j.host != host, *_when(j, t0s)))
    return cands[0]


def annotate(entries: list, jobs: Sequence[Job]) -> tuple[int, int]:
    """Give each run (a :class:`denet.readers.RunEntry`) its job's labels where it lacks them.

    Returns (runs matched to a job, jobs with no run)."""
    index = _Index(jobs)
    matched = 0
    used: set[tuple[str, int]] = set()
    for e in entries:
        job = match(e.path, e.metadata, index)
        if job is None:
            continue
        matched += 1
        used.add((job.session, job.jobid))
        meta = dict(e.metadata or {})
        labels = dict(meta.get("labels") or {}) if isinstance(meta.get("labels"), dict) else {}
        for k, v in job.labels().items():
            labels.setdefault(k, v)
        meta["labels"] = labels
        e.metadata = meta
    ran = [j for j in jobs if j.shellcmd or j.log]
    return matched, sum(1 for j in ran if (j.session, j.jobid) not in used)
