"""GPU collector: NVIDIA GPUs through NVML (the ``nvidia-ml-py`` distribution, import name ``pynvml``).

Probed once at start (:func:`probe`): the collector is either available, or absent with a one-line
reason for the metadata's ``capabilities.gpu`` (the text NVML gives, such as "NVML Shared Library
Not Found", or that nvidia-ml-py is not installed). ``pynvml`` is imported only by the probe, and
only when the NVML library can be loaded at all: on a host without an NVIDIA driver the probe costs
a ``dlopen`` that fails (well under a millisecond), not the 40 ms that importing pynvml takes.

:meth:`GpuCollector.read` returns plain values: one dict per device (the fields of ``gpu_device``
in ``schemas/records.json``) and, per pid, one dict per GPU the process is on (the fields of
``gpu_process``). Every NVML call is per device, never per process; the sampler picks the
monitored tree's pids out of them. A single NVML call that fails gives null for its field only
(and a call that is not supported on a device is not made again); an error that means NVML or a
GPU is gone (driver unloaded, GPU lost, ...) or anything unexpected degrades the whole collector:
it reports once through ``on_degrade`` and returns None from then on. It never raises.
"""

from __future__ import annotations

import sys

from . import report_degrade

__all__ = ["LIBRARY_NOT_FOUND", "NOT_INSTALLED", "GpuCollector", "probe"]

NOT_INSTALLED = "nvidia-ml-py is not installed (pip install 'denet[gpu]')"
# pynvml's own text for NVML_ERROR_LIBRARY_NOT_FOUND: what NVML says when the library is not there
# (a test checks that it is still the binding's text).
LIBRARY_NOT_FOUND = "NVML Shared Library Not Found"
_LIBRARY = "libnvidia-ml.so.1"  # what pynvml loads on Linux

# Error names after which NVML (or a GPU) cannot be used any more: the collector degrades.
_FATAL = ("UNINITIALIZED", "DRIVER_NOT_LOADED", "LIBRARY_NOT_FOUND", "GPU_IS_LOST", "RESET_REQUIRED",
          "LIB_RM_VERSION_MISMATCH", "IRQ_ISSUE", "CORRUPTED_INFOROM", "GPU_NOT_FOUND")
# Error names that will not change for a device: the call is not made again.
_STATIC = ("NOT_SUPPORTED", "NO_PERMISSION", "FUNCTION_NOT_FOUND", "INVALID_ARGUMENT",
           "ARGUMENT_VERSION_MISMATCH", "DEPRECATED")
_RUNNING = {"compute": "nvmlDeviceGetComputeRunningProcesses", "graphics": "nvmlDeviceGetGraphicsRunningProcesses"}


def _installed() -> bool:
    if sys.modules.get("pynvml") is not None:
        return True
    for finder in sys.meta_path:  # what `import pynvml` would ask, without importing importlib.util
        find = getattr(finder, "find_spec", None)
        try:
            if find is not None and find("pynvml", None) is not None:
                return True
        except Exception:  # noqa: S112 - a finder that cannot answer: ask the next one
            continue
    return False


def _library_loadable() -> bool:
    """Whether the NVML library can be loaded (what pynvml's nvmlInit does first), without pynvml."""
    nv = sys.modules.get("pynvml")
    if nv is not None:  # already imported: let nvmlInit say
        return True
    if not sys.platform.startswith("linux"):
        return True  # other platforms: pynvml knows where to look
    import ctypes

    try:
        ctypes.CDLL(_LIBRARY)
    except OSError:
        return False
    return True


class _Fatal(Exception):
    pass


class _Device:
    __slots__ = ("index", "handle", "name", "uuid", "skip", "last_seen", "running")

    def __init__(self, index: int, handle, name, uuid) -> None:
        self.index = index
        self.handle = handle
        self.name = name
        self.uuid = uuid
        self.skip: set[str] = set()  # fields whose NVML call is not supported here
        self.last_seen = 0  # µs timestamp of the newest per-process utilisation sample seen
        self.running: dict[str, str] = {}  # "compute"/"graphics" -> the binding's function in use, when not the default


