"""Output naming: ``--out`` templates, one file per run in a directory, no silent overwrite.

A template holds ``{FIELD}`` parts (``{{`` and ``}}`` are literal braces). The fields:
``{pid}`` (denet's own pid: known before CMD starts, and unique on the host while the run lasts),
``{host}`` (the node name), ``{datetime}`` (local start time, ``YYYYmmddTHHMMSS``), ``{cmd}``
(the base name of CMD's program), ``{n}`` (the smallest number from 1 that names no existing
file), and every ``--label`` key (``{rule}``). A ``/`` in a value becomes ``_``. Runs before CMD
starts; only light standard modules.
"""

from __future__ import annotations

import os
import time

from .errors import DenetError, UsageError

__all__ = ["BUILTIN_FIELDS", "DEFAULT_NAME", "capture_paths", "expand", "fields_of", "resolve_outputs"]

BUILTIN_FIELDS = ("pid", "host", "datetime", "cmd", "n")
DEFAULT_NAME = "{cmd}-{datetime}-{pid}"  # + .jsonl or .parquet, for an --out that is a directory


def _parse(template: str, what: str) -> list[tuple[str, str | None]]:
    """[(literal, field or None)] of a template."""
    out: list[tuple[str, str | None]] = []
    i, lit = 0, []
    while i < len(template):
        c = template[i]
        if c in "{}" and template[i + 1 : i + 2] == c:
            lit.append(c)
            i += 2
            continue
        if c == "}":
            raise UsageError(f"{what} {template}: a lone '}}' (write '}}}}' for a brace)")
        if c == "{":
            j = template.find("}", i)
            name = template[i + 1 : j] if j > 0 else ""
            if j < 0 or not name or "{" in name:
                raise UsageError(f"{what} {template}: an unclosed or empty '{{...}}' (write '{{{{' for a brace)")
            out.append(("".join(lit), name))
            lit = []
            i = j + 1
            continue
        lit.append(c)
        i += 1
    out.append(("".join(lit), None))
    return out


def fields_of(template: str, what: str = "--out") -> list[str]:
    return [f for _, f in _parse(template, what) if f is not None]


def expand(template: str, values: dict, what: str = "--out") -> str:
    """The template with its fields filled in; a field without a value is a :class:`UsageError`."""
    parts = []
    for lit, field in _parse(template, what):
        parts.append(lit)
        if field is None:
            continue
        if field not in values:
            labels = sorted(k for k in values if k not in BUILTIN_FIELDS)
            raise UsageError(f"{what} {template}: no value for {{{field}}}: it is neither a label of this run "
                             f"({', '.join(labels) or 'none given'}) nor one of {', '.join(BUILTIN_FIELDS)}")
        parts.append(str(values[field]).replace("/", "_").replace("\0", "_") or "_")
    return "".join(parts)


def _values(argv: list[str], labels: dict) -> dict:
    v = dict(labels)
    v.update(pid=os.getpid(), host=os.uname().nodename, datetime=time.strftime("%Y%m%dT%H%M%S"),
             cmd=os.path.basename(argv[0]) if argv else "process")
    return v


def capture_paths(out: str, capture: str | None) -> list[str]:
    """Where --capture writes: NAME.stdout and/or NAME.stderr, NAME being --out less its extension."""
    if not capture:
        return []
    base = out
    for ext in (".jsonl", ".parquet"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    streams = ("stdout", "stderr") if capture == "all" else (capture,)
    return [f"{base}.{s}" for s in streams]


def _taken(path: str) -> bool:
    if os.path.lexists(path):
        return True
    if path.lower().endswith(".parquet"):  # a Parquet run in progress has only its journal
        from .sinks.parquet import journal_path

        return os.path.lexists(journal_path(path))
    return False


def resolve_outputs(out: str | None, fmt: str | None, argv: list[str], labels: dict, *, clobber: bool = False,
                    capture: str | None = None, extra: dict | None = None) -> tuple[str | None, list[str], dict]:
    """The --out path of this run (template filled in, directory made), the capture paths, and
    ``extra`` (name -> template: --stats, --benchmark) filled in with the same values.

    Raises :class:`DenetError` when a file exists and ``clobber`` is false; with ``{n}`` the
    first number that names no existing file is taken instead. ``{n}`` in ``extra`` is the number
    chosen for --out (1 without one)."""
    values = _values(argv, labels)
    values["n"] = 1
    if out is None:
        return None, [], {k: expand(t, values, k) for k, t in (extra or {}).items() if t}
    if out.endswith("/") or os.path.isdir(out):
        out = os.path.join(out, DEFAULT_NAME + (".parquet" if fmt == "parquet" else ".jsonl"))
    has_n = "n" in fields_of(out)
    n = 1
    while True:
        values["n"] = n
        path = expand(out, values)
        paths = [path] + capture_paths(path, capture)
        if not has_n or clobber or not any(_taken(p) for p in paths):
            break
        n += 1
    d = os.path.dirname(path)
    if d:
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise DenetError(f"cannot create the directory of --out {path}: {exc.strerror or exc}") from None
    if not clobber:
        for p in paths:
            if _taken(p):
                raise DenetError(f"{p} already exists; denet does not overwrite it (give --clobber to allow it, "
                                 "or put {n} in the --out name for a new number each run)")
        if fmt != "parquet":  # claim the name now, so that a run started at the same moment does not take it
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            except FileExistsError:
                raise DenetError(f"{path} already exists; denet does not overwrite it (give --clobber)") from None
            except OSError as exc:
                raise DenetError(f"cannot open --out {path}: {exc.strerror or exc}") from None
    filled = {k: expand(t, values, k) for k, t in (extra or {}).items() if t}
    return path, paths[1:], filled
