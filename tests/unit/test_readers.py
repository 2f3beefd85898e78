import json

import pytest

from denet.errors import InputError, SchemaVersionError
from denet.readers import classify, effective_summary, iter_records, read_run


def test_classify_tagged_and_untagged():
    assert classify({"kind": "tree"}) == "tree"
    assert classify({"ts_ms": 1, "parent": None, "children": [], "aggregated": None}) == "tree"
    assert classify({"ts_ms": 1, "cpu_usage": 1.0, "mem_rss_kb": 5}) == "sample"
    assert classify({"pid": 1, "cmd": ["x"], "executable": "/x", "t0_ms": 5}) == "metadata"
    assert classify({"something": 1}) is None


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text('{"kind":"metadata","pid":1,"cmd":["x"]}\nnot json\n[1,2]\n{"ts_ms":1,"cpu_usage":5.0,"mem_rss_kb":9}\n{"trunc')
    bad = []
    recs = list(iter_records(str(f), on_bad_line=bad.append))
    assert [k for k, _ in recs] == ["metadata", "sample"]
    assert bad[0] == f"{f}:2: not a JSON record"
    assert bad[1] == f"{f}:3: not a JSON object"
    assert "truncated last line" in bad[2] and f"{f}:5" in bad[2]
    with pytest.raises(InputError, match=r":2: not a JSON record"):
        list(iter_records(str(f)))


def test_unknown_schema_version_is_refused_in_plain_words(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text('{"kind":"metadata","pid":1,"cmd":["x"],"schema_version":99}\n')
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        read_run(str(f))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_run(str(tmp_path / "nope.jsonl"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="no denet records"):
        read_run(str(tmp_path / "empty.jsonl"))
    with pytest.raises(InputError, match="is a directory"):
        read_run(str(tmp_path))


def test_json_array_files(tmp_path):
    f = tmp_path / "a.json"
    f.write_text(json.dumps([{"ts_ms": 1, "cpu_usage": 10.0, "mem_rss_kb": 100},
                             {"ts_ms": 1001, "cpu_usage": 30.0, "mem_rss_kb": 300}]))
    rf = read_run(str(f))
    s = effective_summary(rf)
    assert s["sample_count"] == 2 and s["peak_mem_rss_kb"] == 300 and s["avg_cpu_usage"] == 20.0
    assert s["total_time_secs"] == 1.0 and s["exact"] == [] and s["exit_code"] is None


def test_summary_line_wins_over_recomputation(tmp_path):
    f = tmp_path / "r.jsonl"
    lines = [
        {"kind": "metadata", "pid": 1, "cmd": ["x"]},
        {"kind": "tree", "ts_ms": 0, "parent": None, "children": [],
         "aggregated": {"ts_ms": 0, "cpu_usage": 50.0, "mem_rss_kb": 10, "thread_count": 2, "process_count": 2,
                        "disk_read_bytes": 5, "disk_write_bytes": 0, "net_rx_bytes": 7, "net_tx_bytes": 8}},
        {"kind": "summary", "total_time_secs": 9.0, "sample_count": 1, "exit_code": 3, "cpu_time_secs": 1.5,
         "exact": ["exit_code", "cpu_time_secs"]},
    ]
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = effective_summary(read_run(str(f)))
    assert s["exit_code"] == 3 and s["total_time_secs"] == 9.0 and s["exact"] == ["exit_code", "cpu_time_secs"]
    assert s["total_sys_net_rx_bytes"] == 7 and s["max_processes"] == 2  # old names read as sys_net_*
