"""denet under real Snakemake: the per-rule prefix, the zero-edit shim with the logger plugin, and the
cluster-generic executor, on one workflow (tests/fixtures/snakemake/Snakefile) run with two cores.

The workflow has four rules with two wildcard values each: a two-threaded CPU burn, a rule that
allocates a known amount of memory, a pipeline of a few hundred short processes, and a rule whose
second job fails (run with --keep-going). Each job measures its own CPU time (getrusage of itself
and its children) and runs under /usr/bin/time -v, so denet's figures are checked against the job's
own accounting, not against denet.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("snakemake", reason="Snakemake is not installed (pip install snakemake)")
plugin = pytest.importorskip("snakemake_logger_plugin_denet",
                             reason="the logger plugin is not installed (pip install -e integrations/snakemake)")
if not os.access("/usr/bin/time", os.X_OK):  # pragma: no cover - .ci/run installs it
    pytest.skip("GNU time (/usr/bin/time) is not installed", allow_module_level=True)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "snakemake"
DENET = f"{sys.executable} -m denet"
RULES = {"burn": ["1", "2"], "alloc": ["60", "120"], "pipeline": ["a", "b"], "fail": ["ok", "bad"]}
JOBS = {f"{rule}/{w}" for rule, ws in RULES.items() for w in ws}


def _env(tmp: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENET_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg")  # no user config of denet
    env.update(extra)
    return env


def _snakemake(work: Path, mode: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(FIX / "Snakefile"), "--keep-going", "--nocolor", *args,
           "--config", f"mode={mode}", f"py={sys.executable}", f"work={FIX / 'work.py'}", f"denet={DENET}"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    (work / "snakemake.out").write_text(proc.stdout + proc.stderr)
    return proc


def _summarize(*args: str, cwd: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "denet", "summarize", "--format", "json", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _per_rule(rows: list[dict]) -> dict:
    return {r["rule"]: {"runs": r["runs"], "failed": r["failed"], "threads": r["threads_max"]} for r in rows}


def _ran(proc: subprocess.CompletedProcess, work: Path) -> None:
    out = proc.stdout + proc.stderr
    # the one failing job makes Snakemake exit 1 under --keep-going; every other job ran
    assert proc.returncode == 1, out[-3000:]
    assert "Error in rule fail" in out, out[-3000:]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    """The documented use: every rule's command prefixed by denet_prefix(...), run files under log:."""
    tmp = tmp_path_factory.mktemp("prefix")
    work = tmp / "wf"
    proc = _snakemake(work, "prefix", "--cores", "2", env=_env(tmp))
    _ran(proc, work)
    return work


@pytest.fixture(scope="module")
def zero_edit(tmp_path_factory) -> Path:
    """The same workflow without denet in it: the shim first on PATH, the logger plugin records the jobs."""
    tmp = tmp_path_factory.mktemp("zero")
    work = tmp / "wf"
    env = _env(tmp, DENET_SNAKEMAKE_DIR=str(work / "runs"), DENET_SNAKEMAKE_DENET=DENET)
    env["PATH"] = plugin.shim_dir() + os.pathsep + env["PATH"]
    proc = _snakemake(work, "plain", "--cores", "2", "--logger", "denet", "--logger-denet-jobs",
                      str(work / "jobs.jsonl"), env=env)
    _ran(proc, work)
    return work


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Path:
    """Prefix mode with each job submitted through Snakemake's cluster-generic executor: a local submit
    script starts the job script as a separate background process."""
    pytest.importorskip("snakemake_executor_plugin_cluster_generic",
                        reason="pip install snakemake-executor-plugin-cluster-generic")
    tmp = tmp_path_factory.mktemp("cluster")
    work = tmp / "wf"
    proc = _snakemake(work, "prefix", "--executor", "cluster-generic", "--cluster-generic-submit-cmd",
                      str(FIX / "submit.sh"), "--jobs", "2", "--latency-wait", "20",
                      "--seconds-between-status-checks", "1", "--logger", "denet", "--logger-denet-jobs",
                      str(work / "jobs.jsonl"), env=_env(tmp))
    _ran(proc, work)
    return work


def _runs(work: Path) -> dict[str, dict]:
    """rule/wildcard -> the run's records by kind (prefix mode: runs/RULE/W.jsonl)."""
    out = {}
    for f in sorted((work / "runs").rglob("*.jsonl")):
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        out[f"{f.parent.name}/{f.stem}"] = {"meta": recs[0], "summary": recs[-1], "path": f}
    return out


