"""denet.analysis against hand-computed values."""

from __future__ import annotations

import json
import statistics

import pytest

from denet.analysis import (
    aggregate_metrics,
    convert_format,
    find_peaks,
    load_metrics,
    process_tree_analysis,
    resource_utilization,
    save_metrics,
)


def _m(ts, cpu, rss=1024, threads=1, **kw):
    return {"ts_ms": ts, "cpu_usage": cpu, "mem_rss_kb": rss, "thread_count": threads, **kw}


# ------------------------------------------------------------------------------- aggregate_metrics


def test_aggregate_mean_windows_copy_first_item_and_take_last_ts():
    ms = [_m(100, 10.0, 1000, pid=1, extra="a"), _m(200, 20.0, 3000, pid=1, extra="b"),
          _m(300, 60.0, 2000, pid=1, extra="c")]
    out = aggregate_metrics(ms, window_size=2)
    assert len(out) == 2
    a, b = out
    assert a["cpu_usage"] == 15.0 and a["mem_rss_kb"] == 2000.0 and a["thread_count"] == 1.0
    assert a["ts_ms"] == 200 and a["extra"] == "a" and a["pid"] == 1
    assert a["_aggregated"] is True and a["_window_size"] == 2 and a["_aggregation_method"] == "mean"
    assert b["cpu_usage"] == 60.0 and b["ts_ms"] == 300 and b["_window_size"] == 1
    assert ms[0]["cpu_usage"] == 10.0 and "_aggregated" not in ms[0]  # the input is not changed


@pytest.mark.parametrize("method, cpu, rss", [("max", 20.0, 3000), ("min", 10.0, 1000)])
def test_aggregate_max_min(method, cpu, rss):
    ms = [_m(1, 10.0, 1000), _m(2, 20.0, 3000)]
    (a,) = aggregate_metrics(ms, window_size=5, method=method)
    assert (a["cpu_usage"], a["mem_rss_kb"], a["_aggregation_method"]) == (cpu, rss, method)


def test_aggregate_all_numeric_fields():
    fields = ("cpu_usage", "mem_rss_kb", "mem_vms_kb", "disk_read_bytes", "disk_write_bytes", "sys_net_rx_bytes",
              "sys_net_tx_bytes", "thread_count", "uptime_secs")
    ms = [dict.fromkeys(fields, 2) | {"ts_ms": 1, "cpu_core": 0},
          dict.fromkeys(fields, 4) | {"ts_ms": 2, "cpu_core": 1}]
    (a,) = aggregate_metrics(ms, window_size=2)
    assert all(a[f] == 3.0 for f in fields)
    assert a["cpu_core"] == 0  # not aggregated: the first item's value


def test_aggregate_edge_cases():
    ms = [_m(1, 1.0), _m(2, 2.0)]
    assert aggregate_metrics([], 3) == []
    assert aggregate_metrics(ms, 1) is ms
    assert aggregate_metrics(ms, 0) is ms
    with pytest.raises(ValueError, match="Unknown method"):
        aggregate_metrics(ms, 2, method="median")


# ------------------------------------------------------------------------------- find_peaks


def test_find_peaks_raw_values():
    ms = [_m(i, c) for i, c in enumerate([0, 50, 10, 100, 20, 90, 95])]
    # threshold 0.8 * 100 = 80: 50 is a local max but too low; 95 is last, never a peak
    assert [m["ts_ms"] for m in find_peaks(ms, threshold=0.8, window_size=1)] == [3]
    assert [m["ts_ms"] for m in find_peaks(ms, threshold=0.4, window_size=1)] == [1, 3]


