"""The eBPF collector's parts that need no privileges: the syscall categories over the whole table,
the behaviour rules, the stub kernel headers, the ELF symboliser, the schedstat estimate, the probe's
reasons, and how the values become records and summary columns. Loading the programs is tested in
tests/integration/test_ebpf.py."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from denet import records, schema
from denet.collectors import ebpf, ebpf_syscalls, offcpu
from denet.collectors.ebpf_symbols import ElfSymbols, Symbolizer, parse_maps
from denet.collectors.ebpf_text import ebpf_lines


def _declared(record: str) -> set[str]:
    return {f.name for f in schema.fields(record)}


def _check_fields(record: str, d: dict) -> None:
    """``d`` has only declared fields, and every field that is always present."""
    assert set(d) <= _declared(record), set(d) - _declared(record)
    for f in schema.fields(record):
        if not f.optional:
            assert f.name in d, f"{record}.{f.name} missing"
        v = d.get(f.name)
        if isinstance(v, dict) and f.type.startswith("record:"):
            _check_fields(f.type[len("record:"):], v)
        elif isinstance(v, list) and f.type.startswith("list<record:"):
            for x in v:
                _check_fields(f.type[len("list<record:"):-1], x)


# ------------------------------------------------------------------------------------ syscall table


def test_every_category_list_names_each_syscall_once():
    seen: dict[str, str] = {}
    for cat, text in ebpf_syscalls._LISTS.items():
        for name in text.split():
            assert name not in seen, f"{name} in both {seen.get(name)} and {cat}"
            seen[name] = cat
    assert set(ebpf_syscalls.CATEGORIES) == {"file_io", "memory", "process", "network", "ipc", "signal", "time",
                                              "security", "system", "other"}


def test_newer_syscalls_are_categorised():
    assert ebpf_syscalls.uncategorised(ebpf_syscalls.GENERIC_NEW.values()) == []
    assert ebpf_syscalls.uncategorised(ebpf_syscalls.X86_64_EXTRA.values()) == []
    assert ebpf_syscalls.category_of("read") == "file_io"
    assert ebpf_syscalls.category_of("futex") == "ipc"
    assert ebpf_syscalls.category_of("recvfrom") == "network"
    assert ebpf_syscalls.category_of("no_such_syscall") == "other"


def test_the_full_table_of_this_architecture_is_categorised():
    try:
        ebpf.import_bcc()
    except ImportError:
        pytest.skip(ebpf.BCC_MISSING)
    table = ebpf_syscalls.syscall_table()
    assert table[0] == "read" or os.uname().machine != "x86_64"
    assert ebpf_syscalls.uncategorised(table.values()) == []
    assert max(table) >= 462  # completed beyond bcc's own table


def test_every_syscall_of_the_running_kernel_is_categorised():
    tracefs, why = ebpf.tracefs_dir()
    if tracefs is None:
        pytest.skip(why)
    names = ebpf_syscalls.kernel_syscall_names(tracefs)
    if not names:
        pytest.skip(f"no syscall tracepoints under {tracefs}/events/syscalls")
    assert ebpf_syscalls.uncategorised(names) == []


# ------------------------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("args,expected", [
    (dict(oncpu_ns=90, sleeping_ns=5, io_ns=0, preempted_ns=5), "cpu-bound"),
    (dict(oncpu_ns=10, sleeping_ns=10, io_ns=80, preempted_ns=0), "io-bound"),
    (dict(oncpu_ns=5, sleeping_ns=95, io_ns=0, preempted_ns=0), "sleeping"),
    (dict(oncpu_ns=10, sleeping_ns=80, io_ns=0, preempted_ns=10, syscalls=100, by_category={"network": 40}),
     "network-bound"),
    (dict(oncpu_ns=30, sleeping_ns=60, io_ns=0, preempted_ns=10, syscalls=100, futex=50), "lock-heavy"),
    (dict(oncpu_ns=45, sleeping_ns=35, io_ns=10, preempted_ns=10), "mixed"),
    (dict(oncpu_ns=0, sleeping_ns=0, io_ns=0, preempted_ns=0), "unknown"),
    (dict(oncpu_ns=10, sleeping_ns=None, io_ns=None, preempted_ns=0, blocked_ns=90), "sleeping"),  # the estimate
])
def test_classification_rules_and_their_figures(args, expected):
    out = ebpf.classify(**args)
    assert out["classification"] == expected
    assert out["reason"]
    _check_fields("ebpf_behavior", out)
    if expected != "unknown":
        total = args["oncpu_ns"] + (args.get("blocked_ns") or (args["sleeping_ns"] or 0) + (args["io_ns"] or 0)) + \
            args["preempted_ns"]
        assert out["cpu_fraction"] == pytest.approx(args["oncpu_ns"] / total)
        assert "%" in out["reason"]
    if args.get("sleeping_ns") is None and expected != "unknown":
        assert out["sleep_fraction"] is None and out["io_fraction"] is None  # the estimate cannot tell


# ------------------------------------------------------------------------------------ headers, probe


def test_stub_headers_are_written_once_with_the_kernel_version(tmp_path):
    d = ebpf.stub_headers("6.18.44-fc-v657", root=str(tmp_path))
    with open(os.path.join(d, "include", "linux", "version.h")) as fh:
        text = fh.read()
    assert f"LINUX_VERSION_CODE {(6 << 16) + (18 << 8) + 44}" in text
    for rel in ("linux/kconfig.h", "linux/types.h", "linux/log2.h", "uapi/linux/bpf.h", "asm/page.h"):
        assert os.path.isfile(os.path.join(d, "include", rel)), rel
    mtime = os.stat(os.path.join(d, "include", "linux", "types.h")).st_mtime_ns
    assert ebpf.stub_headers("6.18.44-fc-v657", root=str(tmp_path)) == d
    assert os.stat(os.path.join(d, "include", "linux", "types.h")).st_mtime_ns == mtime
    assert ebpf._version_code("5.4.300") == (5 << 16) + (4 << 8) + 255  # the patch level is capped like the kernel's


def test_probe_refuses_without_privileges_with_one_line():
    if os.geteuid() != 0:
        r = ebpf.probe()
        assert not r.available and "\n" not in r.reason
        return
    # as root: the same probe in a process without capabilities
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed")
    code = "from denet.collectors.ebpf import probe; r = probe(load=False); print(r.available, r.reason)"
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__)))), check=False)
    if out.returncode != 0 and ("Permission denied" in out.stderr or "No module named" in out.stderr):
        pytest.skip(f"user 65534 cannot run this environment's Python: {out.stderr[-200:]}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False not root and without CAP_BPF and CAP_PERFMON")


def test_tracefs_reason_names_the_mount_command(monkeypatch, tmp_path):
    monkeypatch.setattr(ebpf, "TRACEFS_DIRS", (str(tmp_path / "nothing"),))
    d, why = ebpf.tracefs_dir()
    assert d is None and "mount -t tracefs" in why


def test_missing_bcc_gives_the_install_hint(monkeypatch):
    monkeypatch.setattr(ebpf, "BCC_DIRS", ())
    monkeypatch.setattr(ebpf, "privilege_reason", lambda: None)
    monkeypatch.setattr(ebpf, "tracefs_dir", lambda: ("/sys/kernel/tracing", None))
    monkeypatch.delitem(sys.modules, "bcc", raising=False)
    real_import = __import__

    def no_bcc(name, *a, **kw):
        if name == "bcc" or name.startswith("bcc."):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr("builtins.__import__", no_bcc)
    r = ebpf.probe()
    assert not r.available and r.reason == "bcc missing: apt-get install python3-bpfcc"


# ------------------------------------------------------------------------------------ symbols


def test_symbols_of_this_process_are_named():
    libc = ctypes.CDLL(None)
    addr = ctypes.cast(libc.clock_nanosleep, ctypes.c_void_p).value
    sym = Symbolizer()
    assert sym.snapshot(os.getpid())
    name = sym.name(os.getpid(), addr + 3)
    assert name.startswith("clock_nanosleep+0x3 (") and "libc" in name
    assert sym.name(os.getpid(), 8) == "0x8"  # outside every mapping


def test_maps_parsing_keeps_executable_file_mappings():
    with open("/proc/self/maps") as fh:
        maps = parse_maps(fh.read())
    assert maps and all(lo < hi and path.startswith("/") for lo, hi, _off, path in maps)
    text = ("55d0-55e0 r-xp 00001000 08:01 1 /usr/bin/x\n7f00-7f10 rw-p 00000000 00:00 0 \n"
            "7f20-7f30 r-xp 00000000 00:00 0 [vdso]\n")
    assert parse_maps(text) == [(0x55D0, 0x55E0, 0x1000, "/usr/bin/x")]


def test_elf_reader_finds_function_symbols_of_libc():
    with open("/proc/self/maps") as fh:
        libc = next(p for *_x, p in parse_maps(fh.read()) if "libc.so" in os.path.basename(p))
    e = ElfSymbols(libc)
    names = {n for _v, _s, n in e.syms}
    assert {"read", "write", "clock_nanosleep"} <= names


# ------------------------------------------------------------------------------------ schedstat estimate


def test_schedstat_estimate_of_a_sleeping_child():
    if offcpu.available() is not None:
        pytest.skip(offcpu.available())
    est = offcpu.SchedstatEstimate("test: no eBPF")
    p = subprocess.Popen(["sleep", "0.3"])
    try:
        time.sleep(0.1)
        first = est.read([p.pid])
        time.sleep(0.15)
        d = est.read([p.pid])
    finally:
        p.wait()
    _check_fields("ebpf_aggregated", d)
    assert d["source"] == "schedstat" and d["estimate"] is True and d["reason"] == "test: no eBPF"
    assert "syscalls" not in d
    off = d["offcpu"]
    assert off["sleeping_ns"] is None and off["io_ns"] is None and off["max_time_ns"] is None
    assert off["blocked_ns"] > first["offcpu"]["blocked_ns"] > 0  # it keeps sleeping
    assert off["total_time_ns"] == off["blocked_ns"] + off["preempted_ns"]
    top = off["top_blocking_threads"][0]
    assert top["pid"] == p.pid == top["tid"] and top["comm"] == "sleep"
    assert d["behavior"]["classification"] == "sleeping"
    rec = records.from_plain("ebpf_aggregated", d)
    assert json.loads(rec.to_json())["offcpu"]["blocked_ns"] == off["blocked_ns"]


def test_schedstat_estimate_counts_a_running_process_from_the_first_reading():
    if offcpu.available() is not None:
        pytest.skip(offcpu.available())
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, args=(5,))
    t.start()
    time.sleep(0.05)  # so that its start (clock-tick resolution) is clearly before the estimate's
    try:
        est = offcpu.SchedstatEstimate()
        d = est.read([os.getpid()])
    finally:
        stop.set()
        t.join()
    assert d["offcpu"]["total_time_ns"] == 0  # threads already running: from the first reading on
    assert d["offcpu"]["thread_count"] >= 2


def test_a_fault_in_the_estimate_degrades_it_once(monkeypatch):
    est = offcpu.SchedstatEstimate()
    said = []
    est.on_degrade = said.append
    monkeypatch.setattr(est, "_read", lambda pids: 1 / 0)
    assert est.read([os.getpid()]) is None and est.read([os.getpid()]) is None
    assert len(said) == 1 and "ZeroDivisionError" in said[0] and "the command goes on" in said[0]


# ------------------------------------------------------------------------------------ records, text


def _sample_values() -> dict:
    beh = ebpf.classify(10, 80, 5, 5, 1000, {"file_io": 900, "network": 0}, 3)
    return {
        "source": "ebpf", "estimate": False,
        "offcpu": {"total_time_ns": 90, "total_events": 3, "avg_time_ns": 30, "max_time_ns": 50, "sleeping_ns": 80,
                   "io_ns": 5, "blocked_ns": 85, "preempted_ns": 5, "oncpu_ns": 10, "thread_count": 2,
                   "top_blocking_threads": [{"pid": 1, "tid": 2, "comm": "x", "time_ms": 0.00009, "percentage": 100.0,
                                             "sleeping_ms": 0.00008, "io_ms": 0.000005, "preempted_ms": 0.000005,
                                             "max_ms": 0.00005}]},
        "syscalls": {"total": 1000, "rate_per_sec": 10.0, "avg_rate_per_sec": 5.0,
                     "by_category": dict.fromkeys(ebpf_syscalls.CATEGORIES, 0) | {"file_io": 900, "memory": 100},
                     "top_syscalls": [{"name": "read", "count": 600, "category": "file_io"}],
                     "process_count": 1,
                     "top_processes": [{"pid": 1, "comm": "x", "count": 1000,
                                        "by_category": {"file_io": 900, "memory": 100}}]},
        "behavior": beh, "lost_events": 0,
        "stacks": [{"pid": 1, "tid": 2, "comm": "x", "stack_id": 7, "time_ms": 1.0, "count": 1, "max_ms": 1.0,
                    "frames": ["clock_nanosleep+0x65 (libc.so.6)"]}],
    }


def test_collector_values_become_a_record_and_back():
    d = _sample_values()
    _check_fields("ebpf_aggregated", d)
    rec = records.from_plain("ebpf_aggregated", d)
    back = json.loads(rec.to_json())
    assert back["syscalls"]["by_category"]["file_io"] == 900
    assert back["stacks"][0]["frames"] == ["clock_nanosleep+0x65 (libc.so.6)"]
    assert back["behavior"]["classification"] == d["behavior"]["classification"]
    agg = records.Aggregated(1, 0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0, ebpf=rec)
    assert json.loads(agg.to_json())["ebpf"]["offcpu"]["sleeping_ns"] == 80
    assert "ebpf" not in json.loads(records.Aggregated(1, 0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0).to_json())


def test_stats_text_of_the_values():
    text = "\n".join(ebpf_lines(_sample_values()))
    assert "source ebpf" in text and "syscalls 1000" in text and "read 600" in text
    assert "clock_nanosleep+0x65 (libc.so.6)" in text and "behaviour: sleeping" in text


def test_summary_columns_appear_only_for_runs_with_ebpf_values(tmp_path):
    pytest.importorskip("polars")
    from denet.records import Capability, RunHeader, RunSummary
    from denet.sinks import JsonlSink
    from denet.summaries import run_table

    caps = {k: Capability(False, "off") for k in ("gpu", "ebpf", "psi", "perf_hw")}

    def write(name: str, with_ebpf: bool) -> str:
        path = str(tmp_path / name)
        sink = JsonlSink(path)
        sink.write(RunHeader(pid=2 if with_ebpf else 1, cmd=["x"], executable="", t0_ms=1, capabilities=caps, schema_version=1,
                             denet_version="t", labels={}, interval_ms=100, max_interval_ms=1000,
                             include_children=True, since_process_start=False))
        extra = {}
        if with_ebpf:
            d = _sample_values()
            extra = dict(offcpu_secs=9e-8, offcpu_io_secs=5e-9, offcpu_source="ebpf", syscalls_total=1000,
                         behavior=d["behavior"]["classification"], ebpf=records.from_plain("ebpf_aggregated", d))
        sink.write(RunSummary(total_time_secs=1.0, sample_count=1, max_processes=1, max_threads=1,
                              total_disk_read_bytes=0, total_disk_write_bytes=0, total_syscall_read_bytes=0,
                              total_syscall_write_bytes=0, total_sys_net_rx_bytes=0, total_sys_net_tx_bytes=0,
                              peak_mem_rss_kb=1, avg_cpu_usage=0.0, exit_code=0, wall_time_secs=1.0, cpu_user_secs=0.0,
                              cpu_system_secs=0.0, cpu_time_secs=0.0, peak_process_rss_kb=1, exact=[], **extra))
        sink.close()
        return path

    plain = write("plain.jsonl", False)
    assert "offcpu_secs" not in run_table([plain]).columns
    t = run_table([plain, write("ebpf.jsonl", True)]).sort("path")
    assert t["syscalls_total"].to_list() == [1000, None]
    assert t["behavior"].to_list() == ["sleeping", None]
    assert json.loads(t["ebpf"][0])["syscalls"]["total"] == 1000
