"""``denet ls``: one line per run, from the files' headers and summaries only.

A JSON-lines file is read at its first lines (metadata, env) and at its last line (the summary,
found by a seek from the end); a Parquet file by its key-value metadata. Rows can be filtered with
a tiny expression language (``FIELD OP LITERAL [and ...]``, no eval) and sorted by any field.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import DenetError, InputError, UsageError

__all__ = ["COLUMNS", "FIELDS", "compile_filter", "list_runs", "render", "sort_rows"]

# The fields of a row, in order (the labels of each run are fields too, looked up by name).
FIELDS = ("when", "t0_ms", "host", "command", "rule", "exit_code", "wall_time_secs", "cpu_time_secs",
          "peak_rss_kb", "note", "path")
# What the table shows.
COLUMNS = ("when", "host", "command", "exit_code", "wall_time_secs", "cpu_time_secs", "peak_rss_kb", "note")
_HEAD = {"when": "WHEN", "host": "HOST", "command": "COMMAND/RULE", "exit_code": "EXIT", "wall_time_secs": "WALL",
         "cpu_time_secs": "CPU", "peak_rss_kb": "PEAK MEM", "note": "NOTE"}
_OPS = ("==", "!=", "<=", ">=", "<", ">")


def _row(entry) -> dict:
    meta = entry.metadata or {}
    summ = entry.summary or {}
    env = entry.env or {}
    labels = entry.labels
    t0 = meta.get("t0_ms")
    cmd = meta.get("cmd")
    if isinstance(cmd, list):
        import shlex

        cmd = " ".join(shlex.quote(str(a)) for a in cmd)
    row = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0 / 1000)) if isinstance(t0, int) else None,
        "t0_ms": t0,
        "host": meta.get("host") or env.get("host"),
        "command": labels.get("rule") or cmd,
        "rule": labels.get("rule"),
        "exit_code": summ.get("exit_code"),
        "wall_time_secs": summ.get("wall_time_secs"),
        "cpu_time_secs": summ.get("cpu_time_secs"),
        "peak_rss_kb": summ.get("peak_process_rss_kb"),
        "note": meta.get("note"),
        "path": entry.path,
    }
    row["labels"] = dict(labels)
    return row


def _value(row: dict, field: str):
    if field in row and field != "labels":
        return row[field]
    return row["labels"].get(field)


# ------------------------------------------------------------------------------- filter


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "'\"":
            j = text.find(c, i + 1)
            if j < 0:
                raise UsageError(f"--filter {text!r}: unclosed quote")
            out.append(text[i : j + 1])
            i = j + 1
        elif text[i : i + 2] in _OPS or c in "<>":
            op = text[i : i + 2] if text[i : i + 2] in _OPS else c
            out.append(op)
            i += len(op)
        elif c in "=!":
            raise UsageError(f"--filter {text!r}: unknown operator at {text[i:]!r} (use {', '.join(_OPS)})")
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "<>=!'\"":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _literal(tok: str):
    if tok[:1] in "'\"":
        return tok[1:-1]
    if tok == "null":
        return None
    if tok in ("true", "false"):
        return tok == "true"
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok


def _compare(v, op: str, lit) -> bool:
    if op == "==":
        return _eq(v, lit)
    if op == "!=":
        return not _eq(v, lit)
    if v is None or lit is None:
        return False  # a missing value is neither smaller nor larger than anything
    if isinstance(lit, int | float) and not isinstance(lit, bool):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return False
    else:
        v, lit = str(v), str(lit)
    return {"<": v < lit, "<=": v <= lit, ">": v > lit, ">=": v >= lit}[op]


def _eq(v, lit) -> bool:
    if v is None or lit is None:
        return v is lit
    if isinstance(lit, int | float) and not isinstance(lit, bool) and not isinstance(v, bool):
        try:
            return float(v) == float(lit)
        except (TypeError, ValueError):
            return False
    return str(v).lower() == str(lit).lower() if isinstance(lit, bool) else str(v) == str(lit)


def compile_filter(text: str) -> Callable[[dict], bool]:
    """``FIELD OP LITERAL [and FIELD OP LITERAL ...]`` as a predicate on rows.

    FIELD: a row field or a label; OP: ``== != < <= > >=``; LITERAL: a number, a quoted string,
    a bare word, ``true``/``false`` or ``null`` (a missing value). Ordering comparisons with a
    missing value are false; ``!= x`` is true for it."""
    toks = _tokens(text)
    conds = []
    i = 0
    while True:
        if len(toks) - i < 3 or toks[i + 1] not in _OPS:
            raise UsageError(f"--filter {text!r}: expected FIELD OP VALUE (OP one of {' '.join(_OPS)}), "
                             f"got {' '.join(toks[i:i + 3]) or 'nothing'!r}")
        field, op, lit = toks[i], toks[i + 1], _literal(toks[i + 2])
        if field[:1] in "'\"" or field in _OPS:
            raise UsageError(f"--filter {text!r}: {field} is not a field name")
        conds.append((field, op, lit))
        i += 3
        if i == len(toks):
            break
        if toks[i].lower() != "and":
            raise UsageError(f"--filter {text!r}: expected 'and' between conditions, got {toks[i]!r}")
        i += 1
    return lambda row: all(_compare(_value(row, f), op, lit) for f, op, lit in conds)


# ------------------------------------------------------------------------------- sort


def sort_rows(rows: list[dict], spec: str) -> list[dict]:
    """Sort by ``FIELD[,FIELD...]``, a leading ``-`` for descending; missing values last."""
    for key in reversed([k.strip() for k in spec.split(",") if k.strip()]):
        desc = key.startswith("-")
        field = key.lstrip("-")
        if field == "when":
            field = "t0_ms"
        present = [r for r in rows if _value(r, field) is not None]
        missing = [r for r in rows if _value(r, field) is None]

        def k(r, field=field):
            v = _value(r, field)
            return (0, v, "") if isinstance(v, int | float) and not isinstance(v, bool) else (1, 0, str(v))

        rows = sorted(present, key=k, reverse=desc) + missing
    return rows


# ------------------------------------------------------------------------------- read, render


def list_runs(paths: list[str], *, on_bad: Callable[[str], None] | None = None) -> list[dict]:
    """One row per run found under ``paths`` (files, directories, globs)."""
    from .readers import entries_of, find_inputs

    rows = []
    for p in find_inputs(paths or ["."], on_skip=on_bad):
        try:
            for e in entries_of(p):
                rows.append(_row(e))
        except InputError as exc:
            if on_bad is None:
                raise
            on_bad(str(exc))
    return rows


def _human_kb(kb) -> str:
    if kb is None:
        return "-"
    v = float(kb)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "KiB" else f"{v:.1f} {unit}"
        v /= 1024
    return "-"  # pragma: no cover


def _cell(field: str, v) -> str:
    if v is None:
        return "-"
    if field == "peak_rss_kb":
        return _human_kb(v)
    if field in ("wall_time_secs", "cpu_time_secs"):
        return f"{v:.2f}s"
    return str(v).replace("\n", " ")


def render(rows: list[dict], fmt: str) -> str:
    """``table``, ``json`` (a list of objects, labels included) or ``csv`` (the fields, then the labels)."""
    if fmt == "json":
        import json

        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        import csv
        import io

        label_keys = sorted({k for r in rows for k in r["labels"]} - set(FIELDS))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(FIELDS) + label_keys)
        for r in rows:
            w.writerow(["" if r[f] is None else r[f] for f in FIELDS] + [r["labels"].get(k, "") for k in label_keys])
        return buf.getvalue()
    if fmt != "table":
        raise DenetError(f"unknown format {fmt}")  # pragma: no cover - click checks the choice
    table = [[_HEAD[c] for c in COLUMNS]] + [[_cell(c, r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    right = {"exit_code", "wall_time_secs", "cpu_time_secs", "peak_rss_kb"}
    lines = []
    for row in table:
        cells = [x.rjust(w) if c in right else x.ljust(w) for x, w, c in zip(row, widths, COLUMNS, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
