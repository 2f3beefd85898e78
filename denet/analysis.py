"""List-of-dict helpers of the Python API (compatible with the Rust denet's ``denet.analysis``).

They work on records already read back (``json.loads`` of the API's strings, or
:func:`load_metrics`), never on live processes. Flat ``sample`` records are what most of them
expect; for the default ``tree`` records pass ``[r["aggregated"] for r in records]``, except to
:func:`process_tree_analysis`, which reads trees itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

__all__ = [
    "aggregate_metrics",
    "convert_format",
    "find_peaks",
    "load_metrics",
    "process_tree_analysis",
    "resource_utilization",
    "save_metrics",
]

AGGREGATED_FIELDS = ("cpu_usage", "mem_rss_kb", "mem_vms_kb", "disk_read_bytes", "disk_write_bytes",
                     "sys_net_rx_bytes", "sys_net_tx_bytes", "thread_count", "uptime_secs")
_CSV_FIRST = ("ts_ms", "cpu_usage", "mem_rss_kb", "mem_vms_kb")
_MIB = 1024 * 1024


def aggregate_metrics(metrics: Sequence[dict], window_size: int = 10, method: str = "mean") -> list[dict]:
    """Consecutive windows of ``window_size`` items, each reduced to one item.

    Each result is a copy of the window's first item with the numeric fields (``AGGREGATED_FIELDS``
    present in that item) replaced by the window's mean, max or min, ``ts_ms`` from the window's last
    item, and ``_aggregated``, ``_window_size`` (items in this window) and ``_aggregation_method``.
    ``window_size <= 1`` returns the input unchanged; an empty input gives ``[]``.
    """
    if not metrics:
        return []
    if window_size <= 1:
        return metrics  # type: ignore[return-value]
    reducers = {"mean": lambda v: sum(v) / len(v), "max": max, "min": min}
    try:
        reduce = reducers[method]
    except KeyError:
        raise ValueError(f"Unknown method: {method!r} (expected 'mean', 'max' or 'min')") from None
    out = []
    for i in range(0, len(metrics), window_size):
        window = metrics[i : i + window_size]
        item = dict(window[0])
        for name in AGGREGATED_FIELDS:
            if name in item:
                values = [m[name] for m in window if isinstance(m.get(name), int | float)]
                if values:
                    item[name] = reduce(values)
        if "ts_ms" in window[-1]:
            item["ts_ms"] = window[-1]["ts_ms"]
        item["_aggregated"] = True
        item["_window_size"] = len(window)
        item["_aggregation_method"] = method
        out.append(item)
    return out


def find_peaks(metrics: Sequence[dict], field: str = "cpu_usage", threshold: float = 0.8,
               window_size: int = 5) -> list[dict]:
    """Items at the peaks of ``field``.

    The threshold is ``threshold`` times the raw maximum of the field. With ``window_size > 1`` the
    values are first smoothed by a centred moving average (``window_size // 2`` items on each side,
    fewer at the ends). A peak is a strict local maximum of the (smoothed) values, never the first or
    last item, at or above the threshold. ``[]`` when empty or when any item lacks ``field``.
    """
    if not metrics or any(field not in m for m in metrics):
        return []
    values = [m[field] for m in metrics]
    limit = threshold * max(values)
    if window_size > 1:
        half = window_size // 2
        n = len(values)
        smoothed = []
        for i in range(n):
            lo, hi = max(0, i - half), min(n, i + half + 1)
            smoothed.append(sum(values[lo:hi]) / (hi - lo))
    else:
        smoothed = values
    return [metrics[i] for i in range(1, len(smoothed) - 1)
            if smoothed[i] > smoothed[i - 1] and smoothed[i] > smoothed[i + 1] and smoothed[i] >= limit]


def _stats(prefix: str, suffix: str, values: list) -> dict:
    import statistics

    out = {
        f"avg_{prefix}{suffix}": sum(values) / len(values),
        f"max_{prefix}{suffix}": max(values),
        f"min_{prefix}{suffix}": min(values),
        f"median_{prefix}{suffix}": statistics.median(values),
    }
    if len(values) > 1:
        out[f"stdev_{prefix}{suffix}"] = statistics.stdev(values)
    return out


def resource_utilization(metrics: Sequence[dict]) -> dict:
    """Statistics over a list of samples.

    ``avg_cpu, max_cpu, min_cpu, median_cpu, stdev_cpu`` (stdev only with more than one item);
    the same for memory in MiB (``*_mem_mb``, from ``mem_rss_kb``); ``total_read_mb``,
    ``total_write_mb``, ``total_sys_net_rx_mb``, ``total_sys_net_tx_mb`` (the last item's counters,
    in MiB); ``avg_threads, max_threads, min_threads``; ``total_time_sec`` (last minus first
    ``ts_ms``). Each figure only when every item has its source key; ``{}`` when empty.
    """
    if not metrics:
        return {}

    def every(key: str) -> bool:
        return all(key in m for m in metrics)

    out: dict = {}
    if every("cpu_usage"):
        out.update(_stats("cpu", "", [m["cpu_usage"] for m in metrics]))
    if every("mem_rss_kb"):
        out.update(_stats("mem", "_mb", [m["mem_rss_kb"] / 1024 for m in metrics]))
    last = metrics[-1]
    for key, name in (("disk_read_bytes", "total_read_mb"), ("disk_write_bytes", "total_write_mb"),
                      ("sys_net_rx_bytes", "total_sys_net_rx_mb"), ("sys_net_tx_bytes", "total_sys_net_tx_mb")):
        if every(key):
            out[name] = last[key] / _MIB
    if every("thread_count"):
        threads = [m["thread_count"] for m in metrics]
        out.update(avg_threads=sum(threads) / len(threads), max_threads=max(threads), min_threads=min(threads))
    if every("ts_ms"):
        out["total_time_sec"] = (last["ts_ms"] - metrics[0]["ts_ms"]) / 1000
    return out


def _csv_cell(v):
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, separators=(",", ":"))
    return v


def convert_format(metrics: Sequence[dict] | str, to_format: str = "csv", indent: int | None = None) -> str:
    """The items as ``json`` (a JSON array, ``indent`` as in :func:`json.dumps`), ``jsonl`` (one
    object per line, no trailing newline) or ``csv``.

    CSV: the header has those of ``ts_ms, cpu_usage, mem_rss_kb, mem_vms_kb`` present in any item,
    then every other key sorted; nested values are written as compact JSON; every line ends with a
    newline. A ``str`` argument is the path of a JSON array or JSONL file (read with
    :func:`load_metrics`). Unknown format: ``ValueError("Unknown format: ...")``; empty: ``""``.
    """
    fmt = to_format.lower() if isinstance(to_format, str) else to_format
    if fmt not in ("json", "jsonl", "csv"):
        raise ValueError(f"Unknown format: {to_format}")
    if isinstance(metrics, str | os.PathLike):
        metrics = load_metrics(os.fspath(metrics))
    if not metrics:
        return ""
    if fmt == "json":
        return json.dumps(list(metrics), indent=indent)
    if fmt == "jsonl":
        return "\n".join(json.dumps(m) for m in metrics)
    import csv
    import io

    keys: set[str] = set()
    for m in metrics:
        keys.update(m)
    header = [k for k in _CSV_FIRST if k in keys] + sorted(k for k in keys if k not in _CSV_FIRST)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for m in metrics:
        writer.writerow({k: _csv_cell(v) for k, v in m.items()})
    return buf.getvalue()


def _num(d, key: str) -> float:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _read(item: dict, key: str, nested: str) -> float:
    """``item[key]``, or ``item[nested][key]`` for denet's tree records (``parent`` / child ``metrics``)."""
    if key in item:
        return _num(item, key)
    return _num(item.get(nested), key)


