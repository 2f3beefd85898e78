"""denet: a streaming process monitor.

The package imports lazily: ``import denet`` costs almost nothing, and ``denet run`` loads only
what it needs before the command starts. Public names are resolved on first use.

The Python API (compatible with the Rust denet's Python package) is ``ProcessMonitor``,
``execute_with_monitoring``, ``generate_summary_from_file``, ``generate_summary_from_metrics_json``
(in :mod:`denet.api`) and the list-of-dict helpers of :mod:`denet.analysis`; ``monitor_command`` is
our typed addition, and ``summarize`` (per-run or per-group summaries of record files as a polars
DataFrame, from :mod:`denet.summaries`). See docs/python-api.md.
"""

from ._version import __version__ as __version__

__all__ = [
    "Monitor",
    "ProcessMonitor",
    "RunResult",
    "aggregate_metrics",
    "convert_format",
    "execute_with_monitoring",
    "find_peaks",
    "generate_summary_from_file",
    "generate_summary_from_metrics_json",
    "load_metrics",
    "monitor_command",
    "process_tree_analysis",
    "resource_utilization",
    "save_metrics",
    "summarize",
]

_LAZY = {
    "Monitor": ("denet.monitor", "Monitor"),
    "RunResult": ("denet.monitor", "RunResult"),
    "ProcessMonitor": ("denet.api", "ProcessMonitor"),
    "execute_with_monitoring": ("denet.api", "execute_with_monitoring"),
    "generate_summary_from_file": ("denet.api", "generate_summary_from_file"),
    "generate_summary_from_metrics_json": ("denet.api", "generate_summary_from_metrics_json"),
    "monitor_command": ("denet.api", "monitor_command"),
    "aggregate_metrics": ("denet.analysis", "aggregate_metrics"),
    "convert_format": ("denet.analysis", "convert_format"),
    "find_peaks": ("denet.analysis", "find_peaks"),
    "load_metrics": ("denet.analysis", "load_metrics"),
    "process_tree_analysis": ("denet.analysis", "process_tree_analysis"),
    "resource_utilization": ("denet.analysis", "resource_utilization"),
    "save_metrics": ("denet.analysis", "save_metrics"),
    "summarize": ("denet.summaries", "summarize"),
    # submodules reachable as attributes without an explicit import
    "analysis": ("denet.analysis", None),
    "api": ("denet.api", None),
}


def __getattr__(name: str):
    try:
        mod, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'denet' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(mod)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"analysis", "api"})
