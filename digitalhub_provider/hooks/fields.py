"""The ``digitalhub`` connection form, declared the Airflow 3 way (``conn-fields`` in the provider info).

Kept free of imports so that reading provider metadata imports nothing heavy.

How Airflow 3.3.2's UI shows it (``airflow/ui``, the connection form's ``FlexibleForm``):

- each field's ``schema`` reaches the form as it is: ``schema.section`` makes a collapsible group of the
  fields that name it, in the order they first appear (this dictionary's order is kept); ``title`` is the
  ``label``, the ``description`` shows under the field, ``values_display`` labels the options of an ``enum``;
- a field whose type includes ``"null"`` is optional; an ``enum`` is a drop-down list that can be cleared;
- placeholders (``UI_FIELD_BEHAVIOUR["placeholders"]``) reach only the standard fields (login, password,
  description...): the extra fields say what empty means in their description;
- the form writes every field into the extra, ``null`` when empty (its edit form shows only the fields whose
  keys the stored extra holds): ``null`` and ``""`` mean unset to :mod:`digitalhub_provider.connection_extras`.

Every key :class:`~digitalhub_provider.connection_extras.ConnectionExtras` reads has a field here, and no
other (tested). No field has a ``default``: the form would store it as if the user had chosen it.
"""

from __future__ import annotations

from typing import Any

STORES = "DigitalHub stores"
S3 = "S3 (data store on S3)"
RUNS = "Runs: where they execute, the console"
KUBERNETES = "Kubernetes (launcher kubernetes)"
KFP = "KFP (kfp runtime)"
MLRUN = "MLRun (mlrun runtime)"
SECTIONS = (STORES, S3, RUNS, KUBERNETES, KFP, MLRUN)

_TEXT = ["string", "null"]
_SECRET = {"type": _TEXT, "format": "password"}
# Tri-state booleans (unset, true, false) as a drop-down: a switch cannot go back to unset once touched.
_TRI_STATE = [None, "true", "false"]


