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


def _sinks(s: Settings):
    from .sinks import JsonlSink

    sinks = []
    if s.out:
        try:
            sinks.append(JsonlSink(s.out))
        except OSError as exc:
            raise DenetError(f"cannot open --out {s.out}: {exc.strerror or exc}") from None
    if s.json:
        sinks.append(JsonlSink(1))
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
        write_env=s.write_env, labels=s.label_dict(), sinks=_sinks(s), live=live, warn=_err,
    )


def do_run(s: Settings, argv: list[str]) -> int:
    if not argv:
        raise UsageError("run: no command given (usage: denet run [OPTIONS] [--] CMD [ARGS]...)")
    mon = _monitor(s)
    if s.quiet:
        out, err = "null", "null"
    elif s.json:
        out, err = "stderr", "inherit"  # stdout carries only records
    else:
        out, err = "inherit", "inherit"
    try:
        result = mon.run(argv, stdout=out, stderr=err)
    except DenetError:
        for sink in mon.sinks:
            sink.close()
        raise
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
    mon = _monitor(s)
    result = mon.attach(pid)
    if s.stats:
        _write_stats(s.stats, result.summary)
    if s.debug:
        _debug(mon, result)
    return 0


# ---------------------------------------------------------------------------- stats


def do_stats(path: str, as_json: bool) -> int:
    import json

    from .readers import effective_summary, read_run
    from .schema import fields

    rf = read_run(path)
    for msg in rf.bad_lines[:5]:
        _err(f"skipped {msg}")
    if len(rf.bad_lines) > 5:
        _err(f"skipped {len(rf.bad_lines) - 5} more unreadable lines")
    summ = effective_summary(rf)
    if as_json:
        sys.stdout.write(json.dumps(summ, separators=(",", ":")) + "\n")
        return 0
    lines = [f"file: {path}"]
    if rf.metadata:
        cmd = rf.metadata.get("cmd")
        lines.append(f"command: {' '.join(map(str, cmd)) if isinstance(cmd, list) else cmd}")
        labels = rf.metadata.get("labels")
        if labels:
            lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    exact = set(summ.get("exact") or [])
    for f in fields("summary"):
        if f.name == "exact":
            continue
        v = summ.get(f.name)
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
        lines.append(f"  {f.name:<26} {shown}{unit}  ({tag})")
    if rf.summary is None:
        lines.append("note: no summary line (the run was cut short); sampled figures recomputed from "
                     f"{rf.records} records, exact figures missing")
    sys.stdout.write("\n".join(lines) + "\n")
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
                values[o.dest] = convert(o, o.flags[0], str(v)) if o.kind in ("int", "float", "str") else v
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

    @cli.command()
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--json", "-j", "as_json", is_flag=True, help="Print the summary as one JSON object.")
    def stats(file, as_json):
        """Summarise a saved record file (denet's own or the Rust denet's JSON lines)."""
        return ("stats", file, as_json)

    return cli


def parse_with_click(argv: list[str]):
    """Parse ``argv`` with click without running anything: (command, settings-or-args, args)."""
    return build_click().main(args=argv, prog_name=PROG, standalone_mode=False)


def _click_main(argv: list[str]) -> int:
    import click

    try:
        res = build_click().main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.exceptions.NoArgsUsage as exc:
        exc.show()
        return 2
    except click.UsageError as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        _err("aborted")
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    if not isinstance(res, tuple):
        return res if isinstance(res, int) else 0
    if res[0] == "run":
        return do_run(res[1], res[2])
    if res[0] == "attach":
        return do_attach(res[1], res[2])
    if res[0] == "stats":
        return do_stats(res[1], res[2])
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