def test_find_peaks_smoothed_centred_window():
    values = [0, 0, 30, 0, 0, 0, 90, 0, 0]
    ms = [_m(i, v) for i, v in enumerate(values)]
    # window 3: smoothed = [0, 10, 10, 10, 0, 30, 30, 30, 0] -> no strict local maximum at all
    assert find_peaks(ms, threshold=0.0, window_size=3) == []
    # window 2 (one item each side too): the same averages
    assert find_peaks(ms, threshold=0.0, window_size=2) == []
    values = [0, 10, 40, 10, 0, 0]
    ms = [_m(i, v) for i, v in enumerate(values)]
    # window 3: [5, 50/3, 20, 50/3, 10/3, 0]; threshold 0.4 * 40 = 16 -> index 2 (20 >= 16)
    assert [m["ts_ms"] for m in find_peaks(ms, threshold=0.4, window_size=3)] == [2]
    # threshold 0.6 * 40 = 24 > 20: none
    assert find_peaks(ms, threshold=0.6, window_size=3) == []


def test_find_peaks_edges():
    assert find_peaks([]) == []
    ms = [_m(0, 1.0), {"ts_ms": 1}, _m(2, 1.0)]
    assert find_peaks(ms) == []  # an item lacks the field
    ms = [{"v": 1}, {"v": 5}, {"v": 1}]
    assert find_peaks(ms, field="v", window_size=1) == [{"v": 5}]


# ------------------------------------------------------------------------------- resource_utilization


def test_resource_utilization_hand_computed():
    ms = [
        {"ts_ms": 1000, "cpu_usage": 10.0, "mem_rss_kb": 1024, "thread_count": 1, "disk_read_bytes": 0,
         "disk_write_bytes": 0, "sys_net_rx_bytes": 0, "sys_net_tx_bytes": 0},
        {"ts_ms": 2500, "cpu_usage": 30.0, "mem_rss_kb": 3072, "thread_count": 3, "disk_read_bytes": 1048576,
         "disk_write_bytes": 524288, "sys_net_rx_bytes": 2097152, "sys_net_tx_bytes": 0},
        {"ts_ms": 4000, "cpu_usage": 20.0, "mem_rss_kb": 2048, "thread_count": 2, "disk_read_bytes": 3145728,
         "disk_write_bytes": 1048576, "sys_net_rx_bytes": 4194304, "sys_net_tx_bytes": 1048576},
    ]
    r = resource_utilization(ms)
    assert r["avg_cpu"] == 20.0 and r["max_cpu"] == 30.0 and r["min_cpu"] == 10.0 and r["median_cpu"] == 20.0
    assert r["stdev_cpu"] == pytest.approx(10.0)
    assert r["avg_mem_mb"] == 2.0 and r["max_mem_mb"] == 3.0 and r["min_mem_mb"] == 1.0
    assert r["median_mem_mb"] == 2.0 and r["stdev_mem_mb"] == pytest.approx(1.0)
    assert r["total_read_mb"] == 3.0 and r["total_write_mb"] == 1.0
    assert r["total_sys_net_rx_mb"] == 4.0 and r["total_sys_net_tx_mb"] == 1.0
    assert r["avg_threads"] == 2.0 and r["max_threads"] == 3 and r["min_threads"] == 1
    assert r["total_time_sec"] == 3.0


def test_resource_utilization_groups_need_every_item():
    assert resource_utilization([]) == {}
    r = resource_utilization([{"cpu_usage": 5.0}])
    assert r == {"avg_cpu": 5.0, "max_cpu": 5.0, "min_cpu": 5.0, "median_cpu": 5.0}  # no stdev with one item
    r = resource_utilization([{"cpu_usage": 1.0, "mem_rss_kb": 1024}, {"cpu_usage": 3.0}])
    assert "avg_mem_mb" not in r and r["avg_cpu"] == 2.0
    assert r["stdev_cpu"] == pytest.approx(statistics.stdev([1.0, 3.0]))
    assert "total_time_sec" not in r and "avg_threads" not in r and "total_read_mb" not in r


# ------------------------------------------------------------------------------- convert_format


def test_convert_csv_header_order_and_lines():
    ms = [{"zeta": 1, "mem_vms_kb": 5, "ts_ms": 1, "alpha": "x", "cpu_usage": 2.5},
          {"ts_ms": 2, "cpu_usage": 3.0, "beta": [1, 2], "mem_vms_kb": 6}]
    text = convert_format(ms, "csv")
    lines = text.split("\n")
    assert text.endswith("\n") and lines[-1] == ""
    assert lines[0] == "ts_ms,cpu_usage,mem_vms_kb,alpha,beta,zeta"  # mem_rss_kb absent: not in the header
    assert lines[1] == "1,2.5,5,x,,1"
    assert lines[2] == '2,3.0,6,,"[1,2]",'
    assert "\r" not in text


