"""The public names of the Python API: ``denet.__all__``, lazy resolution, cheap ``import denet``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import denet

CONTRACT = {
    "ProcessMonitor",
    "execute_with_monitoring",
    "generate_summary_from_file",
    "generate_summary_from_metrics_json",
    "aggregate_metrics",
    "convert_format",
    "find_peaks",
    "load_metrics",
    "process_tree_analysis",
    "resource_utilization",
    "save_metrics",
}


def test_all_is_the_contract_plus_our_additions():
    assert set(denet.__all__) == CONTRACT | {"monitor_command", "summarize", "Monitor", "RunResult"}
    assert len(denet.__all__) == len(set(denet.__all__))


def test_every_public_name_resolves_and_star_import_works():
    for name in denet.__all__:
        assert getattr(denet, name) is not None, name
    ns: dict = {}
    exec("from denet import *", ns)  # noqa: S102
    assert CONTRACT <= set(ns)


def test_analysis_is_an_importable_submodule_sharing_the_functions():
    analysis = importlib.import_module("denet.analysis")
    assert denet.analysis is analysis
    for name in ("aggregate_metrics", "convert_format", "find_peaks", "load_metrics", "process_tree_analysis",
                 "resource_utilization", "save_metrics"):
        assert getattr(analysis, name) is getattr(denet, name)


def test_version_is_a_string():
    assert isinstance(denet.__version__, str) and denet.__version__


def test_unknown_attribute_is_an_attribute_error():
    try:
        denet.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_denet_stays_cheap_and_the_api_imports_no_heavy_library():
    code = (
        "import sys, json, denet\n"
        "heavy = ('polars', 'pyarrow', 'psutil', 'click', 'denet.api', 'denet.analysis', 'denet.monitor')\n"
        "at_import = [m for m in heavy if m in sys.modules]\n"
        "denet.ProcessMonitor; denet.find_peaks\n"
        "after_api = [m for m in ('polars', 'pyarrow', 'psutil', 'click') if m in sys.modules]\n"
        "print(json.dumps([at_import, after_api]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    at_import, after_api = json.loads(out)
    assert at_import == []
    assert after_api == []
