"""What the process ledger costs: denet's own CPU with and without it, side by side.

(a) In the tree: ``denet -q run [--no-ledger] -- sh -c 'N x /bin/true'`` (a fork-heavy step).
    denet's own CPU (``--debug``'s ``own_cpu``: getrusage SELF at the end, interpreter start-up
    included) with the ledger and without, interleaved, ``--rounds`` times each.
(b) Outside the tree: ``denet run -- sleep`` (an idle step) while another process, not under
    denet, starts N ``/bin/true`` as fast as it can. denet's own CPU with the ledger and without,
    and the wall time of that outside loop with denet-with-ledger, denet-without-ledger and no
    denet running (the cost a machine-wide listener puts on everyone else: the kernel builds a
    taskstats message for every exit, and an event for every fork, exec and exit).

(c) Accuracy: the sum of the ledger's per-process CPU (taskstats) against ``os.wait4`` of the whole
    run, for a pipeline of four tools with about a second of CPU and for N tiny processes (run
    under the collector in this process; needs root for taskstats).

(d) Short children one at a time: ``denet run [--no-ledger] -- sh -c 'N x python -c pass'``
    (``--child`` for another command). Each python lives ~15 ms, so every one of them brings its
    own fork, exec and exit events: the case where the ledger's wake-ups, not its per-event work,
    cost the most. denet's own CPU with the ledger
    and without, its voluntary context switches (wake-ups), and how many of the N children kept
    their command line (the ledger reads ``/proc/PID/cmdline`` at the exec event; a child read
    after its end keeps only its name), for each ``--gaps`` value (seconds,
    ``denet.monitor.LEDGER_EXEC_GAP_S``: the least time between two drains that exec events bring;
    the first is the default) and ``eager`` (every socket drained as soon as it is readable, with
    no gap: the monitor loop before exec events were read apart and the rest in batches).

No timed asserts; the tables say what was measured.

    .venv/bin/python benchmarks/bench_ledger.py [--processes 2000] [--rounds 5] [--parts a,b,c,d]
                                                [--short 300] [--gaps 0.005,eager,0,0.02] [--child CMD]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

DENET = [sys.executable, "-m", "denet"]


def loop(n: int) -> str:
    return f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"


def debug_info(stderr: bytes) -> dict:
    line = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.startswith("denet: debug: ") and
            "own_cpu=" in ln]
    if not line:
        raise RuntimeError(f"no --debug line in: {stderr[-500:]!r}")
    return dict(kv.split("=", 1) for kv in line[-1].split("debug: ", 1)[1].split() if "=" in kv)


def own_cpu(info: dict) -> float:
    return float(info["own_cpu"].rstrip("s"))


def in_tree(n: int, ledger: bool) -> tuple[float, dict]:
    extra = [] if ledger else ["--no-ledger"]
    r = subprocess.run(DENET + ["--debug", "-q", "run", *extra, "--", "sh", "-c", loop(n)], capture_output=True,
                       stdin=subprocess.DEVNULL, check=True)
    info = debug_info(r.stderr)
    return own_cpu(info), info


def outside(n: int, ledger: bool | None, tmp: str) -> tuple[float | None, float, dict]:
    """(denet's own CPU or None without denet, wall seconds of the outside loop, debug info)."""
    den = None
    if ledger is not None:
        out = os.path.join(tmp, "idle.jsonl")
        extra = [] if ledger else ["--no-ledger"]
        den = subprocess.Popen(DENET + ["--debug", "--out", out, "--clobber", "run", *extra, "--", "sleep", "1000"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not (os.path.exists(out) and b'"kind":"tree"' in open(out, "rb").read()):
            if time.monotonic() > deadline:
                den.kill()
                raise RuntimeError("denet did not start")
            time.sleep(0.01)
    t = time.perf_counter()
    subprocess.run(["sh", "-c", loop(n)], check=True)
    wall = time.perf_counter() - t
    if den is None:
        return None, wall, {}
    den.send_signal(signal.SIGTERM)
    _, err = den.communicate(timeout=30)
    info = debug_info(err)
    return own_cpu(info), wall, info


# denet.cli.main with LEDGER_EXEC_GAP_S set, and getrusage SELF's context switches at its end.
_WINDOW_MAIN = """import os, resource, sys
import denet.monitor as m
if sys.argv[1] == "eager":
    from denet.collectors.ledger import EventLedger
    EventLedger.wake_fds = EventLedger.fds
    m.LEDGER_EXEC_GAP_S = 0.0
else:
    m.LEDGER_EXEC_GAP_S = float(sys.argv[1])
_exit = os._exit
def ex(code):
    r = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write(f"denet: debug: nvcsw={r.ru_nvcsw}\\n")
    _exit(code)
os._exit = ex
from denet.cli import main
main(sys.argv[2:])
ex(0)
"""


def short(n: int, window: str | None, tmp: str, child: list[str]) -> tuple[float, int, int, int]:
    """(own CPU s, voluntary context switches, children with their argv, children recorded) of
    ``n`` sequential ``child`` under denet; ``window`` None: ``--no-ledger``."""
    out = os.path.join(tmp, "short.jsonl")
    comm = os.path.basename(child[0])[:15]
    script = f"i=0; while [ $i -lt {n} ]; do {' '.join(child)}; i=$((i+1)); done"
    extra = ["--no-ledger"] if window is None else []
    r = subprocess.run([sys.executable, "-c", _WINDOW_MAIN, window or "0", "--debug", "-q", "-o", out,
                        "--clobber", "run", *extra, "--", "sh", "-c", script],
                       capture_output=True, stdin=subprocess.DEVNULL, check=True)
    info = debug_info(r.stderr)
    nvcsw = int([ln for ln in r.stderr.decode().splitlines() if "nvcsw=" in ln][-1].split("nvcsw=")[1])
    kept = seen = 0
    with open(out, "rb") as fh:
        for line in fh:
            if line.startswith(b'{"kind":"process"'):
                rec = json.loads(line)
                if rec["name"] == comm:
                    seen += 1
                    kept += rec["command"] == child
    return own_cpu(info), nvcsw, kept, seen


def short_children(n: int, rounds: int, windows: list[str], child: list[str]) -> None:
    what = " ".join(["python" if child[0] == sys.executable else child[0], *child[1:]])
    print(f"\n## (d) {n} sequential `{what}` in the tree: denet's own CPU, median of {rounds}")
    print("| denet | own CPU s | added per child µs | wake-ups (nvcsw) | children with argv | recorded |")
    print("|---|---:|---:|---:|---:|---:|")
    runs: dict = {w: [] for w in [None, *windows]}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for w in runs:
                runs[w].append(short(n, w, tmp, child))
    base = med([r[0] for r in runs[None]])
    for w, rs in runs.items():
        cpu = med([r[0] for r in rs])
        name = ("--no-ledger" if w is None else "ledger, eager (before batching)" if w == "eager" else
                f"ledger, exec gap {float(w) * 1000:g} ms")
        added = "" if w is None else f"{(cpu - base) / n * 1e6:.0f}"
        argv = "" if w is None else f"{min(r[2] for r in rs)}–{max(r[2] for r in rs)} of {n}"
        seen = "" if w is None else f"{min(r[3] for r in rs)}–{max(r[3] for r in rs)}"
        print(f"| {name} | {cpu:.3f} | {added} | {med([r[1] for r in rs]):.0f} | {argv} | {seen} |")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--parts", default="a,b,c,d", help="which measurements (comma-separated subset of a,b,c,d)")
    ap.add_argument("--short", type=int, default=300, help="children in (d)")
    ap.add_argument("--child", default="", help="the command of each child in (d) (default: python -c pass)")
    ap.add_argument("--gaps", default="0.005,eager,0,0.02",
                    help="LEDGER_EXEC_GAP_S values (seconds) compared in (d), and 'eager'")
    a = ap.parse_args()
    n = a.processes
    parts = set(a.parts.split(","))
    print(f"# {platform.node()}: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"euid {os.geteuid()}, load {os.getloadavg()[0]:.2f}")
    if "a" in parts:
        in_tree_table(n, a.rounds)
    if "b" in parts:
        outside_table(n, a.rounds)
    if "c" in parts:
        accuracy(n, a.rounds)
    if "d" in parts:
        short_children(a.short, a.rounds, a.gaps.split(","), shlex.split(a.child) if a.child else
                       [sys.executable, "-c", "pass"])


def in_tree_table(n: int, rounds: int) -> None:

    on, off, infos = [], [], []
    for _ in range(rounds):
        c, info = in_tree(n, True)
        on.append(c)
        infos.append(info)
        off.append(in_tree(n, False)[0])
    print(f"\n## (a) {n} sequential /bin/true in the tree: denet's own CPU, median of {rounds}")
    print(f"ledger source: {infos[-1].get('ledger')}; events kept/read: {infos[-1].get('ledger_events')}")
    print("| denet | own CPU s | per process µs |")
    print("|---|---:|---:|")
    print(f"| --no-ledger | {med(off):.3f} | |")
    print(f"| ledger | {med(on):.3f} | {(med(on) - med(off)) / n * 1e6:.0f} (added) |")
    print(f"ratio ledger / no ledger: {med(on) / med(off):.2f}")


def outside_table(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[str, list] = {"none": [], "off": [], "on": []}
        cpus: dict[str, list] = {"off": [], "on": []}
        ev = ""
        for _ in range(rounds):
            for key, ledger in (("none", None), ("off", False), ("on", True)):
                c, wall, info = outside(n, ledger, tmp)
                rows[key].append(wall)
                if c is not None:
                    cpus[key].append(c)
                if key == "on":
                    ev = info.get("ledger_events", "")
    print(f"\n## (b) an idle step (`denet run -- sleep`) while {n} /bin/true run outside its tree, "
          f"median of {rounds}")
    print(f"ledger events kept/read: {ev}")
    print("| denet | own CPU s | outside loop wall s | loop ratio to no denet |")
    print("|---|---:|---:|---:|")
    base = med(rows["none"])
    print(f"| not running | | {base:.3f} | 1.00 |")
    print(f"| --no-ledger | {med(cpus['off']):.3f} | {med(rows['off']):.3f} | {med(rows['off']) / base:.2f} |")
    print(f"| ledger | {med(cpus['on']):.3f} | {med(rows['on']):.3f} | {med(rows['on']) / base:.2f} |")
    print(f"denet's own CPU, ledger / no ledger: {med(cpus['on']) / med(cpus['off']):.2f}; added per outside "
          f"process: {(med(cpus['on']) - med(cpus['off'])) / n * 1e6:.0f} µs")
    if re.search(r"\d", ev):
        kept, read = (int(x) for x in ev.split("/"))
        print(f"events of other processes dropped: {read - kept} of {read}")


def direct(script: str) -> tuple[float, float, int]:
    """(ledger CPU sum, wait4 CPU, processes) of ``sh -c script`` under the collector in this process."""
    import select

    from denet.collectors.ledger import EventLedger

    led = EventLedger()
    if led.source != "taskstats":
        led.close()
        raise RuntimeError(f"no taskstats: {led.taskstats_reason}")
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", script], os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    led.track_root(pid, os.getpid(), time.monotonic(), ["sh"])
    poller = select.poll()
    for fd in led.fds():
        poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    recs = []
    while True:
        ready = poller.poll(1000)
        recs += led.drain()
        if any(fd == pidfd for fd, _ in ready):
            break
    os.close(pidfd)
    _, _, ru = os.wait4(pid, 0)
    recs += led.finish()
    return sum(r["cpu_user_secs"] + r["cpu_system_secs"] for r in recs), ru.ru_utime + ru.ru_stime, len(recs)


def accuracy(n: int, rounds: int) -> None:
    print(f"\n## (c) ledger CPU (sum over processes, taskstats) / os.wait4 of the run, {rounds} rounds")
    print("| workload | processes | wait4 CPU s (median) | ratio min | ratio median | ratio max |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, script in (("seq 3000000 \\| gzip \\| gunzip \\| wc -l", "seq 3000000 | gzip | gunzip | wc -l"),
                         (f"{n} x /bin/true", loop(n))):
        try:
            res = [direct(script) for _ in range(rounds)]
        except (RuntimeError, OSError) as exc:
            print(f"| {name} | skipped: {exc} | | | | |")
            continue
        ratios = [a / b for a, b, _ in res]
        print(f"| {name} | {res[0][2]} | {med([b for _, b, _ in res]):.3f} | {min(ratios):.3f} | {med(ratios):.3f} "
              f"| {max(ratios):.3f} |")


if __name__ == "__main__":
    main()
