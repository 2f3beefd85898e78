import json
import math
import pickle

import pytest

from denet.records import Aggregated, Capability, Child, Metrics, RunHeader, RunSummary, TreeSample


def _m(**kw):
    base = dict(ts_ms=1, cpu_usage=12.3456, mem_rss_kb=10, mem_vms_kb=20, disk_read_bytes=0, disk_write_bytes=5,
                sys_net_rx_bytes=0, sys_net_tx_bytes=0, thread_count=1, uptime_secs=3, cpu_core=None)
    base.update(kw)
    return Metrics(**base)


def test_line_starts_with_kind_and_round_trips():
    m = _m(syscall_read_bytes=7)
    line = m.to_line()
    assert line.startswith('{"kind":"sample",')
    d = json.loads(line)
    assert d.pop("kind") == "sample"
    expected = m.as_dict()
    expected["cpu_usage"] = round(expected["cpu_usage"], 3)
    assert d == expected
    assert "syscall_write_bytes" not in d  # optional and absent: left out
    assert d["cpu_core"] is None  # nullable: present as null


def test_nan_and_infinity_become_null():
    assert json.loads(_m(cpu_usage=math.nan).to_line())["cpu_usage"] is None
    assert json.loads(_m(cpu_usage=math.inf).to_line())["cpu_usage"] is None


def test_strings_are_escaped():
    c = Child(5, 'we"ird\\name\n\u00e9', _m())
    t = TreeSample(1, None, [c], None)
    d = json.loads(t.to_line())
    assert d["children"][0]["command"] == 'we"ird\\name\n\u00e9'
    assert d["parent"] is None and d["aggregated"] is None


def test_records_are_immutable_and_picklable():
    m = _m()
    with pytest.raises(AttributeError):
        m.cpu_usage = 3.0
    assert pickle.loads(pickle.dumps(m)) == m
    assert m._replace(cpu_usage=1.0).cpu_usage == 1.0


def test_required_fields_must_be_given():
    with pytest.raises(TypeError):
        Metrics(1, 2.0)


def test_nested_maps_of_records():
    h = RunHeader(pid=1, cmd=["a", "b c"], executable="", t0_ms=5, capabilities={"gpu": Capability(False, "no")},
                  schema_version=1, denet_version="0", labels={"rule": "x"}, interval_ms=100, max_interval_ms=1000,
                  include_children=True, since_process_start=False)
    d = json.loads(h.to_line())
    assert d["capabilities"] == {"gpu": {"available": False, "reason": "no"}}
    assert d["cmd"] == ["a", "b c"] and d["labels"] == {"rule": "x"}


def test_nested_record_has_no_line_of_its_own():
    with pytest.raises(TypeError):
        Child(1, "x", _m()).to_line()


def test_summary_lists_exact_fields():
    s = RunSummary(1.0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 10, 50.0, 0, 1.0, 0.5, 0.1, 0.6, 10, ["exit_code"])
    d = json.loads(s.to_line())
    assert d["exact"] == ["exit_code"] and d["kind"] == "summary"


def test_aggregated_optional_fields():
    a = Aggregated(1, 2.0, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    d = json.loads(a.to_json())
    assert "kind" not in d and d["process_count"] == 10 and "ebpf" not in d
