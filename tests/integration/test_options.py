"""Options of run: where they may be given and what each one changes in the records."""

from __future__ import annotations

import json
import os
import socket
import statistics
import time

import pytest

from .helpers import (
    EXACT,
    PY,
    check_run_file,
    denet,
    kinds,
    metrics_fields,
    of_kind,
    parse_lines,
    read_records,
    summary_of,
)

pytestmark = pytest.mark.integration

TWO_KIDS = "sleep 0.6 & sleep 0.6 & wait"


@pytest.mark.parametrize("flag", ["--exclude-children", "--no-include-children"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_exclude_children_gives_sample_records_only(tmp_path, flag, where):
    out = tmp_path / "run.jsonl"
    args = [flag, "--out", str(out), "run"] if where == "before" else ["--out", str(out), "run", flag]
    res = denet(*args, "--", "sh", "-c", TWO_KIDS)
    assert res.returncode == 0, res.stderr
    records = read_records(out)
    summ = check_run_file(records, body_kind="sample")
    samples = of_kind(records, "sample")
    assert len(samples) >= 3
    assert "tree" not in kinds(records)
    assert records[0]["include_children"] is False
    for s in samples:
        for f in metrics_fields():
            assert f["name"] in s, f["name"]
        assert "children" not in s and "aggregated" not in s
    assert summ["max_processes"] == 1
    assert summ["sample_count"] == len(samples)
    assert summ["exact"] == EXACT


def test_default_includes_children(tmp_path):
    out = tmp_path / "run.jsonl"
    assert denet("--out", str(out), "run", "--", "sh", "-c", TWO_KIDS).returncode == 0
    records = read_records(out)
    assert records[0]["include_children"] is True
    assert check_run_file(records)["max_processes"] == 3
    assert "sample" not in kinds(records)


def test_duration_stops_sampling_but_waits_for_cmd(tmp_path):
    out = tmp_path / "run.jsonl"
    t = time.monotonic()
    res = denet("--duration", "0.5", "--out", str(out), "run", "--", "sh", "-c", "sleep 2; exit 5")
    elapsed = time.monotonic() - t
    assert res.returncode == 5
    assert elapsed >= 2.0
    records = read_records(out)
    summ = check_run_file(records)
    trees = of_kind(records, "tree")
    assert len(trees) >= 2
    span = (trees[-1]["ts_ms"] - trees[0]["ts_ms"]) / 1000.0
    assert 0.2 <= span <= 1.0, span
    assert summ["exit_code"] == 5
    assert summ["wall_time_secs"] >= 1.99
    assert summ["sample_count"] == len(trees)


def test_duration_longer_than_cmd(tmp_path):
    out = tmp_path / "run.jsonl"
    t = time.monotonic()
    res = denet("-d", "30", "--out", str(out), "run", "--", "sleep", "0.3")
    assert res.returncode == 0
    assert time.monotonic() - t < 20  # sampling ends with CMD, not with the duration
    assert summary_of(read_records(out))["wall_time_secs"] < 20


def test_write_env_record_comes_first(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("--write-env", "--out", str(out), "run", "--", "true")
    assert res.returncode == 0
    records = read_records(out)
    assert kinds(records)[:2] == ["env", "metadata"]
    env = records[0]
    assert env["host"] == socket.gethostname()
    assert env["kernel"] == os.uname().release
    assert set(env["lscpu"]) >= {"sockets", "cores_per_socket", "threads_per_core", "model"}
    assert env["numa"]["nodes"] >= 1
    assert len(env["numa"]["distances"]) == env["numa"]["nodes"]
    assert len(env["numa"]["node_sizes_mb"]) == env["numa"]["nodes"]
    assert isinstance(env["affinity_inherited"], str) and env["affinity_inherited"]
    # the affinity range list names exactly the CPUs this process may use
    cpus = set()
    for part in env["affinity_inherited"].split(","):
        a, _, b = part.partition("-")
        cpus.update(range(int(a), int(b or a) + 1))
    assert cpus == os.sched_getaffinity(0)
    assert abs(env["ts_ms"] - time.time() * 1000) < 120_000
    check_run_file(records[1:])


def test_no_env_record_by_default(tmp_path):
    out = tmp_path / "run.jsonl"
    assert denet("--out", str(out), "run", "--", "true").returncode == 0
    assert "env" not in kinds(read_records(out))


def test_labels_go_into_metadata(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("--label", "a=1", "--out", str(out), "run", "--label", "b=x=y", "--label", "empty=", "--", "true")
    assert res.returncode == 0, res.stderr
    meta = read_records(out)[0]
    assert meta["labels"] == {"a": "1", "b": "x=y", "empty": ""}


def test_no_labels_is_an_empty_object(tmp_path):
    out = tmp_path / "run.jsonl"
    assert denet("--out", str(out), "run", "--", "true").returncode == 0
    assert read_records(out)[0]["labels"] == {}


def test_metadata_describes_the_run(tmp_path):
    out = tmp_path / "run.jsonl"
    t = time.time() * 1000
    res = denet("--out", str(out), "-i", "70", "-m", "700", "run", "--", PY, "-c", "pass", "arg 2")
    assert res.returncode == 0
    meta = read_records(out)[0]
    assert meta["kind"] == "metadata"
    assert meta["cmd"] == [PY, "-c", "pass", "arg 2"]
    assert os.path.realpath(meta["executable"]) == os.path.realpath(PY)
    assert meta["interval_ms"] == 70 and meta["max_interval_ms"] == 700
    assert meta["schema_version"] == 1
    assert isinstance(meta["denet_version"], str) and meta["denet_version"]
    assert meta["since_process_start"] is False
    assert abs(meta["t0_ms"] - t) < 60_000
    assert meta["pid"] > 1
    for name in ("gpu", "ebpf", "psi", "perf_hw"):
        assert isinstance(meta["capabilities"][name]["available"], bool)


@pytest.mark.parametrize(
    "args",
    [
        ["--out", "{out}", "--interval", "50", "--max-interval", "400", "--label", "k=v", "run", "--"],
        ["run", "--out", "{out}", "--interval", "50", "--max-interval", "400", "--label", "k=v", "--"],
        ["--out", "{out}", "-i", "50", "run", "-m", "400", "--label", "k=v", "--"],
        ["--out={out}", "--interval=50", "run", "--max-interval=400", "--label=k=v", "--"],
        ["-o", "{out}", "-i50", "run", "-m400", "--label", "k=v"],  # no "--": CMD starts at the first non-option
    ],
)
def test_options_before_and_after_run(tmp_path, args):
    out = tmp_path / "run.jsonl"
    args = [a.replace("{out}", str(out)) for a in args]
    res = denet(*args, "sh", "-c", "exit 6")
    assert res.returncode == 6, res.stderr
    records = read_records(out)
    meta = records[0]
    assert meta["interval_ms"] == 50
    assert meta["max_interval_ms"] == 400
    assert meta["labels"] == {"k": "v"}
    assert meta["cmd"] == ["sh", "-c", "exit 6"]
    assert check_run_file(records)["exit_code"] == 6


def test_options_after_the_command_belong_to_the_command(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", PY, "-c", "import sys; print(sys.argv[1:])", "--json", "-i", "5")
    assert res.returncode == 0
    assert res.stdout == b"['--json', '-i', '5']\n"
    assert read_records(out)[0]["interval_ms"] == 100


def test_short_flag_cluster(tmp_path):
    res = denet("-qj", "run", "--", PY, "-c", "print('hidden')")
    assert res.returncode == 0
    check_run_file(parse_lines(res.stdout))
    assert b"hidden" not in res.stderr


def test_smaller_interval_gives_more_samples(tmp_path):
    counts = {}
    for ms in (20, 200):
        out = tmp_path / f"run{ms}.jsonl"
        res = denet("-i", str(ms), "--out", str(out), "run", "--", "sleep", "1")
        assert res.returncode == 0
        records = read_records(out)
        counts[ms] = len(of_kind(records, "tree"))
        assert summary_of(records)["sample_count"] == counts[ms]
    assert counts[200] >= 3, counts
    assert counts[20] >= 2.5 * counts[200], counts


def test_adaptive_schedule_slows_down(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("-i", "50", "-m", "600", "--out", str(out), "run", "--", "sleep", "4")
    assert res.returncode == 0
    trees = of_kind(read_records(out), "tree")
    t0 = trees[0]["ts_ms"]
    gaps = [(b["ts_ms"] - t0, b["ts_ms"] - a["ts_ms"]) for a, b in zip(trees, trees[1:], strict=False)]
    early = [g for t, g in gaps if t <= 1000]
    late = [g for t, g in gaps if t >= 3000]
    assert len(early) >= 8, gaps
    assert 40 <= statistics.median(early) <= 150, gaps
    # at 3 s the schedule is at 50 + 550 * 2/9 = 172 ms, at 4 s at 233 ms
    assert late and statistics.median(late) >= 150, gaps
    assert max(g for _, g in gaps) <= 600 + 400, gaps


def test_stats_file_holds_the_summary(tmp_path):
    out = tmp_path / "run.jsonl"
    stats = tmp_path / "stats.json"
    res = denet("--out", str(out), "run", "--stats", str(stats), "--", "sh", "-c", "sleep 0.3; exit 2")
    assert res.returncode == 2
    text = stats.read_text()
    obj = json.loads(text)
    summ = summary_of(read_records(out))
    assert {k: v for k, v in obj.items() if k != "kind"} == {k: v for k, v in summ.items() if k != "kind"}
    assert obj["exit_code"] == 2


def test_stats_without_out_or_json(tmp_path):
    stats = tmp_path / "stats.json"
    res = denet("--stats", str(stats), "run", "--", "sleep", "0.2")
    assert res.returncode == 0
    assert res.stdout == b""
    obj = json.loads(stats.read_text())
    assert obj["exit_code"] == 0 and obj["sample_count"] >= 1


def test_python_m_denet_help_and_version():
    res = denet("--help")
    assert res.returncode == 0
    text = res.stdout.decode()
    for word in ("run", "attach", "stats", "--interval", "--out"):
        assert word in text
    res = denet("--version")
    assert res.returncode == 0
    assert res.stdout.strip()
    res = denet("run", "--help")
    assert res.returncode == 0
    assert "--exclude-children" in res.stdout.decode()
