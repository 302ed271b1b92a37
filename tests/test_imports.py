"""Every module of the package imports on its own, in a fresh interpreter: no import cycle that only
shows in some order (the SDK's lazy attributes on the package make ``from digitalhub_provider import x``
load the SDK, which a cycle through the stores would break)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "digitalhub_provider"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "migrations" in parts:
            continue  # Alembic loads these itself
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    code = "import importlib, sys; importlib.import_module(sys.argv[1])"
    failed = {}
    for name in _modules():
        res = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            failed[name] = res.stderr.strip().splitlines()[-1]
    assert failed == {}
