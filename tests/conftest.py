"""Shared fixtures: an isolated DigitalHub home, PostgreSQL and moto's S3 server."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import moto_server, postgres_server

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def dh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own DigitalHub home (SQLite + data dir); runtime envs are shared."""
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
