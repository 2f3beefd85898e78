"""integrations/nextflow: the task shell wrapper, invoked exactly as Nextflow's .command.run invokes
its shell, and `denet summarize --format nextflow-trace`.

Nextflow cannot be installed here. Its .command.run (BashWrapperBuilder's template) launches a task as
`nxf_launch() { <process.shell joined by spaces> /abs/work/ab/cdef.../.command.sh }`, inside
`(set -o pipefail; (nxf_launch | tee .command.out) 3>&1 1>&2 2>&3 | tee .command.err) &`, and writes the
exit status to .exitcode on exit; .command.sh starts with `#!` + the same shell words. The replica below
keeps those lines; the shell words are read from integrations/nextflow/denet.config.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from denet.nextflow import fmt_duration, fmt_memory

pytestmark = pytest.mark.integration

NF = Path(__file__).resolve().parent.parent.parent / "integrations" / "nextflow"
WRAPPER = NF / "bin" / "denet-nf"
# Nextflow's default trace fields, in order (docs: "Trace report", `trace.fields` default)
NEXTFLOW_DEFAULT_TRACE = ["task_id", "hash", "native_id", "name", "status", "exit", "submit", "duration", "realtime",
                          "%cpu", "peak_rss", "peak_vmem", "rchar", "wchar"]

COMMAND_RUN = """#!/bin/bash
{header}
set -e
set -u
NXF_DEBUG=${{NXF_DEBUG:=0}}; [[ $NXF_DEBUG > 1 ]] && set -x
NXF_ENTRY=${{1:-nxf_main}}

on_exit() {{
    exit_status=${{nxf_main_ret:=$?}}
    printf -- $exit_status > {work}/.exitcode
    set +u
    exit $exit_status
}}

on_term() {{
    set +e
    [[ "$pid" ]] && kill $pid
}}

nxf_launch() {{
    {launch}
}}

nxf_main() {{
    trap on_exit EXIT
    trap on_term TERM INT USR2
    trap '' USR1

    [[ "${{NXF_CHDIR:-}}" ]] && cd "$NXF_CHDIR"
    NXF_SCRATCH=''
    touch {work}/.command.begin
    set +u
    set -u
    [[ $NXF_SCRATCH ]] && cd $NXF_SCRATCH
    export NXF_TASK_WORKDIR="$PWD"

    set +e
    (set -o pipefail; (nxf_launch | tee .command.out) 3>&1 1>&2 2>&3 | tee .command.err) &
    pid=$!
    wait $pid || nxf_main_ret=$?
}}

$NXF_ENTRY
"""


def _config_shell() -> list[str]:
    """process.shell of denet.config, with params.denet_wrapper resolved to the wrapper's path."""
    text = (NF / "denet.config").read_text()
    m = re.search(r"^\s*shell\s*=\s*\[(.*)\]\s*$", text, re.M)
    assert m, "denet.config sets no process.shell"
    words = []
    for w in (x.strip() for x in m.group(1).split(",")):
        words.append(str(WRAPPER) if w == "params.denet_wrapper" else w.strip("'\""))
    return words


def _task(base: Path, name: str, script: str, *, h: str = "ab", rest: str = "cdef1234567890", old: bool = False,
          env: dict | None = None) -> tuple[Path, int]:
    work = base / "work" / h / rest
    work.mkdir(parents=True)
    shell = _config_shell()
    (work / ".command.sh").write_text("#!" + " ".join(shell) + "\n" + script)
    header = f"# NEXTFLOW TASK: {name}" if old else f"### ---\n### name: '{name}'\n### outputs:\n### - 'out.txt'\n### ..."
    launch = " ".join(shell) + " " + str(work / ".command.sh")
    (work / ".command.run").write_text(COMMAND_RUN.format(header=header, work=work, launch=launch))
    e = {k: v for k, v in os.environ.items() if not k.startswith("DENET_")}
    e.update({"DENET_NF_DENET": f"{sys.executable} -m denet", "XDG_CONFIG_HOME": str(base / "xdg"), **(env or {})})
    p = subprocess.run(["/bin/bash", str(work / ".command.run")], cwd=work, env=e, capture_output=True, text=True,
                       timeout=60)
    return work, p.returncode


def _records(f: Path) -> list[dict]:
    return [json.loads(x) for x in f.read_text().splitlines()]


def test_the_config_keeps_nextflows_default_shell_after_the_wrapper():
    shell = _config_shell()
    assert shell[1:] == ["/bin/bash", "-ue"]
    assert os.access(WRAPPER, os.X_OK)


