"""The command line: the only place that prints errors and chooses exit codes.

``denet run`` and ``denet attach`` are parsed by the lean parser of :mod:`denet.options` so that
CMD starts before anything heavy is imported; ``--help`` and every other command go through
click, whose options are built from the same table.
"""

from __future__ import annotations

import os
import sys

from .errors import DenetError, UsageError
from .options import OPTIONS, Settings, lean_parse

__all__ = ["entry", "main"]

PROG = "denet"


def _err(msg: str) -> None:
    try:
        os.write(2, f"{PROG}: {msg}\n".encode())
    except OSError:
        pass


# ---------------------------------------------------------------------------- run / attach


def out_format(s: Settings) -> str | None:
    """The format of --out: --format, else the extension (``.parquet`` is Parquet, all else JSON lines)."""
    if not s.out:
        if s.format:
            raise UsageError(f"--format {s.format} applies to --out FILE, and no --out was given")
        return None
    if s.format:
        return s.format
    return "parquet" if s.out.lower().endswith(".parquet") else "jsonl"


def _sinks(s: Settings):
    from .sinks import JsonlSink

    sinks = []
    fmt = out_format(s)
    bench = None
    if s.benchmark:  # checked first: it creates nothing until the run ends
        from .sinks.benchmark import BenchmarkSink

        try:
            bench = BenchmarkSink(s.benchmark)
        except OSError as exc:
            raise DenetError(f"cannot write --benchmark {s.benchmark}: {exc.strerror or exc}") from None
    if s.out:
        try:
            if fmt == "parquet":
                from .sinks.parquet import ParquetSink  # pyarrow itself is imported at close, after CMD

                sinks.append(ParquetSink(s.out))
            else:
                sinks.append(JsonlSink(s.out))
        except OSError as exc:
            raise DenetError(f"cannot open --out {s.out}: {exc.strerror or exc}") from None
    if s.json:
        sinks.append(JsonlSink(1))
    if bench is not None:
        sinks.append(bench)
    return sinks


def _write_stats(path: str, summary) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(summary.to_json() + "\n")
    except OSError as exc:
        _err(f"cannot write --stats {path}: {exc.strerror or exc}")