def _proc_stats(cpu: list, mem_mb: list, threads: list) -> dict:
    return {
        "avg_cpu": sum(cpu) / len(cpu),
        "max_cpu": max(cpu),
        "avg_memory_mb": sum(mem_mb) / len(mem_mb),
        "max_memory_mb": max(mem_mb),
        "avg_threads": sum(threads) / len(threads),
        "max_threads": max(threads),
    }


def process_tree_analysis(metrics: Sequence[dict]) -> dict:
    """Per-process statistics of tree records.

    ``{}`` unless the first item has ``children`` (or ``child_processes``). Otherwise
    ``main_process``, ``child_processes`` (keyed by pid) and ``total`` (main plus children, per item),
    each with ``avg_cpu, max_cpu, avg_memory_mb, max_memory_mb, avg_threads, max_threads``. Values
    are read from each item's and each child's top-level ``cpu_usage``, ``mem_rss_kb``,
    ``thread_count``, or, in denet's tree records, from the item's ``parent`` and the child's
    ``metrics``; missing values count as 0.
    """
    if not metrics:
        return {}
    first = metrics[0]
    key = "children" if "children" in first else "child_processes" if "child_processes" in first else None
    if key is None:
        return {}
    main = ([], [], [])
    total = ([], [], [])
    per_child: dict = {}
    for item in metrics:
        cpu = _read(item, "cpu_usage", "parent")
        mem = _read(item, "mem_rss_kb", "parent") / 1024
        thr = _read(item, "thread_count", "parent")
        main[0].append(cpu)
        main[1].append(mem)
        main[2].append(thr)
        kids = item.get(key) or []
        for child in kids if isinstance(kids, list) else []:
            if not isinstance(child, dict):
                continue
            c = (_read(child, "cpu_usage", "metrics"), _read(child, "mem_rss_kb", "metrics") / 1024,
                 _read(child, "thread_count", "metrics"))
            lists = per_child.setdefault(child.get("pid"), ([], [], []))
            for lst, v in zip(lists, c, strict=True):
                lst.append(v)
            cpu += c[0]
            mem += c[1]
            thr += c[2]
        total[0].append(cpu)
        total[1].append(mem)
        total[2].append(thr)
    return {
        "main_process": _proc_stats(*main),
        "child_processes": {pid: _proc_stats(*lists) for pid, lists in per_child.items()},
        "total": _proc_stats(*total),
    }


