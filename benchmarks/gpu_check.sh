#!/usr/bin/env bash
# The GPU collector on a real NVIDIA GPU: the one check to run on a machine that has one.
#
#   bash benchmarks/gpu_check.sh [--keep] [--workload 'CMD ...']
#
# 1. Installs this checkout with the `gpu` extra into a fresh venv (/tmp/denet-gpu-check-venv, with the
#    system's site-packages visible so that an installed PyTorch can be used).
# 2. Runs `denet run` around a small CUDA workload: by default a PyTorch script that allocates about
#    1 GiB on GPU 0 and multiplies matrices for about 6 s, started as a *child* of `sh` (so the GPU
#    process is a descendant of the root, as in a workflow step). --workload CMD runs CMD instead.
# 3. Checks, and prints a verdict per check:
#    - the metadata says the GPU collector is available;
#    - device utilisation rises during the workload (the largest reading is above the first one);
#    - the workload's process appears in the tree's `aggregated.gpu.processes` with its memory (pid
#      of a process of the tree, at least 256 MiB), and the summary's peak tree GPU memory says so too;
#    - every GPU's values have the declared units (bytes, %, °C, W) or are null.
# Exit status: 0 when every check passed, 1 otherwise, 2 when the machine cannot run the check.
# PYTHON=/path/to/python selects the interpreter for the venv (default: python3).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV=/tmp/denet-gpu-check-venv
WORK="$(mktemp -d /tmp/denet-gpu-check.XXXXXX)"
KEEP=0
WORKLOAD=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --workload) shift; WORKLOAD="$1" ;;
    *) echo "usage: $0 [--keep] [--workload 'CMD ...']" >&2; exit 2 ;;
  esac
  shift
done
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept: $WORK"; fi; }
trap cleanup EXIT

echo "== machine"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,persistence_mode --format=csv || true
else
  echo "nvidia-smi not found: this check needs an NVIDIA GPU and driver" >&2
  exit 2
fi

echo "== install ($REPO[gpu] into $VENV)"
rm -rf "$VENV"
"$PYTHON" -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "$REPO[gpu]"
"$VENV/bin/python" -c 'import importlib.metadata as m; print("denet", m.version("denet"), "nvidia-ml-py", m.version("nvidia-ml-py"))'

if [ -z "$WORKLOAD" ]; then
  if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "PyTorch with CUDA is not importable from $PYTHON: give --workload 'CMD ...' (a CUDA program)" >&2
    exit 2
  fi
  cat >"$WORK/workload.py" <<'EOF'
import time
import torch

time.sleep(0.8)  # let denet take a few samples before the GPU is busy
x = torch.randn(16384, 16384, device="cuda:0")  # 1 GiB
end = time.time() + 6.0
n = 0
while time.time() < end:
    y = x @ x
    torch.cuda.synchronize()
    n += 1
print(f"workload: {n} matmuls of 16384^2, {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB allocated")
EOF
  # `; exit $?` keeps sh from exec-ing python: the CUDA process is the root's child
  WORKLOAD="sh -c '\"$VENV/bin/python\" \"$WORK/workload.py\"; exit \$?'"
fi

echo "== denet run -- $WORKLOAD"
SECONDS=0
set +e
eval "\"$VENV/bin/denet\" --debug --out \"$WORK/run.jsonl\" run -i 100 -m 250 -- $WORKLOAD"
rc=$?
set -e
echo "exit code $rc, about ${SECONDS} s"

echo "== checks"
"$VENV/bin/python" - "$WORK/run.jsonl" <<'EOF'
import json
import sys

recs = [json.loads(line) for line in open(sys.argv[1])]
meta = next(r for r in recs if r["kind"] == "metadata")
trees = [r for r in recs if r["kind"] == "tree" and r.get("aggregated")]
summ = next((r for r in recs if r["kind"] == "summary"), {})
results = []


def check(name, ok, detail):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")


cap = meta["capabilities"]["gpu"]
check("collector available", cap.get("available") is True, json.dumps(cap))
gpus = [t["aggregated"]["gpu"] for t in trees if "gpu" in t["aggregated"]]
check("records carry GPU values", len(gpus) == len(trees) > 0, f"{len(gpus)} of {len(trees)} tree records")
if gpus:
    utils = [max((d["utilization_pct"] or 0) for d in g["devices"]) for g in gpus]
    check("device utilisation rises", max(utils) > utils[0],
          f"first {utils[0]}%, largest {max(utils)}%, series {utils[:40]}")
    best = None
    for t, g in zip(trees, gpus):
        pids = {meta["pid"]} | {c["pid"] for c in t["children"]}
        for p in g["processes"]:
            if p["pid"] in pids and (best is None or (p["memory_bytes"] or 0) > (best["memory_bytes"] or 0)):
                best = p
    ok = best is not None and (best["memory_bytes"] or 0) >= 256 << 20
    check("workload's process memory in the tree", ok,
          "none" if best is None else f"pid {best['pid']} on GPU {best['device']} ({best['type']}): "
          f"{(best['memory_bytes'] or 0) / 2**20:.0f} MiB, SM {best['sm_utilization_pct']}%")
    peak = summ.get("peak_gpu_tree_memory_bytes") or 0
    check("summary's peak tree GPU memory", peak >= 256 << 20,
          f"{peak / 2**20:.0f} MiB; device peak {(summ.get('peak_gpu_memory_used_bytes') or 0) / 2**20:.0f} MiB, "
          f"max util {summ.get('max_gpu_utilization_pct')}%, mean {summ.get('avg_gpu_utilization_pct')}%")
    bad = []
    for g in gpus:
        for d in g["devices"]:
            for k in ("utilization_pct", "memory_utilization_pct"):
                if d[k] is not None and not 0 <= d[k] <= 100:
                    bad.append(f"GPU {d['index']} {k}={d[k]}")
            if d["memory_total_bytes"] is not None and d["memory_total_bytes"] < 1 << 28:
                bad.append(f"GPU {d['index']} memory_total_bytes={d['memory_total_bytes']} (not bytes?)")
            if d["power_w"] is not None and not 1 <= d["power_w"] <= 2000:
                bad.append(f"GPU {d['index']} power_w={d['power_w']} (not W?)")
            if d["temperature_c"] is not None and not 5 <= d["temperature_c"] <= 120:
                bad.append(f"GPU {d['index']} temperature_c={d['temperature_c']}")
    check("units", not bad, "; ".join(sorted(set(bad))[:5]) or "bytes, %, °C, W as declared")
    last = gpus[-1]["devices"]
    print("devices:", "; ".join(f"{d['index']} {d['name']} {d['uuid']} temp {d['temperature_c']} power {d['power_w']}"
                                for d in last))
n_ok = sum(results)
print(f"\nVERDICT: {'OK' if all(results) else 'NOT OK'} ({n_ok} of {len(results)} checks passed)")
sys.exit(0 if all(results) else 1)
EOF
