"""Security: no shell between denet and CMD, a plain permission error when attaching to another user's
process, and labels and paths with quotes, newlines, markup and unicode carried through every generated
file (JSON lines, Snakemake TSV, the --suggest YAML, CSV, the HTML report) as data, never as code."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from integration.helpers import DENET, PY, check_run_file, no_traceback, read_pid, read_records

pytestmark = pytest.mark.integration

# Arguments a shell would act on. Passed literally, none of them creates the marker file.
NASTY_ARGS = ["a;touch {m}", "$(touch {m})", "`touch {m}`", "x|touch {m}", "> {m}", "&& touch {m}", "*", "~",
              "$HOME", "'single'", '"double"', "line\nbreak", "tab\there", "\\", "-c", "--", "ünïcødé ✓", ""]

# A label value meant to break out of every format denet writes.
EVIL = 'a"b\'c\nd\te</script><script>alert(1)</script>: {x} - [y] # z ü✓\\'


def test_arguments_reach_cmd_literally(tmp_path):
    marker = tmp_path / "marker"
    args = [a.replace("{m}", str(marker)) for a in NASTY_ARGS]
    out = tmp_path / "run.jsonl"
    res = subprocess.run(DENET + ["--out", str(out), "run", "--", PY, "-c",
                                  "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))", *args],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == args
    assert not marker.exists(), "an argument was interpreted by a shell"
    assert read_records(out)[0]["cmd"][3:] == args  # the metadata records argv exactly


def test_a_command_name_with_shell_syntax_is_not_run_by_a_shell(tmp_path):
    marker = tmp_path / "marker"
    res = subprocess.run(DENET + ["run", "--", f"true; touch {marker}"], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=60)
    assert res.returncode == 127, res.stderr
    assert not marker.exists()
    no_traceback(res.stderr)


def _has_shell_option() -> bool:
    from denet.options import OPTIONS

    return any("-c" in (*o.flags, *o.aliases) for o in OPTIONS)


@pytest.mark.skipif(not _has_shell_option(), reason="this denet has no `run -c` (shell) option yet")
def test_dash_c_is_the_only_way_to_a_shell(tmp_path):
    res = subprocess.run(DENET + ["run", "-c", "echo $((1 + 2)); exit 4"], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=60)
    assert res.returncode == 4, res.stderr
    assert res.stdout == b"3\n"


def _run_as_nobody(args: list[str]) -> subprocess.CompletedProcess:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to run denet as another user")
    return subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *DENET, *args],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60, cwd="/")


@pytest.fixture
def open_dir():
    """A directory every user may write to (pytest's own are private to root)."""
    d = tempfile.mkdtemp(prefix="denet-rel-")
    os.chmod(d, 0o777)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_attach_to_another_users_process_is_a_clear_permission_error(open_dir, procs):
    """denet as `nobody` attaching to root's process: refused in plain words, exit 1, no file left
    (fixed: it used to attach and record the I/O it could not read as zeros)."""
    target = procs.add(subprocess.Popen(["sleep", "60"]))
    out = open_dir / "attach.jsonl"
    res = _run_as_nobody(["--out", str(out), "--duration", "1", "attach", str(target.pid)])
    err = res.stderr.decode()
    assert res.returncode == 1, err
    no_traceback(err)
    assert "permission denied" in err and str(target.pid) in err and "root" in err, err
    assert not out.exists()
    assert target.poll() is None  # the process was not disturbed


def test_root_attaching_to_an_unprivileged_process_works(open_dir, procs):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv")
    pidfile = open_dir / "pid"
    p = procs.add(subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                                    f"echo $$ > {pidfile}; exec sleep 60"]))
    pid = read_pid(pidfile)
    out = open_dir / "attach.jsonl"
    res = subprocess.run(DENET + ["--out", str(out), "--duration", "0.5", "attach", str(pid)], capture_output=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert check_run_file(read_records(out))
    p.kill()


@pytest.fixture(scope="module")
def evil_runs(tmp_path_factory):
    """Two runs labelled with EVIL (and a rule name with YAML and HTML syntax), written to paths with
    quotes, a newline and unicode in their names, with --benchmark TSV."""
    d = tmp_path_factory.mktemp("evil")
    runs = d / "runs ü \"q\" 'x'"
    runs.mkdir()
    benches = d / "bench"  # apart: summarize would read Snakemake's benchmark files as runs too
    benches.mkdir()
    outs = []
    for i, rule in enumerate(["align: {x}", "<b>sort</b> \"q\"\n2"]):
        out = runs / f"run{i} \n✓ '\".jsonl"
        bench = benches / f"bench{i} \"'\n.tsv"
        res = subprocess.run(DENET + ["--out", str(out), "--benchmark", str(bench), "--label", f"rule={rule}",
                                      "--label", f"note={EVIL}", "--note", EVIL, "run", "--", "sh", "-c",
                                      "sleep 0.2"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr
        outs.append((out, bench, rule))
    return runs, outs


def test_labels_round_trip_in_json_lines_and_tsv(evil_runs):
    _, outs = evil_runs
    for out, bench, rule in outs:
        meta = read_records(out)[0]
        assert meta["labels"] == {"rule": rule, "note": EVIL}
        assert meta["note"] == EVIL
        rows = bench.read_text().splitlines()
        assert len(rows) == 2  # header and one row: nothing from a label leaks into the TSV's structure
        assert len(rows[1].split("\t")) == len(rows[0].split("\t"))


def test_labels_round_trip_through_summarize_json_and_csv(evil_runs, tmp_path):
    runs, outs = evil_runs
    res = subprocess.run(DENET + ["summarize", "--per-run", "--format", "json", str(runs)], capture_output=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert sorted(r["rule"] for r in rows) == sorted(rule for _, _, rule in outs)
    assert {r["path"] for r in rows} >= {str(o) for o, _, _ in outs}
    res = subprocess.run(DENET + ["summarize", "--per-run", "--format", "csv", str(runs)], capture_output=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    parsed = list(csv.DictReader(io.StringIO(res.stdout.decode())))
    assert sorted(r["rule"] for r in parsed) == sorted(rule for _, _, rule in outs)


def test_suggest_yaml_keeps_rule_names_as_data(evil_runs):
    yaml = pytest.importorskip("yaml")
    runs, outs = evil_runs
    res = subprocess.run(DENET + ["summarize", "--suggest", str(runs)], capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    doc = yaml.safe_load(res.stdout)
    rules = sorted(rule for _, _, rule in outs)
    assert sorted(doc["set-resources"]) == rules
    assert sorted(doc["set-threads"]) == rules
    for r in rules:
        assert set(doc["set-resources"][r]) >= {"mem_mb", "runtime"}


@pytest.mark.slow
def test_html_report_has_no_injected_markup(evil_runs, tmp_path):
    pytest.importorskip("altair")
    runs, _ = evil_runs
    html = tmp_path / "report.html"
    res = subprocess.run(DENET + ["report", str(runs), "-o", str(html), "--title", EVIL], capture_output=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    text = html.read_text()
    assert "<script>alert(1)" not in text
    assert "<b>sort</b>" not in text
    # the data block is still valid JSON that carries the labels exactly
    start = text.index('<script id="denet-data" type="application/json">') + len(
        '<script id="denet-data" type="application/json">')
    data = json.loads(text[start: text.index("</script>", start)])
    assert EVIL in json.dumps(data, ensure_ascii=False) or json.dumps(EVIL)[1:-1] in json.dumps(data)


@pytest.mark.skipif(not _has_shell_option(), reason="this denet has no `run -c` (shell) option yet")
def test_dash_c_passes_its_extra_words_as_data(tmp_path):
    """Words after `-c STRING` are $0, $1, ...: the shell sees them as values, never as code."""
    marker = tmp_path / "marker"
    res = subprocess.run(DENET + ["run", "-c", 'printf "%s|" "$0" "$1"', "zero", f"$(touch {marker}); x"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"zero|$(touch {marker}); x|".encode()
    assert not marker.exists()
