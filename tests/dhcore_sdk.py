"""Drive the REST API (digitalhub_provider.api) with the official DigitalHub SDK.

The official SDK (PyPI ``digitalhub`` + ``digitalhub-runtime-python``) must never share an
environment with Airflow: it lives in a virtualenv of its own, built once and cached under
``$DIGITALHUB_TEST_ENVS_DIR`` (default /tmp/dh-test-envs). The workflows in
tests/dhcore_workflows/ run in it as subprocesses and print what they observed as one JSON line.

* ``sdk_python()``: the SDK environment's interpreter (built on first use, then reused).
* ``api_server(tmp_path, **options)``: the standalone REST server on a free port, in its own
  process group, stopped with its whole group at the end.
* ``run_workflow(python, script_name, env)``: run one workflow, return the JSON it printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from digitalhub_provider.launchers.envs import locked
from tests.servers import free_port, stop_group

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = Path(__file__).resolve().parent / "dhcore_workflows"
SDK_REQUIREMENTS = [
    "digitalhub==0.15.*",
    # Pulls digitalhub[full]: pandas (table dataitems, DataFrame outputs), pyarrow (parquet), polars.
    "digitalhub-runtime-python==0.15.*",
]
# Variables of the test process that must not reach the REST server or the SDK's workflows.
_SERVER_ENV_DROP = ("DIGITALHUB_METADATA_URL", "DIGITALHUB_DATA_URL", "DIGITALHUB_S3_")
_BUILD_TIMEOUT = 1800.0


def envs_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "dh-test-envs"
    return Path(os.environ.get("DIGITALHUB_TEST_ENVS_DIR", str(default)))


def sdk_env_dir() -> Path:
    """Where the SDK environment of this interpreter's Python version and SDK_REQUIREMENTS lives."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    text = "\n".join([version, *sorted(SDK_REQUIREMENTS)])
    return envs_dir() / f"dhcore-sdk-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def sdk_available() -> bool:
    """True when the SDK environment is cached, or PyPI's index answers so that it can be built."""
    if (sdk_env_dir() / "bin" / "python").exists():
        return True
    import ssl

    context = ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)
    try:
        with urllib.request.urlopen(f"{index_url()}/digitalhub/", timeout=15, context=context):
            return True
    except urllib.error.HTTPError:
        return True  # the index answered: a real problem shows up when the build runs
    except OSError:
        return False


def _run(cmd: list[str], what: str, timeout: float) -> str:
    res = subprocess.run(
        cmd,
        cwd=tempfile.gettempdir(),  # not the repository: its packages must not be importable from the cwd
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-20:])
        raise RuntimeError(f"cannot {what} (exit {res.returncode}):\n{tail}")
    return res.stdout


_CHECK = """
import importlib.metadata as md, importlib.util as u, json
print(json.dumps({
    "airflow": u.find_spec("airflow") is not None,
    "digitalhub_provider": u.find_spec("digitalhub_provider") is not None,
    "digitalhub": md.version("digitalhub"),
    "digitalhub-runtime-python": md.version("digitalhub-runtime-python"),
    "pandas": md.version("pandas"),
    "pyarrow": md.version("pyarrow"),
}))
"""


def check_sdk_env(python: str | Path) -> dict[str, object]:
    """What the environment holds; raises if Airflow or this provider is importable in it."""
    out = json.loads(_run([str(python), "-c", _CHECK], "inspect the SDK environment", 120).strip().splitlines()[-1])
    assert out["airflow"] is False, f"Airflow is importable in the SDK environment {python}: it must not be"
    assert out["digitalhub_provider"] is False, f"digitalhub_provider is importable in {python}: it must not be"
    for name in ("digitalhub", "digitalhub-runtime-python"):
        assert str(out[name]).startswith("0.15."), f"{name} {out[name]} in {python}, expected 0.15.*"
    return out


@lru_cache(maxsize=1)
def sdk_python() -> str:
    """The SDK environment's interpreter, built once (file lock; built aside, then renamed into place)."""
    final = sdk_env_dir()
    python = final / "bin" / "python"
    with locked(final.with_name(final.name + ".lock")):
        if not python.exists():
            for stale in final.parent.glob(f".{final.name}.build-*"):  # builds that died half-way
                shutil.rmtree(stale, ignore_errors=True)
            build = final.with_name(f".{final.name}.build-{os.getpid()}")
            try:
                _run([sys.executable, "-m", "venv", str(build)], "create the SDK virtualenv", 300)
                _run(
                    [str(build / "bin" / "python"), "-m", "pip", "install", "-q", *SDK_REQUIREMENTS],
                    f"install {SDK_REQUIREMENTS}",
                    _BUILD_TIMEOUT,
                )
                check_sdk_env(build / "bin" / "python")
                (build / "requirements.txt").write_text("\n".join(SDK_REQUIREMENTS) + "\n")
                # A virtualenv's interpreter finds its site-packages from its own location (pyvenv.cfg
                # beside bin/), so the renamed env works; only pip's console scripts keep the old path.
                os.rename(build, final)
            finally:
                shutil.rmtree(build, ignore_errors=True)
    check_sdk_env(python)
    return str(python)