class GpuCollector:
    """One run's view of the host's NVIDIA GPUs. Build it with :func:`probe`.

    ``available``/``reason``: the probe's outcome (``reason`` is None when available).
    ``degraded``: None, or why the collector stopped in the middle of the run.
    ``on_degrade``: called once with a one-line message when it stops (set by the monitor).
    """

    def __init__(self, available: bool, reason: str | None, nv=None, devices: list[_Device] | None = None) -> None:
        self.available = available
        self.reason = reason
        self.degraded: str | None = None
        self.on_degrade = None
        self.errors = 0  # single NVML calls that failed (fields left null)
        self._nv = nv
        self._devices: list[_Device] = devices or []
        self._closed = False
        if nv is not None:
            self._err = nv.NVMLError
            self._codes = {getattr(nv, "NVML_ERROR_" + n): n for n in _FATAL + _STATIC + ("NOT_FOUND",)
                           if hasattr(nv, "NVML_ERROR_" + n)}
            self._mismatch = getattr(nv, "NVMLLibraryMismatchError", ())

    def __repr__(self) -> str:
        state = "available" if self.available else f"absent: {self.reason}"
        return f"GpuCollector({state}, devices={len(self._devices)}, degraded={self.degraded!r})"

    @property
    def active(self) -> bool:
        """Available and not degraded: :meth:`read` returns values."""
        return self.available and self.degraded is None and not self._closed

    @property
    def device_count(self) -> int:
        return len(self._devices) if self.available else 0

    def capability(self) -> tuple[bool, str | None]:
        return self.available, self.reason

    # ------------------------------------------------------------------ reading

    def _call(self, d: _Device, key: str, fn, *args):
        """``fn(*args)``, or None when NVML cannot give it (the field is null)."""
        if key in d.skip:
            return None
        try:
            return fn(*args)
        except self._err as exc:
            name = self._codes.get(getattr(exc, "value", None))
            if name in _FATAL:
                raise _Fatal(f"NVML: {exc} (GPU {d.index})") from None
            if name in _STATIC:
                d.skip.add(key)
            if name != "NOT_FOUND" and getattr(exc, "value", None) != 0:  # NOT_FOUND / 0: no samples
                self.errors += 1
            return None

    def _running(self, d: _Device, kind: str):
        """The device's compute or graphics processes. When the driver is older than the binding
        (pynvml raises NVMLLibraryMismatchError), the binding's ``_v2`` call is used from then on."""
        name = d.running.get(kind) or _RUNNING[kind]
        try:
            return self._call(d, kind, getattr(self._nv, name), d.handle) or ()
        except self._mismatch:
            if name.endswith("_v2") or not hasattr(self._nv, name + "_v2"):
                d.skip.add(kind)
                return ()
            d.running[kind] = name + "_v2"
            return self._call(d, kind, getattr(self._nv, name + "_v2"), d.handle) or ()

    def read(self) -> tuple[list[dict], dict[int, list[dict]]] | None:
        """(devices, per-pid entries) now, or None when the collector is off or degraded.

        ``devices``: one dict per GPU with the fields of ``gpu_device``. Per pid: one dict per GPU
        the process is on, with the fields of ``gpu_process``. Never raises."""
        if not self.active:
            return None
        try:
            return self._read()
        except _Fatal as exc:
            self._degrade(str(exc))
        except Exception as exc:  # a binding that does not behave as expected: never fail the run
            self._degrade(f"{type(exc).__name__}: {exc}")
        return None

    def read_devices(self) -> list[dict] | None:
        """The devices' values only (no per-process calls), or None when off or degraded. Never raises."""
        if not self.active:
            return None
        try:
            return [self._device(d) for d in self._devices]
        except _Fatal as exc:
            self._degrade(str(exc))
        except Exception as exc:
            self._degrade(f"{type(exc).__name__}: {exc}")
        return None

    def _device(self, d: _Device) -> dict:
        nv = self._nv
        call = self._call
        h = d.handle
        util = call(d, "util", nv.nvmlDeviceGetUtilizationRates, h)
        mem = call(d, "mem", nv.nvmlDeviceGetMemoryInfo, h)
        temp = call(d, "temp", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
        power = call(d, "power", nv.nvmlDeviceGetPowerUsage, h)
        return {
            "index": d.index, "name": d.name, "uuid": d.uuid,
            "utilization_pct": None if util is None else int(util.gpu),
            "memory_utilization_pct": None if util is None else int(util.memory),
            "memory_total_bytes": None if mem is None else int(mem.total),
            "memory_used_bytes": None if mem is None else int(mem.used),
            "memory_free_bytes": None if mem is None else int(mem.free),
            "temperature_c": None if temp is None else int(temp),
            "power_w": None if power is None else power / 1000.0,
        }

    def _read(self):
        nv = self._nv
        call = self._call
        devices = []
        procs: dict[int, list[dict]] = {}
        for d in self._devices:
            h = d.handle
            devices.append(self._device(d))
            here: dict[int, dict] = {}
            for kind in ("compute", "graphics"):
                for p in self._running(d, kind):
                    pid = int(p.pid)
                    used = p.usedGpuMemory
                    used = None if used is None or used >= (1 << 64) - 1 else int(used)
                    e = here.get(pid)
                    if e is None:
                        here[pid] = {"pid": pid, "device": d.index, "type": kind, "memory_bytes": used,
                                     "sm_utilization_pct": None, "memory_utilization_pct": None}
                    else:
                        if kind not in e["type"]:
                            e["type"] += "+" + kind
                        if used is not None and (e["memory_bytes"] is None or used > e["memory_bytes"]):
                            e["memory_bytes"] = used
            if here:
                samples = call(d, "putil", nv.nvmlDeviceGetProcessUtilization, h, d.last_seen)
                if samples:
                    sums: dict[int, list] = {}
                    newest = d.last_seen
                    for s in samples:
                        ts = int(s.timeStamp)
                        if ts <= d.last_seen:
                            continue
                        if ts > newest:
                            newest = ts
                        acc = sums.get(int(s.pid))
                        if acc is None:
                            sums[int(s.pid)] = [int(s.smUtil), int(s.memUtil), 1]
                        else:
                            acc[0] += int(s.smUtil)
                            acc[1] += int(s.memUtil)
                            acc[2] += 1
                    d.last_seen = newest
                    for pid, (sm, mu, n) in sums.items():
                        e = here.get(pid)
                        if e is not None:
                            e["sm_utilization_pct"] = sm / n
                            e["memory_utilization_pct"] = mu / n
                for pid, e in here.items():
                    lst = procs.get(pid)
                    if lst is None:
                        procs[pid] = [e]
                    else:
                        lst.append(e)
        return devices, procs

    def _degrade(self, why: str) -> None:
        report_degrade(self, "GPU", why)

    def close(self) -> None:
        """Release NVML (once)."""
        if self._closed:
            return
        self._closed = True
        if self._nv is not None:
            try:
                self._nv.nvmlShutdown()
            except Exception:  # noqa: S110 - nothing to do about it at the end of a run
                pass


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def probe() -> GpuCollector:
    """Probe NVML once: an available collector, or an absent one with NVML's reason. Never raises."""
    if not _installed():
        return GpuCollector(False, NOT_INSTALLED)
    if not _library_loadable():
        return GpuCollector(False, LIBRARY_NOT_FOUND)
    try:
        import pynvml as nv
    except Exception as exc:  # a broken install
        return GpuCollector(False, f"cannot import pynvml: {exc}")
    try:
        nv.nvmlInit()
    except nv.NVMLError as exc:
        return GpuCollector(False, str(exc))
    except Exception as exc:
        return GpuCollector(False, f"NVML: {type(exc).__name__}: {exc}")
    try:
        n = nv.nvmlDeviceGetCount()
        if n == 0:
            _shutdown(nv)
            return GpuCollector(False, "NVML shows no GPU")
        devices = []
        for i in range(n):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            devices.append(_Device(i, h, _text(_maybe(nv, nv.nvmlDeviceGetName, h)),
                                   _text(_maybe(nv, nv.nvmlDeviceGetUUID, h))))
    except Exception as exc:
        _shutdown(nv)
        return GpuCollector(False, str(exc) if isinstance(exc, nv.NVMLError) else f"NVML: {type(exc).__name__}: {exc}")
    return GpuCollector(True, None, nv, devices)


def _maybe(nv, fn, *args):
    try:
        return fn(*args)
    except nv.NVMLError:
        return None


def _shutdown(nv) -> None:
    try:
        nv.nvmlShutdown()
    except Exception:  # noqa: S110
        pass
