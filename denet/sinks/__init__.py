"""Sinks write records; they know nothing of collectors.

Each sink has ``write(record)``, ``close()``, ``name`` and ``failed`` (None, or the OSError that
stopped it). ``JsonlSink`` is imported eagerly (the ``run`` path); the Parquet and Snakemake
benchmark sinks are loaded on first use, and the Parquet sink imports pyarrow only at close.
"""

from .jsonl import JsonlSink

__all__ = ["BenchmarkSink", "JsonlSink", "ParquetSink"]


def __getattr__(name: str):
    if name == "ParquetSink":
        from .parquet import ParquetSink

        return ParquetSink
    if name == "BenchmarkSink":
        from .benchmark import BenchmarkSink

        return BenchmarkSink
    raise AttributeError(f"module 'denet.sinks' has no attribute {name!r}")