def _is_header(obj: dict) -> bool:
    from .readers import classify

    return classify(obj) in ("metadata", "env")


def load_metrics(path: str, include_metadata: bool = False) -> list[dict]:
    """The items of a JSON array or JSONL file (lines that are not JSON are skipped).

    Unless ``include_metadata``, a first item that is metadata (a ``metadata`` record, or an untagged
    object with ``pid``, ``cmd``, ``executable`` or ``t0_ms`` and no metrics) is dropped, together
    with an ``env`` record before it, and so is a final tagged ``summary`` record (``denet run``'s).
    """
    from .readers import classify

    with open(path, encoding="utf-8", errors="replace") as fh:  # bytes that are not UTF-8: a line skipped
        text = fh.read()
    stripped = text.lstrip()
    items: list = []
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{path}: not a valid JSON array: {exc}") from None
        items = list(data) if isinstance(data, list) else []
    else:
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                items.append(json.loads(line))
            except (ValueError, RecursionError):
                continue
    if include_metadata:
        return items
    start = 0
    if items and isinstance(items[0], dict) and classify(items[0]) == "env":
        start = 1  # an env record comes before the metadata
    if start < len(items) and isinstance(items[start], dict) and classify(items[start]) == "metadata":
        start += 1
    end = len(items)
    if end > start and isinstance(items[-1], dict) and items[-1].get("kind") == "summary" \
            and classify(items[-1]) == "summary":
        end -= 1
    return items[start:end]


def _metadata_line(metrics: Sequence[dict]) -> str:
    """A ``metadata`` record for a file of saved items, built like ``denet run``'s; what the items do
    not say is marked unknown (pid 0, empty cmd, intervals 0)."""
    import time

    from .monitor import Monitor

    first = metrics[0] if metrics else {}
    ts = first.get("ts_ms") if isinstance(first, dict) else None
    t0 = ts if isinstance(ts, int) and not isinstance(ts, bool) else int(time.time() * 1000)
    tree = isinstance(first, dict) and ("aggregated" in first or "children" in first)
    header = Monitor(interval_ms=0, max_interval_ms=0, include_children=tree).header(0, [], t0)
    return header.to_line()


def save_metrics(metrics: Sequence[dict], path: str, format: str = "jsonl", include_metadata: bool = True) -> None:
    """Write items to ``path`` as ``json`` (indent 2), ``jsonl`` or ``csv``.

    ``jsonl`` with ``include_metadata`` starts with a ``metadata`` line (unless the first item
    already is one), which :func:`load_metrics` drops again. Other formats:
    ``ValueError("Unknown format: ...")``.
    """
    fmt = format.lower() if isinstance(format, str) else format
    if fmt not in ("json", "jsonl", "csv"):
        raise ValueError(f"Unknown format: {format}")
    if fmt == "json":
        text = json.dumps(list(metrics), indent=2)
    elif fmt == "csv":
        text = convert_format(list(metrics), "csv")
    else:
        lines = [json.dumps(m, separators=(",", ":")) for m in metrics]
        if include_metadata and not (metrics and isinstance(metrics[0], dict) and _is_header(metrics[0])):
            lines.insert(0, _metadata_line(metrics))
        text = "".join(line + "\n" for line in lines)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
