"""The record schema, loaded from ``schemas/records.json``: the only field lists.

Everything that needs a field list derives it from here: the record classes
(:mod:`denet.records`), the Arrow schema, the polars dtypes and ``docs/schema.md``.
Nothing heavy is imported at module level (the parsed declaration is cached beside the
package's bytecode, so ``denet run`` does not even import ``json`` for it); pyarrow and polars
are imported inside the functions that build their schemas.
"""

from __future__ import annotations

import os

__all__ = [
    "SCHEMA_VERSION",
    "Field",
    "arrow_schema",
    "arrow_table_schema",
    "arrow_type",
    "declaration",
    "fields",
    "markdown",
    "polars_schema",
    "polars_table_schema",
    "record_names",
    "table_description",
    "table_fields",
    "table_names",
    "tag",
]

_HERE = os.path.dirname(os.path.abspath(__file__))
# Installed wheels carry the declarations inside the package; a source checkout has them beside it.
_CANDIDATES = (
    os.path.join(_HERE, "schemas", "records.json"),
    os.path.join(os.path.dirname(_HERE), "schemas", "records.json"),
)


def _load() -> dict:
    for path in _CANDIDATES:
        try:
            st = os.stat(path)
        except OSError:
            continue
        return _cached(path, (path, st.st_mtime_ns, st.st_size))
    raise RuntimeError("denet is installed without its schema (schemas/records.json)")


def cached(name: str, key, build):
    """``build()``, kept in a marshal file beside the package's bytecode (like a .pyc) and reused
    while ``key`` is unchanged. Where that folder is not writable, ``build()`` runs every time."""
    import marshal
    import sys

    cache = os.path.join(_HERE, "__pycache__", f"{name}.{sys.implementation.cache_tag}.bin")
    try:
        with open(cache, "rb") as fh:
            cached_key, value = marshal.load(fh)
        if cached_key == key:
            return value
    except (OSError, EOFError, ValueError, TypeError):
        pass
    value = build()
    try:
        from .atomic import replace_with_bytes

        os.makedirs(os.path.dirname(cache), exist_ok=True)
        replace_with_bytes(cache, marshal.dumps((key, value)))
    except OSError:
        pass
    return value


def _cached(path: str, key: tuple) -> dict:
    """The parsed declaration, cached and keyed by the file's path, mtime and size."""

    def parse() -> dict:
        import json

        with open(path, "rb") as fh:
            return json.load(fh)

    return cached("schema", key, parse)


_DECL = _load()
SCHEMA_VERSION: int = _DECL["schema_version"]


class Field:
    """One declared field (of a record, or a column of a derived table)."""

    __slots__ = ("name", "type", "unit", "description", "since", "optional", "nullable", "aliases", "source",
                 "stat", "placeholder", "digits")

    def __init__(self, d: dict) -> None:
        self.name: str = d["name"]
        self.type: str = d["type"]
        self.unit: str = d.get("unit", "")
        self.description: str = d.get("description", "")
        self.since: int = d.get("since", 1)
        self.optional: bool = bool(d.get("optional", False))
        self.nullable: bool = bool(d.get("nullable", False))
        self.aliases: tuple[str, ...] = tuple(d.get("aliases", ()))  # older names accepted on input
        self.source: str | None = d.get("source")  # table columns: the column a statistic is computed from
        self.stat: str | None = d.get("stat")  # table columns: mean, p95, sum, max, min, count
        self.placeholder: str | None = d.get("placeholder")  # table columns named at run time
        self.digits: int | None = d.get("digits")  # floats: decimals kept in JSON (default 3)

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.type!r})"


_FIELDS: dict[str, tuple[Field, ...]] = {
    name: tuple(Field(f) for f in rec["fields"]) for name, rec in _DECL["records"].items()
}


def declaration() -> dict:
    """The raw declaration (a dict as read from the file)."""
    return _DECL


def record_names() -> tuple[str, ...]:
    return tuple(_FIELDS)


def fields(record: str) -> tuple[Field, ...]:
    """Declared fields of ``record`` in their declared order."""
    try:
        return _FIELDS[record]
    except KeyError:
        raise KeyError(f"no record named {record!r} in the schema") from None


