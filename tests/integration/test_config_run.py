"""Settings from the environment and config files, output naming and --capture, with real runs."""

import json
import os
import subprocess

import pytest

from .helpers import DENET, PY, parse_lines

pytestmark = pytest.mark.integration


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENET_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def _run(args, tmp_path, env=None, timeout=60, **kw):
    return subprocess.run(DENET + list(args), cwd=tmp_path, env=env or _env(tmp_path), capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, **kw)


def _meta(path):
    return next(r for r in parse_lines(open(path, "rb").read()) if r.get("kind") == "metadata")


def test_environment_names_the_output_and_labels_the_run(tmp_path):
    env = _env(tmp_path, DENET_OUT="runs/{rule}/{sample}.{n}.jsonl", DENET_LABELS="rule=align,sample=s1",
               DENET_NOTE="from the job script", DENET_INTERVAL="20", DENET_QUIET="1")
    for _ in range(2):
        r = _run(["run", PY, "-c", "print('x')"], tmp_path, env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b""  # DENET_QUIET
    files = sorted(os.listdir(tmp_path / "runs" / "align"))
    assert files == ["s1.1.jsonl", "s1.2.jsonl"]
    meta = _meta(tmp_path / "runs" / "align" / "s1.2.jsonl")
    assert meta["labels"] == {"rule": "align", "sample": "s1"}
    assert meta["note"] == "from the job script" and meta["interval_ms"] == 20
    assert meta["host"] == os.uname().nodename


def test_config_files_and_denet_config(tmp_path):
    (tmp_path / "xdg" / "denet").mkdir(parents=True)
    user = tmp_path / "xdg" / "denet" / "config.toml"
    user.write_text('interval = 30\nmax_interval = 3000\n[labels]\nrule = "user"\nsite = "here"\n')
    (tmp_path / "denet.toml").write_text('max_interval = 2000\nnote = "project note"\n')
    env = _env(tmp_path, DENET_LABELS="rule=env")
    r = _run(["--out", "r.jsonl", "run", "true"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    meta = _meta(tmp_path / "r.jsonl")
    assert (meta["interval_ms"], meta["max_interval_ms"], meta["note"]) == (30, 2000, "project note")
    assert meta["labels"] == {"rule": "env", "site": "here"}
    r = _run(["-i", "7", "config", "--json"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["interval"] == {"value": 7, "source": "command line", "env": "DENET_INTERVAL"}
    assert got["max_interval"]["source"] == str(tmp_path / "denet.toml")
    assert got["labels"]["value"] == ["rule=env", "site=here"]
    assert got["quiet"] == {"value": False, "source": "default", "env": "DENET_QUIET"}
    r = _run(["config"], tmp_path, env)
    assert b"interval" in r.stdout and b"(default)" in r.stdout and str(user).encode() in r.stdout


@pytest.mark.parametrize("setup, words", [
    ({"file": "interval = 'fast'\n"}, [b"denet.toml", b"interval", b"'fast'"]),
    ({"file": "colour = 'red'\n"}, [b"denet.toml", b"colour", b"unknown key"]),
    ({"env": {"DENET_MAX_INTERVAL": "soon"}}, [b"DENET_MAX_INTERVAL", b"soon"]),
    ({"env": {"DENET_OUT": "{rule}.jsonl"}}, [b"{rule}"]),
    ({"args": ["--capture", "all"]}, [b"--capture", b"--out"]),
])
def test_bad_settings_stop_before_cmd_starts(tmp_path, setup, words):
    if "file" in setup:
        (tmp_path / "denet.toml").write_text(setup["file"])
    marker = tmp_path / "started"
    r = _run(["run", *setup.get("args", []), "touch", str(marker)], tmp_path, _env(tmp_path, **setup.get("env", {})))
    assert r.returncode == 2, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert not marker.exists()


def test_no_silent_overwrite(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("precious\n")
    marker = tmp_path / "started"
    r = _run(["run", "-o", str(out), "touch", str(marker)], tmp_path)
    assert r.returncode == 1 and b"already exists" in r.stderr and b"--clobber" in r.stderr
    assert out.read_text() == "precious\n" and not marker.exists()
    r = _run(["run", "-o", str(out), "--clobber", "touch", str(marker)], tmp_path)
    assert r.returncode == 0 and marker.exists() and _meta(out)["cmd"][0] == "touch"


def test_directory_out_writes_one_file_per_run(tmp_path):
    for _ in range(2):
        assert _run(["run", "-o", "runs/", "--", "true"], tmp_path).returncode == 0
    files = os.listdir(tmp_path / "runs")  # {cmd}-{datetime}-{pid}.jsonl: the two denets have different pids
    assert len(files) == 2 and all(f.startswith("true-") and f.endswith(".jsonl") for f in files)


# ---------------------------------------------------------------------------- --capture

WRITER = r"""
import os, sys
data = bytes(range(256)) * int(sys.argv[1])
for i in range(0, len(data), 7777):
    os.write(1, data[i:i + 7777])
    os.write(2, data[i:i + 7777][::-1])
sys.exit(int(sys.argv[2]))
"""


def test_capture_is_identical_to_what_passed_through(tmp_path):
    # 4 MiB on each stream, binary, both streams at once: far more than a pipe holds
    r = _run(["run", "-o", "c.jsonl", "--capture", "all", PY, "-c", WRITER, "16384", "7"], tmp_path)
    assert r.returncode == 7, r.stderr[-500:]
    out = (tmp_path / "c.stdout").read_bytes()
    err = (tmp_path / "c.stderr").read_bytes()
    assert len(out) == 256 * 16384 and out == r.stdout
    data = bytes(range(256)) * 16384
    assert err == b"".join(data[i:i + 7777][::-1] for i in range(0, len(data), 7777))
    assert r.stderr.startswith(err)  # denet's own lines (the summary) come after CMD's
    assert _meta(tmp_path / "c.jsonl")["cmd"][0] == PY


def test_capture_one_stream_and_quiet(tmp_path):
    r = _run(["run", "-q", "-o", "q.jsonl", "--capture", "stderr", PY, "-c", WRITER, "4", "0"], tmp_path)
    assert r.returncode == 0 and r.stdout == b""
    assert (tmp_path / "q.stderr").read_bytes() == b"".join(
        (bytes(range(256)) * 4)[i:i + 7777][::-1] for i in range(0, 1024, 7777))
    assert not (tmp_path / "q.stdout").exists()


def test_capture_keeps_signals_and_with_json_stdout_goes_to_stderr(tmp_path):
    r = _run(["run", "-j", "-o", "s.jsonl", "--capture", "stdout", "sh", "-c", "echo before; kill -TERM $$"],
             tmp_path)
    assert r.returncode == 143
    assert (tmp_path / "s.stdout").read_bytes() == b"before\n"
    assert b"before\n" in r.stderr and all(json.loads(x) for x in r.stdout.splitlines())


def test_capture_does_not_wait_for_descendants_holding_the_pipe(tmp_path):
    r = _run(["run", "-o", "o.jsonl", "--capture", "stdout", "sh", "-c", "sleep 30 2>/dev/null & echo started"], tmp_path,
             timeout=25)
    assert r.returncode == 0 and (tmp_path / "o.stdout").read_bytes() == b"started\n"


def test_capture_passes_sigpipe_on(tmp_path):
    # `denet run --capture stdout yes | head -1`: yes ends by SIGPIPE as it would without denet
    p = subprocess.run(" ".join(DENET) + " run -o y.jsonl --capture stdout yes | head -c 4 >/dev/null; "
                       "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", cwd=tmp_path,
                       env=_env(tmp_path), capture_output=True, timeout=60)
    assert p.stdout.strip() == b"141", p.stderr
    assert (tmp_path / "y.stdout").read_bytes().startswith(b"y\ny\n")


def test_a_run_that_never_started_leaves_no_file_behind(tmp_path):
    for _ in range(2):  # the second attempt is not refused by an empty file of the first
        r = _run(["run", "-o", "r.jsonl", "--", "no-such-program-denet"], tmp_path)
        assert r.returncode == 127, r.stderr
        assert not (tmp_path / "r.jsonl").exists()
    r = _run(["run", "-o", "r.jsonl", "--stats", "missing/s.json", "--", "true"], tmp_path)
    assert r.returncode == 1 and not (tmp_path / "r.jsonl").exists()


def test_note_and_host_reach_summarize_and_the_report_text(tmp_path):
    """--note and the metadata's host show in `summarize --per-run` and in a run's report subtitle."""
    from denet.report.text import run_subtitle
    from denet.summaries import summarize

    out = tmp_path / "run.jsonl"
    r = subprocess.run(DENET + ["--out", str(out), "--note", "second try, bigger input", "run", "--", "true"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    row = summarize([str(out)], per_run=True).to_dicts()[0]
    assert row["note"] == "second try, bigger input"
    assert row["host"] == os.uname().nodename
    assert "note: second try, bigger input" in run_subtitle({**row, "dur_s": 0.1})
