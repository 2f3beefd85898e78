"""Sinks write records; they know nothing of collectors."""

from .jsonl import JsonlSink

__all__ = ["JsonlSink"]
