"""``python -m snakemake_logger_plugin_denet shim-dir|shim-path``: where the zero-edit shell shim is."""

from __future__ import annotations

import sys

from .prefix import shim_dir, shim_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["shim-dir"]:
        print(shim_dir())
        return 0
    if args == ["shim-path"]:
        print(shim_path())
        return 0
    print("usage: python -m snakemake_logger_plugin_denet shim-dir|shim-path", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
