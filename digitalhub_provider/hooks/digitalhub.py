"""DigitalHubHook: the stores of a ``digitalhub`` Airflow connection.

Connection fields (all optional; an undefined ``digitalhub_default`` means the
embedded default: a SQLite file and a data directory under ``$DIGITALHUB_HOME``). The form, its groups
and what each field's emptiness means: :mod:`digitalhub_provider.hooks.fields`. In short:

- ``metadata_url``: the metadata store (a SQLAlchemy URL, or a DigitalHub Core API's
  ``https://`` URL), without the password;
- ``metadata_password``: its password, or the API's token (masked);
- ``data_url``: a local folder or ``s3://bucket/prefix``;
- ``s3_endpoint_url`` / ``s3_region``: for MinIO or another S3 API;
- login / password: the S3 access key id and secret (the password is masked);
- ``launcher`` / ``in_process``: where runs execute when a task does not say;
- ``ui_url``: where a DigitalHub console shows runs (used by the task's extra link);
- the Kubernetes launcher's settings (``namespace``, ``service_account``, ``profiles``...);
- ``kfp_host`` / ``kfp_namespace`` / ``kfp_experiment_id``: a KFP API server for kfp workflows;
- ``mlrun_api``: an MLRun API server (``http(s)://host:port``, no credentials in it) the mlrun
  runtime registers its runs and artifacts with, after running them; ``mlrun_token`` its token (masked).

The extras are read and typed once, into :attr:`DigitalHubHook.connection_extras`
(:class:`~digitalhub_provider.connection_extras.ConnectionExtras`); nothing else reads the raw keys.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from digitalhub_provider.config import Settings, url_password, with_password
from digitalhub_provider.connection_extras import ConnectionExtras
from digitalhub_provider.hooks.fields import UI_FIELD_BEHAVIOUR

if TYPE_CHECKING:  # the stores load when a task asks for them, not where a DAG is parsed or serialised
    from digitalhub_provider.sdk.context import Context


class DigitalHubHook(BaseHook):
    conn_name_attr = "digitalhub_conn_id"
    default_conn_name = "digitalhub_default"
    conn_type = "digitalhub"
    hook_name = "DigitalHub"

    def __init__(self, digitalhub_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.digitalhub_conn_id = digitalhub_conn_id
        self._settings: Settings | None = None
        self._connection_extras: ConnectionExtras | None = None
        self.extras: dict[str, Any] = {}  # the raw extra JSON, kept for compatibility: read connection_extras

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """For an Airflow that reads it from the hook (3.3 reads ``ui-field-behaviour`` in the provider info)."""
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @staticmethod
    def _extra_of(conn: Any) -> Any:
        """The connection's extra JSON as Airflow parses it: where this hook reads the raw extras."""
        return conn.extra_dejson or {}

    @property
    def connection_extras(self) -> ConnectionExtras:
        """The connection's extras, typed (the defaults when ``digitalhub_default`` is not defined)."""
        if self._connection_extras is None:
            self.get_settings()
        assert self._connection_extras is not None
        return self._connection_extras

    def get_settings(self) -> Settings:
        """The connection's settings; the embedded default when ``digitalhub_default`` is not defined."""
        if self._settings is not None:
            return self._settings
        from airflow.sdk.exceptions import AirflowNotFoundException

        base = Settings.from_env()
        try:
            conn = self.get_connection(self.digitalhub_conn_id)
        except AirflowNotFoundException:
            if self.digitalhub_conn_id != self.default_conn_name:
                raise AirflowNotFoundException(
                    f"The DigitalHub connection {self.digitalhub_conn_id!r} is not defined"
                ) from None
            self._connection_extras = ConnectionExtras()
            self._settings = base
            return base
        extra = self._extra_of(conn)
        self.extras = extra
        extras = ConnectionExtras.from_dict(extra, conn_id=self.digitalhub_conn_id)
        self._connection_extras = extras
        metadata_url = extras.metadata_url
        if metadata_url and extras.metadata_password:
            metadata_url = with_password(metadata_url, extras.metadata_password)
        # Airflow masks extras by their names; the password as the URL holds it (percent-encoded) and a
        # secret under a name Airflow does not know are masked here.
        for secret in (extras.metadata_password, extras.mlrun_token, url_password(metadata_url or "")):
            if secret:
                from airflow.sdk.log import mask_secret

                mask_secret(secret)
        self._settings = base.with_overrides(
            metadata_url=metadata_url,
            data_url=extras.data_url,
            s3_endpoint_url=extras.s3_endpoint_url,
            s3_region=extras.s3_region,
            s3_access_key_id=conn.login,
            s3_secret_access_key=conn.password,
            mlrun_api=extras.mlrun_api,
            mlrun_token=extras.mlrun_token,
        )
        return self._settings

    def get_context(self) -> Context:
        from digitalhub_provider.sdk.context import Context

        return Context(self.get_settings())

    def test_connection(self) -> tuple[bool, str]:
        """Open the metadata store (creating its schema) and write, read and delete a probe in the data store."""
        try:
            ctx = self.get_context()
            ctx.metadata.list("healthcheck", "function", limit=1)
            probe = ctx.data_url(".probe", uuid.uuid4().hex)
            store = ctx.data_store(probe)
            store.write_bytes(probe, b"ok")
            ok = store.read_bytes(probe) == b"ok"
            store.delete(probe)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if not ok:
            return False, "the data store returned other bytes than were written"
        return True, f"Metadata store and data store {os.path.basename(ctx.data_root) or ctx.data_root} reachable"
