"""Shared fixtures: an isolated DigitalHub home, PostgreSQL and moto's S3 server."""

from __future__ import annotations

import atexit
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import moto_server, postgres_server

REPO = Path(__file__).resolve().parent.parent

# Airflow reads its configuration when first imported: give the whole session a
# throw-away AIRFLOW_HOME (SQLite) before any test imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="dh-test-airflow-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        # Two bundles: the example DAGs, and the test-only DAGs (bad input, secrets).
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": name,
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": path},
                }
                for name, path in (("dags-folder", str(REPO / "dags")), ("test-dags", str(REPO / "tests" / "dags")))
            ]
        ),
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Airflow's metadata database, migrated once for the session."""
    res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return _AIRFLOW_HOME


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leaves_unfinished_runs: the test builds runs that stay unfinished on purpose (a dead worker's)"
    )


@pytest.fixture(autouse=True)
def sigint_disposition() -> Iterator[None]:
    """What a test leaves as this process's SIGINT handler is put back: a child started later inherits
    an ignored SIGINT (SIG_IGN survives exec), and Ctrl-C would no longer reach it."""
    before = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not before and before is not None:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(autouse=True)
def dh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Every test gets its own DigitalHub home (SQLite + data dir); runtime envs are shared. At its end,
    no run in it may be unfinished (CREATED, BUILT, READY or RUNNING): a run left behind fails the test."""
    from digitalhub_provider.sdk.context import reset_context

    home = tmp_path / "dh"
    monkeypatch.setenv("DIGITALHUB_HOME", str(home))
    for var in ("DIGITALHUB_METADATA_URL", "DIGITALHUB_DATA_URL", "DIGITALHUB_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(
        "DIGITALHUB_ENVS_DIR",
        os.environ.get("DIGITALHUB_TEST_ENVS_DIR", str(Path(tempfile.gettempdir()) / "dh-test-envs")),
    )
    reset_context()
    yield home
    reset_context()
    if request.node.get_closest_marker("leaves_unfinished_runs") is None:
        left = _unfinished_runs(home / "metadata.db")
        assert not left, f"runs left unfinished at the end of the test: {left}"


def _unfinished_runs(db: Path) -> list[str]:
    """``id state`` of the unfinished runs in a SQLite metadata store (read directly: no store is opened)."""
    if not db.exists():
        return []
    import sqlite3

    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT id, state FROM dh_entities WHERE entity_type = 'run'").fetchall()
        except sqlite3.OperationalError:  # no schema yet
            return []
    return [f"{rid} {state}" for rid, state in rows if state in ("CREATED", "BUILT", "READY", "RUNNING")]


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on 127.0.0.1 serving a fresh folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point the data store at a fresh bucket on moto's server; returns the data URL."""
    import uuid

    import boto3

    from digitalhub_provider.sdk.context import reset_context

    bucket = f"dh-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    monkeypatch.setenv("DIGITALHUB_DATA_URL", f"s3://{bucket}/data")
    monkeypatch.setenv("DIGITALHUB_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("DIGITALHUB_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("DIGITALHUB_S3_SECRET_ACCESS_KEY", "testing")
    reset_context()
    return f"s3://{bucket}/data"
