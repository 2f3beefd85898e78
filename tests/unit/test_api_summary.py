"""generate_summary_from_metrics_json / generate_summary_from_file: which records count, totals, elapsed time."""

from __future__ import annotations

import json

import pytest

from denet import generate_summary_from_file, generate_summary_from_metrics_json, schema


def sample(ts, cpu, rss, threads=1, dr=0, dw=0, sr=None, sw=None, rx=0, tx=0, tagged=True):
    d = {"ts_ms": ts, "cpu_usage": cpu, "mem_rss_kb": rss, "mem_vms_kb": rss * 2, "disk_read_bytes": dr,
         "disk_write_bytes": dw, "sys_net_rx_bytes": rx, "sys_net_tx_bytes": tx, "thread_count": threads,
         "uptime_secs": 1, "cpu_core": 0}
    if sr is not None:
        d["syscall_read_bytes"] = sr
        d["syscall_write_bytes"] = sw
    return {"kind": "sample", **d} if tagged else d


def tree(ts, cpu, rss, procs, threads, dr=0, dw=0, tagged=True):
    agg = {"ts_ms": ts, "cpu_usage": cpu, "mem_rss_kb": rss, "mem_vms_kb": 0, "disk_read_bytes": dr,
           "disk_write_bytes": dw, "sys_net_rx_bytes": 0, "sys_net_tx_bytes": 0, "thread_count": threads,
           "process_count": procs, "uptime_secs": 0}
    d = {"ts_ms": ts, "parent": sample(ts, cpu, rss, tagged=False), "children": [], "aggregated": agg}
    return {"kind": "tree", **d} if tagged else d


def js(*records):
    return [json.dumps(r) for r in records]


# optional fields (the GPU figures) are left out when the records carry none
SUMMARY_KEYS = {f.name for f in schema.fields("summary") if not f.optional}


def test_plain_samples_last_counters_peak_mean_and_given_elapsed():
    recs = js(sample(1000, 10.0, 500, threads=2, dr=100, dw=10, sr=5, sw=6, rx=7, tx=8),
              sample(2000, 30.0, 900, threads=5, dr=300, dw=20, sr=50, sw=60, rx=70, tx=80),
              sample(3500, 20.0, 700, threads=3, dr=200, dw=30, sr=40, sw=61, rx=71, tx=81))
    s = json.loads(generate_summary_from_metrics_json(recs, 12.5))
    assert set(s) == SUMMARY_KEYS
    assert s["total_time_secs"] == 12.5
    assert s["sample_count"] == 3
    assert s["max_processes"] == 1
    assert s["max_threads"] == 5
    assert s["peak_mem_rss_kb"] == 900
    assert s["avg_cpu_usage"] == pytest.approx(20.0)
    # totals: the last sample's counters, not the largest, not a sum
    assert (s["total_disk_read_bytes"], s["total_disk_write_bytes"]) == (200, 30)
    assert (s["total_syscall_read_bytes"], s["total_syscall_write_bytes"]) == (40, 61)
    assert (s["total_sys_net_rx_bytes"], s["total_sys_net_tx_bytes"]) == (71, 81)
    assert s["exit_code"] is None and s["exact"] == []


def test_trees_count_through_aggregated_and_exclude_samples():
    recs = js(sample(1000, 500.0, 99999, threads=50),
              tree(1000, 10.0, 100, procs=2, threads=3, dr=1),
              tree(2000, 50.0, 400, procs=4, threads=9, dr=5),
              {"kind": "metadata", "pid": 1, "cmd": [], "t0_ms": 1})
    s = json.loads(generate_summary_from_metrics_json(recs, 1.0))
    assert s["sample_count"] == 2
    assert s["max_processes"] == 4 and s["max_threads"] == 9 and s["peak_mem_rss_kb"] == 400
    assert s["avg_cpu_usage"] == 30.0 and s["total_disk_read_bytes"] == 5


