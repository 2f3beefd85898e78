"""`enable_ebpf=True` in the Python API's ProcessMonitor and execute_with_monitoring (real eBPF as root)."""

from __future__ import annotations

import json
import sys

import pytest

import denet

from .helpers import ebpf_unavailable

pytestmark = pytest.mark.integration

_REASON = ebpf_unavailable()
needs_ebpf = pytest.mark.skipif(_REASON is not None, reason=f"eBPF cannot run here: {_REASON}")

# Writes N one-byte blocks in a short-lived child, then stays alive long enough to be sampled after it.
N = 3000
CMD = [sys.executable, "-c",
       "import subprocess, time\n"
       f"subprocess.run(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1', 'count={N}'], stderr=subprocess.DEVNULL)\n"
       "time.sleep(1.0)\n"]


def _last_ebpf(samples: list[str]) -> dict:
    found = [json.loads(s)["aggregated"].get("ebpf") for s in samples]
    found = [e for e in found if e]
    assert found, "no record carried aggregated.ebpf"
    return found[-1]


def _writes(e: dict) -> int:
    return {t["name"]: t["count"] for t in e["syscalls"]["top_syscalls"]}.get("write", 0)


@needs_ebpf
def test_execute_with_monitoring_counts_a_short_lived_child():
    code, mon = denet.execute_with_monitoring(CMD, enable_ebpf=True, quiet=True, base_interval_ms=100,
                                              max_interval_ms=200)
    assert code == 0
    assert json.loads(mon.get_metadata())["capabilities"]["ebpf"] == {"available": True}
    e = _last_ebpf(mon.get_samples())
    assert e["source"] == "ebpf" and e["estimate"] is False
    assert abs(_writes(e) - N) <= N * 0.01 + 5, e["syscalls"]["top_syscalls"]


@needs_ebpf
def test_process_monitor_loads_before_the_command_starts():
    pm = denet.ProcessMonitor(CMD, 100, 200, enable_ebpf=True, quiet=True)
    pm.run()
    e = _last_ebpf(pm.get_samples())
    assert abs(_writes(e) - N) <= N * 0.01 + 5, e["syscalls"]["top_syscalls"]


def test_without_ebpf_records_carry_no_ebpf_values():
    code, mon = denet.execute_with_monitoring(CMD, quiet=True, base_interval_ms=100, max_interval_ms=200)
    assert code == 0
    assert all("ebpf" not in json.loads(s)["aggregated"] for s in mon.get_samples())
    assert json.loads(mon.get_metadata())["capabilities"]["ebpf"]["available"] is False
