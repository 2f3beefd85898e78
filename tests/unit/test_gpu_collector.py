"""The GPU collector and its attribution to the monitored tree.

This machine has no NVIDIA GPU: the absent path is the real one (NVML's library is not found). The
values are tested with a fake NVML (tests/fakenvml.py): the real ``pynvml`` module with its NVML
functions monkeypatched to return the binding's own structures and errors, for two devices and real
processes inside and outside the monitored tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pynvml = pytest.importorskip("pynvml")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fakenvml  # noqa: E402

from denet import schema  # noqa: E402
from denet.collectors import gpu as gpumod  # noqa: E402
from denet.collectors.proc import ProcCollector  # noqa: E402
from denet.live import LiveLine  # noqa: E402
from denet.monitor import capabilities  # noqa: E402
from denet.records import Aggregated, GpuAggregated, GpuDevice, Metrics  # noqa: E402
from denet.sampler import Sampler  # noqa: E402
from denet.summary import SummaryAccumulator  # noqa: E402

GIB = 1 << 30


no_driver = pytest.mark.skipif(fakenvml.nvml_library_present(), reason="an NVML library is installed on this machine")


# ----------------------------------------------------------------------------- the real absent path


@no_driver
def test_without_a_driver_the_collector_is_absent_with_nvmls_reason():
    c = gpumod.probe()
    assert not c.available and not c.active
    assert c.reason == gpumod.LIBRARY_NOT_FOUND
    assert c.device_count == 0 and c.read() is None and c.read_devices() is None
    caps = capabilities(c)
    assert caps["gpu"].available is False and caps["gpu"].reason == "NVML Shared Library Not Found"
    c.close()


def test_the_library_not_found_text_is_the_bindings_own():
    assert gpumod.LIBRARY_NOT_FOUND == str(pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))


@no_driver
def test_the_absent_probe_does_not_import_pynvml():
    code = ("import sys; from denet.collectors.gpu import probe; c = probe(); "
            "print(c.available, c.reason, 'pynvml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False NVML Shared Library Not Found False"


def test_not_installed_reason(monkeypatch):
    monkeypatch.delitem(sys.modules, "pynvml")
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if f.find_spec("pynvml", None) is None])
    c = gpumod.probe()
    assert not c.available and c.reason == "nvidia-ml-py is not installed (pip install 'denet[gpu]')"


# ----------------------------------------------------------------------------- fake NVML


@pytest.fixture
def procs():
    """A real tree: a root (python) with one child (sleep), and a process outside the tree."""
    root = subprocess.Popen([sys.executable, "-c", "import subprocess,sys,time; p=subprocess.Popen(['sleep','30']); "
                             "print(p.pid, flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    child = int(root.stdout.readline())
    outside = subprocess.Popen(["sleep", "30"])
    yield root.pid, child, outside.pid
    for p in (root, outside):
        p.kill()
        p.wait()
    try:
        os.kill(child, 9)
    except ProcessLookupError:
        pass


def fake(monkeypatch, spec):
    return fakenvml.install(pynvml, spec, monkeypatch.setattr)


def spec_for(root, child, outside):
    return fakenvml.two_devices({"pid": root}, {"pid": child}, outside)


def test_probe_with_a_fake_nvml(monkeypatch, procs):
    f = fake(monkeypatch, spec_for(*procs))
    c = gpumod.probe()
    assert c.available and c.reason is None and c.active and c.device_count == 2
    assert capabilities(c)["gpu"].as_dict() == {"available": True}
    c.close()
    c.close()
    assert f.calls["nvmlShutdown"] == 1 and f.initialised == 0


@pytest.mark.parametrize("code,text", [(pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"),
                                       (pynvml.NVML_ERROR_NO_PERMISSION, "Insufficient Permissions")])
def test_an_init_error_is_the_reason(monkeypatch, code, text):
    fake(monkeypatch, {"init_error": code, "devices": []})
    c = gpumod.probe()
    assert not c.available and c.reason == text and c.read() is None


def test_no_devices_is_absent(monkeypatch):
    f = fake(monkeypatch, {"devices": []})
    c = gpumod.probe()
    assert not c.available and c.reason == "NVML shows no GPU" and f.initialised == 0


def test_device_values_units_and_per_field_nulls(monkeypatch, procs):
    root, child, outside = procs
    f = fake(monkeypatch, spec_for(root, child, outside))
    c = gpumod.probe()
    devices, per_pid = c.read()
    d0, d1 = devices
    assert d0 == {"index": 0, "name": "NVIDIA Fake A100-SXM4-40GB", "uuid": "GPU-00000000-fake-0000-0000-000000000000",
                  "utilization_pct": 87, "memory_utilization_pct": 35, "memory_total_bytes": 40 * GIB,
                  "memory_used_bytes": 9 * GIB, "memory_free_bytes": 31 * GIB, "temperature_c": 61,
                  "power_w": pytest.approx(231.456)}
    # MIG: no temperature (NOT_SUPPORTED), no power (NO_PERMISSION); everything else is there
    assert d1["temperature_c"] is None and d1["power_w"] is None
    assert d1["utilization_pct"] == 12 and d1["memory_used_bytes"] == 2 * GIB
    assert set(d0) == set(schema.names("gpu_device"))
    # every process on every GPU, the outside one included: the sampler picks the tree's
    assert sorted(per_pid) == sorted([root, child, outside])
    (r,) = per_pid[root]
    assert r == {"pid": root, "device": 0, "type": "compute", "memory_bytes": 3 * GIB, "sm_utilization_pct": 50.0,
                 "memory_utilization_pct": 20.0}
    (k,) = per_pid[child]
    # in both lists: one entry; the graphics list does not tell the memory, the compute list does
    assert k["type"] == "compute+graphics" and k["memory_bytes"] == GIB
    assert k["sm_utilization_pct"] is None  # NOT_FOUND: no samples, not an error
    assert set(k) == set(schema.names("gpu_process"))
    assert c.errors == 2  # the temperature and the power of device 1
    assert f.calls["nvmlDeviceGetTemperature"] == 2
    c.close()


def test_unsupported_calls_are_not_repeated(monkeypatch, procs):
    f = fake(monkeypatch, spec_for(*procs))
    c = gpumod.probe()
    for _ in range(4):
        c.read()
    assert f.calls["nvmlDeviceGetTemperature"] == 4 + 1  # device 0 four times, device 1 once (NOT_SUPPORTED)
    assert f.calls["nvmlDeviceGetPowerUsage"] == 4 + 1  # device 1 once (NO_PERMISSION)
    assert f.calls["nvmlDeviceGetProcessUtilization"] == 4 * 2  # NOT_FOUND is asked again: samples may come
    assert c.errors == 2


def test_process_utilisation_asks_for_samples_newer_than_the_last_seen(monkeypatch, procs):
    f = fake(monkeypatch, spec_for(*procs))
    c = gpumod.probe()
    c.read()
    c.read()
    first, second = [ts for dev, ts in f.last_seen if dev == 0][:2]
    assert first == 0 and second > 0
    assert abs(second - time.time() * 1e6) < 60e6  # a µs timestamp of the newest sample seen


def test_unknown_memory_is_null_and_counts_zero(monkeypatch, procs):
    root, child, outside = procs
    spec = spec_for(root, child, outside)
    spec["devices"][0]["compute"][0]["mem"] = None  # the root's memory: not available
    fake(monkeypatch, spec)
    s = Sampler(ProcCollector(root), gpu=gpumod.probe())
    rec = s.sample()
    assert rec.parent.gpu.processes[0].memory_bytes is None and rec.parent.gpu.memory_bytes == 0
    assert rec.aggregated.gpu.memory_bytes == GIB  # the child's
    s.collector.close()


def test_sampler_attributes_the_trees_pids(monkeypatch, procs):
    root, child, outside = procs
    f = fake(monkeypatch, spec_for(root, child, outside))
    col = ProcCollector(root)
    s = Sampler(col, gpu=gpumod.probe())
    rec = s.sample()
    rec = s.sample()
    assert {c.pid for c in rec.children} == {child}
    pg = rec.parent.gpu
    assert [p.pid for p in pg.processes] == [root] and pg.memory_bytes == 3 * GIB
    assert pg.sm_utilization_pct == 50.0
    assert [d.index for d in pg.devices] == [0, 1]
    ag = rec.aggregated.gpu
    assert [(p.pid, p.device, p.type) for p in ag.processes] == sorted(
        [(root, 0, "compute"), (child, 1, "compute+graphics")])
    assert outside not in {p.pid for p in ag.processes}
    assert ag.memory_bytes == 4 * GIB and ag.process_count == 2 and ag.sm_utilization_pct == 50.0
    assert ag.devices is pg.devices  # read once per sample, shared by the root and the tree
    assert rec.children[0].metrics.gpu is None  # a child's GPU use is in aggregated.gpu.processes
    line = json.loads(rec.to_line())
    assert "gpu" not in line["children"][0]["metrics"]
    assert line["aggregated"]["gpu"]["devices"][0]["power_w"] == pytest.approx(231.456)
    assert line["aggregated"]["gpu"]["devices"][1]["temperature_c"] is None
    # one reading per sample: as many NVML calls for the outside process as without it
    assert f.calls["nvmlDeviceGetUtilizationRates"] == 2 * 2
    col.close()


def test_calls_per_sample_do_not_grow_with_processes(monkeypatch, procs):
    root, child, outside = procs
    spec = spec_for(root, child, outside)
    f = fake(monkeypatch, spec)
    c = gpumod.probe()
    c.read()  # the first read meets the unsupported calls once
    before = sum(f.calls.values())
    c.read()
    per_read = sum(f.calls.values()) - before
    spec["devices"][0]["compute"] += [{"pid": 10_000_000 + i, "mem": i} for i in range(200)]
    before = sum(f.calls.values())
    _, per_pid = c.read()
    assert len(per_pid) == 3 + 200
    assert sum(f.calls.values()) - before == per_read == 2 * 7 - 2  # 7 per device, less the 2 unsupported
    c.close()


def test_without_children_the_sample_carries_the_roots_gpu(monkeypatch, procs):
    root, child, outside = procs
    fake(monkeypatch, spec_for(root, child, outside))
    s = Sampler(ProcCollector(root, include_children=False), include_children=False, gpu=gpumod.probe())
    m = s.sample()
    assert isinstance(m, Metrics)
    assert [p.pid for p in m.gpu.processes] == [root] and m.gpu.memory_bytes == 3 * GIB
    assert s.summary.build().peak_gpu_tree_memory_bytes == 3 * GIB
    s.collector.close()


def test_a_gpu_lost_in_the_middle_degrades_the_collector_once(monkeypatch, procs):
    root, child, outside = procs
    spec = spec_for(root, child, outside)
    spec["devices"][1]["lost_after"] = 2
    fake(monkeypatch, spec)
    told = []
    c = gpumod.probe()
    c.on_degrade = told.append
    s = Sampler(ProcCollector(root), gpu=c)
    recs = [s.sample() for _ in range(5)]
    assert all(r is not None and r.parent is not None for r in recs)
    assert [r.aggregated.gpu is not None for r in recs] == [True, True, False, False, False]
    assert [r.parent.gpu is not None for r in recs] == [True, True, False, False, False]
    assert len(told) == 1 and "GPU is lost" in told[0] and "the command goes on" in told[0]
    assert c.degraded and not c.active and c.read() is None
    summ = s.summary.build()
    assert summ.gpu_device_count == 2 and summ.peak_gpu_tree_memory_bytes == 4 * GIB
    s.collector.close()


def test_an_unexpected_exception_degrades_too(monkeypatch, procs):
    fake(monkeypatch, spec_for(*procs))

    def broken(handle):
        raise RuntimeError("binding changed")

    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", broken)
    told = []
    c = gpumod.probe()
    c.on_degrade = told.append
    assert c.read() is None and c.read() is None
    assert told == ["GPU collector stopped: RuntimeError: binding changed; no GPU values from here on, "
                    "the command goes on"]


def test_an_older_driver_falls_back_to_the_v2_process_list(monkeypatch, procs):
    root, child, outside = procs
    fake(monkeypatch, spec_for(root, child, outside))
    v3 = pynvml.nvmlDeviceGetComputeRunningProcesses

    def mismatch(handle):
        raise pynvml.NVMLLibraryMismatchError("Unversioned function called ...")

    monkeypatch.setattr(pynvml, "nvmlDeviceGetComputeRunningProcesses", mismatch)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetComputeRunningProcesses_v2", v3)
    c = gpumod.probe()
    for _ in range(2):
        _, per_pid = c.read()
        assert per_pid[root][0]["memory_bytes"] == 3 * GIB
    assert c.active


# ----------------------------------------------------------------------------- schema, summary, live line


def _walk(obj, record):
    declared = {f.name: f for f in schema.fields(record)}
    assert set(obj) <= set(declared), (record, set(obj) - set(declared))
    for f in declared.values():
        assert f.optional or f.name in obj, (record, f.name)
    for k, v in obj.items():
        t = declared[k].type
        if v is None:
            assert declared[k].nullable, (record, k)
        elif t.startswith("record:"):
            _walk(v, t[7:])
        elif t.startswith("list<record:"):
            for x in v:
                _walk(x, t[12:-1])
        elif t == "int":
            assert isinstance(v, int) and not isinstance(v, bool), (record, k, v)
        elif t == "float":
            assert isinstance(v, int | float), (record, k, v)
        elif t == "str":
            assert isinstance(v, str), (record, k, v)


def test_gpu_records_emit_exactly_the_declared_fields(monkeypatch, procs):
    fake(monkeypatch, spec_for(*procs))
    s = Sampler(ProcCollector(procs[0]), gpu=gpumod.probe())
    s.sample()
    line = json.loads(s.sample().to_line())
    _walk(line["parent"]["gpu"], "gpu_metrics")
    _walk(line["aggregated"]["gpu"], "gpu_aggregated")
    summ = json.loads(s.summary.build().to_line())
    _walk({k: v for k, v in summ.items() if k != "kind"}, "summary")
    assert {"gpu_device_count", "peak_gpu_memory_used_bytes", "peak_gpu_tree_memory_bytes",
            "max_gpu_utilization_pct", "avg_gpu_utilization_pct"} <= set(summ)
    s.collector.close()


def _agg(ts, tree_mem, devices):
    devs = [GpuDevice(i, "G", f"GPU-{i}", util, 0, 100, used, 100 - used, None, None)
            for i, (used, util) in enumerate(devices)]
    return Aggregated(ts, 0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0, gpu=GpuAggregated(tree_mem, 1, None, [], devs))


def test_summary_gpu_figures_from_records_and_from_dicts():
    recs = [_agg(1000, 10, [(50, 20), (5, None)]), _agg(2000, 40, [(70, 90), (9, 0)]),
            Aggregated(3000, 0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0), _agg(4000, 30, [(60, 10), (80, 40)])]
    live, files = SummaryAccumulator(), SummaryAccumulator()
    for r in recs:
        live.add_record(r)
        files.add_dict(json.loads(r.to_json()))
    for acc in (live, files):
        s = acc.build()
        assert s.gpu_device_count == 2
        assert s.peak_gpu_memory_used_bytes == 80  # device 1 in the last record
        assert s.peak_gpu_tree_memory_bytes == 40
        assert s.max_gpu_utilization_pct == 90
        assert s.avg_gpu_utilization_pct == pytest.approx((20 + 90 + 0 + 10 + 40) / 5)  # nulls left out


def test_summary_without_gpu_values_has_no_gpu_fields():
    acc = SummaryAccumulator()
    acc.add_record(Aggregated(1000, 0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0))
    assert "gpu" not in acc.build().to_line()


def test_live_line_shows_gpu_utilisation_and_memory_when_present():
    r, w = os.pipe()
    try:
        line = LiveLine(w)
        line.update(Aggregated(1000, 0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0), 1.0)
        line.update(_agg(2000, 3 * GIB, [(0, 35), (0, 87)]), 2.0)
        acc = SummaryAccumulator()
        acc.add_record(_agg(2000, 3 * GIB, [(0, 35), (0, 87)]))
        line.finish(acc.build(1.0, wall_time_secs=1.0))
        os.close(w)
        w = -1
        text = os.read(r, 1 << 16).decode()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    first, second, final = text.split("\r\x1b[K")[1:]
    assert "GPU" not in first
    assert second.endswith("  GPU 87% 3.0 GiB")
    assert "peak gpu mem 3.0 GiB" in final and "max gpu 87%" in final