def test_convert_json_and_jsonl():
    ms = [{"a": 1}, {"b": 2}]
    assert json.loads(convert_format(ms, "json")) == ms
    assert convert_format(ms, "json", indent=2) == json.dumps(ms, indent=2)
    text = convert_format(ms, "jsonl")
    assert not text.endswith("\n") and [json.loads(x) for x in text.split("\n")] == ms
    assert convert_format(ms, "JSON") == convert_format(ms, "json")


def test_convert_errors_and_empty():
    with pytest.raises(ValueError, match=r"^Unknown format: xml$"):
        convert_format([{"a": 1}], "xml")
    assert convert_format([], "csv") == ""
    assert convert_format([], "json") == ""


def test_convert_from_a_path(tmp_path):
    ms = [{"ts_ms": 1, "cpu_usage": 1.0}, {"ts_ms": 2, "cpu_usage": 2.0}]
    arr = tmp_path / "m.json"
    arr.write_text(json.dumps(ms))
    lines = tmp_path / "m.jsonl"
    lines.write_text("\n".join(json.dumps(m) for m in ms) + "\n")
    assert convert_format(str(arr), "jsonl") == convert_format(ms, "jsonl")
    assert convert_format(str(lines), "csv") == "ts_ms,cpu_usage\n1,1.0\n2,2.0\n"


# ------------------------------------------------------------------------------- process_tree_analysis


def test_process_tree_analysis_flat_items():
    ms = [
        {"pid": 1, "cpu_usage": 10.0, "mem_rss_kb": 1024, "thread_count": 1,
         "children": [{"pid": 2, "cpu_usage": 50.0, "mem_rss_kb": 2048, "thread_count": 2}]},
        {"pid": 1, "cpu_usage": 30.0, "mem_rss_kb": 3072, "thread_count": 1,
         "children": [{"pid": 2, "cpu_usage": 70.0, "mem_rss_kb": 4096, "thread_count": 4},
                      {"pid": 3, "cpu_usage": 5.0, "mem_rss_kb": 1024, "thread_count": 1}]},
    ]
    r = process_tree_analysis(ms)
    assert r["main_process"] == {"avg_cpu": 20.0, "max_cpu": 30.0, "avg_memory_mb": 2.0, "max_memory_mb": 3.0,
                                 "avg_threads": 1.0, "max_threads": 1}
    assert set(r["child_processes"]) == {2, 3}
    assert r["child_processes"][2] == {"avg_cpu": 60.0, "max_cpu": 70.0, "avg_memory_mb": 3.0,
                                       "max_memory_mb": 4.0, "avg_threads": 3.0, "max_threads": 4}
    assert r["child_processes"][3]["avg_cpu"] == 5.0
    # totals per item: (60, 3 MiB, 3 threads) and (105, 8 MiB, 6 threads)
    assert r["total"] == {"avg_cpu": 82.5, "max_cpu": 105.0, "avg_memory_mb": 5.5, "max_memory_mb": 8.0,
                          "avg_threads": 4.5, "max_threads": 6}


def test_process_tree_analysis_reads_denet_tree_records():
    def metrics(cpu, rss, threads):
        return {"ts_ms": 1, "cpu_usage": cpu, "mem_rss_kb": rss, "thread_count": threads}

    ms = [
        {"kind": "tree", "ts_ms": 1, "parent": metrics(10.0, 1024, 1),
         "children": [{"pid": 9, "command": "sleep", "metrics": metrics(0.0, 2048, 1)}], "aggregated": {}},
        {"kind": "tree", "ts_ms": 2, "parent": metrics(20.0, 1024, 3), "children": [], "aggregated": {}},
    ]
    r = process_tree_analysis(ms)
    assert r["main_process"]["avg_cpu"] == 15.0 and r["main_process"]["max_threads"] == 3
    assert r["child_processes"][9]["max_memory_mb"] == 2.0
    assert r["total"]["max_memory_mb"] == 3.0