def tag(record: str) -> str | None:
    """The ``"kind"`` a top-level record of this type carries, or None for nested records."""
    return _DECL["records"][record].get("tag")


def names(record: str) -> tuple[str, ...]:
    """Declared field names of ``record``."""
    return tuple(f.name for f in fields(record))


# ---------------------------------------------------------------- derived tables


def table_names() -> tuple[str, ...]:
    """Tables derived from the records (Parquet rows, summaries, ...), as declared under ``tables``."""
    return tuple(_DECL.get("tables", {}))


def table_description(table: str) -> str:
    return _table(table).get("description", "")


def _table(table: str) -> dict:
    try:
        return _DECL["tables"][table]
    except KeyError:
        raise KeyError(f"no table named {table!r} in the schema") from None


_STAT_FLOAT = ("mean", "p95")


def _flat_type(t: str) -> str:
    """Nested types become JSON text in flat tables."""
    return "json" if t.startswith(("record:", "map<")) else t


def table_entries(table: str) -> list[dict]:
    """The raw entries of ``table`` (fields, includes, placeholders, stats)."""
    return list(_table(table)["fields"])


def table_fields(table: str, **placeholders: tuple[str, ...] | list[str]) -> tuple[Field, ...]:
    """The columns of ``table`` in order.

    Includes expand to the included record's fields not already present; ``stats`` entries to one
    column per statistic; a placeholder to one nullable string column per name given for it
    (``labels=("rule", "sample")``), or to nothing when no names are given.
    """
    out: list[Field] = []
    seen: set[str] = set()

    def add(f: Field) -> None:
        if f.name not in seen:
            seen.add(f.name)
            out.append(f)

    for e in _table(table)["fields"]:
        if "include" in e:
            skip = set(e.get("except", ()))
            for f in fields(e["include"]):
                if f.name in skip or f.name in seen:
                    continue
                d = {"name": f.name, "type": _flat_type(f.type), "unit": f.unit, "description": f.description,
                     "since": f.since, "nullable": True, "aliases": f.aliases}
                add(Field(d))
        elif "stats" in e:
            for st in e["list"]:
                t = "float" if st in _STAT_FLOAT else ("int" if st == "count" else e["type"])
                add(Field({"name": f"{e['stats']}_{st}", "type": t, "unit": e.get("unit", ""), "nullable": True,
                           "description": f"{st} of {e['of']}: {e.get('description', '')}",
                           "since": e.get("since", 1), "source": e["of"], "stat": st}))
        elif "placeholder" in e:
            for n in placeholders.get(e["placeholder"], ()):
                add(Field({"name": n, "type": "str", "nullable": True, "placeholder": e["placeholder"],
                           "description": e.get("description", "")}))
        else:
            add(Field(e))
    return tuple(out)


def table_names_of(table: str, **placeholders) -> tuple[str, ...]:
    return tuple(f.name for f in table_fields(table, **placeholders))


def arrow_table_schema(table: str, **placeholders):
    """The Arrow schema of a derived table, with unit and description as field metadata."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(f.name, arrow_type(f.type), nullable=True, metadata={"unit": f.unit, "description": f.description})
         for f in table_fields(table, **placeholders)],
        metadata={"denet_schema_version": str(SCHEMA_VERSION), "denet_table": table},
    )


def polars_table_schema(table: str, **placeholders) -> dict:
    """Column name -> polars dtype for a derived table."""
    return {f.name: polars_dtype(f.type) for f in table_fields(table, **placeholders)}


def _inner(type_str: str, prefix: str) -> str:
    return type_str[len(prefix) : -1]


# ---------------------------------------------------------------- Arrow / polars


def arrow_type(type_str: str):
    """The Arrow type of a declared type (``json`` fields are kept as JSON text)."""
    import pyarrow as pa

    scalars = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_(), "json": pa.string()}
    if type_str in scalars:
        return scalars[type_str]
    if type_str.startswith("list<"):
        return pa.list_(arrow_type(_inner(type_str, "list<")))
    if type_str.startswith("map<"):
        return pa.map_(pa.string(), arrow_type(_inner(type_str, "map<")))
    if type_str.startswith("record:"):
        return arrow_schema_struct(type_str[len("record:") :])
    raise ValueError(f"unknown declared type {type_str!r}")


def arrow_schema_struct(record: str):
    import pyarrow as pa

    return pa.struct([pa.field(f.name, arrow_type(f.type), nullable=True) for f in fields(record)])


def arrow_schema(record: str):
    """The Arrow schema of ``record`` with the unit and description of each field as field metadata."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(
                f.name,
                arrow_type(f.type),
                nullable=True,
                metadata={"unit": f.unit, "description": f.description},
            )
            for f in fields(record)
        ],
        metadata={"denet_schema_version": str(SCHEMA_VERSION), "denet_record": record},
    )


