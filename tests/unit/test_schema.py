"""The schema is the one field list: records, Arrow, polars and docs all derive from it."""

import json
import os
import subprocess
import sys
import time

import pytest

from denet import records, schema
from denet.collectors.proc import ProcCollector
from denet.sampler import Sampler

KIND_TO_RECORD = {schema.tag(r): r for r in schema.record_names() if schema.tag(r)}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_record_class_has_exactly_the_declared_fields():
    assert set(records.RECORD_CLASSES) == set(schema.record_names())
    for name, cls in records.RECORD_CLASSES.items():
        assert cls._fields == tuple(f.name for f in schema.fields(name))


def test_declarations_are_complete():
    for name in schema.record_names():
        for f in schema.fields(name):
            assert f.description, f"{name}.{f.name} has no description"
            assert f.since >= 1
            assert not (f.optional and f.nullable), f"{name}.{f.name}: optional or nullable, not both"
            schema.arrow_type(f.type)  # every type maps to Arrow


def test_docs_schema_md_is_generated_from_the_declaration():
    with open(os.path.join(ROOT, "docs", "schema.md")) as fh:
        assert fh.read() == schema.markdown(), "docs/schema.md is stale: python -m denet.schema > docs/schema.md"


def test_arrow_and_polars_schemas_build_for_every_record():
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    for name in schema.record_names():
        s = schema.arrow_schema(name)
        assert s.names == [f.name for f in schema.fields(name)]
        assert s.metadata[b"denet_schema_version"] == str(schema.SCHEMA_VERSION).encode()
        ps = schema.polars_schema(name)
        assert list(ps) == s.names
    assert schema.arrow_schema("tree").field("children").type == pa.list_(schema.arrow_type("record:child"))
    assert schema.polars_schema("metrics")["cpu_usage"] == pl.Float64


def test_a_record_converts_to_an_arrow_row_of_its_schema():
    pa = pytest.importorskip("pyarrow")
    m = records.Metrics(1, 2.5, 3, 4, 5, 6, 7, 8, 9, 10, 1, 11, 12, 13, 14)
    agg = records.Aggregated(1, 2.5, 3, 4, 5, 6, 7, 8, 9, 2, 10)
    tree = records.TreeSample(1, m, [records.Child(42, "sleep", m)], agg)
    table = pa.Table.from_pylist([tree.as_dict(keep_absent=True)], schema=schema.arrow_schema("tree"))
    row = table.to_pylist()[0]
    assert row["children"][0]["pid"] == 42
    assert row["aggregated"]["process_count"] == 2


def _emitted_keys(obj, record, seen):
    """Walk a JSON record against the declaration; collect emitted names per record type."""
    declared = {f.name: f for f in schema.fields(record)}
    for key, value in obj.items():
        if key == "kind":
            continue
        assert key in declared, f"{record} emits undeclared field {key!r}"
        seen.setdefault(record, set()).add(key)
        t = declared[key].type
        if value is None:
            assert declared[key].nullable, f"{record}.{key} is null but not declared nullable"
            continue
        if t.startswith("record:"):
            _emitted_keys(value, t[7:], seen)
        elif t.startswith("list<record:"):
            for item in value:
                _emitted_keys(item, t[12:-1], seen)
        elif t.startswith("map<record:"):
            for item in value.values():
                _emitted_keys(item, t[11:-1], seen)
        elif t == "int":
            assert isinstance(value, int) and not isinstance(value, bool), (record, key, value)
        elif t == "float":
            assert isinstance(value, int | float), (record, key, value)
        elif t == "str":
            assert isinstance(value, str), (record, key, value)
        elif t == "bool":
            assert isinstance(value, bool), (record, key, value)


def _check_required(seen, record):
    for f in schema.fields(record):
        if not f.optional:
            assert f.name in seen.get(record, set()), f"{record}.{f.name} is declared but never emitted"


def test_contract_real_run_emits_exactly_the_declared_fields(tmp_path):
    """A real `denet run` with every record kind: each field emitted is declared with its type; every
    declared field that is not optional is emitted."""
    out = tmp_path / "run.jsonl"
    script = "import subprocess,time; p=subprocess.Popen(['sleep','0.6']); x=bytearray(10**7); time.sleep(0.4); p.wait()"
    proc = subprocess.run([sys.executable, "-m", "denet", "--out", str(out), "--write-env", "--label", "rule=a",
                           "run", "-i", "50", "--", sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 0
    seen: dict = {}
    kinds = []
    with open(out) as fh:
        for line in fh:
            obj = json.loads(line)
            kinds.append(obj["kind"])
            record = KIND_TO_RECORD[obj["kind"]]
            _emitted_keys(obj, record, seen)
    assert kinds[0] == "env" and kinds[1] == "metadata" and kinds[-1] == "summary"
    assert "tree" in kinds
    for record in ("env", "metadata", "tree", "child", "metrics", "aggregated", "summary", "capability",
                   "lscpu", "numa"):
        _check_required(seen, record)


def test_contract_sample_records_without_children(tmp_path):
    out = tmp_path / "run.jsonl"
    proc = subprocess.run([sys.executable, "-m", "denet", "--out", str(out), "--exclude-children", "run", "-i", "30",
                           "--", "sleep", "0.3"], timeout=60)
    assert proc.returncode == 0
    seen: dict = {}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    samples = [x for x in lines if x["kind"] == "sample"]
    assert samples and not [x for x in lines if x["kind"] == "tree"]
    for s in samples:
        _emitted_keys(s, "metrics", seen)
    _check_required(seen, "metrics")


def test_optional_fields_are_those_a_platform_may_not_give():
    # The process collector reads io and faults for our own processes, so on Linux these are present.
    p = subprocess.Popen(["sleep", "5"])
    try:
        time.sleep(0.05)
        c = ProcCollector(p.pid)
        rec = Sampler(c).sample()
        d = json.loads(rec.to_line())
        for key in ("syscall_read_bytes", "syscall_write_bytes", "page_faults_cached", "page_faults_disk"):
            assert key in d["parent"]
        assert "gpu" not in d["parent"]  # only with the GPU collector
        c.close()
    finally:
        p.kill()
        p.wait()
