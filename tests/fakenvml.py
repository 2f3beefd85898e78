"""A fake NVML for tests on machines without an NVIDIA GPU.

The real ``pynvml`` module (nvidia-ml-py) is used with its NVML functions replaced: the fakes return
the binding's own structures (``c_nvmlMemory_t``, ``c_nvmlUtilization_t``, ``c_nvmlProcessInfo_t``
turned into the friendly objects the binding returns, ``c_nvmlProcessUtilizationSample_t``) and raise
the binding's own ``NVMLError(NVML_ERROR_...)``, as described by a *spec* (a JSON-able dict)::

    {"init_error": None,              # or an NVML error code raised by nvmlInit
     "devices": [{
        "name": "...", "uuid": "GPU-...",
        "memory": [total, used, free],   # bytes
        "utilization": [gpu, memory],    # %
        "temperature": 41,               # °C
        "power_mw": 71234,               # milliwatts
        "compute": [{"pid": 123, "mem": 1 << 30}, {"match": "MARKER", "mem": None}],
        "graphics": [...],
        "samples": [{"pid": 123, "sm": 40, "mem": 12}],   # per-process utilisation
        "lost_after": 3,                 # nvmlDeviceGetUtilizationRates raises GPU_IS_LOST from the 4th call on
     }]}

Any value may instead be ``{"error": CODE}``: the call raises ``NVMLError(CODE)``. A process entry
names a ``pid``, or ``match``: every process whose argv is ``[..., "-c", ..., MARKER]`` (argv[1] is
``-c`` and the last argument is MARKER; not a child that a matching process has forked and that has
not exec'd yet), resolved from /proc at each call, so that a test can name processes that
``denet run`` starts. Per-process samples carry the current time as their timestamp
and are returned only when newer than the ``lastSeenTimeStamp`` the caller passes; none left raises
``NVMLError(NVML_ERROR_NOT_FOUND)``, as the driver does.

In the test process: ``install(pynvml, spec, monkeypatch.setattr)``. In a subprocess (``denet run``):
:func:`shim_dir` writes a directory with a ``sitecustomize.py`` that patches pynvml *when it is
imported* (a meta-path hook; nothing is imported early) and a ``libnvidia-ml.so.1`` symlink to the C
library (so denet's check that the NVML library can be loaded passes; the patched functions never
call into it). Run the subprocess with ``PYTHONPATH`` and ``LD_LIBRARY_PATH`` set to that directory
(:func:`shim_env` returns the environment).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

SPEC_ENV = "DENET_FAKE_NVML_SPEC"
HERE = os.path.dirname(os.path.abspath(__file__))


class _Handle:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<fake nvmlDevice {self.index}>"


def nvml_library_present() -> bool:
    """True where a real NVML library loads (then the tests of the absent path do not apply)."""
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        return True
    except OSError:
        return False


_MATCHED: dict[str, list[tuple[int, bytes]]] = {}  # marker -> [(pid, its start time)] found before


def _start_time(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rfind(b")") + 2 :].split()[19]
    except (OSError, IndexError):
        return None


def _matching_pids(marker: str) -> list[int]:
    """The processes running ``python -c ... MARKER``: found once, then kept while they live, so that
    every call agrees (a scan made while a matching process is forking can see its child, which has
    its argv until it execs, and momentarily not the process itself)."""
    known = _MATCHED.get(marker)
    if known and all(_start_time(pid) == st for pid, st in known):
        return [pid for pid, _ in known]
    pids = _scan(marker)
    _MATCHED[marker] = [(pid, st) for pid in pids if (st := _start_time(pid)) is not None]
    return pids


def _scan(marker: str) -> list[int]:
    found: dict[int, int] = {}  # pid -> parent pid
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")[:-1]
            if len(argv) >= 3 and argv[1] == b"-c" and argv[-1] == marker.encode():
                with open(f"/proc/{name}/stat", "rb") as fh:
                    stat = fh.read()
                found[int(name)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    # a child forked by a matching process has its parent's argv until it execs: not a match
    return sorted(pid for pid, ppid in found.items() if ppid not in found)


class FakeNvml:
    """The fake functions over a mutable ``spec`` (tests may change it between readings)."""

    def __init__(self, nv, spec: dict) -> None:
        self.nv = nv
        self.spec = spec
        self.calls: Counter = Counter()  # function name -> calls
        self.last_seen: list[tuple[int, int]] = []  # (device, lastSeenTimeStamp) passed to GetProcessUtilization
        self.initialised = 0
        self.util_reads: Counter = Counter()  # device index -> successful utilisation reads

    # -- helpers

    def _dev(self, handle) -> dict:
        return self.spec["devices"][handle.index]

    def _value(self, handle, key: str, fn: str):
        self.calls[fn] += 1
        v = self._dev(handle)[key]
        if isinstance(v, dict) and "error" in v:
            raise self.nv.NVMLError(v["error"])
        return v

    def _pids(self, entry: dict) -> list[int]:
        if "pid" in entry:
            return [entry["pid"]]
        return _matching_pids(entry["match"])

    def _running(self, handle, key: str, fn: str):
        nv = self.nv
        if key not in self._dev(handle):
            self.calls[fn] += 1
            return []
        entries = self._value(handle, key, fn)
        out = []
        for e in entries:
            for pid in self._pids(e):
                mem = e.get("mem")
                s = nv.c_nvmlProcessInfo_t(pid=pid, usedGpuMemory=nv.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
                                           if mem is None else mem, gpuInstanceId=0xFFFFFFFF,
                                           computeInstanceId=0xFFFFFFFF)
                obj = nv.nvmlStructToFriendlyObject(s)
                if obj.usedGpuMemory == nv.NVML_VALUE_NOT_AVAILABLE_ulonglong.value:  # as the binding does
                    obj.usedGpuMemory = None
                out.append(obj)
        return out

    # -- the NVML functions

    def functions(self) -> dict:
        nv = self.nv

        def nvmlInit():
            self.calls["nvmlInit"] += 1
            if self.spec.get("init_error") is not None:
                raise nv.NVMLError(self.spec["init_error"])
            self.initialised += 1

        def nvmlShutdown():
            self.calls["nvmlShutdown"] += 1
            self.initialised -= 1

        def nvmlDeviceGetCount():
            self.calls["nvmlDeviceGetCount"] += 1
            return len(self.spec["devices"])

        def nvmlDeviceGetHandleByIndex(index):
            self.calls["nvmlDeviceGetHandleByIndex"] += 1
            if not 0 <= index < len(self.spec["devices"]):
                raise nv.NVMLError(nv.NVML_ERROR_INVALID_ARGUMENT)
            return _Handle(index)

        def nvmlDeviceGetName(handle):
            return self._value(handle, "name", "nvmlDeviceGetName")

        def nvmlDeviceGetUUID(handle):
            return self._value(handle, "uuid", "nvmlDeviceGetUUID")

        def nvmlDeviceGetMemoryInfo(handle, version=None):
            total, used, free = self._value(handle, "memory", "nvmlDeviceGetMemoryInfo")
            return nv.c_nvmlMemory_t(total=total, free=free, used=used)

        def nvmlDeviceGetUtilizationRates(handle):
            d = self._dev(handle)
            lost = d.get("lost_after")
            if lost is not None and self.util_reads[handle.index] >= lost:
                self.calls["nvmlDeviceGetUtilizationRates"] += 1
                raise nv.NVMLError(nv.NVML_ERROR_GPU_IS_LOST)
            self.util_reads[handle.index] += 1
            gpu, mem = self._value(handle, "utilization", "nvmlDeviceGetUtilizationRates")
            return nv.c_nvmlUtilization_t(gpu=gpu, memory=mem)

        def nvmlDeviceGetTemperature(handle, sensor):
            assert sensor == nv.NVML_TEMPERATURE_GPU
            return self._value(handle, "temperature", "nvmlDeviceGetTemperature")

        def nvmlDeviceGetPowerUsage(handle):
            return self._value(handle, "power_mw", "nvmlDeviceGetPowerUsage")

        def nvmlDeviceGetComputeRunningProcesses(handle):
            return self._running(handle, "compute", "nvmlDeviceGetComputeRunningProcesses")

        def nvmlDeviceGetGraphicsRunningProcesses(handle):
            return self._running(handle, "graphics", "nvmlDeviceGetGraphicsRunningProcesses")

        def nvmlDeviceGetProcessUtilization(handle, timeStamp):
            self.last_seen.append((handle.index, timeStamp))
            if "samples" in self._dev(handle):
                samples = self._value(handle, "samples", "nvmlDeviceGetProcessUtilization")
            else:
                self.calls["nvmlDeviceGetProcessUtilization"] += 1
                samples = []
            now = int(time.time() * 1_000_000)
            out = []
            for i, e in enumerate(samples):
                ts = now - len(samples) + i  # distinct, increasing, newer than anything seen before
                if ts <= timeStamp:
                    continue
                for pid in self._pids(e):
                    out.append(nv.c_nvmlProcessUtilizationSample_t(pid=pid, timeStamp=ts, smUtil=e["sm"],
                                                                   memUtil=e.get("mem", 0), encUtil=0, decUtil=0))
            if not out:
                raise nv.NVMLError(nv.NVML_ERROR_NOT_FOUND)
            return out

        return {name: fn for name, fn in locals().items() if name.startswith("nvml")}


def install(nv, spec: dict, setattr=setattr) -> FakeNvml:
    """Replace pynvml's NVML functions by fakes over ``spec``; ``setattr``: ``monkeypatch.setattr``
    in a test (undone at its end), the builtin in a subprocess."""
    fake = FakeNvml(nv, spec)
    for name, fn in fake.functions().items():
        setattr(nv, name, fn)
    return fake


def two_devices(root: dict, child: dict, outside_pid: int) -> dict:
    """A spec with two GPUs: device 0 runs ``root`` (a process entry) and a process outside the tree,
    device 1 runs ``child`` (compute and graphics) and has no temperature (as under MIG) and a
    power call that is not permitted."""
    gib = 1 << 30
    return {"devices": [
        {"name": "NVIDIA Fake A100-SXM4-40GB", "uuid": "GPU-00000000-fake-0000-0000-000000000000",
         "memory": [40 * gib, 9 * gib, 31 * gib], "utilization": [87, 35], "temperature": 61, "power_mw": 231456,
         "compute": [{**root, "mem": 3 * gib}, {"pid": outside_pid, "mem": 5 * gib}],
         "samples": [{**root, "sm": 40, "mem": 10}, {**root, "sm": 60, "mem": 30},
                     {"pid": outside_pid, "sm": 20, "mem": 5}]},
        {"name": "NVIDIA Fake A100-SXM4-40GB MIG 3g.20gb", "uuid": "MIG-11111111-fake-1111-1111-111111111111",
         "memory": [20 * gib, 2 * gib, 18 * gib], "utilization": [12, 3],
         "temperature": {"error": 3}, "power_mw": {"error": 4},  # NOT_SUPPORTED, NO_PERMISSION
         "compute": [{**child, "mem": 1 * gib}], "graphics": [{**child, "mem": None}],
         "samples": {"error": 6}},  # NOT_FOUND: no samples
    ]}


# ----------------------------------------------------------------------------- subprocess shim

_SITECUSTOMIZE = '''\
# Written by tests/fakenvml.py: patch pynvml with the fake NVML when (and only when) it is imported.
import os
import sys

sys.path.insert(0, {here!r})
import fakenvml  # noqa: E402

del sys.path[0]
fakenvml.hook_pynvml(os.environ[fakenvml.SPEC_ENV])
'''


class _Finder:
    """Meta-path hook: lets the real pynvml load, then installs the fakes on it."""

    def __init__(self, spec_path: str) -> None:
        self.spec_path = spec_path

    def find_spec(self, name, path=None, target=None):
        if name != "pynvml":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        real_exec = spec.loader.exec_module
        spec_path = self.spec_path

        def exec_module(module):
            real_exec(module)
            with open(spec_path) as fh:
                install(module, json.load(fh))

        spec.loader.exec_module = exec_module
        return spec


def hook_pynvml(spec_path: str) -> None:
    sys.meta_path.insert(0, _Finder(spec_path))


def _libc_path() -> str:
    with open("/proc/self/maps") as fh:
        for line in fh:
            p = line.split()[-1]
            if "/libc.so" in p or "/libc-" in p:
                return p
    raise RuntimeError("libc not found in /proc/self/maps")


def shim_dir(path: str, spec: dict) -> str:
    """Write the subprocess shim (sitecustomize.py, libnvidia-ml.so.1, spec.json) into ``path``."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "sitecustomize.py"), "w") as fh:
        fh.write(_SITECUSTOMIZE.format(here=HERE))
    lib = os.path.join(path, "libnvidia-ml.so.1")
    if not os.path.lexists(lib):
        os.symlink(_libc_path(), lib)
    with open(os.path.join(path, "spec.json"), "w") as fh:
        json.dump(spec, fh)
    return path


def shim_env(path: str, base: dict | None = None) -> dict:
    """The environment of a subprocess that sees the fake NVML of ``shim_dir(path, ...)``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["LD_LIBRARY_PATH"] = path + (os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env[SPEC_ENV] = os.path.join(path, "spec.json")
    return env
