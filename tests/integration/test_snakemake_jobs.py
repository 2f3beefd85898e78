"""`summarize --jobs`: joining the logger plugin's job records to run files (denet/jobs.py).

Run files are written by real `denet run`s; job records by the plugin's own `job_line` from
logging records shaped as Snakemake 9 logs them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from denet.summaries import run_table

pytestmark = pytest.mark.integration

plugin = pytest.importorskip("snakemake_logger_plugin_denet",
                             reason="the logger plugin is not installed (pip install -e integrations/snakemake)")


def _record(event: str, created: float, **attrs) -> logging.LogRecord:
    r = logging.LogRecord("snakemake", logging.INFO, "jobs.py", 1, "msg", (), None)
    r.created = created
    r.event = event
    for k, v in attrs.items():
        setattr(r, k, v)
    return r


def _job(session: str, jobid: int, rule: str, cmd: str, start: float, end: float, *, ok: bool = True,
         log=(), wildcards=None, mem_mb=None) -> list[dict]:
    resources = {"_cores": 1, "tmpdir": "/tmp", **({"mem_mb": mem_mb} if mem_mb else {})}
    out = plugin.job_line(_record("job_info", start, jobid=jobid, rule_name=rule, wildcards=wildcards or {},
                                  threads=1, resources=resources, shellcmd=cmd, output=[], log=list(log)),
                          session, "host1")
    if ok:
        out += plugin.job_line(_record("job_finished", end, job_id=jobid), session, "host1")
    else:
        out += plugin.job_line(_record("job_error", end, jobid=jobid, rule_name=rule, shellcmd=cmd, log=list(log)),
                               session, "host1")
    return out


def _write_jobs(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _shim_run(out: Path, cmd: str) -> float:
    """A run as the shim writes it: bash -c 'set -euo pipefail;  CMD'. Returns when it started."""
    t = time.time()
    subprocess.run([sys.executable, "-m", "denet", "--out", str(out), "run", "--label", "snakemake=shim", "--",
                    "bash", "-c", f"set -euo pipefail;  {cmd}"], check=False, capture_output=True)
    return t


def test_job_line_keeps_what_a_run_needs():
    lines = _job("s1", 3, "align", "bwa mem x", 100.0, 101.0, wildcards={"sample": "A"}, mem_mb=500, ok=False)
    assert [x["event"] for x in lines] == ["job_info", "job_error"]
    info = lines[0]
    assert tuple(info) == plugin.FIELDS
    assert info["resources"] == {"tmpdir": "/tmp", "mem_mb": 500}  # Snakemake's private _cores left out
    assert info["wildcards"] == {"sample": "A"} and info["time"] == 100.0
    assert plugin.job_line(_record("progress", 1.0, done=1, total=2), "s", "h") == []
    started = plugin.job_line(_record("job_started", 5.0, jobs=[1, 2]), "s", "h")
    assert [x["jobid"] for x in started] == [1, 2]


def test_same_command_in_two_sessions_goes_to_the_job_that_was_running(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    t1 = _shim_run(runs / "first.jsonl", "echo same")
    time.sleep(0.05)
    # two Snakemake invocations ran the very same command; job ids restart at each
    lines = _job("s1", 1, "early", "echo same", t1 - 0.5, t1 + 1.0) + _job("s2", 1, "late", "echo same",
                                                                             t1 + 100.0, t1 + 101.0)
    jobs = _write_jobs(tmp_path / "jobs.jsonl", lines)
    t = run_table(str(runs), jobs=str(jobs))
    assert t["rule"].to_list() == ["early"]
    assert t["jobid"].to_list() == ["1"]


def test_a_longer_command_wins_over_its_suffix(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    t = _shim_run(runs / "r.jsonl", "echo a; echo b")
    lines = _job("s", 1, "short", "echo b", t - 1, t + 5) + _job("s", 2, "long", "echo a; echo b", t - 1, t + 5)
    tab = run_table(str(runs), jobs=str(_write_jobs(tmp_path / "j.jsonl", lines)))
    assert tab["rule"].to_list() == ["long"]


def test_a_prefix_run_is_matched_by_its_log_file_and_keeps_its_labels(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    f = runs / "a.jsonl"
    subprocess.run([sys.executable, "-m", "denet", "--out", str(f), "run", "--label", "rule=mine", "--", "true"],
                   check=True)
    lines = _job("s", 4, "theirs", "true", 0.0, 1.0, log=[str(f)], mem_mb=300, wildcards={"s": "x"})
    tab = run_table(str(runs), jobs=str(_write_jobs(tmp_path / "j.jsonl", lines)))
    row = tab.row(0, named=True)
    assert row["rule"] == "mine"  # a label the run has wins
    assert row["jobid"] == "4" and row["mem_mb"] == "300" and row["wildcards"] == "s=x"


def test_a_bad_jobs_file_is_named_with_its_line(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    _shim_run(runs / "r.jsonl", "true")
    bad = tmp_path / "jobs.jsonl"
    bad.write_text(json.dumps(_job("s", 1, "r", "true", 0, 1)[0]) + "\n" + '{"kind": "metadata"}\n')
    p = subprocess.run([sys.executable, "-m", "denet", "summarize", str(runs), "--jobs", str(bad)],
                       capture_output=True, text=True)
    assert p.returncode == 1 and f"{bad}:2: not a job record" in p.stderr and p.stdout == ""
    p = subprocess.run([sys.executable, "-m", "denet", "summarize", str(runs), "--jobs", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "none" in p.stderr


def test_jobs_without_a_run_are_counted_in_a_note(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    t = _shim_run(runs / "r.jsonl", "echo one")
    lines = _job("s", 1, "one", "echo one", t - 1, t + 5) + _job("s", 2, "two", "echo two", t - 1, t + 5, ok=False)
    jobs = _write_jobs(tmp_path / "j.jsonl", lines)
    p = subprocess.run([sys.executable, "-m", "denet", "summarize", str(runs), "--jobs", str(jobs)],
                       capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert p.returncode == 0, p.stderr
    assert "1 of 1 runs matched to 2 jobs; 1 jobs with a command have no run file" in p.stderr
    assert p.stdout.splitlines()[1].split()[:3] == ["one", "1", "0"]
