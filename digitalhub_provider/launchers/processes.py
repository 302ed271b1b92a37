"""Which process a run depends on, and whether it still lives: what the reconciler goes by.

A process is named by host, pid and start time (the kernel's ticks since boot, from
``/proc/<pid>/stat``): a pid the kernel gave to another process since is not taken for the
one that ended. Off Linux there is no start time and the pid alone is checked.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return False
    return text[text.rfind(")") + 2 :][:1] in ("Z", "X")


def identity(pid: int | None = None) -> dict[str, Any]:
    """This process (or ``pid``) as a run's status records it."""
    pid = os.getpid() if pid is None else pid
    return {"host": socket.gethostname(), "pid": pid, "started": start_ticks(pid)}


def alive(process: Mapping[str, Any] | None) -> bool | None:
    """Whether the recorded process still runs: None when that cannot be told from here (another
    host, nothing recorded)."""
    if not process or process.get("host") != socket.gethostname():
        return None
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if _zombie(pid):
        return False
    started = process.get("started")
    return started is None or start_ticks(pid) in (None, started)


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` runs on this host."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
