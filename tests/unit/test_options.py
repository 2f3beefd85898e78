"""One option table, two front-ends (the lean parser of `run`/`attach`, and click): they agree."""

import pytest

from denet.cli import parse_with_click
from denet.errors import UsageError
from denet.options import OPTIONS, Settings, lean_parse

AGREE = [
    ["run", "true"],
    ["run", "--", "true", "-x"],
    ["--json", "run", "sleep", "1"],
    ["run", "--json", "-i", "50", "sleep", "1"],
    ["-i", "20", "run", "-i", "30", "--", "cmd", "--interval", "5"],
    ["--out", "f.jsonl", "--max-interval", "2000", "run", "x"],
    ["--out=f.jsonl", "run", "--interval=7", "x"],
    ["-q", "--exclude-children", "run", "x"],
    ["run", "--no-include-children", "x"],
    ["--label", "a=1", "run", "--label", "b=x=y", "x"],
    ["--duration", "2.5", "--since-process-start", "--write-env", "run", "x", "y"],
    ["--stats", "s.json", "--no-update", "--debug", "run", "x"],
    ["-j", "run", "-d", "1", "x"],
    ["--no-gpu", "run", "x"],
    ["run", "--no-gpu", "--no-ledger", "x"],
    ["attach", "123"],
    ["-i", "10", "attach", "--duration", "3", "99"],
    ["--out", "r.parquet", "run", "--format", "parquet", "x"],
    ["--format", "JSONL", "run", "--out", "r.data", "x"],
    ["run", "--format=parquet", "--out=r.x", "--benchmark", "b.tsv", "x"],
    ["--benchmark=b.tsv", "run", "--", "x", "--benchmark", "y"],
    ["--no-ledger", "run", "x"],
    ["run", "--no-ledger", "-q", "x", "--no-ledger"],
    ["-i", "10", "attach", "--no-ledger", "99"],
    ["--note", "first try", "run", "x"],
    ["run", "--note=a b", "--config", "c.toml", "x", "--note", "y"],
    ["--config=c.toml", "attach", "--note", "n", "99"],
    ["--clobber", "run", "--capture", "all", "x"],
    ["run", "--capture", "STDERR", "--clobber", "x"],
]


@pytest.mark.parametrize("argv", AGREE, ids=lambda a: " ".join(a))
def test_lean_parser_and_click_agree(argv):
    lean = lean_parse(argv)
    clicked = parse_with_click(argv)
    assert lean is not None
    assert lean[0] == clicked[0]
    assert lean[1] == clicked[1], (lean[1], clicked[1])
    assert lean[1].given == clicked[1].given
    assert lean[2] == clicked[2]


def test_options_after_the_command_belong_to_it():
    cmd, s, args = lean_parse(["run", "-i", "50", "sleep", "1", "--json"])
    assert args == ["sleep", "1", "--json"] and s.json is False and s.interval_ms == 50


def test_defaults_come_from_the_table():
    cmd, s, args = lean_parse(["run", "x"])
    for o in OPTIONS:
        assert getattr(s, o.dest) == o.default
    assert s == Settings()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", "--interval", "abc", "x"], "--interval"),
        (["run", "-i", "0", "x"], "-i"),
        (["--max-interval", "-5", "run", "x"], "--max-interval"),
        (["run", "--duration", "nan", "x"], "--duration"),
        (["run", "--bogus", "x"], "--bogus"),
        (["run", "--label", "novalue", "x"], "--label"),
        (["run", "--json=1", "x"], "--json"),
        (["run", "--out"], "--out"),
        (["run", "--format", "xml", "x"], "--format"),
        (["run", "--benchmark"], "--benchmark"),
    ],
)
def test_bad_options_name_the_option(argv, words):
    with pytest.raises(UsageError) as exc:
        lean_parse(argv)
    assert words in str(exc.value)


def test_help_and_other_commands_go_to_click():
    assert lean_parse(["run", "--help"]) is None
    assert lean_parse(["--help"]) is None
    assert lean_parse(["stats", "f"]) is None
    assert lean_parse([]) is None


def test_short_flag_clusters():
    cmd, s, args = lean_parse(["run", "-jq", "x"])
    assert s.json and s.quiet and args == ["x"]
    cmd, s, args = lean_parse(["run", "-i50", "x"])
    assert s.interval_ms == 50
