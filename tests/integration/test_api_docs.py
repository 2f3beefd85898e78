"""Every ```python example of docs/python-api.md runs as written, and every public name is documented."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import denet

from .helpers import REPO

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "python-api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("n", range(len(BLOCKS)))
def test_example_runs(n, tmp_path):
    r = subprocess.run([sys.executable, "-c", BLOCKS[n]], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"example {n}:\n{BLOCKS[n]}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}"


def test_every_public_name_has_a_heading_or_entry_and_an_example():
    text = DOC.read_text()
    code = "\n".join(BLOCKS)
    names = set(denet.__all__) - {"Monitor", "RunResult"}
    methods = ["from_pid", "sample_once", "run", "is_running", "get_pid", "get_metadata", "get_env", "get_samples",
               "clear_samples", "save_samples", "get_summary", "is_gpu_enabled", "gpu_device_count", "get_gpu_summary"]
    for name in sorted(names) + methods:
        assert re.search(rf"`{name}\b|^#+ .*\b{name}\b", text, re.M), f"{name} is not documented"
        assert re.search(rf"\b{name}\(", code), f"{name} has no example"
