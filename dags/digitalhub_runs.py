"""The provider's ``digitalhub_runs`` Airflow DAG (runs submitted through the REST API), in this bundle.

Airflow's safe mode parses only files that mention both "airflow" and "dag": this docstring does."""

from digitalhub_provider.dags.digitalhub_runs import dag  # noqa: F401
