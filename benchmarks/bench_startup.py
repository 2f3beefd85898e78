"""Start-up cost: the wall time ``denet run -- true`` adds over a bare ``true``.

Installs the repository (non-editable, as users get it) into a temporary venv, then times, in
interleaved rounds, ``/bin/true``, ``<venv>/bin/python -c pass`` (reference), ``denet run -- true``,
``denet --json run -- true`` and ``denet -o FILE run -- true``, and reports medians. Finally it prints
the most expensive imports of ``python -X importtime -m denet run -- true``. No timed asserts.

    .venv/bin/python benchmarks/bench_startup.py [REPO] [--runs 21] [--venv /tmp/denet-bench-venv]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from _machine import loadavg, machine  # benchmarks/ is the script directory

TARGET_MS = 40.0


def _pip(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{(r.stderr or r.stdout)[-2000:]}")


def install(repo: str, venv: str) -> str:
    """A venv with a regular (non-editable) install of ``repo``; reinstalls denet itself every time."""
    py = os.path.join(venv, "bin", "python")
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not os.path.exists(py):
        print(f"creating {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        _pip(pip + [repo])
    else:
        print(f"reusing {venv}; reinstalling denet from {repo} ...", flush=True)
        _pip(pip + ["--force-reinstall", "--no-deps", repo])
    # Make sure what we time is the copy in site-packages, not the checkout.
    r = subprocess.run([py, "-I", "-c", "import denet, sys; print(denet.__file__)"], capture_output=True,
                       text=True, cwd="/", check=True)
    where = r.stdout.strip()
    if not where.startswith(os.path.realpath(venv)) and not where.startswith(venv):
        sys.exit(f"denet in {venv} is not a regular install (imported from {where})")
    print(f"denet imported from {where}")
    return venv


def time_cmd(argv: list[str]) -> float:
    """Wall seconds from spawn to reaped, output discarded."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                   (os.POSIX_SPAWN_DUP2, devnull, 2)]
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        dt = time.perf_counter() - t0
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {status}")
    return dt


def import_times(py: str, true: str) -> list[tuple[int, int, str]]:
    """(cumulative us, self us, module) from ``-X importtime``, most expensive first."""
    r = subprocess.run([py, "-X", "importtime", "-m", "denet", "run", "--", true], capture_output=True,
                       text=True, cwd="/")
    rows = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), int(m.group(1)), m.group(3)[1:] + m.group(4)))
    return sorted(rows, reverse=True)


def main() -> int:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", nargs="?", default=here, help="repository to install (default: this checkout)")
    ap.add_argument("--runs", type=int, default=21, help="rounds (each command once per round; >= 15)")
    ap.add_argument("--venv", default="/tmp/denet-bench-venv", help="venv for the regular install")
    args = ap.parse_args()
    if args.runs < 15:
        print(f"note: --runs {args.runs} is below the 15 rounds the target is stated for")

    print(f"machine: {machine()}; load average {loadavg()}")
    venv = install(os.path.abspath(args.repo), args.venv)
    py = os.path.join(venv, "bin", "python")
    denet = os.path.join(venv, "bin", "denet")
    true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
    out = os.path.join(tempfile.mkdtemp(prefix="denet-bench-"), "x.jsonl")
    cmds = {
        "true": [true],
        "python -c pass": [py, "-c", "pass"],
        "denet run -- true": [denet, "run", "--", true],
        "denet --json run -- true": [denet, "--json", "run", "--", true],
        "denet -o FILE run -- true": [denet, "-o", out, "--clobber", "run", "--", true],
    }
    for argv in cmds.values():  # warm the page cache
        time_cmd(argv)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.runs):
        for name, argv in cmds.items():
            times[name].append(time_cmd(argv))
    os.unlink(out)
    os.rmdir(os.path.dirname(out))

    base = statistics.median(times["true"])
    print(f"\n{args.runs} interleaved rounds, wall ms (spawn to reap)")
    print(f"{'command':<27} | {'median':>7} | {'min':>7} | {'max':>7} | {'added over true':>15}")
    print("-" * 74)
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<27} | {med * 1e3:>7.1f} | {min(ts) * 1e3:>7.1f} | {max(ts) * 1e3:>7.1f} | "
              f"{(med - base) * 1e3:>15.1f}")
    py_med = statistics.median(times["python -c pass"])
    added = statistics.median(times["denet run -- true"]) - base
    paired = statistics.median(d - t for d, t in zip(times["denet run -- true"], times["true"], strict=True))
    print(f"\ndenet run -- true: {added * 1e3:.1f} ms added (difference of medians; "
          f"median of paired differences {paired * 1e3:.1f} ms), of which the bare interpreter start "
          f"is {(py_med - base) * 1e3:.1f} ms")
    print(f"target (<= {TARGET_MS:.0f} ms added, median): {'met' if added * 1e3 <= TARGET_MS else 'NOT met'}")

    rows = import_times(py, true)
    print("\n10 most expensive imports of `python -X importtime -m denet run -- true` (cumulative, µs)")
    print(f"{'cumulative':>10} | {'self':>7} | module")
    for cum, own, mod in rows[:10]:
        print(f"{cum:>10} | {own:>7} | {mod}")
    print(f"\nload average at the end: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
