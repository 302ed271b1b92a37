"""Runner entrypoint: ``python -m digitalhub_provider.runtimes <runspec URL>``.

Reads the RunSpec, runs it with the runtime it names, writes the RunResult
atomically, and exits 0 when the run COMPLETED, 1 otherwise.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m digitalhub_provider.runtimes <runspec URL or path>", file=sys.stderr)
        return 2
    from digitalhub_provider.runtimes.runner import run_from_url

    return run_from_url(args[0])


if __name__ == "__main__":
    sys.exit(main())
