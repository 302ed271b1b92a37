"""The provider's ``digitalhub_maintenance`` Airflow DAG (reconciles runs nobody follows), in this bundle.

Airflow's safe mode parses only files that mention both "airflow" and "dag": this docstring does."""

from digitalhub_provider.dags.digitalhub_maintenance import dag  # noqa: F401
