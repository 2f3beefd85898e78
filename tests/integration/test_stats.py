"""`denet stats`: our finished files, files cut short by kill -9, the Rust denet's files, and bad input."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal

import pytest

from .helpers import (
    EXACT,
    EXACT_RUN,
    FIXTURES,
    PY,
    check_run_file,
    denet,
    no_traceback,
    of_kind,
    read_records,
    start_denet,
    summary_of,
    wait_for,
)

pytestmark = pytest.mark.integration

EXACT_NONE = {f: None for f in EXACT}


def stats_json(path) -> dict:
    res = denet("stats", "--json", str(path))
    assert res.returncode == 0, res.stderr
    no_traceback(res.stderr)
    lines = res.stdout.decode().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


# ------------------------------------------------------------------------------------------ our files


def test_stats_of_a_finished_run_is_its_summary(tmp_path):
    out = tmp_path / "run.jsonl"
    res = denet("--out", str(out), "run", "--", "sh", "-c", "sleep 0.4 & sleep 0.3; wait; exit 3")
    assert res.returncode == 3
    summ = summary_of(read_records(out))
    got = stats_json(out)
    assert got == {k: v for k, v in summ.items() if k != "kind"}
    assert got["exact"] == EXACT_RUN and got["exit_code"] == 3
    text = denet("stats", str(out))
    assert text.returncode == 0
    assert str(out) in text.stdout.decode()
    assert "cpu_time_secs" in text.stdout.decode()


def test_stats_skips_unknown_kinds(tmp_path):
    out = tmp_path / "run.jsonl"
    assert denet("--out", str(out), "run", "--", "sleep", "0.3").returncode == 0
    lines = out.read_text().splitlines()
    lines.insert(2, '{"kind":"from_the_future","x":1}')
    patched = tmp_path / "patched.jsonl"
    patched.write_text("\n".join(lines) + "\n")
    assert stats_json(patched) == stats_json(out)


def test_stats_refuses_a_newer_schema_version(tmp_path):
    f = tmp_path / "future.jsonl"
    f.write_text('{"kind":"metadata","pid":1,"cmd":["x"],"executable":"","t0_ms":1,"schema_version":99}\n')
    res = denet("stats", str(f))
    assert res.returncode != 0
    err = res.stderr.decode()
    assert str(f) in err and "99" in err
    no_traceback(err)


# ------------------------------------------------------------------------------------------ kill -9


@pytest.mark.parametrize("option", [[], ["--exclude-children"]])
def test_kill_9_leaves_complete_lines_and_stats_reads_them(tmp_path, procs, option):
    out = tmp_path / "run.jsonl"
    # Twenty children make long tree lines (several KiB each), sampled every 20 ms.
    p = procs.add(start_denet("-i", "20", "--out", str(out), *option, "run", "--", "sh", "-c",
                              "for i in $(seq 20); do sleep 30 & done; wait"))

    def enough_lines():
        try:
            data = out.read_bytes()
        except FileNotFoundError:
            return False
        if data.count(b"\n") >= 1:
            procs.pid(json.loads(data.split(b"\n", 1)[0])["pid"], group=True)  # CMD's group, for cleanup
        return data.count(b"\n") - data.count(b'{"kind":"process"') >= 15  # not counting the ledger's

    wait_for(enough_lines, timeout=30, what="15 records")
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=30) == -signal.SIGKILL
    records = read_records(out)  # every line complete and valid JSON, the last one included
    # the process ledger's records of the processes that ended (`$(seq 20)`) come among the samples
    records = [r for r in records if r["kind"] != "process"]
    body = "sample" if option else "tree"
    assert records[0]["kind"] == "metadata"
    assert {r["kind"] for r in records[1:]} == {body}
    n = len(records) - 1
    assert n >= 14
    if not option:
        assert max(len(r["children"]) for r in records[1:]) == 20
    got = stats_json(out)
    assert got["exact"] == []
    assert {k: got[k] for k in EXACT} == EXACT_NONE
    assert got["sample_count"] == n
    assert got["max_processes"] == (1 if option else 21)
    assert got["peak_mem_rss_kb"] > 0
    assert got["total_time_secs"] == pytest.approx((records[-1]["ts_ms"] - records[1]["ts_ms"]) / 1000.0, abs=0.002)
    res = denet("stats", str(out))
    assert res.returncode == 0
    text = res.stdout.decode()
    assert "missing" in text
    assert f"{n} records" in text


def test_truncated_last_line_is_skipped_with_a_message(tmp_path):
    out = tmp_path / "run.jsonl"
    assert denet("--out", str(out), "run", "--", "sleep", "0.3").returncode == 0
    lines = out.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])  # no summary, half a tree line
    res = denet("stats", "--json", str(cut))
    assert res.returncode == 0
    err = res.stderr.decode()
    assert str(cut) in err and str(len(lines) - 1) in err  # names the file and the line
    no_traceback(err)
    got = json.loads(res.stdout)
    assert got["exact"] == [] and got["exit_code"] is None
    assert got["sample_count"] == len(lines) - 3


# ------------------------------------------------------------------------------------------ Rust denet files


def test_rust_untagged_tree_file():
    got = stats_json(FIXTURES / "rust_tree_untagged.jsonl")
    assert got["sample_count"] == 5
    assert got["max_processes"] == 4
    assert got["max_threads"] == 9
    assert got["peak_mem_rss_kb"] == 12000
    assert got["avg_cpu_usage"] == pytest.approx(120.0)
    assert got["total_disk_read_bytes"] == 12288
    assert got["total_disk_write_bytes"] == 300
    assert got["total_sys_net_rx_bytes"] == 1234  # from the old name net_rx_bytes
    assert got["total_sys_net_tx_bytes"] == 567
    assert got["total_syscall_read_bytes"] == 0 and got["total_syscall_write_bytes"] == 0
    assert got["total_time_secs"] == pytest.approx(0.8)
    assert got["exact"] == []
    assert {k: got[k] for k in EXACT} == EXACT_NONE


def test_rust_untagged_samples_file():
    got = stats_json(FIXTURES / "rust_samples_untagged.jsonl")
    assert got["sample_count"] == 4
    assert got["max_processes"] == 1
    assert got["max_threads"] == 4
    assert got["peak_mem_rss_kb"] == 4000
    assert got["avg_cpu_usage"] == pytest.approx(70.0)
    assert got["total_disk_read_bytes"] == 30
    assert got["total_disk_write_bytes"] == 3
    assert got["total_sys_net_rx_bytes"] == 300
    assert got["total_sys_net_tx_bytes"] == 70
    assert got["total_time_secs"] == pytest.approx(0.3)
    assert got["exact"] == [] and got["exit_code"] is None


def test_rust_file_text_output():
    path = FIXTURES / "rust_tree_untagged.jsonl"
    res = denet("stats", str(path))
    assert res.returncode == 0
    no_traceback(res.stderr)
    text = res.stdout.decode()
    assert str(path) in text
    assert "python pipeline_step.py --threads 4" in text
    assert "120.000" in text and "12000" in text and "1234" in text
    assert "missing" in text


def test_rust_file_as_a_json_array(tmp_path):
    """The Rust denet can also write a JSON array; the same figures come out."""
    lines = (FIXTURES / "rust_tree_untagged.jsonl").read_text().splitlines()
    arr = tmp_path / "rust.json"
    arr.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    assert stats_json(arr) == stats_json(FIXTURES / "rust_tree_untagged.jsonl")


# ------------------------------------------------------------------------------------------ bad input


def _bad(path, *, name=None):
    res = denet("stats", str(path))
    assert res.returncode != 0
    err = res.stderr.decode()
    assert str(name or path) in err, err
    no_traceback(err)
    assert res.stdout == b""
    res = denet("stats", "--json", str(path))
    assert res.returncode != 0
    no_traceback(res.stderr)


def test_stats_missing_file(tmp_path):
    _bad(tmp_path / "nope.jsonl")


def test_stats_empty_file(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_bytes(b"")
    _bad(f)


def test_stats_blank_lines_only(tmp_path):
    f = tmp_path / "blank.jsonl"
    f.write_bytes(b"\n\n   \n")
    _bad(f)


@pytest.mark.parametrize("head", [b"", b"[", b"{", b"\x1f\x8b"])
def test_stats_binary_garbage(tmp_path, head):
    f = tmp_path / "garbage.bin"
    f.write_bytes(head + random.Random(7).randbytes(8192))
    _bad(f)


def test_stats_json_that_is_not_records(tmp_path):
    f = tmp_path / "other.jsonl"
    f.write_text('{"hello": 1}\n[1, 2]\n"text"\n')
    _bad(f)


def test_stats_directory(tmp_path):
    _bad(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_stats_unreadable_file(tmp_path):
    f = tmp_path / "secret.jsonl"
    shutil.copy(FIXTURES / "rust_samples_untagged.jsonl", f)
    f.chmod(0)
    _bad(f)


def test_stats_of_file_with_only_metadata(tmp_path):
    """A run killed before its first sample: the metadata alone is a valid (empty) record file."""
    f = tmp_path / "meta.jsonl"
    f.write_text('{"kind":"metadata","pid":1,"cmd":["x"],"executable":"","t0_ms":1,"schema_version":1}\n')
    got = stats_json(f)
    assert got["sample_count"] == 0 and got["exact"] == []


def test_stats_of_our_exclude_children_file(tmp_path):
    out = tmp_path / "run.jsonl"
    assert denet("--exclude-children", "--out", str(out), "run", "--", PY, "-c",
                 "import time; time.sleep(0.4)").returncode == 0
    records = read_records(out)
    check_run_file(records, body_kind="sample")
    got = stats_json(out)
    assert got["sample_count"] == len(of_kind(records, "sample"))
    assert got["max_processes"] == 1
