"""`denet run -c STRING` and the zero-edit shim, driven through Snakemake's own `shell()`.

The shim is run exactly as Snakemake runs a job's command: `snakemake.shell.shell(cmd)` with the shim
as `shell.executable`, which starts `SHIM -c 'set -euo pipefail;  CMD'` (or, past 64 KiB, writes the
command to a script and runs `"SHIM" "script.sh"` through the shim).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DENET = [sys.executable, "-m", "denet"]


def _env(tmp: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENET_")}
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------- denet run -c


def test_run_c_runs_a_pipeline_through_sh_and_returns_its_exit_code(tmp_path):
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([*DENET, "--out", str(out), "run", "-c", "seq 100 | sort -rn | head -n 1; exit 4"],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == "100\n"
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert recs[0]["cmd"] == ["/bin/sh", "-c", "seq 100 | sort -rn | head -n 1; exit 4"]
    assert recs[-1]["exit_code"] == 4
    names = {r["name"] for r in recs if r["kind"] == "process"}
    assert {"seq", "sort", "head"} <= names or not names  # the ledger saw the pipeline's processes


def test_run_c_words_after_the_string_are_dollar_0_and_on(tmp_path):
    proc = subprocess.run([*DENET, "run", "--label", "rule=x", "-c", 'echo "$0|$1|$#"', "name", "a b"],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "name|a b|1\n"


def test_run_c_errors(tmp_path):
    env = _env(tmp_path)
    p = subprocess.run([*DENET, "run", "-c"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 2 and "-c expects a value" in p.stderr
    p = subprocess.run([*DENET, "attach", "-c", "true", str(os.getpid())], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert p.returncode == 2 and "-c/--command applies to run" in p.stderr


def test_a_command_never_comes_from_the_environment(tmp_path):
    env = _env(tmp_path, DENET_COMMAND="exit 9")
    p = subprocess.run([*DENET, "run", "--", "true"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([*DENET, "config", "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0 and "command" not in json.loads(p.stdout)


# ---------------------------------------------------------------------------------------- the shim

_DRIVER = """
import subprocess, sys
from snakemake.shell import shell
shell.executable(sys.argv[1])
try:
    shell(sys.argv[2])
    print("rc=0")
except subprocess.CalledProcessError as exc:
    print(f"rc={exc.returncode}")
"""


@pytest.fixture(scope="module")
def shim():
    pytest.importorskip("snakemake", reason="Snakemake is not installed")
    plugin = pytest.importorskip("snakemake_logger_plugin_denet", reason="pip install -e integrations/snakemake")
    return plugin.shim_path()


def _through_snakemake(shim: str, cmd: str, tmp: Path) -> tuple[int, list[dict]]:
    runs = tmp / "runs"
    env = _env(tmp, DENET_SNAKEMAKE_DIR=str(runs), DENET_SNAKEMAKE_DENET=" ".join(DENET))
    p = subprocess.run([sys.executable, "-c", _DRIVER, shim, cmd], capture_output=True, text=True, env=env,
                       cwd=tmp, timeout=120)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert last.startswith("rc="), p.stdout + p.stderr
    files = sorted(runs.glob("*.jsonl")) if runs.exists() else []
    return int(last[3:]), [[json.loads(x) for x in f.read_text().splitlines()] for f in files]


@pytest.mark.parametrize("cmd, code", [
    ("false | true", 1),                      # pipefail
    ('echo "$DENET_TEST_SURELY_UNSET"', 1),   # nounset
    ("false; echo not reached", 1),           # errexit
    ("echo fine | cat; exit 7", 7),           # the command's own exit code
    ("true", 0),
])
def test_the_shim_keeps_snakemakes_bash_behaviour(shim, tmp_path, cmd, code):
    rc, runs = _through_snakemake(shim, cmd, tmp_path)
    assert rc == code
    assert len(runs) == 1
    meta, summary = runs[0][0], runs[0][-1]
    assert meta["cmd"][1:] == ["-c", f"set -euo pipefail;  {cmd}"]
    assert os.path.basename(meta["cmd"][0]) == "bash" and meta["cmd"][0] != shim
    assert meta["labels"] == {"snakemake": "shim"}
    assert summary["exit_code"] == code


def test_the_shim_runs_snakemakes_long_command_script_once(shim, tmp_path):
    # past 64 KiB Snakemake writes the command to .snakemake/shell_tmp.*/script.sh and runs "SHELL" "script.sh"
    cmd = ": " + "x" * 70_000 + "; echo long > out.txt; exit 5"
    rc, runs = _through_snakemake(shim, cmd, tmp_path)
    assert rc == 5
    assert (tmp_path / "out.txt").read_text() == "long\n"
    assert len(runs) == 1  # the inner call of the shim ran bash directly, not a second denet
    meta = runs[0][0]
    assert meta["cmd"][1] == "-c" and meta["cmd"][2].endswith('/script.sh"') and "shell_tmp." in meta["cmd"][2]
    assert runs[0][-1]["exit_code"] == 5


def test_the_shim_passes_other_invocations_to_bash(shim, tmp_path):
    script = tmp_path / "s.sh"
    script.write_text('echo "args:$*"; exit 3\n')
    env = _env(tmp_path, DENET_SNAKEMAKE_DIR=str(tmp_path / "runs"))
    p = subprocess.run([shim, str(script), "a", "b"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 3 and p.stdout == "args:a b\n"
    assert not (tmp_path / "runs").exists()
