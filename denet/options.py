"""The one table of ``run``/``attach`` options, and the lean parser generated from it.

``denet run`` must start CMD within a few milliseconds of the interpreter, so the ``run`` and
``attach`` paths are parsed here without importing click. ``denet.cli`` builds its click options
from the same table (for ``--help`` and every other command); a test checks that both agree.
"""

from __future__ import annotations

from .errors import UsageError

__all__ = ["OPTIONS", "Option", "Settings", "lean_parse", "split_global"]


class Option:
    __slots__ = ("dest", "flags", "kind", "default", "help", "metavar", "aliases", "choices", "key", "env",
                 "in_file", "in_env")

    def __init__(self, dest, flags, kind, default, help, metavar=None, aliases=(), choices=(), key=None,
                 in_file=True, in_env=True) -> None:
        self.dest = dest
        self.flags = flags  # e.g. ("--interval", "-i")
        # "flag", "int", "float", "str", "multi", "neg" (a flag that sets dest False), "choice" (one of choices)
        self.kind = kind
        self.default = default
        self.help = help
        self.metavar = metavar
        self.aliases = aliases  # extra flags of the same meaning (also click-visible)
        self.choices = choices
        # The name in a config file and (upper-cased, DENET_ prefixed) in the environment: declared, else the
        # long flag's name (--max-interval: max_interval, DENET_MAX_INTERVAL); a "neg" option is named by its
        # dest and takes the dest's value (--no-ledger: ledger = false, DENET_LEDGER=0).
        self.key = key or (dest if kind == "neg" else flags[0].lstrip("-").replace("-", "_"))
        self.env = "DENET_" + self.key.upper()
        self.in_file = in_file  # False: not a config-file key (--config itself)
        self.in_env = in_env  # False: no DENET_* variable (-c: a command does not come from the environment)


OPTIONS: tuple[Option, ...] = (
    Option("json", ("--json", "-j"), "flag", False, "Write records as JSON lines to stdout (CMD's stdout goes to stderr)."),
    Option("out", ("--out", "-o"), "str", None,
           "Write records to FILE (JSON lines; Parquet when FILE ends in .parquet or with --format parquet). "
           "FILE may hold {rule} (any label), {pid}, {host}, {datetime}, {cmd}, {n}; a directory (or a name "
           "ending in /) means DIR/{cmd}-{datetime}-{pid}.jsonl.", "FILE"),
    Option("format", ("--format",), "choice", None,
           "Format of --out FILE: jsonl or parquet (default: from the extension).", "FORMAT",
           choices=("jsonl", "parquet")),
    Option("interval_ms", ("--interval", "-i"), "int", 100, "Base sampling interval in milliseconds.", "MS"),
    Option("max_interval_ms", ("--max-interval", "-m"), "int", 1000,
           "Largest sampling interval of the adaptive schedule, in milliseconds.", "MS"),
    Option("duration_s", ("--duration", "-d"), "float", None,
           "Stop sampling after S seconds (run still waits for CMD and returns its exit code).", "S"),
    Option("quiet", ("--quiet", "-q"), "flag", False, "Discard CMD's stdout and stderr."),
    Option("include_children", ("--exclude-children",), "neg", True,
           "Monitor the root process only (sample records instead of tree records).",
           aliases=("--no-include-children",)),
    Option("since_process_start", ("--since-process-start",), "flag", False,
           "Report counters as lifetime values instead of deltas since monitoring began."),
    Option("write_env", ("--write-env",), "flag", False, "Write an env record (host, CPUs, NUMA, ...) first."),
    Option("clobber", ("--clobber",), "flag", False,
           "Let --out (and the --capture files) overwrite existing files; by default denet refuses before CMD "
           "starts."),
    Option("capture", ("--capture",), "choice", None,
           "Also write CMD's stdout, stderr or both (all) to NAME.stdout / NAME.stderr next to --out NAME.jsonl, "
           "still passing it through unless --quiet.", "WHAT", choices=("stdout", "stderr", "all")),
    Option("stats", ("--stats",), "str", None, "Also write the summary as JSON to FILE.", "FILE"),
    Option("benchmark", ("--benchmark",), "str", None,
           "Also write Snakemake's benchmark TSV for the run to FILE (seconds, MiB, NA where unknown).", "FILE"),
    Option("labels", ("--label",), "multi", (), "Attach KEY=VALUE to the run's metadata (repeatable).",
           "KEY=VALUE", key="labels"),
    Option("note", ("--note",), "str", None, "Store TEXT in the run's metadata (shown by denet ls).",
           "TEXT"),
    Option("no_update", ("--no-update",), "flag", False, "No live line on the terminal; only the final summary."),
    Option("ledger", ("--no-ledger",), "neg", True,
           "No process ledger (by default every process of the tree is listed with its exit status and cost, "
           "from kernel process events where the kernel allows)."),
    Option("gpu", ("--no-gpu",), "neg", True,
           "Do not probe or sample NVIDIA GPUs (the probe loads NVML, which can take a moment on a GPU host)."),
    Option("enable_ebpf", ("--enable-ebpf",), "flag", False,
           "Profile the tree with eBPF (root, or CAP_BPF+CAP_PERFMON; bcc from python3-bpfcc): syscalls by "
           "process and category, off-CPU time by thread and state, a behaviour classification. Loading takes "
           "about half a second before CMD starts. Where eBPF cannot run, a schedstat off-CPU estimate instead."),
    Option("ebpf_stacks", ("--ebpf-stacks",), "flag", False,
           "With --enable-ebpf (implied): also record the user stacks of the longest off-CPU waits and name "
           "them from the binaries' symbol tables."),
    Option("debug", ("--debug",), "flag", False, "Print denet's own diagnostics on stderr."),
    Option("command", ("--command", "-c"), "str", None,
           "Run STRING through /bin/sh -c (pipes, redirections, ; and && need no extra quoting); words after "
           "it become $0, $1, ... as with sh -c.", "STRING", in_file=False, in_env=False),
    Option("config", ("--config",), "str", None,
           "Read settings from this TOML file instead of ./denet.toml and the user's config.toml.", "FILE",
           in_file=False),
)