def test_process_tree_analysis_needs_children_on_first_item():
    assert process_tree_analysis([]) == {}
    assert process_tree_analysis([{"cpu_usage": 1.0}, {"cpu_usage": 1.0, "children": []}]) == {}
    r = process_tree_analysis([{"cpu_usage": 4.0, "child_processes": [{"pid": 5, "cpu_usage": 1.0}]}])
    assert r["total"]["avg_cpu"] == 5.0 and list(r["child_processes"]) == [5]


# ------------------------------------------------------------------------------- load / save


def test_load_metrics_drops_a_metadata_first_line(tmp_path):
    p = tmp_path / "m.jsonl"
    meta = {"pid": 1, "cmd": ["x"], "executable": "/bin/x", "t0_ms": 5}
    items = [{"ts_ms": 1, "cpu_usage": 1.0, "mem_rss_kb": 1}, {"ts_ms": 2, "cpu_usage": 2.0, "mem_rss_kb": 2}]
    p.write_text("\n".join(json.dumps(x) for x in [meta, *items]) + "\nnot json\n")
    assert load_metrics(str(p)) == items
    assert load_metrics(str(p), include_metadata=True) == [meta, *items]


def test_load_metrics_keeps_a_first_tree_with_children_pids(tmp_path):
    tree = {"ts_ms": 1, "parent": None, "children": [{"pid": 3, "command": "x", "metrics": {}}], "aggregated": None}
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(tree) + "\n")
    assert load_metrics(str(p)) == [tree]


def test_load_metrics_of_a_denet_run_file_and_a_json_array(tmp_path):
    env = {"kind": "env", "ts_ms": 1, "host": "h", "kernel": "k"}
    meta = {"kind": "metadata", "pid": 1, "cmd": [], "t0_ms": 1}
    tree = {"kind": "tree", "ts_ms": 2, "parent": None, "children": [], "aggregated": None}
    summ = {"kind": "summary", "total_time_secs": 0.0, "sample_count": 1}
    p = tmp_path / "run.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in (env, meta, tree, summ)))
    assert load_metrics(str(p)) == [tree]
    assert load_metrics(str(p), include_metadata=True) == [env, meta, tree, summ]
    a = tmp_path / "a.json"
    a.write_text(json.dumps([meta, {"cpu_usage": 1.0, "mem_rss_kb": 1}]))
    assert load_metrics(str(a)) == [{"cpu_usage": 1.0, "mem_rss_kb": 1}]


def test_save_metrics_formats_and_round_trip(tmp_path):
    ms = [{"ts_ms": 10, "cpu_usage": 1.5, "mem_rss_kb": 7}, {"ts_ms": 20, "cpu_usage": 2.5, "mem_rss_kb": 8}]
    j = tmp_path / "m.json"
    save_metrics(ms, str(j), format="json")
    assert j.read_text() == json.dumps(ms, indent=2)
    c = tmp_path / "m.csv"
    save_metrics(ms, str(c), format="csv")
    assert c.read_text() == convert_format(ms, "csv")
    line = tmp_path / "m.jsonl"
    save_metrics(ms, str(line))
    rows = [json.loads(x) for x in line.read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["kind"] == "metadata" and rows[0]["t0_ms"] == 10
    assert rows[1:] == ms
    assert load_metrics(str(line)) == ms
    save_metrics(ms, str(line), include_metadata=False)
    assert [json.loads(x) for x in line.read_text().splitlines()] == ms
    # a list that starts with its metadata is not given a second one
    save_metrics(rows, str(line))
    assert len(line.read_text().splitlines()) == 3


def test_save_metrics_unknown_format(tmp_path):
    with pytest.raises(ValueError, match=r"^Unknown format: parquet$"):
        save_metrics([{"a": 1}], str(tmp_path / "x"), format="parquet")
    assert not (tmp_path / "x").exists()
