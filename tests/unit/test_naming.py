"""--out templates: fields, labels, counters, directories, and no silent overwrite."""

import os

import pytest

from denet.errors import DenetError, UsageError
from denet.naming import capture_paths, expand, fields_of, resolve_outputs


def test_expand_fields_labels_and_braces():
    v = {"rule": "align", "sample": "a/b", "pid": 12, "cmd": "bwa"}
    assert expand("{rule}/{sample}-{pid}-{cmd}.jsonl", v) == "align/a_b-12-bwa.jsonl"
    assert expand("x{{y}}.jsonl", v) == "x{y}.jsonl"
    assert fields_of("{a}{{b}}{c}") == ["a", "c"]


@pytest.mark.parametrize("template", ["{rule", "a}b", "{}", "{a{b}"])
def test_bad_templates(template):
    with pytest.raises(UsageError):
        expand(template, {"rule": "x"})


def test_missing_label_is_a_clear_usage_error(tmp_path):
    with pytest.raises(UsageError) as exc:
        resolve_outputs(str(tmp_path / "{rule}-{sample}.jsonl"), "jsonl", ["sleep"], {"rule": "r"})
    msg = str(exc.value)
    assert "{sample}" in msg and "r" in msg and "rule" in msg and "pid" in msg
    assert os.listdir(tmp_path) == []


def test_counter_never_overwrites(tmp_path):
    t = str(tmp_path / "{rule}.{n}.jsonl")
    got = [resolve_outputs(t, "jsonl", ["x"], {"rule": "r"})[0] for _ in range(3)]
    assert got == [str(tmp_path / f"r.{i}.jsonl") for i in (1, 2, 3)]
    # the captured files of a number count as taken too
    (tmp_path / "r.4.stderr").write_text("")
    path, caps, _ = resolve_outputs(t, "jsonl", ["x"], {"rule": "r"}, capture="all")
    assert path == str(tmp_path / "r.5.jsonl")
    assert caps == [str(tmp_path / "r.5.stdout"), str(tmp_path / "r.5.stderr")]


def test_existing_files_are_not_overwritten(tmp_path):
    f = tmp_path / "run.jsonl"
    f.write_text("keep")
    with pytest.raises(DenetError, match="--clobber"):
        resolve_outputs(str(f), "jsonl", ["x"], {})
    assert f.read_text() == "keep"
    (tmp_path / "b.stdout").write_text("keep")
    with pytest.raises(DenetError, match="b.stdout"):
        resolve_outputs(str(tmp_path / "b.jsonl"), "jsonl", ["x"], {}, capture="stdout")
    assert resolve_outputs(str(f), "jsonl", ["x"], {}, clobber=True)[0] == str(f)


def test_parquet_journal_counts_as_taken(tmp_path):
    (tmp_path / ".r.parquet.journal").write_text("")
    with pytest.raises(DenetError):
        resolve_outputs(str(tmp_path / "r.parquet"), "parquet", ["x"], {})
    assert not (tmp_path / "r.parquet").exists()


def test_directory_means_one_file_per_run(tmp_path):
    path, _, _ = resolve_outputs(str(tmp_path) + "/", "jsonl", ["/usr/bin/sleep", "1"], {})
    name = os.path.basename(path)
    assert os.path.dirname(path) == str(tmp_path)
    assert name.startswith("sleep-") and name.endswith(f"-{os.getpid()}.jsonl")
    path, _, _ = resolve_outputs(str(tmp_path / "new") + "/", "parquet", ["x"], {})
    assert path.endswith(".parquet") and os.path.isdir(tmp_path / "new")


def test_parent_directories_are_created(tmp_path):
    path, _, extra = resolve_outputs(str(tmp_path / "a" / "{rule}" / "{host}.jsonl"), "jsonl", ["x"], {"rule": "r"},
                                     extra={"stats": str(tmp_path / "{rule}.{n}.json")})
    assert path == str(tmp_path / "a" / "r" / f"{os.uname().nodename}.jsonl") and os.path.exists(path)
    assert extra == {"stats": str(tmp_path / "r.1.json")}


def test_capture_paths():
    assert capture_paths("d/x.jsonl", "stdout") == ["d/x.stdout"]
    assert capture_paths("d/x.parquet", "all") == ["d/x.stdout", "d/x.stderr"]
    assert capture_paths("d/x.data", "stderr") == ["d/x.data.stderr"]
    assert capture_paths("d/x.jsonl", None) == []