# ---------------------------------------------------------------------------------------- prefix mode


def test_one_run_file_per_job_failed_job_included(prefix):
    runs = _runs(prefix)
    assert set(runs) == JOBS
    for key, r in runs.items():
        assert r["meta"]["kind"] == "metadata" and r["summary"]["kind"] == "summary", key
        rule, w = key.split("/")
        labels = r["meta"]["labels"]
        assert labels["rule"] == rule and labels["jobid"].isdigit()
        assert labels["threads"] == ("2" if rule == "burn" else "1")
        assert labels["wildcards"].endswith(f"={w}")
        assert r["summary"]["exit_code"] == (3 if key == "fail/bad" else 0), key
    # Snakemake removed the failed job's output but kept its log: the run file
    assert not (prefix / "out/fail/bad.json").exists()


def test_summarize_counts_jobs_per_rule(prefix):
    rows = _per_rule(_summarize("runs", cwd=prefix))
    assert rows == {"alloc": {"runs": 2, "failed": 0, "threads": 1}, "burn": {"runs": 2, "failed": 0, "threads": 2},
                    "fail": {"runs": 2, "failed": 1, "threads": 1}, "pipeline": {"runs": 2, "failed": 0, "threads": 1}}


def test_cpu_time_matches_each_jobs_own_measurement(prefix):
    runs = _runs(prefix)
    checked = 0
    for key, r in runs.items():
        own_file = prefix / "out" / f"{key}.json"
        if not own_file.exists():  # the failed job's output is deleted by Snakemake
            continue
        own = json.loads(own_file.read_text())["cpu_secs"]
        cpu = r["summary"]["cpu_time_secs"]
        # denet's tree also holds bash and /usr/bin/time (a few ms); the job measured itself with getrusage
        assert cpu >= own * 0.99, (key, cpu, own)
        assert cpu - own <= 0.03 * own + 0.03, (key, cpu, own)
        checked += 1
    assert checked == 7
    burn = runs["burn/2"]["summary"]
    assert burn["cpu_time_secs"] > 1.0  # the figures above are not all noise


