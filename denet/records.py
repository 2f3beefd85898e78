"""Record classes derived from the schema.

Each record is an immutable tuple subclass whose attributes are the declared fields
(like a frozen dataclass, without the import cost of :mod:`dataclasses` on the
``denet run`` path). Each class knows how to become a JSON line in one pass
(``to_line``), a JSON object (``to_json``) or a plain dict (``as_dict``) for Arrow.
The field lists, their order and their types all come from :mod:`denet.schema`.
"""

from __future__ import annotations

import math
from operator import itemgetter as _itemgetter

try:  # the C string escaper of the json package, without importing the package (and re) on `denet run`
    from _json import encode_basestring as _js
except ImportError:  # pragma: no cover - other Python implementations
    from json.encoder import encode_basestring as _js

from . import schema

__all__ = [
    "Aggregated",
    "Capability",
    "Child",
    "EbpfAggregated",
    "EnvRecord",
    "GpuAggregated",
    "GpuDevice",
    "GpuMetrics",
    "GpuProcess",
    "Lscpu",
    "Metrics",
    "Numa",
    "ProcessRecord",
    "RECORD_CLASSES",
    "RunHeader",
    "RunSummary",
    "TreeSample",
]


def _fl(v, digits: int = 3) -> str:
    if v is None or v != v or v in _INFINITE:
        return "null"
    return repr(round(float(v), digits))


_INFINITE = (math.inf, -math.inf)