def _field(section: str, label: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": _TEXT, **(schema or {}), "section": section}}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    # -- the stores ------------------------------------------------------------------------------------
    "metadata_url": _field(
        STORES,
        "Metadata store URL",
        "URL of the metadata store, without its password: sqlite:////path/metadata.db, "
        "postgresql+psycopg2://user@host:5432/db, or a DigitalHub Core API, https://dhcore.example.org "
        "(its token in the password field). Empty: the worker's DIGITALHUB_METADATA_URL, else the "
        "embedded default, $DIGITALHUB_HOME/metadata.db (SQLite; DIGITALHUB_HOME defaults to ~/.digitalhub).",
    ),
    "metadata_password": _field(
        STORES,
        "Metadata store password",
        "The metadata store's password, or a DigitalHub Core API's token (masked; put into the URL in memory "
        "only). Empty: no password.",
        _SECRET,
    ),
    "data_url": _field(
        STORES,
        "Data store URL",
        "Where files and tables go: a local folder, or s3://bucket/prefix (see the S3 section, and the "
        "login and password above for its keys). Empty: the worker's DIGITALHUB_DATA_URL, else the embedded "
        "default, $DIGITALHUB_HOME/data.",
    ),
    # -- S3 ----------------------------------------------------------------------------------------------
    "s3_endpoint_url": _field(
        S3,
        "S3 endpoint URL",
        "For MinIO or another S3 API, e.g. http://minio:9000. Empty: the worker's DIGITALHUB_S3_ENDPOINT_URL, "
        "else AWS S3. The access key id and secret are the login and password of this connection.",
    ),
    "s3_region": _field(
        S3,
        "S3 region",
        "e.g. eu-west-1. Empty: the worker's DIGITALHUB_S3_REGION or AWS_DEFAULT_REGION, else botocore's default.",
    ),
    # -- runs --------------------------------------------------------------------------------------------
    "launcher": _field(
        RUNS,
        "Default launcher",
        "Where a run executes when its task does not say (local_execution): local, on the Airflow worker, or "
        "kubernetes, in a pod (see the Kubernetes section). Empty: local.",
        {
            "enum": [None, "local", "kubernetes"],
            "values_display": {
                "null": "(empty) local",
                "local": "local: on the Airflow worker",
                "kubernetes": "kubernetes: a pod per run",
            },
        },
    ),
    "in_process": _field(
        RUNS,
        "Local runs inside the task's interpreter",
        "For the local launcher, when a task does not say (in_process): true runs every run in the Airflow task's "
        "own interpreter (a function that cannot is an error), false never does (a subprocess each). Empty: in "
        "process when the function can (a python job without requirements, on the worker's Python version).",
        {
            "enum": _TRI_STATE,
            "values_display": {
                "null": "(empty) when the function can",
                "true": "true: always",
                "false": "false: never",
            },
        },
    ),
    "ui_url": _field(
        RUNS,
        "DigitalHub console URL",
        "The base URL of another DigitalHub console, e.g. https://console.digitalhub.example/: each task's "
        "DigitalHub run button (under Extra Links) then opens its run there (<URL>/#/projects/<project>/runs/"
        "<run id>). Empty: the button opens the run in the console this provider serves inside Airflow.",
    ),
    # -- Kubernetes --------------------------------------------------------------------------------------
    "namespace": _field(KUBERNETES, "Kubernetes namespace", "Where run pods are created. Empty: default."),
    "service_account": _field(
        KUBERNETES, "Kubernetes service account", "The run pods' service account. Empty: the namespace's default."
    ),
    "kubernetes_conn_id": _field(
        KUBERNETES,
        "Airflow Kubernetes connection id",
        "A connection of type kubernetes for the cluster (KubernetesPodOperator's kubernetes_conn_id). "
        "Empty: kubernetes_default, KubernetesPodOperator's default.",
    ),
    "in_cluster": _field(
        KUBERNETES,
        "In cluster",
        "true: the worker runs inside the cluster and uses its service account; false: a kubeconfig. Empty: "
        "the Kubernetes connection's setting, else KubernetesPodOperator's default.",
        {
            "enum": _TRI_STATE,
            "values_display": {"null": "(empty) KubernetesPodOperator's default", "true": "true", "false": "false"},
        },
    ),
    "kube_config_path": _field(
        KUBERNETES,
        "Kubeconfig file",
        "A kubeconfig file on the worker, when not in cluster. Empty: the Kubernetes connection's setting, "
        "else KubernetesPodOperator's default.",
    ),
    "cluster_context": _field(
        KUBERNETES, "Kubeconfig context", "The context of the kubeconfig to use. Empty: its current context."
    ),
    "default_image": _field(
        KUBERNETES,
        "Default runtime image",
        "The image of a run's pod when its function names none: a pattern with {runtime} and {python}, e.g. "
        "registry.example/digitalhub-runtime-{runtime}:py{python}. Empty: digitalhub-runtime-{runtime}:py{python}.",
    ),
    "credentials_secret": _field(
        KUBERNETES,
        "Kubernetes secret with the store credentials",
        "A secret in the namespace the run pods read the credentials from, with the keys "
        "DIGITALHUB_S3_ACCESS_KEY_ID, DIGITALHUB_S3_SECRET_ACCESS_KEY, DIGITALHUB_METADATA_PASSWORD, "
        "DIGITALHUB_MLRUN_TOKEN (those this connection sets). Empty: none; pods then get no credentials, and a "
        "connection holding some is an error on Kubernetes.",
    ),
    "registry": _field(
        KUBERNETES,
        "Registry for built images",
        "Where the build action on Kubernetes pushes a function's image, as {registry}/{project}-{function}:"
        "{version}, e.g. registry.example/digitalhub. Empty: builds on Kubernetes are refused.",
    ),
    "registry_secret": _field(
        KUBERNETES,
        "Docker-config secret for the registry",
        "A kubernetes.io/dockerconfigjson secret in the namespace, mounted into the Kaniko pod for the push. "
        "Empty: Kaniko pushes without credentials.",
    ),
    "kaniko_image": _field(
        KUBERNETES,
        "Kaniko executor image",
        "The image of the build pods. Empty: gcr.io/kaniko-project/executor:v1.23.2.",
    ),
    "profiles": _field(
        KUBERNETES,
        "Pod profiles (JSON object)",
        'Named pod settings a task picks with profile="...": {"gpu": {"node_selector": {...}, '
        '"tolerations": [...], "resources": {...}}}. Empty: none.',
        {"type": ["object", "null"]},
    ),
    "gpu_resource": _field(
        KUBERNETES,
        "GPU resource name",
        'The resource a task\'s resources={"gpu": ...} asks for. Empty: nvidia.com/gpu.',
    ),
    "startup_timeout_seconds": _field(
        KUBERNETES,
        "Pod startup timeout (seconds)",
        "How long a run's pod may take to start. Empty: 300.",
        {"type": ["integer", "null"], "minimum": 1},
    ),
    "pod_operator_kwargs": _field(
        KUBERNETES,
        "KubernetesPodOperator arguments (JSON object)",
        "More arguments for the KubernetesPodOperator that starts a run's pod, over the provider's, e.g. "
        '{"image_pull_secrets": "regcred"}. Empty: none.',
        {"type": ["object", "null"]},
    ),
    # -- KFP ---------------------------------------------------------------------------------------------
    "kfp_host": _field(
        KFP,
        "KFP API server",
        "e.g. http://ml-pipeline.kubeflow:8888, where kfp workflows run when their task names no kfp_host. "
        "Empty: workflows run with kfp.local on the worker.",
    ),
    "kfp_namespace": _field(
        KFP, "KFP namespace", "The Kubeflow namespace of the runs (multi-user Kubeflow). Empty: kubeflow."
    ),
    "kfp_experiment_id": _field(
        KFP, "KFP experiment id", "The experiment KFP runs go in. Empty: the server's default experiment."
    ),
    # -- MLRun -------------------------------------------------------------------------------------------
    "mlrun_api": _field(
        MLRUN,
        "MLRun API server",
        "e.g. http://mlrun-api:8080 (no credentials in it): mlrun runs still run on the worker (or in a pod) "
        "and are then registered there, with their artifacts. Empty: the worker's DIGITALHUB_MLRUN_API, else "
        "not registered.",
    ),
    "mlrun_token": _field(
        MLRUN,
        "MLRun API token",
        "The MLRun API server's token (masked). Empty: the worker's DIGITALHUB_MLRUN_TOKEN, else none.",
        _SECRET,
    ),
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": "S3 access key id", "password": "S3 secret access key"},
    "placeholders": {
        "description": "e.g. the team's DigitalHub: PostgreSQL metadata, MinIO data",
        "login": "empty: the worker's DIGITALHUB_S3_ACCESS_KEY_ID or AWS_ACCESS_KEY_ID, else botocore's chain",
        "password": "empty: the worker's DIGITALHUB_S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY",
    },
}
