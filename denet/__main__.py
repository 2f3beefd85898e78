"""``python -m denet``."""

from .cli import entry

entry()
