"""Settings from DENET_* variables and TOML files: precedence, every option reachable, bad values named."""

import pytest

from denet.config import config_files, env_values, resolve, user_config_path
from denet.errors import UsageError
from denet.options import OPTIONS, Settings, lean_parse


def _sample(o, tmp_path):
    """(environment value, the value it must give) for option ``o``."""
    if o.kind == "flag":
        return "1", True
    if o.kind == "neg":
        return "0", False
    if o.kind == "int":
        return "37", 37
    if o.kind == "float":
        return "2.5", 2.5
    if o.kind == "choice":
        return o.choices[-1].upper(), o.choices[-1]
    if o.kind == "multi":
        return "a=1, b=x=y", ("a=1", "b=x=y")
    if o.dest == "config":
        p = tmp_path / "c.toml"
        p.write_text("")
        return str(p), str(p)
    return "some value", "some value"


def _cli(argv):
    return lean_parse(argv + ["run", "x"])[1]


@pytest.mark.parametrize("o", [o for o in OPTIONS if o.in_env], ids=lambda o: o.env)
def test_every_option_is_reachable_from_the_environment(o, tmp_path):
    raw, want = _sample(o, tmp_path)
    s = resolve(_cli([]), {o.env: raw, "XDG_CONFIG_HOME": str(tmp_path)}, cwd=str(tmp_path))
    assert getattr(s, o.dest) == want
    assert s.sources[o.dest] == o.env
    for other in OPTIONS:
        if other is not o:
            assert getattr(s, other.dest) == other.default and s.sources[other.dest] == "default"


def test_the_issues_variable_names():
    names = {o.env for o in OPTIONS}
    assert {"DENET_OUT", "DENET_INTERVAL", "DENET_MAX_INTERVAL", "DENET_LABELS", "DENET_QUIET",
            "DENET_NOTE"} <= names
    assert len(names) == len(OPTIONS) and len({o.key for o in OPTIONS}) == len(OPTIONS)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_command_line_env_project_user_default(tmp_path):
    xdg = tmp_path / "xdg"
    proj = tmp_path / "proj"
    proj.mkdir()
    user = _write(xdg / "denet" / "config.toml",
                  'interval = 11\nmax_interval = 1100\nduration = 1.5\nnote = "user"\n'
                  '[labels]\nrule = "u"\nfrom_user = 1\n')
    project = _write(proj / "denet.toml", 'interval = 22\nmax_interval = 2200\nnote = "project"\n'
                                          'labels = ["rule=p", "from_project=yes"]\n')
    env = {"XDG_CONFIG_HOME": str(xdg), "DENET_INTERVAL": "33", "DENET_LABELS": "rule=e"}
    s = resolve(_cli(["--interval", "44", "--label", "cli=1"]), env, cwd=str(proj))
    assert (s.interval_ms, s.sources["interval_ms"]) == (44, "command line")
    assert (s.max_interval_ms, s.sources["max_interval_ms"]) == (2200, str(project))
    assert (s.duration_s, s.sources["duration_s"]) == (1.5, str(user))
    assert (s.note, s.sources["note"]) == ("project", str(project))
    assert (s.quiet, s.sources["quiet"]) == (False, "default")
    assert s.label_dict() == {"rule": "e", "from_user": "1", "from_project": "yes", "cli": "1"}
    assert s.sources["labels"] == f"{user}, {project}, DENET_LABELS, command line"
    # without the command line, the environment wins; without it, the project file
    s = resolve(_cli([]), env, cwd=str(proj))
    assert (s.interval_ms, s.sources["interval_ms"]) == (33, "DENET_INTERVAL")
    s = resolve(_cli([]), {"XDG_CONFIG_HOME": str(xdg)}, cwd=str(proj))
    assert (s.interval_ms, s.sources["interval_ms"]) == (22, str(project))
    s = resolve(_cli([]), {"XDG_CONFIG_HOME": str(xdg)}, cwd=str(tmp_path))
    assert (s.interval_ms, s.sources["interval_ms"]) == (11, str(user))


def test_config_file_replaces_the_lookup(tmp_path):
    xdg = tmp_path / "xdg"
    _write(xdg / "denet" / "config.toml", "interval = 11\n")
    _write(tmp_path / "denet.toml", "interval = 22\nquiet = true\n")
    other = _write(tmp_path / "other.toml", "max_interval = 5000\n")
    env = {"XDG_CONFIG_HOME": str(xdg)}
    s = resolve(_cli(["--config", str(other)]), env, cwd=str(tmp_path))
    assert s.interval_ms == 100 and s.quiet is False and s.max_interval_ms == 5000
    s = resolve(_cli([]), {**env, "DENET_CONFIG": str(other)}, cwd=str(tmp_path))
    assert s.interval_ms == 100 and s.max_interval_ms == 5000
    with pytest.raises(UsageError, match="nope.toml"):
        resolve(_cli(["--config", str(tmp_path / "nope.toml")]), env, cwd=str(tmp_path))


def test_user_file_location():
    assert user_config_path({"XDG_CONFIG_HOME": "/x"}) == "/x/denet/config.toml"
    assert user_config_path({}).endswith("/.config/denet/config.toml")
    assert config_files(None, {"XDG_CONFIG_HOME": "/nonexistent"}, cwd="/nonexistent") == []


@pytest.mark.parametrize("text, words", [
    ("bogus = 1\n", ["bogus", "unknown key", "1"]),
    ("config = 'x.toml'\n", ["config", "unknown key"]),
    ("interval = 'fast'\n", ["interval", "'fast'"]),
    ("interval = 0\n", ["interval", "0"]),
    ("duration = -1\n", ["duration", "-1"]),
    ("quiet = 'yes'\n", ["quiet", "'yes'"]),
    ("format = 'xml'\n", ["format", "'xml'"]),
    ("labels = 'a=1'\n", ["labels", "'a=1'"]),
    ("labels = ['novalue']\n", ["labels", "'novalue'"]),
    ("[labels]\nrule = [1]\n", ["labels.rule", "[1]"]),
    ("interval = \n", ["not valid TOML"]),
])
def test_bad_config_values_name_file_key_and_value(tmp_path, text, words):
    p = _write(tmp_path / "denet.toml", text)
    with pytest.raises(UsageError) as exc:
        resolve(_cli([]), {"XDG_CONFIG_HOME": str(tmp_path / "none")}, cwd=str(tmp_path))
    msg = str(exc.value)
    assert str(p) in msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("var, raw", [
    ("DENET_INTERVAL", "abc"), ("DENET_MAX_INTERVAL", "-3"), ("DENET_DURATION", "nan"),
    ("DENET_QUIET", "maybe"), ("DENET_LEDGER", "2"), ("DENET_LABELS", "a=1,oops"), ("DENET_FORMAT", "xml"),
])
def test_bad_environment_values_name_the_variable(var, raw):
    with pytest.raises(UsageError) as exc:
        env_values({var: raw})
    assert var in str(exc.value) and raw in str(exc.value)


def test_empty_variable_is_unset():
    assert env_values({"DENET_OUT": "", "DENET_QUIET": ""}) == {}


def test_command_line_records_what_was_given():
    s = _cli(["--interval", "100", "-q"])
    assert s.given == {"interval_ms", "quiet"}
    assert Settings().given == frozenset()
