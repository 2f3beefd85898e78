"""Settings of ``run``/``attach`` from the environment and TOML config files.

Every option of the table in :mod:`denet.options` has a config key (``Option.key``) and an
environment variable (``Option.env``, ``DENET_`` + the key upper-cased). Precedence, highest
first: the command line, the environment, the project file ``./denet.toml``, the user file
``$XDG_CONFIG_HOME/denet/config.toml`` (default ``~/.config/denet/config.toml``), the defaults.
``--config FILE`` (or ``DENET_CONFIG``) replaces both files. Labels are merged key by key in
the same order. This runs before CMD starts: ``tomllib`` is imported only when a file exists.
"""

from __future__ import annotations

import os

from .errors import UsageError
from .options import OPTIONS, Option, Settings, convert, parse_label

__all__ = ["config_files", "env_values", "file_values", "resolve", "user_config_path"]

PROJECT_FILE = "denet.toml"
_BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def user_config_path(environ=None) -> str:
    """``$XDG_CONFIG_HOME/denet/config.toml``, ``~/.config/denet/config.toml`` without it."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "denet", "config.toml")


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def config_files(explicit: str | None, environ=None, cwd: str | None = None) -> list[str]:
    """The config files to read, lowest precedence first: ``explicit`` alone when given (it must
    exist), else the user file and the project file that exist."""
    if explicit:
        if not os.path.isfile(explicit):
            raise UsageError(f"--config {explicit}: no such file")
        return [explicit]
    project = os.path.join(cwd, PROJECT_FILE) if cwd else os.path.abspath(PROJECT_FILE)
    return [p for p in (user_config_path(environ), project) if _exists(p)]


def _env_bool(var: str, raw: str) -> bool:
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise UsageError(f"{var} expects a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def env_values(environ=None) -> dict[str, tuple[object, str]]:
    """dest -> (value, variable) for the options set in the environment (an empty variable counts as unset)."""
    environ = os.environ if environ is None else environ
    out: dict[str, tuple[object, str]] = {}
    for o in OPTIONS:
        raw = environ.get(o.env) if o.in_env else None
        if raw is None or raw == "":
            continue
        if o.kind in ("flag", "neg"):
            v: object = _env_bool(o.env, raw)
        elif o.kind == "multi":
            labels = []
            for part in raw.split(","):
                if not part.strip():
                    continue
                key, sep, _ = part.partition("=")
                if not sep or not key.strip():
                    raise UsageError(f"{o.env} expects KEY=VALUE[,KEY=VALUE...], got {raw!r}")
                labels.append(part.strip())
            v = tuple(labels)
        else:
            v = convert(o, o.env, raw)
        out[o.dest] = (v, o.env)
    return out


def _read_toml(path: str) -> dict:
    import tomllib  # only when a config file exists: a few milliseconds

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def _file_value(o: Option, path: str, val):
    where = f"{path}: {o.key}"
    if o.kind in ("flag", "neg"):
        if not isinstance(val, bool):
            raise UsageError(f"{where} expects true or false, got {val!r}")
        return val
    if o.kind == "multi":
        if isinstance(val, dict):
            items = []
            for k, x in val.items():
                if not isinstance(x, str | int | float) or isinstance(x, bool):
                    raise UsageError(f"{where}.{k} expects a string or number, got {x!r}")
                items.append(f"{k}={x}")
            return tuple(items)
        if isinstance(val, list) and all(isinstance(x, str) for x in val):
            for x in val:
                try:
                    parse_label(x)
                except UsageError:
                    raise UsageError(f"{where} expects KEY=VALUE strings, got {x!r}") from None
            return tuple(val)
        raise UsageError(f"{where} expects a table of KEY = VALUE or a list of \"KEY=VALUE\" strings, got {val!r}")
    if o.kind == "int" and (not isinstance(val, int) or isinstance(val, bool)):
        raise UsageError(f"{where} expects a whole number, got {val!r}")
    if o.kind == "float" and (not isinstance(val, int | float) or isinstance(val, bool)):
        raise UsageError(f"{where} expects a number, got {val!r}")
    if o.kind in ("str", "choice") and not isinstance(val, str):
        raise UsageError(f"{where} expects a string, got {val!r}")
    return convert(o, where, str(val))


def file_values(path: str) -> dict[str, object]:
    """dest -> value for the settings of one TOML file; unknown keys and bad values raise
    :class:`UsageError` naming the file, the key and the value."""
    out: dict[str, object] = {}
    for key, val in _read_toml(path).items():
        o = _BY_KEY.get(key)
        if o is None or not o.in_file:
            known = ", ".join(x.key for x in OPTIONS if x.in_file)
            raise UsageError(f"{path}: unknown key {key!r} (= {val!r}); known keys: {known}")
        out[o.dest] = _file_value(o, path, val)
    return out


def resolve(s: Settings, environ=None, cwd: str | None = None) -> Settings:
    """``s`` (from the command line) completed from the environment and the config files; every
    value's origin is recorded in ``sources`` (dest -> "command line", a variable, a file, "default")."""
    env = env_values(environ)
    explicit = s.config if "config" in s.given else (env["config"][0] if "config" in env else None)
    layers: list[tuple[str, dict]] = [(p, file_values(p)) for p in config_files(explicit, environ, cwd)]
    layers.append(("", {d: v for d, (v, _var) in env.items()}))  # "" stands for the variable's name
    values: dict = {}
    sources: dict = {}
    for o in OPTIONS:
        if o.kind == "multi":
            merged: dict = {}
            origin: list[str] = []
            for where, vals in layers:
                if o.dest in vals:
                    merged.update(parse_label(x) for x in vals[o.dest])
                    origin.append(where or o.env)
            if o.dest in s.given:
                merged.update(parse_label(x) for x in getattr(s, o.dest))
                origin.append("command line")
            values[o.dest] = tuple(f"{k}={v}" for k, v in merged.items())
            sources[o.dest] = ", ".join(origin) if origin else "default"
            continue
        if o.dest in s.given:
            values[o.dest] = getattr(s, o.dest)
            sources[o.dest] = "command line"
            continue
        values[o.dest] = o.default
        sources[o.dest] = "default"
        for where, vals in layers:
            if o.dest in vals:
                values[o.dest] = vals[o.dest]
                sources[o.dest] = where or o.env
    out = Settings(**values)
    out.given = s.given
    out.sources = sources
    return out