def _check_stats_path(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise DenetError(f"cannot write --stats {path}: directory {d} does not exist")


def _monitor(s: Settings):
    from .live import LiveLine, live_wanted
    from .monitor import Monitor

    live = None
    if live_wanted(2):
        live = LiveLine(2, update=not s.no_update)
    if s.stats:
        _check_stats_path(s.stats)
    return Monitor(
        interval_ms=s.interval_ms, max_interval_ms=s.max_interval_ms, duration_s=s.duration_s,
        include_children=s.include_children, since_process_start=s.since_process_start,
        write_env=s.write_env, labels=s.label_dict(), sinks=_sinks(s), live=live, warn=_err, ledger=s.ledger,
        gpu=s.gpu, note=s.note, ebpf=s.enable_ebpf, ebpf_stacks=s.ebpf_stacks,
    )


def _name_outputs(s: Settings, argv: list[str]) -> list[str]:
    """Fill in the --out (and --stats, --benchmark) templates; refuse to overwrite; the --capture paths."""
    if s.capture and not s.out:
        raise UsageError(f"--capture {s.capture} writes next to --out FILE, and no --out (or DENET_OUT) was given")
    extra = {k: getattr(s, k) for k in ("stats", "benchmark") if getattr(s, k) and "{" in getattr(s, k)}
    if not s.out and not extra:
        return []
    from .naming import resolve_outputs

    path, captures, filled = resolve_outputs(s.out, out_format(s), argv, s.label_dict(), clobber=s.clobber,
                                             capture=s.capture, extra=extra)
    s.out = path
    for k, v in filled.items():
        setattr(s, k, v)
    return captures


def _drop_claim(s: Settings) -> None:
    """Remove the empty --out file claimed by _name_outputs when denet stops before CMD starts."""
    if s.out and not s.clobber and out_format(s) == "jsonl":
        try:
            if os.path.getsize(s.out) == 0:
                os.unlink(s.out)
        except OSError:
            pass


SHELL = "/bin/sh"  # `denet run -c STRING`: the only place denet runs a shell


def do_run(s: Settings, argv: list[str]) -> int:
    if s.command is not None:
        argv = [SHELL, "-c", s.command, *argv]  # words after STRING are $0, $1, ... as with sh -c
    if not argv:
        raise UsageError("run: no command given (usage: denet run [OPTIONS] [--] CMD [ARGS]... or "
                         "denet run [OPTIONS] -c STRING)")
    captures = _name_outputs(s, argv)
    try:
        mon = _monitor(s)
    except DenetError:
        _drop_claim(s)
        raise
    if s.quiet:
        out, err = "null", "null"
    elif s.json:
        out, err = "stderr", "inherit"  # stdout carries only records
    else:
        out, err = "inherit", "inherit"
    tees = []
    try:
        if captures:
            from .capture import Tee

            streams = ("stdout", "stderr") if s.capture == "all" else (s.capture,)
            for stream, path in zip(streams, captures, strict=True):
                through = None if s.quiet else (1 if stream == "stdout" and not s.json else 2)
                tees.append(Tee(path, through))
                if stream == "stdout":
                    out = tees[-1].wfd
                else:
                    err = tees[-1].wfd
        result = mon.run(argv, stdout=out, stderr=err)
    except DenetError:
        for sink in mon.sinks:
            sink.close()
        for t in tees:
            t.finish()
        _drop_claim(s)  # CMD did not start (not found, not executable): nothing was written
        raise
    for t in tees:
        t.finish()
        if t.error:
            _err(t.error)
    if s.stats:
        _write_stats(s.stats, result.summary)
    if s.debug:
        _debug(mon, result)
    return result.exit_code


def _debug(mon, result) -> None:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    info = " ".join(f"{k}={v}" for k, v in mon.info.items())
    _err(f"debug: {info} samples={result.summary.sample_count} own_cpu={ru.ru_utime + ru.ru_stime:.3f}s "
         f"own_maxrss={ru.ru_maxrss}KiB")
    for w in result.warnings:
        _err(f"debug: warning: {w}")


def do_attach(s: Settings, args: list[str]) -> int:
    if len(args) != 1:
        raise UsageError("attach expects exactly one PID (usage: denet attach [OPTIONS] PID)")
    try:
        pid = int(args[0])
    except ValueError:
        raise UsageError(f"attach: PID must be a number, got {args[0]!r}") from None
    if s.capture:
        raise UsageError("--capture applies to run: attach cannot see the output of a process it did not start")
    if s.command is not None:
        raise UsageError("-c/--command applies to run: attach follows a process that is already running")
    from .monitor import cmdline_of

    _name_outputs(s, cmdline_of(pid))
    mon = _monitor(s)
    try:
        result = mon.attach(pid)
    except DenetError:  # no such process, or not ours to read: nothing was written
        for sink in mon.sinks:
            sink.close()
        _drop_claim(s)
        raise
    if s.stats:
        _write_stats(s.stats, result.summary)
    if s.debug:
        _debug(mon, result)
    return 0


# ---------------------------------------------------------------------------- config


def do_config(s: Settings, as_json: bool) -> int:
    import json

    rows = [(o.key, getattr(s, o.dest), s.sources.get(o.dest, "default"), o.env) for o in OPTIONS if o.in_env]
    if as_json:
        obj = {k: {"value": list(v) if isinstance(v, tuple) else v, "source": src, "env": env}
               for k, v, src, env in rows}
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        return 0
    w = max(len(k) for k, *_ in rows)
    lines = []
    for k, v, src, _env in rows:
        shown = ",".join(v) if isinstance(v, tuple) else json.dumps(v)
        lines.append(f"{k:<{w}}  {shown:<24}  ({src})")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ---------------------------------------------------------------------------- stats


def _stats_by_command(path: str, run_id: str | None):
    """The run's process ledger by command (a polars frame), or None with a note when it has none."""
    from .process_summaries import command_table, frame_of
    from .readers import read_processes

    procs, why = read_processes(path)
    if procs is None:
        _err(f"note: {why}")
        return None
    return command_table(frame_of(procs, run_id=run_id or "", path=path))


def do_stats(path: str, as_json: bool, by: str | None = None) -> int:
    import json

    from .readers import effective_summary, read_run
    from .schema import fields

    rf = read_run(path)
    for msg in rf.bad_lines[:5]:
        _err(f"skipped {msg}")
    if len(rf.bad_lines) > 5:
        _err(f"skipped {len(rf.bad_lines) - 5} more unreadable lines")
    summ = effective_summary(rf)
    by_cmd = _stats_by_command(path, None) if by == "command" else None
    if as_json:
        if by == "command":
            summ = {**summ, "by_command": by_cmd.to_dicts() if by_cmd is not None else None}
        sys.stdout.write(json.dumps(summ, separators=(",", ":")) + "\n")
        return 0
    lines = [f"file: {path}"]
    if rf.metadata:
        cmd = rf.metadata.get("cmd")
        lines.append(f"command: {' '.join(map(str, cmd)) if isinstance(cmd, list) else cmd}")
        labels = rf.metadata.get("labels")
        if labels and isinstance(labels, dict):
            lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    exact = set(summ.get("exact") or [])
    for f in fields("summary"):
        if f.name == "exact":
            continue
        v = summ.get(f.name)
        if v is None and f.optional:  # the GPU figures: only for runs with GPU values
            continue
        if isinstance(v, dict):  # the eBPF values (--enable-ebpf): a few lines of their own
            from .collectors.ebpf_text import ebpf_lines

            lines += ebpf_lines(v)
            continue
        if v is None:
            shown = "missing (run was cut short)" if f.name in ("exit_code", "wall_time_secs", "cpu_user_secs",
                                                               "cpu_system_secs", "cpu_time_secs",
                                                               "peak_process_rss_kb") else "-"
        elif isinstance(v, float):
            shown = f"{v:.3f}"
        else:
            shown = str(v)
        unit = f" {f.unit}" if f.unit and v is not None and f.unit != "count" else ""
        tag = "exact" if f.name in exact else "sampled"
        if f.name in ("offcpu_secs", "offcpu_io_secs", "offcpu_source", "syscalls_total", "behavior"):
            tag = "schedstat estimate" if summ.get("offcpu_source") == "schedstat" else "eBPF"
        lines.append(f"  {f.name:<26} {shown}{unit}  ({tag})")
    if rf.summary is None:
        lines.append("note: no summary line (the run was cut short); sampled figures recomputed from "
                     f"{rf.records} records, exact figures missing")
    if by_cmd is not None:
        import shutil

        from .summaries import render_table

        lines += ["", "by command (process ledger):",
                  render_table(by_cmd, kind="command", width=shutil.get_terminal_size((120, 24)).columns).rstrip()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ---------------------------------------------------------------------------- summarize, compact, recover


class _ProgressBar:
    """A bar on stderr while many files are read, only when stderr is a terminal."""

    MIN_FILES = 50

    def __init__(self, what: str) -> None:
        self.what = what
        self.on = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        import time

        if not self.on or total < self.MIN_FILES:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        fill = int(width * done / total) if total else width
        line = f"\r{self.what} [{'#' * fill}{'.' * (width - fill)}] {done}/{total}"
        try:
            os.write(2, line.encode())
            self.shown = True
            if done >= total:
                os.write(2, b"\r\x1b[K")
                self.shown = False
        except OSError:
            self.on = False


def _emit_output(data: bytes | None) -> None:
    if data:
        sys.stdout.write(data.decode())
        sys.stdout.flush()


def do_summarize(paths, by, per_run, fmt, out, suggest, mem_headroom, runtime_headroom, skip_bad, jobs=()) -> int:
    import shutil

    from .summaries import PER_RUN_FORMATS, by_command, group_table, profile_yaml, run_table, write_output
    from .summaries import suggest as suggest_resources

    skipped: list[str] = []

    def on_bad(msg: str) -> None:
        skipped.append(msg)
        _err(f"skipped {msg}")

    if by_command(by) and not per_run and fmt not in PER_RUN_FORMATS:
        if jobs:
            raise UsageError("--jobs labels whole runs; it does not go with --by command")
        return _summarize_by_command(paths, by, fmt, out, suggest, skip_bad, on_bad, skipped)
    runs = run_table(list(paths), skip_bad=skip_bad, on_bad=on_bad, progress=_ProgressBar("reading"),
                     on_note=lambda m: _err(f"note: {m}"), jobs=list(jobs) or None)
    if runs.height == 0:
        raise DenetError(f"no runs found in {_paths_text(paths)}" + (f" ({len(skipped)} files skipped)" if skipped else ""))
    width = shutil.get_terminal_size((120, 24)).columns
    if suggest:
        from .schema import table_names_of

        groups = group_table(runs, by)
        keys = [c for c in groups.columns if c not in table_names_of("group")]
        text = profile_yaml(suggest_resources(groups, by=keys, mem_headroom=mem_headroom,
                                              runtime_headroom=runtime_headroom),
                            by=keys, mem_headroom=mem_headroom, runtime_headroom=runtime_headroom, runs=runs.height)
        if out:
            _write_text(out, text)
        else:
            sys.stdout.write(text)
        return 0
    if per_run or fmt in PER_RUN_FORMATS:
        _emit_output(write_output(runs, fmt, out, kind="run", width=width, runs=runs))
    else:
        _emit_output(write_output(group_table(runs, by), fmt, out, kind="group", width=width, runs=runs))
    return 0


def _paths_text(paths) -> str:
    """The paths given, for a message (the first three)."""
    paths = list(paths)
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _summarize_by_command(paths, by, fmt, out, suggest, skip_bad, on_bad, skipped) -> int:
    """``summarize --by command``: the runs' process ledgers by command name (and the other keys)."""
    import shutil

    from .process_summaries import command_table, process_table
    from .summaries import write_output

    if suggest:
        raise UsageError("--suggest sizes whole runs per rule; it does not go with --by command")
    procs = process_table(list(paths), skip_bad=skip_bad, on_bad=on_bad, progress=_ProgressBar("reading"),
                          on_note=lambda m: _err(f"note: {m}"))
    if procs.height == 0:
        raise DenetError(f"no process records found in {_paths_text(paths)} (runs written with the process ledger have them)"
                         + (f" ({len(skipped)} files skipped)" if skipped else ""))
    width = shutil.get_terminal_size((120, 24)).columns
    _emit_output(write_output(command_table(procs, by), fmt, out, kind="command", width=width))
    return 0


def _write_text(path: str, text: str) -> None:
    from .atomic import replace_with_bytes

    try:
        replace_with_bytes(path, text.encode())
    except OSError as exc:
        raise DenetError(f"cannot write {path}: {exc.strerror or exc}") from None


def do_ls(paths, sort, filters, fmt) -> int:
    from .listing import compile_filter, list_runs, render, sort_rows

    preds = [compile_filter(f) for f in filters]  # bad expressions stop before any file is read
    rows = list_runs(list(paths), on_bad=lambda m: _err(f"skipped {m}"))
    rows = sort_rows([r for r in rows if all(p(r) for p in preds)], sort)
    sys.stdout.write(render(rows, fmt))
    return 0


def do_compact(paths, out, by, skip_bad) -> int:
    from .compact import compact

    res = compact(list(paths), out, by=by, skip_bad=skip_bad, on_bad=lambda m: _err(f"skipped {m}"),
                  progress=_ProgressBar("compacting"))
    for d in res.duplicates:
        _err(f"note: {d}")
    _err(f"compacted {res.runs} runs ({res.rows} rows) from {res.files} files into {out} "
         f"({res.partitions} partitions by {','.join(res.by)})")
    return 0


def do_recover(paths, out) -> int:
    from .sinks.parquet import destination_of, journal_path, journal_to_parquet

    journals: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                for name in sorted(files):
                    j = os.path.join(root, name)
                    dest = destination_of(j)
                    if dest is not None and not os.path.exists(dest):
                        journals.append(j)
        elif destination_of(p) is not None and os.path.exists(p):
            journals.append(p)
        elif os.path.exists(journal_path(p)):
            journals.append(journal_path(p))
        elif os.path.exists(p):
            raise DenetError(f"{p}: not a journal (.NAME.parquet.journal), and no journal of it exists "
                             f"({journal_path(p)})")
        else:
            raise DenetError(f"{p}: no such file, and no journal {journal_path(p)}")
    if out and len(journals) != 1:
        raise UsageError(f"-o takes one journal; {len(journals)} found")
    if not journals:
        _err("no journals to recover")
        return 0
    for j in journals:
        dest = out or destination_of(j)
        if os.path.exists(dest) and not out:
            raise DenetError(f"{dest} already exists; the journal {j} is left as it is (give -o FILE to write "
                             "it elsewhere)")
        try:
            r = journal_to_parquet(j, dest)
        except OSError as exc:
            raise DenetError(f"cannot recover {j}: {exc.strerror or exc}") from None
        for msg in r.bad_lines[:5]:
            _err(f"skipped {msg}")
        state = "complete run" if r.complete else "run cut short: no summary record, exact figures missing"
        _err(f"recovered {dest}: {r.records} records, {r.rows} rows ({state})")
    return 0


def do_report(paths, out, fmt, by, title, width, height, series_runs, series_points, skip_bad) -> int:
    from .report import Caps, report

    res = report(list(paths), out, fmt=fmt, by=by, title=title, width=width, height=height,
                 caps=Caps(series_runs=series_runs, series_points=series_points), skip_bad=skip_bad,
                 on_bad=lambda m: _err(f"skipped {m}"), on_note=lambda m: _err(f"note: {m}"))
    if res.format == "html":
        _err(f"wrote {res.path}: {res.runs} runs in {res.groups} groups, {res.charts} charts, time series of "
             f"{res.series_runs} runs")
    else:
        _err(f"wrote {res.path}")
    return 0


# ---------------------------------------------------------------------------- click


def _click_options(func):
    import click

    for o in reversed(OPTIONS):
        flags = list(o.flags + o.aliases)
        if o.kind == "flag":
            func = click.option(*flags, o.dest, is_flag=True, default=None, help=o.help)(func)
        elif o.kind == "neg":
            func = click.option(*flags, o.dest, flag_value=False, default=None, help=o.help)(func)
        elif o.kind == "multi":
            func = click.option(*flags, o.dest, multiple=True, metavar=o.metavar, help=o.help)(func)
        elif o.kind == "choice":
            func = click.option(*flags, o.dest, default=None, type=click.Choice(o.choices, case_sensitive=False),
                                help=o.help)(func)
        else:
            func = click.option(*flags, o.dest, default=None, metavar=o.metavar, help=o.help +
                                (f"  [default: {o.default}]" if o.default is not None else ""))(func)
    return func


def _settings_from_click(group_values: dict, cmd_values: dict) -> Settings:
    from .options import convert

    values: dict = {}
    labels: tuple = ()
    for o in OPTIONS:
        for src in (group_values, cmd_values):
            v = src.get(o.dest)
            if o.kind == "multi":
                labels += tuple(convert(o, o.flags[0], x) for x in (v or ()))
            elif v is not None:
                values[o.dest] = convert(o, o.flags[0], str(v)) if o.kind in ("int", "float", "str", "choice") else v
    if labels:
        values["labels"] = labels
    s = Settings(**values)
    s.labels = labels
    return s


def build_click():
    """The click application (every command; ``--help``)."""
    import click

    from ._version import __version__

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name=PROG)
    @_click_options
    @click.pass_context
    def cli(ctx, **kw):
        """denet: a streaming process monitor for workflow steps.

        Wraps one command, follows its whole process tree, writes JSON-lines records and returns the
        command's own exit code. Options of run/attach may also be given before the command name.
        """
        ctx.obj = kw

    @cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    @_click_options
    @click.argument("cmd", nargs=-1, type=click.UNPROCESSED, required=True)
    @click.pass_context
    def run(ctx, cmd, **kw):
        """Run CMD and monitor it until it ends; exit with CMD's exit code."""
        return ("run", _settings_from_click(ctx.obj or {}, kw), list(cmd))

    @cli.command()
    @_click_options
    @click.argument("pid", type=int)
    @click.pass_context
    def attach(ctx, pid, **kw):
        """Monitor a running process (and its descendants) by PID until it ends or Ctrl-C."""
        return ("attach", _settings_from_click(ctx.obj or {}, kw), [str(pid)])

    @cli.command("config")
    @click.option("--json", "-j", "as_json", is_flag=True, help="Print the settings as one JSON object.")
    @click.pass_context
    def config_cmd(ctx, as_json):
        """Print the effective settings of run/attach and where each came from (command line, DENET_*
        variable, ./denet.toml, the user's config.toml, or the default)."""
        return ("config", _settings_from_click(ctx.obj or {}, {}), as_json)

    @cli.command()
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--json", "-j", "as_json", is_flag=True, help="Print the summary as one JSON object.")
    @click.option("--by", "by", type=click.Choice(["command"]), default=None,
                  help="Also break the run down by command name (from its process ledger): processes, CPU, peak "
                       "RSS per command.")
    def stats(file, as_json, by):
        """Summarise a saved record file (denet's JSON lines or Parquet, or the Rust denet's JSON lines)."""
        return ("stats", file, as_json, by)

    from .summaries import OUTPUT_FORMATS

    @cli.command(context_settings={"max_content_width": 100})
    @click.argument("paths", nargs=-1, required=True, metavar="PATH...")
    @click.option("--by", default=None, metavar="KEY[,KEY]",
                  help="Group by these labels or columns. Default: the rule label when any run has one, else the "
                       "command line. A key `command` breaks the runs' process ledgers down by command name "
                       "instead (--by command, --by rule,command).")
    @click.option("--per-run", is_flag=True, help="One row per run instead of one per group.")
    @click.option("--format", "-f", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
                  help="Output format (snakemake-tsv: Snakemake's benchmark TSV; nextflow-trace: Nextflow's trace "
                       "file; both one row per run).")
    @click.option("--output", "-o", "out", type=click.Path(dir_okay=False), default=None,
                  help="Write to FILE instead of stdout.")
    @click.option("--suggest", is_flag=True,
                  help="Print a Snakemake profile (set-resources, set-threads) with the resources to request next "
                       "time, per group.")
    @click.option("--mem-headroom", type=click.FloatRange(min=1.0), default=1.2, show_default=True,
                  help="--suggest: mem_mb = largest peak RSS x this factor.")
    @click.option("--runtime-headroom", type=click.FloatRange(min=1.0), default=1.5, show_default=True,
                  help="--suggest: runtime (minutes) = longest wall time x this factor.")
    @click.option("--skip-bad", is_flag=True, help="Report a bad file (path and reason) and go on without it.")
    @click.option("--jobs", "jobs", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
                  help="Job records of denet's Snakemake logger plugin (snakemake --logger denet): each run gets "
                       "its job's rule, jobid, wildcards, threads and resources (mem_mb, runtime) as labels, so "
                       "runs of the zero-edit shim are reported per rule (repeatable).")
    def summarize(**kw):
        """Summarise many runs: per group (--by) or per run (--per-run).

        PATH: record files (JSON lines, Parquet, journals of runs cut short, Snakemake benchmark TSV/JSONL),
        directories (searched recursively), globs, or datasets written by `denet compact`.
        """
        return ("summarize", kw)

    @cli.command("ls", context_settings={"max_content_width": 100})
    @click.argument("paths", nargs=-1, metavar="[PATH...]")
    @click.option("--sort", "-s", "sort", default="when", show_default=True, metavar="FIELD[,FIELD]",
                  help="Sort by these fields (when, host, command, rule, exit_code, wall_time_secs, cpu_time_secs, "
                       "peak_rss_kb, note, path, or a label); -FIELD sorts descending.")
    @click.option("--filter", "-f", "filters", multiple=True, metavar="EXPR",
                  help="Keep the runs where EXPR holds: FIELD OP VALUE [and ...], OP one of == != < <= > >=, "
                       "e.g. 'exit_code != 0' or 'rule == align and peak_rss_kb > 1000000' (repeatable: all hold).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                  show_default=True, help="Output format.")
    def ls(**kw):
        """List runs, one line each: when, host, command (or rule), exit code, wall and CPU time, peak memory,
        note. Reads only each file's header and summary.

        PATH: record files, directories (searched recursively) or globs; default: the current directory.
        """
        return ("ls", kw)

    @cli.command()
    @click.argument("paths", nargs=-1, required=True, metavar="PATH...")
    @click.option("--output", "-o", "out", required=True, type=click.Path(file_okay=False),
                  help="The dataset directory to create.")
    @click.option("--by", default="rule", show_default=True, metavar="KEY[,KEY]",
                  help="Partition the rows by these labels.")
    @click.option("--skip-bad", is_flag=True, help="Report a bad file (path and reason) and go on without it.")
    def compact(**kw):
        """Merge per-run files into one Parquet dataset (runs.parquet + rows/KEY=VALUE/), which summarize reads
        fast."""
        return ("compact", kw)

    @cli.command()
    @click.argument("paths", nargs=-1, required=True, metavar="PATH...")
    @click.option("--output", "-o", "out", type=click.Path(dir_okay=False), default=None,
                  help="Write the Parquet file here instead of the journal's destination (one journal only).")
    def recover(**kw):
        """Turn the journal of a Parquet run that was cut short (DIR/.NAME.parquet.journal) into NAME.parquet.

        PATH: a journal, the Parquet path it belongs to, or a directory (its journals are recovered).
        """
        return ("recover", kw)

    @cli.command(context_settings={"max_content_width": 100})
    @click.argument("paths", nargs=-1, required=True, metavar="PATH...")
    @click.option("--output", "-o", "out", required=True, type=click.Path(dir_okay=False),
                  help="The file to write: .html (a report of every run), .png or .svg (an image of one run).")
    @click.option("--format", "-f", "fmt", type=click.Choice(["html", "png", "svg"]), default=None,
                  help="Output format.  [default: from the extension of -o]")
    @click.option("--by", default=None, metavar="KEY[,KEY]",
                  help="Group by these labels or columns. Default: the rule label when any run has one, else the "
                       "command.")
    @click.option("--title", default=None, help="Title of the report or image.")
    @click.option("--width", type=click.IntRange(min=300, max=10000), default=None,
                  help="Image width in pixels.  [default: 1000]")
    @click.option("--height", type=click.IntRange(min=300, max=10000), default=None,
                  help="Image height in pixels.  [default: 800]")
    @click.option("--series-runs", type=click.IntRange(min=0), default=50, show_default=True,
                  help="HTML: embed the time series of at most this many runs.")
    @click.option("--series-points", type=click.IntRange(min=10), default=1000, show_default=True,
                  help="HTML: at most this many points per run's series (longer ones keep min and max per bucket).")
    @click.option("--skip-bad", is_flag=True, help="Report a bad file (path and reason) and go on without it.")
    def report(**kw):
        """Write a self-contained HTML report of many runs, or a PNG/SVG image of one run.

        PATH: record files, directories (searched recursively), globs or datasets, as for summarize. The HTML
        file opens from disk with no network: the charting libraries and all data are inlined.
        """
        return ("report", kw)

    return cli


def parse_with_click(argv: list[str]):
    """Parse ``argv`` with click without running anything: (command, settings-or-args, args)."""
    return build_click().main(args=argv, prog_name=PROG, standalone_mode=False)


def _click_main(argv: list[str]) -> int:
    import click

    try:
        res = build_click().main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.UsageError as exc:  # NoArgsIsHelpError (no command given) shows the help
        exc.show()
        return 2
    except click.exceptions.Abort:
        _err("aborted")
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    if not isinstance(res, tuple):
        return res if isinstance(res, int) else 0
    if res[0] in ("run", "attach", "config"):
        from .config import resolve

        settings = resolve(res[1])
        if res[0] == "config":
            return do_config(settings, res[2])
        return (do_run if res[0] == "run" else do_attach)(settings, res[2])
    if res[0] == "stats":
        return do_stats(res[1], res[2], res[3])
    if res[0] == "summarize":
        return do_summarize(**res[1])
    if res[0] == "compact":
        return do_compact(**res[1])
    if res[0] == "ls":
        return do_ls(**res[1])
    if res[0] == "recover":
        return do_recover(**res[1])
    if res[0] == "report":
        return do_report(**res[1])
    return 0  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``denet`` command; returns the exit code."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        parsed = lean_parse(argv)
        if parsed is None:
            return _click_main(argv)
        cmd, settings, args = parsed
        from .config import resolve

        settings = resolve(settings)
        if cmd == "run":
            return do_run(settings, args)
        return do_attach(settings, args)
    except UsageError as exc:
        _err(f"{exc}\nTry 'denet --help' for help.")
        return 2
    except DenetError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


def entry() -> None:
    """The console script: run :func:`main`, then leave without the interpreter's teardown
    (several milliseconds that a workflow starting denet 100 000 times would pay each time)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
