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
    "kfp_host": {
        "label": "KFP API server",
        "schema": {"type": ["string", "null"]},
        "description": "e.g. http://ml-pipeline.kubeflow:8888; empty: workflows run with kfp.local on the worker",
    },
    "kfp_namespace": {"label": "KFP namespace", "schema": {"type": ["string", "null"]}},
    "kfp_experiment_id": {"label": "KFP experiment id", "schema": {"type": ["string", "null"]}},
    "mlrun_api": {
        "label": "MLRun API server",
        "schema": {"type": ["string", "null"]},
        "description": (
            "e.g. http://mlrun-api:8080; mlrun runs still run locally (or in a pod) and are then registered there"
        ),
    },
    "mlrun_token": {
        "label": "MLRun API token",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "launcher": {
        "label": "Default launcher",
        "schema": {"type": ["string", "null"], "enum": ["local", "kubernetes", None], "default": "local"},
        "description": "Where runs execute when a task does not set local_execution",
    },
    "namespace": {"label": "Kubernetes namespace", "schema": {"type": ["string", "null"]}},
    "service_account": {"label": "Kubernetes service account", "schema": {"type": ["string", "null"]}},
    "kubernetes_conn_id": {"label": "Airflow Kubernetes connection id", "schema": {"type": ["string", "null"]}},
    "kube_config_path": {"label": "Kubeconfig file", "schema": {"type": ["string", "null"]}},
    "in_cluster": {"label": "In cluster", "schema": {"type": ["boolean", "null"]}},
    "credentials_secret": {
        "label": "Kubernetes secret with the store credentials",
        "schema": {"type": ["string", "null"]},
        "description": (
            "Keys DIGITALHUB_S3_ACCESS_KEY_ID, DIGITALHUB_S3_SECRET_ACCESS_KEY, DIGITALHUB_METADATA_PASSWORD, "
            "DIGITALHUB_MLRUN_TOKEN"
        ),
    },
    "default_image": {
        "label": "Default runtime image",
        "schema": {"type": ["string", "null"]},
        "description": "Pattern with {runtime} and {python}, e.g. registry/digitalhub-runtime-{runtime}:py{python}",
    },
    "profiles": {
        "label": "Pod profiles (JSON)",
        "schema": {"type": ["object", "string", "null"]},
        "description": '{"gpu": {"node_selector": {...}, "tolerations": [...], "resources": {...}}}',
    },
}
UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": "S3 access key id", "password": "S3 secret access key"},
    "placeholders": {},
}
