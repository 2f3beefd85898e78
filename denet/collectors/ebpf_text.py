"""The eBPF values of a summary as a few lines of text (``denet stats``). Plain values in, text out."""

from __future__ import annotations

__all__ = ["ebpf_lines"]


def _ms(ns) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f} ms"


def ebpf_lines(d: dict, indent: str = "  ") -> list[str]:
    """Readable lines for an ``ebpf_aggregated`` dict (as read back from a file)."""
    out = []
    src = d.get("source", "?")
    est = " (estimate: schedstat)" if d.get("estimate") else ""
    off = d.get("offcpu") or {}
    out.append(f"{indent}ebpf: source {src}{est}")
    if d.get("reason"):
        out.append(f"{indent}  why no eBPF: {d['reason']}")
    parts = [f"off-CPU {_ms(off.get('total_time_ns'))}"]
    for key, label in (("sleeping_ns", "sleeping"), ("io_ns", "I/O"), ("blocked_ns", "blocked"),
                       ("preempted_ns", "preempted"), ("oncpu_ns", "on CPU")):
        if off.get(key) is not None:
            parts.append(f"{label} {_ms(off[key])}")
    out.append(f"{indent}  " + ", ".join(parts))
    for t in (off.get("top_blocking_threads") or [])[:5]:
        out.append(f"{indent}    thread {t.get('pid')}/{t.get('tid')} {t.get('comm', '')}: {t.get('time_ms', 0):.1f} ms "
                   f"({t.get('percentage', 0):.1f} %)")
    sc = d.get("syscalls")
    if sc:
        cats = ", ".join(f"{k} {v}" for k, v in sorted((sc.get("by_category") or {}).items(), key=lambda kv: -kv[1])
                         if v)
        out.append(f"{indent}  syscalls {sc.get('total')} ({sc.get('avg_rate_per_sec', 0):.0f}/s): {cats}")
        top = ", ".join(f"{s.get('name')} {s.get('count')}" for s in (sc.get("top_syscalls") or [])[:8])
        if top:
            out.append(f"{indent}    top: {top}")
    beh = d.get("behavior")
    if beh:
        out.append(f"{indent}  behaviour: {beh.get('classification')} ({beh.get('reason')})")
    for s in d.get("stacks") or []:
        out.append(f"{indent}  waited {s.get('time_ms', 0):.1f} ms in {s.get('comm', '')} {s.get('pid')}/{s.get('tid')} at:")
        for fr in (s.get("frames") or ["[no user stack]"])[:8]:
            out.append(f"{indent}      {fr}")
    return out
