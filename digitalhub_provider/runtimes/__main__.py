"""Runner entrypoint: ``python -m digitalhub_provider.runtimes <runspec URL>``.

Reads the RunSpec, runs it with the runtime it names, writes the RunResult
atomically, and exits 0 when the run COMPLETED, 1 otherwise.
"""

from __future__ import annotations

import signal
import sys
from typing import Any


class Terminated(BaseException):
    """SIGTERM reached the runner (its run is being stopped, its pod deleted, its task timed out).

    Raised where the runner is, it unwinds like an interrupt: the run's temporary folder and the
    outputs it had written are removed, and the RunResult records it. A runner that is a pod's
    PID 1 needs the handler too: the kernel ignores SIGTERM for a PID 1 without one."""


def _terminate(signum: int, _frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated(f"the runner received signal {signum} (SIGTERM)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m digitalhub_provider.runtimes <runspec URL or path>", file=sys.stderr)
        return 2
    from digitalhub_provider.runtimes.runner import run_from_url

    signal.signal(signal.SIGTERM, _terminate)
    return run_from_url(args[0])


if __name__ == "__main__":
    sys.exit(main())
