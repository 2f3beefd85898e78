"""The GPU collector end to end: `denet run`, `attach`, `stats`, `summarize` and the Python API.

The absent path is the real one (this machine has no NVIDIA driver: NVML's library is not found).
The values come from a fake NVML injected into the `denet` subprocess by a shim directory
(tests/fakenvml.py: a sitecustomize.py that patches the real pynvml when it is imported, and a
libnvidia-ml.so.1 symlink so that the library check passes), with processes inside and outside the
monitored tree.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import DENET, PY, REPO, of_kind, parse_lines, read_records

pytestmark = pytest.mark.integration

pynvml = pytest.importorskip("pynvml")
sys.path.insert(0, str(REPO / "tests"))
import fakenvml  # noqa: E402

GIB = 1 << 30
ROOT_MARK, CHILD_MARK = "fakegpu-root", "fakegpu-child"
# The root (python) starts a child (python) and both live about a second; the root exits 3.
WORKLOAD = [PY, "-c", "import subprocess, sys, time; "
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1.2)', '{CHILD_MARK}']); "
            "time.sleep(1.2); c.wait(); sys.exit(3)", ROOT_MARK]


no_driver = pytest.mark.skipif(fakenvml.nvml_library_present(), reason="an NVML library is installed on this machine")


def _keys(obj, found: set) -> set:
    if isinstance(obj, dict):
        for k, v in obj.items():
            found.add(k)
            _keys(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _keys(v, found)
    return found


@pytest.fixture
def outside():
    """A real process outside the monitored tree, on GPU 0 in the fake."""
    p = subprocess.Popen(["sleep", "60"])
    yield p.pid
    p.kill()
    p.wait()


def shim(tmp_path, spec) -> dict:
    d = fakenvml.shim_dir(str(tmp_path / "fakenvml-shim"), spec)
    return fakenvml.shim_env(d)


def spec_for(outside_pid: int) -> dict:
    return fakenvml.two_devices({"match": ROOT_MARK}, {"match": CHILD_MARK}, outside_pid)


# ----------------------------------------------------------------------------- the real absent path


@no_driver
def test_run_without_a_driver_reports_nvmls_reason_and_nothing_else_changes(tmp_path):
    out = tmp_path / "run.jsonl"
    p = subprocess.run(DENET + ["--out", str(out), "run", "-i", "50", "--", "sh", "-c", "sleep 0.3; exit 7"],
                       capture_output=True, timeout=60)
    assert p.returncode == 7 and p.stderr == b""
    recs = read_records(out)
    meta = of_kind(recs, "metadata")[0]
    assert meta["capabilities"]["gpu"] == {"available": False, "reason": "NVML Shared Library Not Found"}
    trees = of_kind(recs, "tree")
    assert trees
    for t in trees:
        assert "gpu" not in _keys(t, set())
    assert not [k for k in of_kind(recs, "summary")[0] if "gpu" in k]
    p = subprocess.run(DENET + ["--json", "--exclude-children", "run", "--", "sleep", "0.2"], capture_output=True,
                       timeout=60)
    assert p.returncode == 0
    assert not [r for r in parse_lines(p.stdout) if r["kind"] == "sample" and "gpu" in r]


@no_driver
def test_the_run_path_never_imports_pynvml_without_a_driver():
    p = subprocess.run([PY, "-X", "importtime", "-m", "denet", "run", "--", "true"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0
    assert "denet.collectors.gpu" in p.stderr  # probed ...
    assert "pynvml" not in p.stderr  # ... without importing the binding


def test_without_nvidia_ml_py_the_reason_says_how_to_install_it():
    # -S: no site-packages, so pynvml cannot be found; denet itself comes from the source tree
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    p = subprocess.run([PY, "-S", "-m", "denet", "--json", "run", "--", "true"], capture_output=True, timeout=60,
                       env=env)
    assert p.returncode == 0, p.stderr
    meta = parse_lines(p.stdout)[0]
    assert meta["capabilities"]["gpu"] == {"available": False,
                                           "reason": "nvidia-ml-py is not installed (pip install 'denet[gpu]')"}


# ----------------------------------------------------------------------------- fake NVML in the subprocess


def test_run_with_a_fake_nvml_attributes_the_trees_gpu_use(tmp_path, outside):
    env = shim(tmp_path, spec_for(outside))
    out = tmp_path / "run.parquet"
    p = subprocess.run(DENET + ["--json", "--out", str(out), "run", "-i", "50", "--", *WORKLOAD],
                       capture_output=True, timeout=60, env=env)
    assert p.returncode == 3, p.stderr  # the command's own exit code
    assert p.stderr == b""
    recs = parse_lines(p.stdout)
    meta = of_kind(recs, "metadata")[0]
    assert meta["capabilities"]["gpu"] == {"available": True}
    root = meta["pid"]
    trees = [t for t in of_kind(recs, "tree") if t["parent"] is not None]
    assert len(trees) >= 3
    seen_child = None
    for t in trees:
        pg, ag = t["parent"]["gpu"], t["aggregated"]["gpu"]
        # the root's own: itself on GPU 0
        assert [(x["pid"], x["device"]) for x in pg["processes"]] == [(root, 0)]
        assert pg["memory_bytes"] == 3 * GIB and pg["sm_utilization_pct"] == 50.0
        # the tree's: only pids of this record's tree, never the outside process
        tree_pids = {root} | {c["pid"] for c in t["children"]}
        assert {x["pid"] for x in ag["processes"]} <= tree_pids and outside not in {x["pid"] for x in ag["processes"]}
        assert ag["memory_bytes"] == sum(x["memory_bytes"] or 0 for x in ag["processes"])
        assert ag["process_count"] == len({x["pid"] for x in ag["processes"]})
        for c in t["children"]:
            assert "gpu" not in c["metrics"]
        kid = [x for x in ag["processes"] if x["device"] == 1]
        if kid:
            seen_child = kid[0]
        # units: bytes, °C, W (milliwatts / 1000), %; fields NVML does not give are null, the rest is there
        d0, d1 = ag["devices"]
        assert d0["memory_total_bytes"] == 40 * GIB and d0["memory_used_bytes"] == 9 * GIB
        assert d0["temperature_c"] == 61 and d0["power_w"] == pytest.approx(231.456) and d0["utilization_pct"] == 87
        assert d1["temperature_c"] is None and d1["power_w"] is None and d1["utilization_pct"] == 12
        assert pg["devices"] == ag["devices"]
    assert seen_child is not None, "the child never showed up on GPU 1"
    assert seen_child["type"] == "compute+graphics" and seen_child["memory_bytes"] == GIB
    assert seen_child["sm_utilization_pct"] is None  # no samples: not an error
    summ = of_kind(recs, "summary")[0]
    assert summ["exit_code"] == 3 and summ["gpu_device_count"] == 2
    assert summ["peak_gpu_memory_used_bytes"] == 9 * GIB and summ["peak_gpu_tree_memory_bytes"] == 4 * GIB
    assert summ["max_gpu_utilization_pct"] == 87 and summ["avg_gpu_utilization_pct"] == pytest.approx(49.5)

    # `denet stats` recomputes the same figures from the records; `summarize` reports them per run and rule
    j = tmp_path / "run.jsonl"
    j.write_bytes(b"".join(line + b"\n" for line in p.stdout.splitlines() if b'"kind":"summary"' not in line))
    s = subprocess.run(DENET + ["stats", "--json", str(j)], capture_output=True, timeout=60)
    assert s.returncode == 0, s.stderr
    stats = json.loads(s.stdout)
    for k in ("gpu_device_count", "peak_gpu_memory_used_bytes", "peak_gpu_tree_memory_bytes",
              "max_gpu_utilization_pct"):
        assert stats[k] == summ[k], k
    s = subprocess.run(DENET + ["summarize", "--per-run", "--format", "json", str(out)], capture_output=True,
                       timeout=120)
    assert s.returncode == 0, s.stderr
    (row,) = json.loads(s.stdout)
    assert row["peak_gpu_tree_memory_bytes"] == 4 * GIB and row["max_gpu_utilization_pct"] == 87
    s = subprocess.run(DENET + ["summarize", str(out)], capture_output=True, timeout=120,
                       env={**env, "COLUMNS": "200"})
    assert s.returncode == 0, s.stderr
    assert b"gpu mem max" in s.stdout.splitlines()[0]


def test_a_gpu_lost_mid_run_is_reported_once_and_the_command_goes_on(tmp_path, outside):
    spec = spec_for(outside)
    spec["devices"][1]["lost_after"] = 3
    env = shim(tmp_path, spec)
    out = tmp_path / "run.jsonl"
    p = subprocess.run(DENET + ["--out", str(out), "run", "-i", "50", "--", *WORKLOAD], capture_output=True,
                       timeout=60, env=env)
    assert p.returncode == 3
    err = p.stderr.decode()
    assert err.count("GPU collector stopped") == 1, err
    assert "denet: GPU collector stopped: NVML: GPU is lost (GPU 1)" in err
    trees = [t for t in of_kind(read_records(out), "tree") if t["aggregated"] is not None]
    with_gpu = ["gpu" in t["aggregated"] for t in trees]
    assert with_gpu[:3] == [True] * 3 and not any(with_gpu[3:]) and len(with_gpu) > 3
    summ = of_kind(read_records(out), "summary")[0]
    assert summ["exit_code"] == 3 and summ["gpu_device_count"] == 2


def test_attach_with_a_fake_nvml(tmp_path, outside):
    env = shim(tmp_path, spec_for(outside))
    target = subprocess.Popen([PY, "-c", "import time; time.sleep(1.0)", ROOT_MARK], env=env)
    try:
        p = subprocess.run(DENET + ["--json", "attach", "-i", "50", str(target.pid)], capture_output=True,
                           timeout=60, env=env)
    finally:
        target.wait()
    assert p.returncode == 0, p.stderr
    recs = parse_lines(p.stdout)
    assert of_kind(recs, "metadata")[0]["capabilities"]["gpu"] == {"available": True}
    trees = [t for t in of_kind(recs, "tree") if t["parent"] is not None]
    # The last tree may catch the target while it exits: its argv is gone from /proc by then, so the
    # fake NVML (which finds its processes by argv) no longer lists it, as a real driver drops a process
    # whose GPU context is gone.
    assert len(trees) >= 2
    assert all(t["parent"]["gpu"]["processes"][0]["pid"] == target.pid for t in trees[:-1])
    assert [p["pid"] for p in trees[-1]["parent"]["gpu"]["processes"]] in ([target.pid], [])


# ----------------------------------------------------------------------------- the Python API


@no_driver
def test_api_without_a_driver():
    from denet import ProcessMonitor

    m = ProcessMonitor(["sleep", "0.2"], 50, 100, quiet=True)
    assert m.is_gpu_enabled() is False and m.gpu_device_count() == 0
    assert json.loads(m.get_gpu_summary()) == {"available": False, "reason": "NVML Shared Library Not Found",
                                                "device_count": 0, "devices": []}
    m.run()


def test_api_answers_from_the_collector(monkeypatch, outside):
    from denet import ProcessMonitor

    spec = spec_for(outside)
    fakenvml.install(pynvml, spec, monkeypatch.setattr)
    m = ProcessMonitor(["sleep", "0.3"], 50, 100, quiet=True)
    assert m.is_gpu_enabled() is True and m.gpu_device_count() == 2
    assert json.loads(m.get_metadata())["capabilities"]["gpu"] == {"available": True}
    s = json.loads(m.get_gpu_summary())
    assert s["available"] is True and "reason" not in s and s["device_count"] == 2
    assert [d["uuid"] for d in s["devices"]] == ["GPU-00000000-fake-0000-0000-000000000000",
                                                 "MIG-11111111-fake-1111-1111-111111111111"]
    assert s["devices"][0]["power_w"] == pytest.approx(231.456) and s["devices"][1]["temperature_c"] is None
    rec = json.loads(m.sample_once())
    # the API's records carry GPU values like those of `denet run`
    assert [d["index"] for d in rec["aggregated"]["gpu"]["devices"]] == [0, 1]
    assert "gpu" in rec["parent"]
    m.run()
    assert "peak_gpu_memory_used_bytes" in json.loads(m.get_gpu_summary())
    # a GPU lost later: the collector stops, and says so
    spec["devices"][0]["lost_after"] = 0
    s = json.loads(m.get_gpu_summary())
    assert s["degraded"].startswith("NVML: GPU is lost") and s["devices"] == []
    assert m.is_gpu_enabled() is False and m.gpu_device_count() == 2


def test_no_gpu_skips_the_probe(tmp_path, outside):
    """--no-gpu on a machine whose NVML answers: NVML is not even loaded, and the metadata says why."""
    env = shim(tmp_path, spec_for(outside))
    for extra, loaded in (([], True), (["--no-gpu"], False)):
        out = tmp_path / f"run{len(extra)}.jsonl"
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "denet", *extra, "--out", str(out), "run",
                            "--", "sleep", "0.1"], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        assert ("| pynvml" in r.stderr) is loaded, extra
        meta = json.loads(out.read_text().splitlines()[0])
        expected = {"available": True} if loaded else {"available": False, "reason": "off (--no-gpu)"}
        assert meta["capabilities"]["gpu"] == expected