def test_untagged_rust_style_records_and_old_net_names():
    old = sample(1, 1.0, 10, tagged=False)
    del old["sys_net_rx_bytes"], old["sys_net_tx_bytes"]
    old |= {"net_rx_bytes": 11, "net_tx_bytes": 22}
    recs = js(old, tree(2, 3.0, 20, 3, 3, tagged=False))
    s = json.loads(generate_summary_from_metrics_json(recs, 0))
    assert s["sample_count"] == 1 and s["max_processes"] == 3  # the tree wins
    s = json.loads(generate_summary_from_metrics_json(js(old), 0))
    assert (s["total_sys_net_rx_bytes"], s["total_sys_net_tx_bytes"]) == (11, 22)


def test_non_metrics_strings_are_skipped_and_nothing_usable_gives_zeros():
    recs = ["", "garbage", "[1, 2]", "42", json.dumps({"kind": "summary", "total_time_secs": 1, "sample_count": 9}),
            json.dumps({"kind": "env", "host": "h", "kernel": "k"})]
    s = json.loads(generate_summary_from_metrics_json(recs, 3.0))
    assert s["sample_count"] == 0 and s["avg_cpu_usage"] == 0.0 and s["peak_mem_rss_kb"] == 0
    assert s["total_time_secs"] == 3.0
    assert all(v == 0 for k, v in s.items() if k not in ("total_time_secs", "exact") and v is not None)
    s = json.loads(generate_summary_from_metrics_json([], 0))
    assert s["sample_count"] == 0 and s["total_time_secs"] == 0


def test_a_tree_without_aggregated_still_excludes_samples():
    t = tree(1, 1.0, 1, 1, 1)
    t["aggregated"] = None
    s = json.loads(generate_summary_from_metrics_json(js(sample(1, 5.0, 5), t), 1))
    assert s["sample_count"] == 0


def test_metrics_json_type_errors():
    with pytest.raises(TypeError):
        generate_summary_from_metrics_json('{"cpu_usage": 1}', 1.0)
    with pytest.raises(TypeError):
        generate_summary_from_metrics_json([1, 2], 1.0)


# ------------------------------------------------------------------------------- from file


def test_file_elapsed_from_first_and_last_used_record(tmp_path):
    p = tmp_path / "run.jsonl"
    lines = js({"kind": "metadata", "pid": 1, "cmd": ["x"], "executable": "", "t0_ms": 1},
               sample(100, 1.0, 1), tree(1000, 10.0, 100, 2, 2), tree(1500, 20.0, 300, 3, 3),
               tree(4250, 30.0, 200, 1, 1, dw=77))
    p.write_text("\n".join(lines) + "\nnot json at all\n")
    s = json.loads(generate_summary_from_file(str(p)))
    assert s["total_time_secs"] == pytest.approx(3.25)  # trees only: 4250 - 1000
    assert s["sample_count"] == 3 and s["total_disk_write_bytes"] == 77 and s["avg_cpu_usage"] == 20.0
    assert s["max_processes"] == 3 and s["peak_mem_rss_kb"] == 300


def test_file_agrees_with_metrics_json(tmp_path):
    recs = js(sample(1000, 1.0, 5, dr=1), sample(2000, 2.0, 6, dr=2))
    p = tmp_path / "s.jsonl"
    p.write_text("\n".join(recs) + "\n")
    assert generate_summary_from_file(str(p)) == generate_summary_from_metrics_json(recs, 1.0)


def test_file_json_array(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([sample(0, 1.0, 1, tagged=False), sample(500, 3.0, 1, tagged=False)]))
    s = json.loads(generate_summary_from_file(str(p)))
    assert s["sample_count"] == 2 and s["total_time_secs"] == 0.5 and s["avg_cpu_usage"] == 2.0


def test_file_errors_are_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        generate_summary_from_file(str(tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(OSError):
        generate_summary_from_file(str(empty))
    meta_only = tmp_path / "meta.jsonl"
    meta_only.write_text(json.dumps({"kind": "metadata", "pid": 1, "cmd": [], "t0_ms": 1}) + "\n")
    with pytest.raises(OSError):
        generate_summary_from_file(str(meta_only))
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\nworld\n")
    with pytest.raises(OSError):
        generate_summary_from_file(str(junk))
    with pytest.raises(OSError):
        generate_summary_from_file(str(tmp_path))  # a directory
