"""The per-rule prefix helper and the paths of the zero-edit shell shim.

In a Snakefile::

    from snakemake_logger_plugin_denet import denet_prefix

    rule align:
        output: "aln/{sample}.bam"
        log: denet="runs/align/{sample}.jsonl"
        threads: 4
        shell: denet_prefix("sample") + "bwa mem -t {threads} ref.fa {wildcards.sample}.fq > {output}"

The prefix is text with Snakemake's own placeholders (``{rule}``, ``{jobid}``, ``{threads}``,
``{log.denet}``, ``{wildcards.NAME}``), filled in by Snakemake for each job.
"""

from __future__ import annotations

import os
import re

__all__ = ["denet_prefix", "shim_dir", "shim_path"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def denet_prefix(*wildcards: str, log: str = "denet", denet: str = "denet", options: str = "",
                 labels: dict[str, str] | None = None, shell: bool = False) -> str:
    """``denet run --out {log.LOG:q} --label rule={rule} --label jobid={jobid} --label threads={threads}
    --label WILDCARD=... --label wildcards=NAME=VALUE,... [OPTIONS] -- `` for a rule's ``shell:``.

    ``wildcards``: the rule's wildcard names (each becomes a label, and all of them the ``wildcards``
    label ``NAME=VALUE,...``); ``log``: the name of the rule's ``log:`` entry that holds the run
    file (declared under ``log:`` so Snakemake keeps it when the job fails); ``denet``: the command
    that starts denet; ``options``: more options of ``denet run`` (e.g. ``--benchmark {benchmark}``);
    ``labels``: fixed labels; ``shell``: end with ``-c`` instead of ``--``, so the rest of the shell
    string is one quoted command run by ``/bin/sh -c`` (pipes, ``;``, redirections stay inside denet's
    run): ``denet_prefix("sample", shell=True) + "'zcat {input} | sort > {output}'"``.
    """
    for name in (log, *wildcards, *(labels or {})):
        if not _NAME.match(name):
            raise ValueError(f"not a valid name: {name!r}")
    parts = [denet, "run", f"--out {{log.{log}:q}}", "--label rule={rule}", "--label jobid={jobid}",
             "--label threads={threads}"]
    for w in wildcards:
        parts.append(f"--label {w}={{wildcards.{w}:q}}")
    if wildcards:
        parts.append("--label wildcards=" + ",".join(f"{w}={{wildcards.{w}:q}}" for w in wildcards))
    for k, v in (labels or {}).items():
        parts.append(f"--label {k}={_quote(v)}")
    if options:
        parts.append(options)
    parts.append("-c " if shell else "-- ")
    return " ".join(parts)


def _quote(v: str) -> str:
    import shlex

    # braces are Snakemake's placeholders: double them so a fixed label stays as written
    return shlex.quote(str(v)).replace("{", "{{").replace("}", "}}")


def shim_dir() -> str:
    """The directory holding the shim, a file named ``bash``: put it first on PATH (zero-edit mode)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def shim_path() -> str:
    """The shim itself, for ``shell.executable(shim_path())`` in a Snakefile."""
    return os.path.join(shim_dir(), "bash")