def _compact(v) -> str:
    """Compact JSON of a plain value (dicts, lists, strings, numbers, booleans, None, records)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _js(v)
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _fl(v)
    if isinstance(v, _Record):
        return v.to_json()
    if isinstance(v, dict):
        return "{" + ",".join(_js(str(k)) + ":" + _compact(x) for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_compact(x) for x in v) + "]"
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


class _Record(tuple):
    __slots__ = ()
    _record: str = ""
    _fields: tuple[str, ...] = ()
    _tag: str | None = None

    def as_dict(self, *, keep_absent: bool = False) -> dict:
        """The record as a plain dict (nested records as dicts); optional fields that are absent are left out."""
        out = {}
        for f, v in zip(schema.fields(self._record), self, strict=True):
            if v is None and f.optional and not keep_absent:
                continue
            out[f.name] = _to_plain(v)
        return out

    def _replace(self, **changes):
        return type(self)(**{**dict(zip(self._fields, self, strict=True)), **changes})

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({body})"

    def __reduce__(self):
        return (type(self), tuple(self))


def _to_plain(v):
    if isinstance(v, _Record):
        return v.as_dict()
    if isinstance(v, list | tuple):
        return [_to_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_plain(x) for k, x in v.items()}
    return v


def _value_expr(ftype: str, var: str) -> str:
    """Python expression that renders ``var`` (known not to be None) as JSON text."""
    if ftype == "int":
        return f"'%d' % {var}"
    if ftype == "float":
        return f"_fl({var})"
    if ftype == "str":
        return f"_js({var})"
    if ftype == "bool":
        return f"('true' if {var} else 'false')"
    if ftype.startswith("record:"):
        return f"{var}.to_json()"
    if ftype.startswith("list<record:"):
        return f"('[' + ','.join([x.to_json() for x in {var}]) + ']')"
    return f"_compact({var})"


def _source(record: str) -> str:
    """Generated ``__new__`` and one-pass JSON body of ``record``.

    The fields that are always present are rendered by one %-format; optional fields that are
    set are appended after them (key order carries no meaning in JSON).
    """
    flds = schema.fields(record)
    names = tuple(f.name for f in flds)
    # Trailing optional/nullable fields default to None; the others must be given.
    n_req = max((i + 1 for i, f in enumerate(flds) if not (f.optional or f.nullable)), default=0)
    params = ", ".join(n if i < n_req else f"{n}=None" for i, n in enumerate(names))
    lines = [f"def new_{record}(cls, {params}):", f"    return _tuple_new(cls, ({', '.join(names)},))", ""]
    fixed = [f for f in flds if not f.optional]
    if not fixed:
        raise ValueError(f"record {record!r} declares no field that is always present")
    fmt, args = [], []
    for f in fixed:
        v = "v_" + f.name
        if f.type == "int" and not f.nullable:
            fmt.append(f'"{f.name}":%d')
            args.append(v)
        elif f.type == "float":
            fmt.append(f'"{f.name}":%s')
            args.append(f"_fl({v}, {int(f.digits)})" if f.digits else f"_fl({v})")  # digits: kept decimals
        else:
            fmt.append(f'"{f.name}":%s')
            expr = _value_expr(f.type, v)
            args.append(f"('null' if {v} is None else {expr})" if f.nullable else expr)
    body = [f"    ({', '.join('v_' + n for n in names)},) = self",
            f"    s = {','.join(fmt)!r} % ({', '.join(args)},)"]
    for f in flds:
        if f.optional:
            v = "v_" + f.name
            body.append(f"    if {v} is not None: s += ',\"{f.name}\":' + {_value_expr(f.type, v)}")
    # to_json (no kind) and, for top-level records, to_line (kind first): the same body, no extra call
    lines += [f"def json_{record}(self):", *body, "    return '{' + s + '}'", ""]
    t = schema.tag(record)
    if t is not None:
        prefix = '{"kind":"' + t + '",'
        lines += [f"def line_{record}(self):", *body, f"    return {prefix!r} + s + '}}'", ""]
    return "\n".join(lines) + "\n\n"


def _compiled():
    """Code object of the generated functions of every record.

    Compiling it costs a few milliseconds, which ``denet run`` would pay at every start, so the code
    is cached (:func:`denet.schema.cached`), keyed by the generated source itself.
    """
    src = "".join(_source(name) for name in schema.record_names())
    return schema.cached("records.gen", src,
                         lambda: compile(src, "<denet.records generated from schemas/records.json>", "exec"))


_NS = {"_fl": _fl, "_js": _js, "_compact": _compact, "_tuple_new": tuple.__new__}
exec(_compiled(), _NS)  # noqa: S102 - code generated from the schema declaration


def _make(record: str, class_name: str) -> type:
    flds = schema.fields(record)
    names = tuple(f.name for f in flds)
    t = schema.tag(record)
    to_json = _NS["json_" + record]  # the record as one compact JSON object (no ``kind``)
    if t is not None:
        to_line = _NS["line_" + record]  # a top-level JSONL line (``kind`` first, no newline)
    else:

        def to_line(self) -> str:
            raise TypeError(f"{record} is a nested record and has no line of its own")

    attrs = {
        "__slots__": (),
        "__new__": _NS["new_" + record],
        "_record": record,
        "_fields": names,
        "_tag": t,
        "to_json": to_json,
        "to_line": to_line,
        "__doc__": schema.declaration()["records"][record].get("description", ""),
    }
    for i, n in enumerate(names):
        attrs[n] = property(_itemgetter(i), doc=flds[i].description)
    return type(class_name, (_Record,), attrs)


GpuDevice = _make("gpu_device", "GpuDevice")
GpuProcess = _make("gpu_process", "GpuProcess")
GpuMetrics = _make("gpu_metrics", "GpuMetrics")
GpuAggregated = _make("gpu_aggregated", "GpuAggregated")
Metrics = _make("metrics", "Metrics")
Aggregated = _make("aggregated", "Aggregated")
Child = _make("child", "Child")
TreeSample = _make("tree", "TreeSample")
Capability = _make("capability", "Capability")
RunHeader = _make("metadata", "RunHeader")
Lscpu = _make("lscpu", "Lscpu")
Numa = _make("numa", "Numa")
EnvRecord = _make("env", "EnvRecord")
RunSummary = _make("summary", "RunSummary")
ProcessRecord = _make("process", "ProcessRecord")
EbpfAggregated = _make("ebpf_aggregated", "EbpfAggregated")
EbpfOffcpu = _make("ebpf_offcpu", "EbpfOffcpu")
EbpfThread = _make("ebpf_thread", "EbpfThread")
EbpfSyscalls = _make("ebpf_syscalls", "EbpfSyscalls")
EbpfSyscallCount = _make("ebpf_syscall_count", "EbpfSyscallCount")
EbpfProcessSyscalls = _make("ebpf_process_syscalls", "EbpfProcessSyscalls")
EbpfBehavior = _make("ebpf_behavior", "EbpfBehavior")
EbpfStack = _make("ebpf_stack", "EbpfStack")

RECORD_CLASSES: dict[str, type] = {
    c._record: c for c in (Metrics, Aggregated, Child, TreeSample, Capability, RunHeader, Lscpu, Numa, EnvRecord, RunSummary,
                           GpuDevice, GpuProcess, GpuMetrics, GpuAggregated, ProcessRecord,
                           EbpfAggregated, EbpfOffcpu, EbpfThread, EbpfSyscalls, EbpfSyscallCount, EbpfProcessSyscalls,
                           EbpfBehavior, EbpfStack)
}


def from_plain(record: str, d: dict):
    """A record of type ``record`` from a plain dict of its declared fields (nested records
    built the same way; a field not in the dict is None). Used for collector values."""
    vals = {}
    for f in schema.fields(record):
        v = d.get(f.name)
        if v is not None:
            if f.type.startswith("record:"):
                v = from_plain(f.type[len("record:"):], v)
            elif f.type.startswith("list<record:"):
                v = [from_plain(f.type[len("list<record:"):-1], x) for x in v]
        vals[f.name] = v
    return RECORD_CLASSES[record](**vals)
