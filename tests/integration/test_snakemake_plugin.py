"""The logger plugin against snakemake-interface-logger-plugins' own test base (every Snakemake event),
plus what it wrote: one line per job event, with the declared columns."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

plugin = pytest.importorskip("snakemake_logger_plugin_denet",
                             reason="the logger plugin is not installed (pip install -e integrations/snakemake)")
base = pytest.importorskip("snakemake_interface_logger_plugins.tests")


class TestDenetLogHandler(base.TestLogHandlerBase):
    __test__ = True

    @pytest.fixture(autouse=True)
    def _jobs_file(self, tmp_path):
        self.jobs = tmp_path / "denet" / "jobs.jsonl"
        yield
        # whatever the base test sent, what was written is job records with the declared columns
        if self.jobs.exists():
            from denet import schema

            for line in self.jobs.read_text().splitlines():
                rec = json.loads(line)
                assert tuple(rec) == schema.table_names_of("snakemake_jobs")
                assert rec["event"] in ("job_info", "job_started", "job_finished", "job_error")

    def get_log_handler_cls(self):
        return plugin.LogHandler

    def get_log_handler_settings(self):
        return plugin.LogHandlerSettings(jobs=str(self.jobs))


def test_the_default_file_is_under_dot_snakemake(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    h = plugin.LogHandler(base.MockOutputSettings(), plugin.LogHandlerSettings())
    assert Path(h.path) == tmp_path / ".snakemake" / "denet" / "jobs.jsonl"
    assert not os.path.exists(h.path)  # created at the first job event only
    h.close()


def test_the_prefix_is_snakemake_placeholders():
    p = plugin.denet_prefix("sample", "lane", labels={"project": "a b{c}"}, options="--interval 50")
    assert p.startswith("denet run --out {log.denet:q} --label rule={rule} --label jobid={jobid} "
                        "--label threads={threads} --label sample={wildcards.sample:q} ")
    assert "--label wildcards=sample={wildcards.sample:q},lane={wildcards.lane:q}" in p
    assert "--label project='a b{{c}}'" in p and p.endswith("--interval 50 -- ")
    assert plugin.denet_prefix(shell=True, denet="python3 -m denet").endswith(" -c ")
    with pytest.raises(ValueError, match="not a valid name"):
        plugin.denet_prefix("bad name")


def test_the_prefix_formats_as_snakemake_formats_a_job(tmp_path):
    from snakemake.iocontainers import Log, Wildcards
    from snakemake.utils import format as sm_format

    wc = Wildcards(fromdict={"sample": "A 1", "lane": "2"})
    log = Log(fromdict={"denet": str(tmp_path / "r.jsonl")})
    text = sm_format(plugin.denet_prefix("sample", "lane") + "echo hi", rule="align", jobid=7, threads=4,
                     wildcards=wc, log=log)
    import shlex

    argv = shlex.split(text)
    assert argv[:4] == ["denet", "run", "--out", str(tmp_path / "r.jsonl")]
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--label"]
    assert labels == ["rule=align", "jobid=7", "threads=4", "sample=A 1", "lane=2", "wildcards=sample=A 1,lane=2"]
    assert argv[-3:] == ["--", "echo", "hi"]


def test_the_shim_is_found_by_the_module():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "snakemake_logger_plugin_denet", "shim-dir"], capture_output=True,
                       text=True)
    assert p.returncode == 0 and p.stdout.strip() == plugin.shim_dir()
    assert os.path.isfile(os.path.join(p.stdout.strip(), "bash"))
    p = subprocess.run([sys.executable, "-m", "snakemake_logger_plugin_denet"], capture_output=True, text=True)
    assert p.returncode == 2 and "usage" in p.stderr
