"""Where the stores are: one place for the whole provider.

Settings come from environment variables (and, inside Airflow, from the
``digitalhub`` connection through :mod:`digitalhub_provider.hooks`). With
nothing configured a directory under ``$DIGITALHUB_HOME`` (default
``~/.digitalhub``) holds the SQLite metadata store and the data directory.

Credentials never travel in a RunSpec: they are passed to a runner through
its environment only (:meth:`Settings.to_env`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

ENV_HOME = "DIGITALHUB_HOME"
ENV_METADATA_URL = "DIGITALHUB_METADATA_URL"
ENV_DATA_URL = "DIGITALHUB_DATA_URL"
ENV_S3_ENDPOINT = "DIGITALHUB_S3_ENDPOINT_URL"
ENV_S3_KEY = "DIGITALHUB_S3_ACCESS_KEY_ID"
ENV_S3_SECRET = "DIGITALHUB_S3_SECRET_ACCESS_KEY"
ENV_S3_REGION = "DIGITALHUB_S3_REGION"
ENV_ENVS_DIR = "DIGITALHUB_ENVS_DIR"
ENV_METADATA_PASSWORD = "DIGITALHUB_METADATA_PASSWORD"  # set from a Kubernetes secret in pods
ENV_TEE_LOGS = "DIGITALHUB_TEE_LOGS"  # the runner also uploads its own output (pods)
ENV_MLRUN_API = "DIGITALHUB_MLRUN_API"  # an MLRun API server the mlrun runtime registers its runs with
ENV_MLRUN_TOKEN = "DIGITALHUB_MLRUN_TOKEN"  # its token; set from a Kubernetes secret in pods


_SECRET_FIELDS = ("s3_access_key_id", "s3_secret_access_key", "mlrun_token")


class Settings(NamedTuple):
    """Locations of the metadata and data stores, plus S3 access (and an optional MLRun API server).

    Immutable. A NamedTuple rather than a frozen dataclass: every task process imports this module,
    and a NamedTuple costs a fifth of a dataclass's class creation."""

    metadata_url: str
    data_url: str
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str | None = None
    envs_dir: str | None = None
    mlrun_api: str | None = None
    mlrun_token: str | None = None

    def __repr__(self) -> str:  # credentials never in a log line: the secret fields left out, URLs masked
        shown = (
            f"{k}={(mask_url(v) if isinstance(v, str) else v)!r}"
            for k, v in self._asdict().items()
            if k not in _SECRET_FIELDS
        )
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get(ENV_HOME) or Path.home() / ".digitalhub").expanduser()
        metadata_url = env.get(ENV_METADATA_URL) or f"sqlite:///{home / 'metadata.db'}"
        if env.get(ENV_METADATA_PASSWORD):
            metadata_url = with_password(metadata_url, env[ENV_METADATA_PASSWORD])
        return cls(
            metadata_url=metadata_url,
            data_url=env.get(ENV_DATA_URL) or str(home / "data"),
            s3_endpoint_url=env.get(ENV_S3_ENDPOINT) or env.get("S3_ENDPOINT_URL") or None,
            s3_access_key_id=env.get(ENV_S3_KEY) or env.get("AWS_ACCESS_KEY_ID") or None,
            s3_secret_access_key=env.get(ENV_S3_SECRET) or env.get("AWS_SECRET_ACCESS_KEY") or None,
            s3_region=env.get(ENV_S3_REGION) or env.get("AWS_DEFAULT_REGION") or None,
            envs_dir=env.get(ENV_ENVS_DIR) or str(home / "envs"),
            mlrun_api=env.get(ENV_MLRUN_API) or None,
            mlrun_token=env.get(ENV_MLRUN_TOKEN) or None,
        )

    def with_overrides(self, **changes: str | None) -> Settings:
        return self._replace(**{k: v for k, v in changes.items() if v})

    def to_env(self) -> dict[str, str]:
        """Environment variables that give a runner process these settings."""
        pairs = {
            ENV_METADATA_URL: self.metadata_url,
            ENV_DATA_URL: self.data_url,
            ENV_S3_ENDPOINT: self.s3_endpoint_url,
            ENV_S3_KEY: self.s3_access_key_id,
            ENV_S3_SECRET: self.s3_secret_access_key,
            ENV_S3_REGION: self.s3_region,
            ENV_ENVS_DIR: self.envs_dir,
            ENV_MLRUN_API: self.mlrun_api,
            ENV_MLRUN_TOKEN: self.mlrun_token,
        }
        return {k: v for k, v in pairs.items() if v}


_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@")


def mask_url(url: str) -> str:
    """``url`` with its password (``scheme://user:password@host``) shown as ``***``."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", url)


def url_password(url: str) -> str | None:
    """The password in ``url`` as written there (percent-encoded), or None."""
    match = _URL_PASSWORD.match(url)
    return url[len(match.group("head")) + 1 : match.end() - 1] if match else None


def with_password(url: str, password: str) -> str:
    """``url`` (a SQLAlchemy URL, or a REST API's ``http(s)://`` URL, where a password without a user
    is a bearer token) with ``password`` set."""
    if url.startswith(("http://", "https://")):
        from urllib.parse import quote, urlsplit, urlunsplit

        parts = urlsplit(url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        netloc = f"{quote(parts.username or '', safe='')}:{quote(password, safe='')}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=password).render_as_string(hide_password=False)


def without_password(url: str) -> tuple[str, str | None]:
    """(``url`` without its password, the password): what may go in plain text, and what may not."""
    if url.startswith(("http://", "https://")):
        from urllib.parse import unquote, urlsplit, urlunsplit

        parts = urlsplit(url)
        if parts.password is None:
            return url, None
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        netloc = f"{parts.username}@{host}" if parts.username else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), unquote(parts.password)
    if not url.startswith(("postgresql", "postgres", "mysql")):
        return url, None
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(password=None).render_as_string(hide_password=False), parsed.password


# The process-wide context (the stores these settings name), for entities made without one: the
# stores layer sets it when it loads (:func:`digitalhub_provider.stores.context.get_context`). It
# lives here, below every layer, so that entities reach it without importing what is above them.
context_factory: Callable[[], Any] | None = None
