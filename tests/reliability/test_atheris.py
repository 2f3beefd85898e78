"""A short run of the atheris harness (coverage-guided fuzzing of the readers), where atheris is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HARNESS = Path(__file__).with_name("atheris_readers.py")


def test_atheris_finds_nothing_in_a_short_run(tmp_path):
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    for f in fixtures.iterdir():
        if f.is_file() and f.stat().st_size < 100_000:
            (seeds / f.name).write_bytes(b"\x00" + f.read_bytes())  # the first byte picks the suffix
    res = subprocess.run([sys.executable, str(HARNESS), "-runs=300", "-max_len=4096", "-rss_limit_mb=4096",
                          str(seeds)], cwd=tmp_path, capture_output=True, timeout=300)
    tail = res.stderr.decode(errors="replace")[-3000:]
    assert res.returncode == 0, tail
    assert not list(tmp_path.glob("crash-*")), tail
