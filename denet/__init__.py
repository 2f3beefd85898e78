"""denet: a streaming process monitor.

The package imports lazily: ``import denet`` costs almost nothing, and ``denet run`` loads only
what it needs before the command starts. Public names are resolved on first use.
"""

from ._version import __version__

__all__ = ["Monitor", "RunResult", "__version__"]

_LAZY = {
    "Monitor": ("denet.monitor", "Monitor"),
    "RunResult": ("denet.monitor", "RunResult"),
}


def __getattr__(name: str):
    try:
        mod, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'denet' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(mod), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
