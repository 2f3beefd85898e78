"""Fixtures of the reliability tests: the integration tests' `procs` registry, and shared helpers."""

from __future__ import annotations

import os
import shutil

import pytest
from integration.conftest import procs  # noqa: F401  (the fixture, re-exported)

GNU_TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


@pytest.fixture
def gnu_time() -> str:
    """The path of GNU time (the reference for exit codes); the test is skipped where it is missing."""
    if GNU_TIME is None:
        pytest.skip("GNU time is not installed (apt-get install time)")
    return GNU_TIME