def _time_v(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.strip().rpartition(": ")
        out[k] = v
    return out


def test_peak_memory_within_10_percent_of_gnu_time(prefix):
    runs = _runs(prefix)
    for key in ("alloc/60", "alloc/120", "burn/1", "pipeline/b"):
        gnu = int(_time_v(prefix / "time" / f"{key}.txt")["Maximum resident set size (kbytes)"])
        peak = runs[key]["summary"]["peak_process_rss_kb"]
        assert abs(peak - gnu) <= 0.10 * gnu, (key, peak, gnu)
    for mib in (60, 120):
        assert runs[f"alloc/{mib}"]["summary"]["peak_process_rss_kb"] >= mib * 1024


def test_benchmark_tsv_parses_with_snakemakes_column_names(prefix):
    from snakemake.benchmark import BenchmarkRecord

    runs = _runs(prefix)
    for key in JOBS:
        with open(prefix / "bench" / f"{key}.tsv", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        assert len(rows) == 1, key
        row = rows[0]
        assert list(row) == BenchmarkRecord.get_header(), key
        s = runs[key]["summary"]
        assert float(row["s"]) == pytest.approx(s["wall_time_secs"], abs=0.006)
        assert float(row["cpu_time"]) == pytest.approx(s["cpu_time_secs"], abs=0.006)
        assert float(row["max_rss"]) >= s["peak_process_rss_kb"] / 1024 - 0.006
    # and denet reads them back as Snakemake's own benchmark files
    assert sum(r["runs"] for r in _summarize("bench", cwd=prefix)) == len(JOBS)


# ---------------------------------------------------------------------------------------- zero-edit mode


def test_logger_plugin_lines_have_the_declared_columns(zero_edit):
    from denet import schema

    assert plugin.FIELDS == schema.table_names_of("snakemake_jobs")
    lines = [json.loads(x) for x in (zero_edit / "jobs.jsonl").read_text().splitlines()]
    assert all(tuple(x) == plugin.FIELDS for x in lines)
    info = {x["jobid"]: x for x in lines if x["event"] == "job_info"}
    assert sorted(x["rule"] for x in info.values()) == sorted(r for r, ws in RULES.items() for _ in ws)
    assert {x["event"] for x in lines} >= {"job_info", "job_finished", "job_error"}
    errors = [x for x in lines if x["event"] == "job_error"]
    assert len(errors) == 1 and info[errors[0]["jobid"]]["wildcards"] == {"x": "bad"}
    alloc = [x for x in info.values() if x["rule"] == "alloc"]
    assert sorted(x["resources"]["mem_mb"] for x in alloc) == [120, 240]


def test_zero_edit_writes_one_file_per_job(zero_edit):
    files = sorted((zero_edit / "runs").glob("*.jsonl"))
    assert len(files) == len(JOBS)
    codes = sorted(json.loads(f.read_text().splitlines()[-1])["exit_code"] for f in files)
    assert codes == [0] * 7 + [3]
    meta = json.loads(files[0].read_text().splitlines()[0])
    # Snakemake still ran its command as bash -c 'set -euo pipefail; ...': the shim is named bash
    assert meta["cmd"][1] == "-c" and meta["cmd"][2].startswith("set -euo pipefail;")


def test_zero_edit_and_plugin_give_the_prefix_modes_per_rule_table(prefix, zero_edit):
    want = _summarize("runs", cwd=prefix)
    got = _summarize("runs", "--jobs", "jobs.jsonl", cwd=zero_edit)
    assert _per_rule(got) == _per_rule(want)
    by = {r["rule"]: r for r in got}
    # requested memory (the jobs' mem_mb) beside what was used
    assert by["alloc"]["mem_mb_max"] == 240 and by["burn"]["mem_mb_max"] == 100
    assert by["alloc"]["peak_process_rss_kb_max"] >= 120 * 1024
    assert by["burn"]["cpu_efficiency_mean"] is not None
    ref = {r["rule"]: r for r in want}
    big = by["alloc"]["peak_process_rss_kb_max"]
    assert abs(big - ref["alloc"]["peak_process_rss_kb_max"]) <= 0.10 * big
    per_run = _summarize("runs", "--jobs", "jobs.jsonl", "--per-run", cwd=zero_edit)
    assert sorted((r["rule"], r["wildcards"]) for r in per_run) == sorted(
        (rule, f"{dict(burn='n', alloc='mib', pipeline='k', fail='x')[rule]}={w}")
        for rule, ws in RULES.items() for w in ws)


def test_without_the_job_records_the_shim_runs_have_no_rule(zero_edit):
    rows = _summarize("runs", "--by", "snakemake", cwd=zero_edit)
    assert [(r["snakemake"], r["runs"], r["failed"]) for r in rows] == [("shim", 8, 1)]


# ---------------------------------------------------------------------------------------- clusters


@pytest.mark.slow
def test_cluster_generic_run_writes_the_same_files(prefix, cluster):
    def files(work: Path) -> set[str]:
        return {str(p.relative_to(work)) for d in ("runs", "bench") for p in (work / d).rglob("*") if p.is_file()}

    assert files(cluster) == files(prefix)
    assert _per_rule(_summarize("runs", cwd=cluster)) == _per_rule(_summarize("runs", cwd=prefix))
    # every job went through the submit script: a separate job script and Snakemake process per job
    out = (cluster / "snakemake.out").read_text()
    assert len(re.findall(r"Submitted job \d+ with external jobid 'local-\d+'", out)) == len(JOBS)
    # the plugin in the submitting Snakemake saw every job; joined by log file, the labels agree
    rows = _summarize("runs", "--jobs", "jobs.jsonl", "--per-run", cwd=cluster)
    assert all(r["rule"] == Path(r["path"]).parent.name for r in rows)
    assert sorted(r["mem_mb"] for r in rows if r["rule"] == "alloc") == ["120", "240"]


def test_the_shim_finds_the_real_bash(tmp_path):
    shim = plugin.shim_path()
    assert os.path.basename(shim) == "bash" and os.access(shim, os.X_OK)
    env = _env(tmp_path, DENET_SNAKEMAKE_INNER="1")
    env["PATH"] = plugin.shim_dir() + os.pathsep + env["PATH"]
    out = subprocess.run([shim, "-c", 'echo "$BASH_VERSION"'], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip(), out.stderr
    assert shutil.which("bash", path=env["PATH"]) == shim
