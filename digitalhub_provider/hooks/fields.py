"""The ``digitalhub`` connection form, declared the Airflow 3 way (``conn-fields`` in the provider info).

Kept free of imports so that reading provider metadata imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "metadata_url": {
        "label": "Metadata store URL",
        "schema": {"type": ["string", "null"]},
        "description": "sqlite:////path/metadata.db or postgresql+psycopg2://user@host:5432/db (no password here)",
    },
    "metadata_password": {
        "label": "Metadata store password",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "data_url": {
        "label": "Data store URL",
        "schema": {"type": ["string", "null"]},
        "description": "A local folder, or s3://bucket/prefix",
    },
    "s3_endpoint_url": {"label": "S3 endpoint URL", "schema": {"type": ["string", "null"]}},
    "s3_region": {"label": "S3 region", "schema": {"type": ["string", "null"]}},
    "ui_url": {"label": "DigitalHub console URL", "schema": {"type": ["string", "null"]}},
}
UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": "S3 access key id", "password": "S3 secret access key"},
    "placeholders": {},
}