def polars_dtype(type_str: str):
    import polars as pl

    scalars = {"int": pl.Int64, "float": pl.Float64, "str": pl.String, "bool": pl.Boolean, "json": pl.String}
    if type_str in scalars:
        return scalars[type_str]
    if type_str.startswith("list<"):
        return pl.List(polars_dtype(_inner(type_str, "list<")))
    if type_str.startswith("map<"):
        # polars has no map type; keep maps as JSON text
        return pl.String
    if type_str.startswith("record:"):
        return pl.Struct({f.name: polars_dtype(f.type) for f in fields(type_str[len("record:") :])})
    raise ValueError(f"unknown declared type {type_str!r}")


def polars_schema(record: str) -> dict:
    """Column name -> polars dtype for ``record``."""
    return {f.name: polars_dtype(f.type) for f in fields(record)}


# ---------------------------------------------------------------- docs


def markdown() -> str:
    """``docs/schema.md``, generated from the declaration."""
    out = [
        "# denet record schema",
        "",
        "<!-- Generated from schemas/records.json by `python -m denet.schema > docs/schema.md`; do not edit. -->",
        "",
        f"Schema version: **{SCHEMA_VERSION}**.",
        "",
        _DECL.get("about", ""),
        "",
        "JSON Lines framing: one compact JSON object per line; a top-level record starts with its `kind`",
        "(`env`, `metadata`, `tree` or `sample`, `process`, `summary`). Readers skip kinds they do not know.",
        "",
    ]
    for name in record_names():
        rec = _DECL["records"][name]
        t = rec.get("tag")
        head = f"## `{name}`" + (f" (`\"kind\":\"{t}\"`)" if t else " (nested)")
        out += [head, "", rec.get("description", ""), "", "| field | type | unit | presence | since | meaning |",
                "|---|---|---|---|---|---|"]
        for f in fields(name):
            presence = "optional" if f.optional else ("nullable" if f.nullable else "always")
            desc = f.description.replace("|", "\\|")
            ftype = f.type.replace("<", "&lt;").replace(">", "&gt;")
            out.append(f"| `{f.name}` | {ftype} | {f.unit} | {presence} | {f.since} | {desc} |")
        out.append("")
    if table_names():
        out += ["# Derived tables", "", _DECL.get("tables_about", ""), ""]
    for name in table_names():
        out += [f"## table `{name}`", "", table_description(name), "", "| column | type | unit | meaning |",
                "|---|---|---|---|"]
        for e in table_entries(name):
            if "include" in e:
                extra = f" except {', '.join('`' + x + '`' for x in e['except'])}" if e.get("except") else ""
                out.append(f"| *every field of `{e['include']}`*{extra} | | | as declared above (nested values as JSON text) |")
            elif "placeholder" in e:
                out.append(f"| *{e['placeholder']}* | str | | {e.get('description', '')} |")
            elif "stats" in e:
                cols = ", ".join(f"`{e['stats']}_{st}`" for st in e["list"])
                desc = e.get("description", "").replace("|", "\\|")
                types = [("float" if st in _STAT_FLOAT else "int" if st == "count" else e["type"]) + f" ({st})"
                         for st in e["list"]]
                shown = e["type"] if all(t.startswith(e["type"] + " ") for t in types) else ", ".join(types)
                out.append(f"| {cols} | {shown} | {e.get('unit', '')} | {desc} (of `{e['of']}`) |")
            else:
                f = Field(e)
                desc = f.description.replace("|", "\\|")
                ftype = f.type.replace("<", "&lt;").replace(">", "&gt;")
                out.append(f"| `{f.name}` | {ftype} | {f.unit} | {desc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover - exercised by the docs test through markdown()
    import sys

    sys.stdout.write(markdown())
