"""A coverage-guided fuzzer (atheris, libFuzzer) for denet's readers: `denet stats` and `summarize` on
arbitrary bytes, through `denet.cli.main`, as the hypothesis tests do with hand-made mutations.

    pip install atheris
    python tests/reliability/atheris_readers.py -runs=100000 [CORPUS_DIR]

A finding is an exception escaping `main` (a traceback for the user) or an exit code other than 0, 1
or 2; libFuzzer writes the input that caused it to ./crash-*. test_atheris.py runs it briefly when
atheris is installed.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from denet.cli import main
    from denet.readers import effective_summary, read_run

_DIR = tempfile.mkdtemp(prefix="denet-atheris-")
_FD_NULL = os.open(os.devnull, os.O_WRONLY)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    suffix = fdp.PickValueInList([".jsonl", ".parquet", ".tsv", ".json"])
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    path = os.path.join(_DIR, "input" + suffix)
    with open(path, "wb") as fh:
        fh.write(body)
    saved = os.dup(1), os.dup(2)
    os.dup2(_FD_NULL, 1)
    os.dup2(_FD_NULL, 2)
    try:
        for args in (["stats", path], ["stats", "--json", path], ["summarize", "--per-run", path]):
            rc = main(args)
            if rc not in (0, 1, 2):
                raise RuntimeError(f"exit code {rc} for {args}")
        try:
            effective_summary(read_run(path))
        except Exception as exc:  # the API's reader: a DenetError naming the file is the answer
            from denet.errors import DenetError

            if not isinstance(exc, DenetError) or path not in str(exc):
                raise
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
