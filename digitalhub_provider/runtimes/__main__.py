"""Runner entrypoint: ``python -m digitalhub_provider.runtimes <runspec URL>``.

Reads the RunSpec, runs it with the runtime it names, writes the RunResult
atomically, and exits 0 when the run COMPLETED, 1 otherwise.
"""

from __future__ import annotations

import os
import sys

# pyarrow's allocator (mimalloc) keeps freed pages for a while by default; a run that turns a large
# Parquet table into a DataFrame then holds both at its peak (3.4x the frame's size instead of 1.7x).
# Read by mimalloc when pyarrow first loads, so it must be set before any import of pyarrow.
MIMALLOC_SETTINGS = {"MIMALLOC_PURGE_DELAY": "0"}


def main(argv: list[str] | None = None) -> int:
    for name, value in MIMALLOC_SETTINGS.items():
        os.environ.setdefault(name, value)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m digitalhub_provider.runtimes <runspec URL or path>", file=sys.stderr)
        return 2
    from digitalhub_provider.runtimes.runner import run_from_url

    return run_from_url(args[0])


if __name__ == "__main__":
    sys.exit(main())