def test_a_task_runs_under_denet_with_its_output_and_exit_code(tmp_path):
    work, rc = _task(tmp_path, "sayHello (2)", "echo hello > out.txt\necho to-stdout\necho to-stderr >&2\n")
    assert rc == 0
    assert (work / ".exitcode").read_text() == "0"
    assert (work / "out.txt").read_text() == "hello\n"
    assert (work / ".command.out").read_text() == "to-stdout\n"
    assert (work / ".command.err").read_text() == "to-stderr\n"
    recs = _records(work / ".command.denet.jsonl")
    meta, summary = recs[0], recs[-1]
    assert meta["labels"] == {"process": "sayHello", "tag": "2", "hash": "ab/cdef12", "name": "sayHello (2)"}
    assert meta["cmd"] == ["/bin/bash", "-ue", str(work / ".command.sh")]
    assert summary["exit_code"] == 0


@pytest.mark.parametrize("script, code", [
    ('echo "$NOT_SET_ANYWHERE"\n', 1),       # -u of Nextflow's default shell still applies
    ("false\necho not reached\n", 1),        # and -e
    ("exit 3\n", 3),
])
def test_the_tasks_exit_status_reaches_nextflow(tmp_path, script, code):
    work, rc = _task(tmp_path, "failing", script, old=True)
    assert rc == code
    assert (work / ".exitcode").read_text() == str(code)
    recs = _records(work / ".command.denet.jsonl")
    assert recs[-1]["exit_code"] == code
    assert recs[0]["labels"]["process"] == "failing" and recs[0]["labels"]["tag"] == ""


def test_tasks_into_one_directory_and_the_trace_file(tmp_path):
    runs = tmp_path / "denet-runs"
    env = {"DENET_NF_DIR": str(runs)}
    _task(tmp_path, "align (s1)", "seq 20000 | sort -n > /dev/null\n", h="0a", rest="11223344", env=env)
    _task(tmp_path, "align (s2)", "exit 2\n", h="0b", rest="55667788", env=env)
    _task(tmp_path, "report", "echo done\n", h="0c", rest="99aabbcc", env=env)
    assert sorted(str(p.relative_to(runs)) for p in runs.rglob("*.jsonl")) == [
        "align/0a-112233.jsonl", "align/0b-556677.jsonl", "report/0c-99aabb.jsonl"]
    p = subprocess.run([sys.executable, "-m", "denet", "summarize", str(runs), "--format", "nextflow-trace"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(p.stdout.splitlines(), delimiter="\t"))
    assert list(rows[0])[: len(NEXTFLOW_DEFAULT_TRACE)] == NEXTFLOW_DEFAULT_TRACE
    by = {r["hash"]: r for r in rows}
    assert set(by) == {"0a/112233", "0b/556677", "0c/99aabb"}
    assert by["0a/112233"]["name"] == "align (s1)" and by["0a/112233"]["process"] == "align"
    assert (by["0a/112233"]["status"], by["0a/112233"]["exit"]) == ("COMPLETED", "0")
    assert (by["0b/556677"]["status"], by["0b/556677"]["exit"]) == ("FAILED", "2")
    assert by["0c/99aabb"]["name"] == "report" and by["0c/99aabb"]["tag"] == "-"
    assert sorted(r["task_id"] for r in rows) == ["1", "2", "3"]
    for r in rows:
        assert re.fullmatch(r"\d+\.\d%", r["%cpu"]), r
        assert re.fullmatch(r"\d+ms|\d+(\.\d)?s|(\d+[dhms] ?)+", r["realtime"]), r
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", r["submit"]), r
        for col in ("peak_rss", "rchar", "wchar"):
            assert re.fullmatch(r"0|\d+(\.\d)? (B|KB|MB|GB)", r[col]), (col, r)
        # sampled: a task that ended before its first sample has none ("-", as Nextflow writes a missing value)
        assert re.fullmatch(r"-|\d+(\.\d)? (B|KB|MB|GB)", r["peak_vmem"]), r
    # the per-process table comes from the same labels
    p = subprocess.run([sys.executable, "-m", "denet", "summarize", str(runs), "--by", "process", "--format", "json"],
                       capture_output=True, text=True)
    assert {r["process"]: (r["runs"], r["failed"]) for r in json.loads(p.stdout)} == {"align": (2, 1), "report": (1, 0)}


def test_the_wrapper_needs_a_script():
    p = subprocess.run([str(WRAPPER)], capture_output=True, text=True)
    assert p.returncode == 2 and "usage" in p.stderr


@pytest.mark.parametrize("secs, text", [(0.1, "100ms"), (0.0004, "0ms"), (1.5, "1.5s"), (2.0, "2s"), (59.94, "59.9s"),
                                        (65, "1m 5s"), (120, "2m"), (3723, "1h 2m 3s"), (90000, "1d 1h"), (None, "-")])
def test_durations_are_written_as_nextflow_writes_them(secs, text):
    assert fmt_duration(secs) == text


@pytest.mark.parametrize("nbytes, text", [(0, "0"), (1023, "1023 B"), (1024, "1 KB"), (1536, "1.5 KB"),
                                          (10 * 1024**2, "10 MB"), (3.25 * 1024**3, "3.2 GB"), (None, "-")])
def test_sizes_are_written_as_nextflow_writes_them(nbytes, text):
    assert fmt_memory(nbytes) == text
