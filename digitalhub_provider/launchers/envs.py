"""Runtime environments for the python runtime: interpreters and cached virtualenvs.

A function without requirements, on the interpreter's own Python version, runs
in a subprocess of the current interpreter. Otherwise it runs in a virtualenv
built once per (Python version, requirements, build instructions) under the
envs directory and reused. The runner goes in as a copy of this package's source plus its few
dependencies: never Airflow. A file lock makes concurrent builds of the same
environment wait for each other instead of corrupting it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from digitalhub_provider.errors import BackendError

# What the runner needs inside a runtime environment (see setup.cfg: core + data + s3).
RUNNER_REQUIREMENTS = [
    "pydantic>=2.5",
    "SQLAlchemy>=2.0",
    "alembic>=1.12",
    "PyYAML>=6.0",
    "pandas>=2.0",
    "pyarrow>=14",
    "boto3>=1.28",
]
PACKAGE_DIR = Path(__file__).resolve().parent.parent
MIN_RUNNER_PYTHON = (3, 10)


def version_tuple(python_version: str) -> tuple[int, int]:
    """``PYTHON3_11`` -> (3, 11)."""
    major, minor = python_version.removeprefix("PYTHON").split("_")
    return int(major), int(minor)


def find_interpreter(python_version: str) -> str:
    """The path of a Python of that version on this machine, or a clear error."""
    wanted = version_tuple(python_version)
    if wanted < MIN_RUNNER_PYTHON:
        raise BackendError(
            f"{python_version} cannot run this provider's runner: it needs Python "
            f"{MIN_RUNNER_PYTHON[0]}.{MIN_RUNNER_PYTHON[1]} or newer"
        )
    if sys.version_info[:2] == wanted:
        return sys.executable
    name = f"python{wanted[0]}.{wanted[1]}"
    for candidate in _candidates(name, wanted):
        probe = subprocess.run(
            [candidate, "-c", f"import sys; print(sys.version_info[:2] == {wanted!r})"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    raise BackendError(f"{python_version} is not available on this machine: no working {name} on PATH")


def _candidates(name: str, wanted: tuple[int, int]) -> list[str]:
    """``pythonX.Y`` on PATH, then pyenv's installed versions (whose shims may not be active)."""
    found = [shutil.which(name)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found += [str(p) for p in sorted(pyenv_root.glob(f"versions/{wanted[0]}.{wanted[1]}.*/bin/{name}"), reverse=True)]
    return [f for f in found if f and "/shims/" not in f] + [f for f in found if f and "/shims/" in f]


@lru_cache(maxsize=1)
def runner_source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def env_key(python_version: str, requirements: list[str], instructions: list[str] | None = None) -> str:
    """The environment's folder name. Requirements are a set (pip resolves them together); build
    instructions are steps, so their order is part of the key."""
    text = "\n".join([python_version, *sorted(r.strip() for r in requirements), *RUNNER_REQUIREMENTS])
    if instructions:
        text += "\n--instructions--\n" + "\n".join(instructions)
    return f"{python_version.lower()}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def built_environment(envs_dir: str | Path, key: str) -> str:
    """The interpreter of an environment a build made (by its key), which must still be there."""
    env_dir = Path(envs_dir) / key
    if "/" in key or key in ("", ".", "..") or not (env_dir / ".complete").exists():
        raise BackendError(
            f"the environment {key!r} that built this function version is not in {envs_dir} (removed, or built "
            "on another host): run the function's build action again"
        )
    return str(env_dir / "bin" / "python")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the file ``path`` (created) for the block: one builder of an environment at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_environment(
    envs_dir: str | Path,
    python_version: str,
    requirements: list[str] | None,
    log: Callable[[str], None] = print,
    instructions: list[str] | None = None,
) -> str:
    """Return the interpreter to run the runner with, building its environment if needed.
    ``instructions`` (a build's) are shell steps run in order inside the new environment, after its
    requirements; the first that fails removes the environment and raises with its output."""
    requirements = [r for r in (requirements or []) if r.strip()]
    instructions = [i for i in (instructions or []) if i.strip()]
    base = find_interpreter(python_version)
    if not requirements and not instructions and base == sys.executable:
        return sys.executable
    env_dir = Path(envs_dir) / env_key(python_version, requirements, instructions)
    python = env_dir / "bin" / "python"
    with locked(env_dir.with_name(env_dir.name + ".lock")):
        if not (env_dir / ".complete").exists():
            if env_dir.exists():
                shutil.rmtree(env_dir)  # a build that died half-way
            log(
                f"building runtime environment {env_dir.name} ({python_version}, requirements: {requirements or 'none'})"  # noqa: E501
            )
            try:
                _run([base, "-m", "venv", str(env_dir)], "create the virtualenv")
                _run(
                    [
                        str(python),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "-q",
                        *RUNNER_REQUIREMENTS,
                        *requirements,
                    ],
                    f"install the requirements {requirements}",
                )
                for number, line in enumerate(instructions, 1):
                    _instruction(env_dir, number, line, log)
            except BaseException:
                shutil.rmtree(env_dir, ignore_errors=True)  # no half-built environment stays behind
                raise
            (env_dir / ".complete").write_text("ok\n")
        _install_runner(env_dir, python)
    return str(python)


def _install_runner(env_dir: Path, python: Path) -> None:
    """Copy this package's source into the env (refreshed when the source changes)."""
    runner_dir = env_dir / "runner"
    stamp = runner_dir / ".hash"
    if stamp.exists() and stamp.read_text() == runner_source_hash():
        return
    if runner_dir.exists():
        shutil.rmtree(runner_dir)
    shutil.copytree(PACKAGE_DIR, runner_dir / "digitalhub_provider", ignore=shutil.ignore_patterns("__pycache__"))
    stamp.write_text(runner_source_hash())
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "digitalhub_runner.pth").write_text(str(runner_dir) + "\n")


def _instruction(env_dir: Path, number: int, line: str, log: Callable[[str], None]) -> None:
    """One build instruction, as a Dockerfile's RUN line runs: ``/bin/sh -c``, here with the new
    environment first on PATH (its ``python`` and ``pip``) and as the working directory."""
    log(f"build instruction {number}: {line}")
    env = {**os.environ, "PIP_NO_INPUT": "1", "VIRTUAL_ENV": str(env_dir)}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    res = subprocess.run(
        ["/bin/sh", "-c", line], cwd=env_dir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    output = "\n".join(part.strip() for part in (res.stdout, res.stderr) if part.strip())
    for text in output.splitlines():
        log(f"  {text}")
    if res.returncode != 0:
        tail = "\n".join(output.splitlines()[-10:])
        raise BackendError(f"build instruction {number} failed (exit code {res.returncode}): {line}\n{tail}".rstrip())


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
        raise BackendError(f"cannot {what}: {tail}")
