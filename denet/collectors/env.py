"""The machine a run happens on: host, kernel, CPU topology, NUMA, affinity, frequency settings.

Returns plain values keyed by the ``env`` record's declared field names; anything unreadable
is left out (optional fields) or null.
"""

from __future__ import annotations

import os
import time

__all__ = ["read_env", "range_list"]


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def range_list(cpus) -> str:
    """[0,1,2,3,7] -> "0-3,7"."""
    cpus = sorted(set(cpus))
    out = []
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


def _parse_range_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _lscpu() -> dict:
    model = None
    cpuinfo = _read("/proc/cpuinfo") or ""
    for line in cpuinfo.splitlines():
        if line.startswith(("model name", "Model", "cpu model")):
            model = line.split(":", 1)[1].strip()
            break
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    n = 0
    base = "/sys/devices/system/cpu"
    try:
        names = [d for d in os.listdir(base) if d.startswith("cpu") and d[3:].isdigit()]
    except OSError:
        names = []
    for d in names:
        pkg = _read(f"{base}/{d}/topology/physical_package_id")
        core = _read(f"{base}/{d}/topology/core_id")
        if pkg is None or core is None:
            continue
        n += 1
        packages.add(pkg)
        cores.add((pkg, core))
    if not n:
        return {"sockets": None, "cores_per_socket": None, "threads_per_core": None, "model": model}
    sockets = len(packages)
    return {
        "sockets": sockets,
        "cores_per_socket": len(cores) // sockets,
        "threads_per_core": n // len(cores),
        "model": model,
    }


def _numa() -> dict:
    base = "/sys/devices/system/node"
    nodes = []
    try:
        nodes = sorted(int(d[4:]) for d in os.listdir(base) if d.startswith("node") and d[4:].isdigit())
    except OSError:
        pass
    if not nodes:
        mem = _read("/proc/meminfo") or ""
        total_kb = 0
        for line in mem.splitlines():
            if line.startswith("MemTotal:"):
                total_kb = int(line.split()[1])
        return {"nodes": 1, "distances": [[10]], "node_sizes_mb": [total_kb // 1024]}
    distances = []
    sizes = []
    for n in nodes:
        d = _read(f"{base}/node{n}/distance") or ""
        distances.append([int(x) for x in d.split()])
        size_mb = 0
        for line in (_read(f"{base}/node{n}/meminfo") or "").splitlines():
            if "MemTotal:" in line:
                size_mb = int(line.split()[-2]) // 1024
        sizes.append(size_mb)
    return {"nodes": len(nodes), "distances": distances, "node_sizes_mb": sizes}


def read_env() -> dict:
    """Values for the ``env`` record."""
    u = os.uname()
    env: dict = {
        "ts_ms": int(time.time() * 1000),
        "host": u.nodename,
        "kernel": u.release,
        "lscpu": _lscpu(),
        "numa": _numa(),
    }
    try:
        env["affinity_inherited"] = range_list(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        env["affinity_inherited"] = range_list(range(os.cpu_count() or 1))
    online = _read("/sys/devices/system/cpu/online")
    cpus = _parse_range_list(online) if online else []
    govs = [g for g in (_read(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor") for c in cpus) if g]
    if govs:
        env["cpu_governor"] = govs
    freqs = [f for f in (_read(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq") for c in cpus) if f]
    if freqs:
        env["cpu_freq_khz"] = [int(f) for f in freqs]
    thp = _read("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp:
        sel = [w.strip("[]") for w in thp.split() if w.startswith("[")]
        env["thp_enabled"] = sel[0] if sel else thp
    smt = _read("/sys/devices/system/cpu/smt/active")
    if smt is not None:
        env["smt_active"] = smt == "1"
    cg = _read("/proc/self/cgroup")
    if cg:
        for line in cg.splitlines():
            if line.startswith("0::"):
                env["cgroup"] = line[3:]
                break
    return env