_BY_FLAG: dict[str, Option] = {}
for _o in OPTIONS:
    for _f in _o.flags + _o.aliases:
        _BY_FLAG[_f] = _o


class Settings:
    """Parsed options; attribute names are the table's ``dest``."""

    def __init__(self, **kw) -> None:
        for o in OPTIONS:
            setattr(self, o.dest, kw.get(o.dest, o.default))
        # The dests given on the command line, and where every value came from (denet.config).
        self.given: frozenset = frozenset(kw)
        self.sources: dict = {}

    def as_dict(self) -> dict:
        return {o.dest: getattr(self, o.dest) for o in OPTIONS}

    def __eq__(self, other) -> bool:
        return isinstance(other, Settings) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"Settings({self.as_dict()!r})"

    def label_dict(self) -> dict[str, str]:
        return dict(parse_label(v) for v in self.labels)


def parse_label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--label expects KEY=VALUE, got {value!r}")
    return key.strip(), val


def convert(o: Option, flag: str, raw: str):
    """Check and convert one option value; the error names the option."""
    if o.kind == "int":
        try:
            v = int(raw)
        except ValueError:
            raise UsageError(f"{flag} expects a whole number of milliseconds, got {raw!r}") from None
        if v <= 0:
            raise UsageError(f"{flag} must be greater than 0, got {v}")
        return v
    if o.kind == "float":
        try:
            v = float(raw)
        except ValueError:
            raise UsageError(f"{flag} expects a number of seconds, got {raw!r}") from None
        if not v > 0 or v != v or v == float("inf"):
            raise UsageError(f"{flag} must be a positive number of seconds, got {raw!r}")
        return v
    if o.kind == "multi":
        parse_label(raw)
        return raw
    if o.kind == "choice":
        v = raw.strip().lower()
        if v not in o.choices:
            raise UsageError(f"{flag} must be one of {', '.join(o.choices)}, got {raw!r}")
        return v
    if raw == "":
        raise UsageError(f"{flag} expects a value")
    return raw


def _consume(args: list[str], i: int, values: dict) -> int:
    """Parse the option at ``args[i]`` into ``values``; return the index after it."""
    tok = args[i]
    flag, eq, inline = tok.partition("=") if tok.startswith("--") else (tok, "", "")
    if not tok.startswith("--") and len(tok) > 2:  # -i50 or -jq
        flag, inline, eq = tok[:2], tok[2:], "="
        o = _BY_FLAG.get(flag)
        if o is not None and o.kind in ("flag", "neg"):
            # a cluster of short flags: -jq
            for ch in tok[1:]:
                oo = _BY_FLAG.get("-" + ch)
                if oo is None or oo.kind not in ("flag", "neg"):
                    raise UsageError(f"no such option: -{ch} (in {tok})")
                values[oo.dest] = oo.kind == "flag"
            return i + 1
    o = _BY_FLAG.get(flag)
    if o is None:
        raise UsageError(f"no such option: {flag}")
    if o.kind in ("flag", "neg"):
        if eq:
            raise UsageError(f"{flag} takes no value")
        values[o.dest] = o.kind == "flag"
        return i + 1
    if eq:
        raw = inline
        nxt = i + 1
    else:
        if i + 1 >= len(args):
            raise UsageError(f"{flag} expects a value")
        raw = args[i + 1]
        nxt = i + 2
    v = convert(o, flag, raw)
    if o.kind == "multi":
        values[o.dest] = tuple(values.get(o.dest, ())) + (v,)
    else:
        values[o.dest] = v
    return nxt


def _is_option(tok: str) -> bool:
    return tok.startswith("-") and tok != "-" and tok != "--"


def split_global(argv: list[str]) -> tuple[dict, str | None, list[str]]:
    """Parse the options before the subcommand: (values, subcommand or None, the rest)."""
    values: dict = {}
    i = 0
    while i < len(argv) and _is_option(argv[i]):
        if argv[i] in ("--help", "-h", "--version"):
            return values, None, argv[i:]
        i = _consume(argv, i, values)
    if i >= len(argv):
        return values, None, []
    return values, argv[i], argv[i + 1 :]


def lean_parse(argv: list[str]) -> tuple[str, Settings, list[str]] | None:
    """Parse ``[OPTIONS] run|attach [OPTIONS] [--] ARGS`` without click.

    Returns (command, settings, positional args), or None when click should handle ``argv``
    (another command, or ``--help`` anywhere before the positional arguments).
    """
    try:
        values, cmd, rest = split_global(argv)
    except UsageError:
        raise
    if cmd not in ("run", "attach"):
        return None
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok == "--":
            i += 1
            break
        if not _is_option(tok):
            break
        if tok in ("--help", "-h"):
            return None
        i = _consume(rest, i, values)
    args = rest[i:]
    s = Settings(**values)
    s.labels = tuple(values.get("labels", ()))
    return cmd, s, args