# -- the REST server ---------------------------------------------------------------------------------
def auth_headers(options: dict[str, object]) -> dict[str, str]:
    """The Authorization header a client needs for a server started with these options."""
    if options.get("token"):
        return {"Authorization": f"Bearer {options['token']}"}
    if options.get("user"):
        raw = f"{options['user']}:{options.get('password', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return {}


def http(method: str, url: str, headers: dict[str, str] | None = None, body: object = None) -> tuple[int, str]:
    """One request; returns (status, body text) also for error statuses."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def api_server(
    tmp_path: Path,
    timeout: float = 120.0,
    home: Path | None = None,
    extra_env: dict[str, str] | None = None,
    **options: object,
) -> Iterator[str]:
    """Start ``python -m digitalhub_provider.api`` on a free port; yield its base URL.

    ``options`` become command-line options (``token="T"`` -> ``--token T``), ``extra_env`` joins its
    environment; its stores are in ``home`` (a fresh folder by default). Ready when
    ``GET /api/auth`` answers 2xx (with the credentials the options require).
    """
    port = free_port()
    home = home or tmp_path / "dh-api-home"
    log = tmp_path / "dh-api.log"
    cmd = [sys.executable, "-m", "digitalhub_provider.api", "--host", "127.0.0.1", "--port", str(port)]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SERVER_ENV_DROP)}
    env["DIGITALHUB_HOME"] = str(home)
    env.update(extra_env or {})
    base = f"http://127.0.0.1:{port}"
    headers = auth_headers(options)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"REST server {' '.join(cmd)} exited with code {proc.returncode} before it was ready; "
                    f"log tail ({log}):\n{_tail(log)}"
                )
            try:
                status, body = http("GET", f"{base}/api/auth", headers)
                if 200 <= status < 300:
                    break
                last = f"{status} {body[:300]}"
            except OSError as err:
                last = repr(err)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"REST server not ready after {timeout}s (GET /api/auth: {last}); log tail ({log}):\n{_tail(log)}"
                )
            time.sleep(0.2)
        yield base
    finally:
        stop_group(proc)


# -- the workflows -----------------------------------------------------------------------------------
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE")


def run_workflow(
    python: str, script_name: str, env: dict[str, str], timeout: float = 600.0, cwd: str | Path | None = None
) -> dict:
    """Run tests/dhcore_workflows/<script_name> in the SDK environment; return its last stdout line as JSON.

    The script sees only ``env`` (plus PATH and locale): no variable of the test process leaks into
    the SDK (no DHCORE_*, no AIRFLOW_*). It runs in ``cwd``, default ``env["HOME"]`` (the SDK
    writes its project context folder, ``./`` by default, in the working directory).
    """
    script = WORKFLOWS / script_name
    assert script.is_file(), f"no workflow {script}"
    full_env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    full_env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    full_env.update(env)
    workdir = Path(cwd or env.get("HOME") or tempfile.mkdtemp(prefix="dh-wf-"))
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [python, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=full_env, cwd=workdir, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc, grace=5.0)  # type: ignore[arg-type]
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"workflow {script_name} did not finish in {timeout}s; stderr tail:\n{_text_tail(stderr)}"
        ) from None
    finally:  # also anything the script left running in its process group
        stop_group(proc, grace=5.0)  # type: ignore[arg-type]
    if proc.returncode != 0:
        raise AssertionError(f"workflow {script_name} exited with code {proc.returncode}; stderr tail:\n"
                             f"{_text_tail(stderr)}\nstdout tail:\n{_text_tail(stdout, 10)}")  # fmt: skip
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, f"workflow {script_name} printed nothing; stderr tail:\n{_text_tail(stderr)}"
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        raise AssertionError(f"workflow {script_name}: last stdout line is not JSON: {lines[-1][:500]!r}") from None


def _text_tail(text: str | None, lines: int = 40) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])
