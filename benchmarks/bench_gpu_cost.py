"""What the GPU collector costs: the probe on a host without an NVIDIA driver, and the sampler's own
work per sample with two GPUs (a fake NVML: tests/fakenvml.py).

1. Probe, no driver. In fresh interpreters (bytecode cached, as in a regular install), side by side:
   - denet's probe: ``denet.collectors.gpu`` imported and ``probe()`` called (is pynvml installed? can
     libnvidia-ml.so.1 be loaded? no: absent, without importing pynvml);
   - the naive probe: ``import pynvml; pynvml.nvmlInit()`` (what the probe would cost without its check).
2. Per sample, two GPUs. ``Sampler(ProcCollector(root)).sample().to_line()`` on a live tree of a root and
   one child, without and with the GPU collector, over a fake NVML whose functions return the binding's
   own structures (so this is denet's Python work per sample: building the values, attributing them to
   the tree, the records and their JSON). Real NVML calls add the driver's time on top (each call is a
   few µs to a few hundred µs, 7 per GPU per sample); this machine has no GPU to measure that.

CPU is ``time.process_time()``; medians over interleaved rounds. No timed asserts.

    .venv/bin/python benchmarks/bench_gpu_cost.py [--runs 21] [--samples 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYC = "/tmp/denet-bench-gpu-pyc"

PROBE_DENET = r"""
import ctypes, sys, time
import denet.monitor  # what `denet run` has imported before the probe (ctypes included)
t = time.perf_counter()
from denet.collectors.gpu import probe
c = probe()
dt = time.perf_counter() - t
print(f"{dt * 1e6:.1f} {c.available} {'pynvml' in sys.modules} {c.reason}")
"""

PROBE_NAIVE = r"""
import ctypes, sys, time
import denet.monitor
t = time.perf_counter()
import pynvml
try:
    pynvml.nvmlInit()
    ok, why = True, ""
except pynvml.NVMLError as e:
    ok, why = False, str(e)
dt = time.perf_counter() - t
print(f"{dt * 1e6:.1f} {ok} True {why}")
"""


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _probe_once(src: str) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-X", f"pycache_prefix={PYC}", "-c", src], capture_output=True, text=True,
                         env=_env(), check=True).stdout.split(" ", 3)
    return float(out[0]), " ".join(out[1:]).strip()


def probe_table(runs: int) -> None:
    _probe_once(PROBE_DENET)
    _probe_once(PROBE_NAIVE)  # write the bytecode caches
    a, b = [], []
    info_a = info_b = ""
    for _ in range(runs):
        t, info_a = _probe_once(PROBE_DENET)
        a.append(t)
        t, info_b = _probe_once(PROBE_NAIVE)
        b.append(t)
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"## Probe without an NVIDIA driver ({runs} interleaved fresh interpreters)")
    print(f"denet's probe says: available, pynvml imported, reason = {info_a}")
    print(f"naive probe says:   available, pynvml imported, reason = {info_b}")
    print()
    print("| probe | median µs | min µs |")
    print("|---|---:|---:|")
    def us(v: float) -> str:
        return f"{v:,.0f}".replace(",", " ")

    print(f"| denet (`probe()`, module import included) | {us(ma)} | {us(min(a))} |")
    print(f"| naive (`import pynvml; nvmlInit()`) | {us(mb)} | {us(min(b))} |")
    print(f"\nnaive / denet: {mb / ma:.1f}")


def sample_table(samples: int, rounds: int) -> None:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    sys.path.insert(0, REPO)
    import fakenvml
    import pynvml

    from denet.collectors import gpu as gpumod
    from denet.collectors.proc import ProcCollector
    from denet.sampler import Sampler

    root = subprocess.Popen([sys.executable, "-c", "import subprocess,time; p=subprocess.Popen(['sleep','600']); "
                             "print(p.pid, flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    child = int(root.stdout.readline())
    outside = subprocess.Popen(["sleep", "600"])
    try:
        fake = fakenvml.install(pynvml, fakenvml.two_devices({"pid": root.pid}, {"pid": child}, outside.pid))
        gpu = gpumod.probe()
        col_a, col_b = ProcCollector(root.pid), ProcCollector(root.pid)
        plain, withgpu = Sampler(col_a), Sampler(col_b, gpu=gpu)

        def cost(s) -> float:
            for _ in range(5):
                s.sample().to_line()
            t = time.process_time()
            for _ in range(samples):
                s.sample().to_line()
            return (time.process_time() - t) / samples * 1e6

        def read_cost() -> float:
            t = time.process_time()
            for _ in range(samples):
                gpu.read()
            return (time.process_time() - t) / samples * 1e6

        a, b, r = [], [], []
        for _ in range(rounds):
            a.append(cost(plain))
            b.append(cost(withgpu))
            r.append(read_cost())
        line = withgpu.sample().to_line()
        nbytes_plain, nbytes_gpu = len(plain.sample().to_line()), len(line)
        ma, mb, mr = statistics.median(a), statistics.median(b), statistics.median(r)
        calls = sum(fake.calls.values())
        print(f"\n## Per sample, 2 GPUs, a tree of 2 processes and 1 process outside it ({samples} samples, "
              f"median of {rounds} rounds)")
        print()
        print("| sampler | µs per sample | JSON bytes per tree record |")
        print("|---|---:|---:|")
        print(f"| without the GPU collector | {ma:.0f} | {nbytes_plain} |")
        print(f"| with the GPU collector (fake NVML) | {mb:.0f} | {nbytes_gpu} |")
        print(f"\nadded per sample: {mb - ma:.0f} µs ({mb / ma:.2f}x), of which GpuCollector.read(): {mr:.0f} µs "
              f"(14 fake NVML calls per read; {calls} calls in all)")
        col_a.close()
        col_b.close()
    finally:
        for p in (root, outside):
            p.kill()
            p.wait()
        try:
            os.kill(child, 9)
        except ProcessLookupError:
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    probe_table(a.runs)
    sample_table(a.samples, a.rounds)
    print(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
